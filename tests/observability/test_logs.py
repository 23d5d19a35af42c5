"""JSON logs: one object per line, with the request, case and workflow ids, nothing else."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from observability import logs
from settings import Settings


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as LOG_FORMAT=json formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.CaseloopJsonFormatter("api"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_a_worker_line_names_the_workflow_and_its_case_and_nothing_else_of_the_record(
    lines: io.StringIO,
) -> None:
    case_id = uuid.uuid4()
    logging.getLogger("caseloop.test").warning(
        "projection retried",
        extra={
            "temporal_activity": {
                "activity_type": "project_case",
                "workflow_id": f"case-{case_id}",
                "workflow_run_id": "run-1",
                "attempt": 2,
            },
            "debtor_name": "Jonas Jensen",  # an extra a careless caller passes: never written
        },
    )
    [record] = _records(lines)
    assert record["message"] == "projection retried"
    assert record["level"] == "WARNING"
    assert record["logger"] == "caseloop.test"
    assert record["process"] == "api"
    assert record["workflowId"] == f"case-{case_id}"
    assert record["caseId"] == str(case_id)
    assert record["runId"] == "run-1"
    assert record["activity"] == "project_case"
    assert "Jonas" not in json.dumps(record)
    assert "time" in record


def _app_logging_in(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"log_format": "json"}))

    @app.get("/logs-probe/cases/{case_id}")
    async def probe(case_id: str) -> dict[str, str]:
        logging.getLogger("caseloop.probe").info("probed")
        return {}

    return app


async def test_a_request_line_names_the_request_and_its_case_and_the_answer_carries_the_id(
    settings: Settings, lines: io.StringIO
) -> None:
    app = _app_logging_in(settings)
    case_id = uuid.uuid4()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
        given = await client.get(f"/logs-probe/cases/{case_id}", headers={"X-Request-ID": "req-42"})
        made = await client.get(
            f"/logs-probe/cases/{case_id}", headers={"X-Request-ID": "has spaces; x=1"}
        )
    assert given.headers["x-request-id"] == "req-42"
    assert made.headers["x-request-id"] != "has spaces; x=1"  # not a plain token: a new id
    probed = [r for r in _records(lines) if r["message"] == "probed"]
    assert [(r["requestId"], r["caseId"]) for r in probed] == [
        ("req-42", str(case_id)),
        (made.headers["x-request-id"], str(case_id)),
    ]
    assert logs.request_id.get() is None  # nothing leaks past the request


def test_text_logs_add_no_middleware(settings: Settings) -> None:
    app = create_app(settings)
    assert not [m for m in app.user_middleware if m.cls is logs.RequestIds]
    json_app = create_app(settings.model_copy(update={"log_format": "json"}))
    assert [m for m in json_app.user_middleware if m.cls is logs.RequestIds]


def test_uvicorn_and_the_root_logger_share_the_configured_format(settings: Settings) -> None:
    config = logs.logging_config(settings.model_copy(update={"log_format": "json"}), "api")
    assert config["formatters"]["caseloop"]["()"] is logs.CaseloopJsonFormatter
    assert all(config["loggers"][name]["propagate"] for name in ("uvicorn", "uvicorn.access"))
    text = logs.logging_config(settings, "worker")
    assert "worker" in text["formatters"]["caseloop"]["format"]
