"""Retry policies shared by workflows."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# Projections retry until the database is back: a case must never silently stop being projected.
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

# One projection is one short transaction. A worker killed while it runs one must not hold the
# case for long: Temporal retries the projection elsewhere once this passes.
PROJECTION_TIMEOUT = timedelta(seconds=5)

# A projection that failed for good (activities/projection.py) is tried again after this, or
# when ops send the ``retry_projection`` signal; meanwhile the workflow refuses changes.
PROJECTION_REPAIR_RETRY = timedelta(hours=1)

# Signals between workflows (sent by an activity) retry the same way: they must arrive.
SIGNAL_RETRY = PROJECTION_RETRY

# Local activities (projection with its deadlines, signals to other workflows) run inside the workflow
# task that accepts an update. Their first attempt is part of that task; a retry never is: any
# backoff longer than this waits on a durable workflow timer (temporalio: a backoff above
# ``local_retry_threshold`` makes the SDK sleep on a timer and schedule the next attempt, with
# its attempt number, in a later workflow task). So a failing write holds no workflow task open,
# survives a worker restart, and the time-skipping test server skips the backoff.
LOCAL_RETRY_THRESHOLD = timedelta(milliseconds=100)

# A signal-with-start to another workflow is one RPC; it runs beside the projection.
SIGNAL_TIMEOUT = timedelta(seconds=5)

# Releasing a creditor's waiting cases is one signal per case, sent a few at a time.
RELEASE_TIMEOUT = timedelta(seconds=30)
