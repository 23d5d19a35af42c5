"""Temporal workflow classes only. No I/O here: side effects go through activities/."""
