"""Every caseloop metric, in the process's default Prometheus registry (one place: the names,
labels and meanings are listed in docs/operations.md, "Metrics", and a test checks the two
agree).

The worker's own (``caseloop_worker_polling``, the collector's) live beside the code that sets
them (``observability.worker``, ``observability.collector``), so the API's endpoint shows none.

Updating one is an in-memory increment or observation (no I/O), so they may sit on the write
path. Labels have bounded values only: route templates (never raw paths), activity names,
exception types, e-mail categories.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
    buckets=LATENCY_BUCKETS,
)
ACTIVITY_DURATION = Histogram(
    "caseloop_activity_duration_seconds",
    "Activity execution time per attempt (projections are local activities), by activity name.",
    ["activity"],
    buckets=LATENCY_BUCKETS,
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
