"""Ledger rows for tests, with everything but what a test cares about filled in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.store.base import LedgerEntry

NOW = datetime(2026, 5, 20, 15, 30, tzinfo=UTC)
_ids = itertools.count()


def entry(**fields: Any) -> LedgerEntry:
    values: dict[str, Any] = {
        "request_id": f"req-{next(_ids)}",
        "platform": "slack",
        "workspace": "T1",
        "channel": "C1",
        "user": "U1",
        "model": "bytedance/dola-seed-2-0-lite",
        "effort": "medium",
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "reasoning_tokens": 300,
        "cached_tokens": 100,
        "usd": Decimal("0.001625"),
        "cost_source": "reported",
        "ttft_s": 0.8,
        "latency_s": 4.2,
        "outcome": "ok",
        "at": NOW,
    }
    values.update(fields)
    return LedgerEntry(**values)
