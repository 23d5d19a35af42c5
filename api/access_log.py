"""uvicorn's access log, without personal data: paths only, never query strings.

Query strings carry personal data (``GET /api/cases?debtorName=...``), so the access log shows
the path alone, and the Web UI's codec token is blanked out of its path. A filter on the
``uvicorn.access`` logger does it, installed by the app factory, so it holds however the API
is served (``caseloop api``, ``make run``, ``uvicorn --factory``, several workers).
"""

from __future__ import annotations

import logging

from api.routes.codec import redact_ui_token

ACCESS_LOGGER = "uvicorn.access"


def loggable_path(full_path: str) -> str:
    """What the log may show of a request target: its path, with secrets blanked out."""
    return redact_ui_token(full_path.split("?", 1)[0])


class HideQueryStrings(logging.Filter):
    """Rewrites uvicorn's access records (client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], loggable_path(args[2]), *args[3:])
        return True


def hide_query_strings() -> None:
    """Install the filter on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, HideQueryStrings) for f in logger.filters):
        logger.addFilter(HideQueryStrings())
