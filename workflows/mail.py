"""Sending an e-mail from a workflow: ``send`` is how every rule's workflow runs the
``send_email`` activity (one place for its timeout and retries), and ``SendEmailWorkflow`` sends
one e-mail durably for callers outside a workflow (a Schedule's job, the API): start it with
the id ``email_workflow_id(email.idempotency_key)``, so the same e-mail started twice is one
workflow (a second start is refused with "already started").
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.mail import (
        SEND_EMAIL,
        SEND_EMAIL_MAX_RETRY_INTERVAL,
        SEND_EMAIL_TIMEOUT,
        Email,
        SentEmails,
    )


async def send(email: Email) -> SentEmails:
    """Send ``email`` (each recipient's copy once; activities/mail.py), retrying until it is
    sent: an SMTP outage delays it, never drops it."""
    return await workflow.execute_activity(
        SEND_EMAIL,
        email,
        start_to_close_timeout=SEND_EMAIL_TIMEOUT,
        retry_policy=RetryPolicy(maximum_interval=SEND_EMAIL_MAX_RETRY_INTERVAL),
        result_type=SentEmails,
    )


@workflow.defn(name="SendEmail")
class SendEmailWorkflow:
    @workflow.run
    async def run(self, email: Email) -> SentEmails:
        return await send(email)
