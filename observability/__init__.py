"""Operability: Prometheus metrics (``metrics``), the endpoint that serves them (``server``),
the worker's activity metrics and health (``worker``) and the domain gauges (``collector``).
docs/operations.md, "Metrics", lists every metric."""
