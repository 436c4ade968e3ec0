"""Service metrics in the Prometheus text format, platform-neutral (a platform is just a label value).

Each `Metrics` owns its own `CollectorRegistry` rather than the process-global one, so several can
live side by side (one per test, or per embedded service) without "duplicated timeseries" errors.

Label values should come from small fixed sets (platform names, outcomes such as `complete`,
`interrupted`, `error`, `stopped`), never from ids or free text, or the series count explodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.llm.types import Usage

# A reasoning model's first token can take from a fraction of a second to minutes; an answer up to ~5 min.
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)
TOKEN_KINDS = ("prompt", "completion", "reasoning", "cached")
REDIS_PARTS = ("budgets", "stops", "locks")  # what uses Redis (REDIS_URL), see core.coordination.RedisLink
# The classic text format every Prometheus-compatible scraper reads; our metric names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, namespace: str = "seedbot") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ns, reg = namespace, self.registry
        self._requests = Counter(
            "requests",
            "Answers attempted, by platform and outcome",
            ["platform", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self._tokens = Counter("tokens", "Model tokens, by kind", ["kind"], namespace=ns, registry=reg)
        self._usd = Counter("cost_usd", "US dollars spent on model calls", namespace=ns, registry=reg)
        self._ttft = Histogram(
            "time_to_first_token_seconds",
            "From request to the first reasoning or content token",
            ["platform"],
            buckets=LATENCY_BUCKETS_S,
            namespace=ns,
            registry=reg,
        )
        self._latency = Histogram(
            "answer_seconds",
            "From request to the end of the answer",
            ["platform"],
            buckets=LATENCY_BUCKETS_S,
            namespace=ns,
            registry=reg,
        )
        self._edits = Counter("edits", "Chat message edits sent", ["platform"], namespace=ns, registry=reg)
        self._rate_limited = Counter(
            "platform_rate_limited",
            "429 answers from a chat platform",
            ["platform"],
            namespace=ns,
            registry=reg,
        )
        self._active = Gauge("active_streams", "Answers streaming right now", namespace=ns, registry=reg)
        self._retries = Counter("model_retries", "Model API calls retried", namespace=ns, registry=reg)
        self._refusals = Counter(
            "budget_refusals", "Requests refused by a budget", ["platform"], namespace=ns, registry=reg
        )
        self._instance = Gauge(
            "instance",
            "This process's instance id (1), to tell instances apart",
            ["instance"],
            namespace=ns,
            registry=reg,
        )
        self._renewals = Counter(
            "lease_renewals",
            "Heartbeats of this instance's lease, by outcome (failed: the database did not answer)",
            ["outcome"],
            namespace=ns,
            registry=reg,
        )
        self._takeovers = Counter(
            "takeovers",
            "Streaming replies taken over from instances whose lease expired",
            namespace=ns,
            registry=reg,
        )
        self._budget_fill = Gauge(
            "reply_budget_fill_ratio",
            "How full a shared rate budget was at its latest draw (1: full burst), by kind of budget",
            ["budget"],
            namespace=ns,
            registry=reg,
        )
        self._deferred = Counter(
            "reply_updates_deferred",
            "Reply updates not sent for lack of budget: low = thinking status skipped, routine = edit"
            " merged into a later one, urgent = gave up after waiting",
            ["priority"],
            namespace=ns,
            registry=reg,
        )
        self._budget_fallbacks = Counter(
            "reply_budget_fallbacks",
            "Budget draws served by this instance's own buckets because the shared store was unreachable",
            namespace=ns,
            registry=reg,
        )
        self._redis_fallbacks = Counter(
            "redis_fallbacks",
            "Times a part lost Redis and went on alone (budgets: this instance's own rate budgets; stops:"
            " stops no longer pass between instances; locks: conversations keep their order per instance)",
            ["part"],
            namespace=ns,
            registry=reg,
        )
        # Absent without REDIS_URL: each part sets it at its first call to Redis.
        self._redis_reachable = Gauge(
            "redis_reachable",
            "Whether a part reached Redis at its latest call (1) or goes on alone (0)",
            ["part"],
            namespace=ns,
            registry=reg,
        )
        # Fixed label sets start at zero so dashboards and rate() see the series before the first event.
        for kind in TOKEN_KINDS:
            self._tokens.labels(kind)
        for priority in ("urgent", "routine", "low"):
            self._deferred.labels(priority)
        for outcome in ("renewed", "failed"):
            self._renewals.labels(outcome)
        for part in REDIS_PARTS:
            self._redis_fallbacks.labels(part)

    def record_answer(
        self,
        platform: str,
        outcome: str,
        usage: Usage | None = None,
        usd: Decimal | None = None,
        ttft_s: float | None = None,
        total_s: float | None = None,
    ) -> None:
        """One finished (or failed) answer: what it was, what it used, how long it took."""
        self._requests.labels(platform, outcome).inc()
        if usage is not None:
            for kind, count in zip(
                TOKEN_KINDS,
                (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.cached_tokens),
                strict=True,
            ):
                if count > 0:
                    self._tokens.labels(kind).inc(count)
        if usd is not None and usd > 0:
            self._usd.inc(float(usd))
        if ttft_s is not None:
            self._ttft.labels(platform).observe(ttft_s)
        if total_s is not None:
            self._latency.labels(platform).observe(total_s)

    def edit(self, platform: str, count: int = 1) -> None:
        """`count` posts or edits of reply messages."""
        self._edits.labels(platform).inc(count)

    def rate_limited(self, platform: str, count: int = 1) -> None:
        """`count` 429s the platform answered."""
        self._rate_limited.labels(platform).inc(count)

    def retry(self) -> None:
        self._retries.inc()

    def running_as(self, instance: str) -> None:
        self._instance.labels(instance).set(1)

    def lease_renewed(self, renewed: bool) -> None:
        self._renewals.labels("renewed" if renewed else "failed").inc()

    def takeover(self, replies: int) -> None:
        self._takeovers.inc(replies)

    def budget_refused(self, platform: str) -> None:
        self._refusals.labels(platform).inc()

    def budget_fill(self, budget: str, ratio: float) -> None:
        self._budget_fill.labels(budget).set(ratio)

    def update_deferred(self, priority: str) -> None:
        self._deferred.labels(priority).inc()

    def budget_fallback(self) -> None:
        self._budget_fallbacks.inc()

    def redis_reachable(self, part: str, reachable: bool) -> None:
        """`part` of REDIS_PARTS reached Redis again, or lost it (one outage, counted once)."""
        self._redis_reachable.labels(part).set(1 if reachable else 0)
        if not reachable:
            self._redis_fallbacks.labels(part).inc()

    def stream_started(self) -> None:
        self._active.inc()

    def stream_finished(self) -> None:
        self._active.dec()

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Counts one active stream for the duration of the block, however it ends."""
        self.stream_started()
        try:
            yield
        finally:
            self.stream_finished()

    def render(self) -> bytes:
        """Every metric in the Prometheus text exposition format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
