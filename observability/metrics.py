"""Every caseloop metric, in the process's default Prometheus registry (one place: the names,
labels and meanings are listed in docs/operations.md, "Metrics", and a test checks the two
agree). The worker's own (``caseloop_worker_polling``, the collector's) live beside the code
that sets them (``observability.worker``, ``observability.collector``), so the API's endpoint
shows none.

They sit on the write path (every API request, every projection), so updating one must cost
next to nothing: ``Counter`` and ``Histogram`` here are a dict look-up and an addition or two
(about a microsecond; ``bench/metrics_overhead.py``), where prometheus_client's own take a
label look-up and a lock per bucket (20 µs a request on a busy machine). They are updated from
the event loop's thread only (the API's and the worker's code is async), and read by the
metrics server's thread, which copies them first. Labels have bounded values only: route
templates (never raw paths), activity names, exception types, e-mail categories.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]


class Counter(Collector):
    """A counter family: ``inc(*label_values)``; served as ``<name>_total``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, list(labelnames)
        self._values: dict[Labels, float] = {}
        if registry is not None:
            registry.register(self)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value)
        yield family


class Histogram(Collector):
    """A histogram family: ``observe(amount, *label_values)``; ``buckets``: the upper bounds
    (``+Inf`` is added)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, list(labelnames)
        self._bounds = tuple(sorted(buckets))
        self._les = [floatToGoString(b) for b in (*self._bounds, math.inf)]
        # Per label values: the count of each bucket (not cumulative), and the sum.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}
        if registry is not None:
            registry.register(self)

    def observe(self, amount: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * len(self._les), [0.0])
        series[0][bisect_left(self._bounds, amount)] += 1
        series[1][0] += amount

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return sum(series[0]) if series is not None else 0

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, (counts, total) in list(self._series.items()):
            cumulative, buckets = 0, []
            for le, count in zip(self._les, list(counts), strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(list(labels), buckets, total[0])
        yield family


# Latency buckets (seconds) for API requests and activities: projections take milliseconds,
# an update that waits on a workflow up to API_UPDATE_TIMEOUT_SECONDS.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "caseloop_http_requests",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "caseloop_http_request_duration_seconds",
    "API request latency (first byte in to last byte out), by method and route template.",
    ["method", "route"],
    LATENCY_BUCKETS,
)
ACTIVITY_DURATION = Histogram(
    "caseloop_activity_duration_seconds",
    "Activity execution time per attempt (projections are local activities), by activity name.",
    ["activity"],
    LATENCY_BUCKETS,
)
ACTIVITY_FAILURES = Counter(
    "caseloop_activity_failures",
    "Activity attempts that failed (retried or not), by activity name and error type.",
    ["activity", "error"],
)
EMAILS = Counter(
    "caseloop_emails",
    "Recipient copies of e-mails by outcome: sent, refused (for good), already_sent (a retry "
    "found it sent), failed (the attempt failed and is retried).",
    ["category", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "caseloop_webhook_attempts",
    "Webhook delivery attempts by outcome: delivered, failed.",
    ["outcome"],
)
