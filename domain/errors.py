"""Business rejections raised by workflows and how the API reports them.

Workflows raise ``ApplicationError(message, type=<code>, non_retryable=True)``; the API maps the
code to an HTTP status with this table (422 when a code is not listed).
"""

INVALID_TRANSITION = "invalid_transition"
TASK_NOT_FOUND = "task_not_found"
TASK_NOT_OPEN = "task_not_open"
THREAD_CHANGED = "thread_changed"  # a chat task's thread got a message after the cleanup read it
TASK_NOT_RESOLVABLE_BY_HAND = "task_not_resolvable_by_hand"
INVALID_DEADLINE = "invalid_deadline"
CASE_NOT_EDITABLE = "case_not_editable"
VALIDATION_FAILED = "validation_failed"
NOT_FOUND = "not_found"
NOT_A_PARTY = "not_a_party"  # the caller's organisation has no part in this step of the case
NOTHING_TO_ANSWER = "nothing_to_answer"  # e.g. a survey when none is due
# The workflow's read model cannot be written (a projection failed for good): it takes no changes
# until ops repair it (docs/operations.md). An activity raises PROJECTION_FAILED; the workflow
# then answers PROJECTION_BLOCKED to every new update.
PROJECTION_FAILED = "projection_failed"
PROJECTION_BLOCKED = "projection_blocked"

HTTP_STATUS_OF: dict[str, int] = {
    INVALID_TRANSITION: 409,
    TASK_NOT_FOUND: 404,
    TASK_NOT_OPEN: 409,
    TASK_NOT_RESOLVABLE_BY_HAND: 409,
    INVALID_DEADLINE: 422,
    CASE_NOT_EDITABLE: 409,
    NOT_FOUND: 404,
    NOT_A_PARTY: 403,
    NOTHING_TO_ANSWER: 409,
    PROJECTION_BLOCKED: 503,
}
