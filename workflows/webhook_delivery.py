"""``WebhookDeliveryWorkflow``: one per webhook subscription (id ``webhooks-<subscription id>``),
and ``WebhookRetentionWorkflow``, which the ``webhook-retention`` schedule runs nightly.

The projection that writes a subscription's deliveries (``store.webhooks.fan_out``, in its
transaction) starts or wakes the subscription's workflow once it committed (signal-with-start,
``activities.webhooks.wake_deliveries``), and so do ``PATCH isActive=true`` and a replay. The
workflow loops: one activity sends what is due (``WebhookActivities.deliver_due``) and answers
when the next delivery falls due; the workflow sleeps until then on a durable timer (so a
retry 30 minutes out survives restarts, and a time-skipping test walks it) or until woken. It
ends when its subscription is gone or disabled, and continues as new every ``PASSES_PER_RUN``
passes or when the server suggests it. The retry jitter is drawn by the activity and stored,
never here.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from domain.webhooks import (
        DeliveryPass,
        DeliveryWorkflowInput,
        PruneRequest,
        RetentionInput,
    )

# A pass sends up to a few hundred deliveries of up to 10 s each, eight at a time.
PASS_TIMEOUT = timedelta(minutes=10)
PASS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# About six history events a pass: a run stays a few hundred events long.
PASSES_PER_RUN = 100


@workflow.defn
class WebhookDeliveryWorkflow:
    """Deliver one subscription's webhooks, oldest first, until it is gone or disabled."""

    def __init__(self) -> None:
        self._woken = False

    @workflow.signal
    def wake(self) -> None:
        """New deliveries, a replay or a re-enabled subscription: look again now."""
        self._woken = True

    @workflow.run
    async def run(self, input: DeliveryWorkflowInput) -> None:
        for _ in range(PASSES_PER_RUN):
            self._woken = False
            result = await workflow.execute_activity_method(
                WebhookActivities.deliver_due,
                DeliveryPass(subscription_id=input.subscription_id, now=workflow.now()),
                start_to_close_timeout=PASS_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=PASS_RETRY,
                summary="deliver due webhooks",
            )
            if result.stop and not self._woken:
                return
            if workflow.info().is_continue_as_new_suggested():
                break
            if self._woken or result.stop:
                continue
            upcoming = result.next_attempt_at
            wait = None if upcoming is None else upcoming - workflow.now()
            if wait is not None and wait <= timedelta(0):
                continue
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken, timeout=wait, timeout_summary="next webhook retry"
                )
        workflow.continue_as_new(input)


@workflow.defn
class WebhookRetentionWorkflow:
    """Prune old deliveries in batches (``WEBHOOKS_RETENTION_DAYS``); how many."""

    @workflow.run
    async def run(self, input: RetentionInput) -> int:
        now = workflow.now()
        pruned = 0
        while True:
            count = await workflow.execute_activity_method(
                WebhookActivities.prune_deliveries,
                PruneRequest(now=now, batch=input.batch),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=PASS_RETRY,
                summary="prune old webhook deliveries",
            )
            pruned += count
            if count < input.batch:
                return pruned
