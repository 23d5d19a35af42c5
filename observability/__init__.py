"""What ops see of running processes beyond the API: traces, logs and metrics (issue 14)."""
