"""/metrics content: what the service records shows up, correctly labelled, in the Prometheus text format."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.llm.types import Usage
from core.metrics import Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of one sample parsed back from the rendered text, or None if it is absent."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def test_an_answer_counts_request_tokens_cost_and_latency():
    metrics = Metrics()
    usage = Usage(
        prompt_tokens=120, completion_tokens=900, total_tokens=1020, reasoning_tokens=700, cached_tokens=64
    )
    metrics.record_answer("slack", "complete", usage, Decimal("0.0033"), ttft_s=0.3, total_s=4.2)
    metrics.record_answer("slack", "complete", usage, Decimal("0.0017"), ttft_s=1.5, total_s=9.0)
    metrics.record_answer("discord", "error")

    assert sample(metrics, "seedbot_requests_total", platform="slack", outcome="complete") == 2
    assert sample(metrics, "seedbot_requests_total", platform="discord", outcome="error") == 1
    assert sample(metrics, "seedbot_tokens_total", kind="prompt") == 240
    assert sample(metrics, "seedbot_tokens_total", kind="completion") == 1800
    assert sample(metrics, "seedbot_tokens_total", kind="reasoning") == 1400
    assert sample(metrics, "seedbot_tokens_total", kind="cached") == 128
    assert sample(metrics, "seedbot_cost_usd_total") == pytest.approx(0.005)
    ttft = "seedbot_time_to_first_token_seconds"
    assert sample(metrics, f"{ttft}_bucket", platform="slack", le="0.25") == 0
    assert sample(metrics, f"{ttft}_bucket", platform="slack", le="0.5") == 1
    assert sample(metrics, f"{ttft}_bucket", platform="slack", le="2.0") == 2
    assert sample(metrics, f"{ttft}_sum", platform="slack") == pytest.approx(1.8)
    assert sample(metrics, "seedbot_answer_seconds_count", platform="slack") == 2
    assert sample(metrics, "seedbot_answer_seconds_bucket", platform="slack", le="300.0") == 2
    # A failed answer without timings adds no latency observation for its platform.
    assert sample(metrics, "seedbot_answer_seconds_count", platform="discord") is None


def test_token_kinds_are_exported_at_zero_before_any_answer():
    metrics = Metrics()
    for kind in ("prompt", "completion", "reasoning", "cached"):
        assert sample(metrics, "seedbot_tokens_total", kind=kind) == 0


def test_platform_events_are_counted_per_platform():
    metrics = Metrics()
    for _ in range(3):
        metrics.edit("discord")
    metrics.edit("slack")
    metrics.rate_limited("discord")
    metrics.retry()
    metrics.retry()
    metrics.budget_refused("slack")

    assert sample(metrics, "seedbot_edits_total", platform="discord") == 3
    assert sample(metrics, "seedbot_edits_total", platform="slack") == 1
    assert sample(metrics, "seedbot_platform_rate_limited_total", platform="discord") == 1
    assert sample(metrics, "seedbot_platform_rate_limited_total", platform="slack") is None
    assert sample(metrics, "seedbot_model_retries_total") == 2
    assert sample(metrics, "seedbot_budget_refusals_total", platform="slack") == 1


def test_active_streams_rise_and_fall_even_when_a_stream_fails():
    metrics = Metrics()
    metrics.stream_started()
    with metrics.streaming():
        assert sample(metrics, "seedbot_active_streams") == 2
    with pytest.raises(RuntimeError), metrics.streaming():
        raise RuntimeError("model went away")
    assert sample(metrics, "seedbot_active_streams") == 1
    metrics.stream_finished()
    assert sample(metrics, "seedbot_active_streams") == 0


def test_separate_instances_do_not_share_counts():
    first, second = Metrics(), Metrics()
    first.retry()
    assert sample(first, "seedbot_model_retries_total") == 1
    assert sample(second, "seedbot_model_retries_total") == 0
