"""Business rejections raised by workflows and how the API reports them.

Workflows raise ``ApplicationError(message, type=<code>, non_retryable=True)``; the API maps the
code to an HTTP status with this table (422 when a code is not listed).
"""

INVALID_TRANSITION = "invalid_transition"

HTTP_STATUS_OF: dict[str, int] = {
    INVALID_TRANSITION: 409,
}
