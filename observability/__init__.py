"""Operability (issue 14): Prometheus metrics (``metrics``), the endpoint that serves them
(``server``), the worker's activity metrics and health (``worker``), the domain gauges
(``collector``), traces (``tracing``) and logs (``logs``). docs/operations.md, "Metrics",
"Traces" and "Logs", say what each shows."""
