"""Retry policies shared by workflows."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# Projections retry until the database is back: a case must never silently stop being projected.
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

# Signals between workflows (sent by an activity) retry the same way: they must arrive.
SIGNAL_RETRY = PROJECTION_RETRY
