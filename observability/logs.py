"""Logs: text lines for people, or JSON lines for a log pipeline (``LOG_FORMAT=json``).

A JSON line carries the time, level, logger, process ("api" or "worker") and message, and
where they apply:

- ``requestId``: the API request the line was logged in (the caller's ``X-Request-ID`` when it
  is a plain token, else a new one; the answer carries it back in ``X-Request-ID``);
- ``caseId``: the case the request or the workflow is about (from the request's path
  ``…/cases/<id>…`` or the workflow id ``case-<id>``);
- ``workflowId``, ``runId``, ``activity``: in the worker, from the Temporal SDK's workflow and
  activity loggers (their ``temporal_workflow`` / ``temporal_activity`` extras).

Nothing else of a record's extras is written, so a log line holds no more than its message:
caseloop's messages name ids and outcomes, never a debtor, an amount or a message's text (the
access log drops query strings: api/access_log.py). In text mode the API adds no middleware.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import re
import uuid
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

from settings import Settings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
request_case_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_case_id", default=None
)

REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept only when it is a plain token (no spaces, no personal data
# smuggled in by accident is likely in 64 such characters, and no log injection).
_PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CASE_IN_PATH = re.compile(r"/cases/([0-9a-fA-F-]{36})(?:/|$)")
_CASE_WORKFLOW = re.compile(r"^case-([0-9a-fA-F-]{36})$")
TEXT_FORMAT = "%(asctime)s {process} %(levelname)s %(name)s %(message)s"


class CaseloopJsonFormatter(JsonFormatter):
    """One JSON object per line: the fields in the module doc, nothing else of the record."""

    def __init__(self, process: str) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # Only these of a record's extras: the SDK's info dicts are read below, not dumped.
            reserved_attrs=[*_RECORD_ATTRIBUTES, "temporal_workflow", "temporal_activity"],
            static_fields={"process": process},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in [k for k in log_data if k not in _KEPT]:
            del log_data[key]  # an ``extra`` a library passed: not ours to publish
        log_data.update(context_of(record))


def context_of(record: logging.LogRecord) -> dict[str, str]:
    """The ids a record was logged under (module doc)."""
    fields: dict[str, str] = {}
    if (rid := request_id.get()) is not None:
        fields["requestId"] = rid
    if (case := request_case_id.get()) is not None:
        fields["caseId"] = case
    info = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if isinstance(info, dict):
        workflow_id = info.get("workflow_id")
        if isinstance(workflow_id, str):
            fields["workflowId"] = workflow_id
            if match := _CASE_WORKFLOW.match(workflow_id):
                fields["caseId"] = match.group(1)
        for source, name in (("run_id", "runId"), ("workflow_run_id", "runId")):
            if isinstance(info.get(source), str):
                fields[name] = info[source]
        if isinstance(info.get("activity_type"), str):
            fields["activity"] = info["activity_type"]
    return fields


_RECORD_ATTRIBUTES = [*vars(logging.makeLogRecord({})), "message", "asctime"]
_KEPT = {"time", "level", "logger", "message", "process", "exc_info", "stack_info", "taskName"}


def configure(settings: Settings, process: str) -> None:
    """Set up the root logger for ``process`` ("api", "worker") per LOG_FORMAT / LOG_LEVEL."""
    logging.config.dictConfig(logging_config(settings, process))
    if settings.log_format == "json":
        # The ids go in fields of their own; the SDK's loggers need not repeat them in text.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False


def logging_config(settings: Settings, process: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process; uvicorn's loggers (the API's access log
    among them) use it too (api/server.py passes it as uvicorn's ``log_config``)."""
    formatter: dict[str, Any] = (
        {"()": CaseloopJsonFormatter, "process": process}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT.format(process=process)}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"caseloop": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "caseloop"},
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level},
        "loggers": {
            # uvicorn's own loggers, which otherwise bring handlers and formats of their own.
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


class RequestIds:
    """ASGI middleware (LOG_FORMAT=json only): each request's id and case in the log context,
    and the id in the answer's ``X-Request-ID``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v for k, v in scope.get("headers", ()) if k == REQUEST_ID_HEADER.encode()), None
        )
        text = given.decode("latin-1") if given is not None else ""
        rid = text if _PLAIN_TOKEN.match(text) else uuid.uuid4().hex
        match = _CASE_IN_PATH.search(scope.get("path", ""))
        tokens = (
            request_id.set(rid),
            request_case_id.set(match.group(1).lower() if match else None),
        )
        header = (REQUEST_ID_HEADER.encode(), rid.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_case_id.reset(tokens[1])
            request_id.reset(tokens[0])
