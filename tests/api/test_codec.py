"""Temporal stores a case encrypted; the codec endpoint decodes it for ops (and the Web UI) only;
the access log shows no query strings."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

import worker as worker_module
from api.app import create_app
from codec import KEY_ID
from settings import Settings
from tests.support import TEST_DATA_CONVERTER, Actor, case_body

BODY = case_body()
DEBTOR: dict[str, str] = BODY["debtor"]  # type: ignore[assignment]
# What a case's history must not show in clear: names, e-mail, address and the claim text.
PERSONAL = [
    DEBTOR["name"],
    DEBTOR["contactPerson"],
    DEBTOR["email"],
    DEBTOR["address"],
    str(BODY["claimDescription"]),
]
UI_ORIGIN = "http://localhost:8233"
UI_TOKEN = "ui-token-" + "x" * 40


async def raw_history(env: WorkflowEnvironment, workflow_id: str) -> History:
    """The history exactly as the Temporal server stores it: no data converter, no codec."""
    history = History()
    request = GetWorkflowExecutionHistoryRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )
    while True:
        page = await env.client.workflow_service.get_workflow_execution_history(request)
        history.events.extend(page.history.events)
        if not page.next_page_token:
            return history
        request.next_page_token = page.next_page_token


async def submitted_case(api: httpx.AsyncClient, creditor: Actor) -> str:
    created = await api.post("/api/cases", json=BODY, headers=creditor.headers)
    assert created.status_code == 201, created.text
    return str(created.json()["caseId"])


def started_input(history: History) -> dict[str, Any]:
    """The case workflow's input payloads, as the codec protocol carries them."""
    started = history.events[0].workflow_execution_started_event_attributes
    return json_format.MessageToDict(started.input)


def texts_of(payloads: dict[str, Any]) -> str:
    return " ".join(
        base64.b64decode(p.get("data", "")).decode(errors="replace") for p in payloads["payloads"]
    )


async def test_temporal_stores_a_case_with_no_personal_data_in_clear(
    api: httpx.AsyncClient, creditor: Actor, dev_env: WorkflowEnvironment, worker: Worker
) -> None:
    case_id = await submitted_case(api, creditor)
    # A correction carries the case data again, as an update's input (creating a case is one
    # workflow task now, docs/decisions/0009: the correction gives the history more to hide).
    corrected = await api.patch(
        f"/api/cases/{case_id}",
        json={"claimDescription": BODY["claimDescription"]},
        headers=creditor.headers,
    )
    assert corrected.status_code == 200, corrected.text
    history = await raw_history(dev_env, f"case-{case_id}")
    described = await dev_env.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=dev_env.client.namespace,
            execution=WorkflowExecution(workflow_id=f"case-{case_id}"),
        )
    )
    stored = history.SerializeToString() + described.SerializeToString()
    assert len(history.events) > 10
    for text in PERSONAL:
        assert text.encode() not in stored, f"{text!r} is stored in clear"
    # Search attributes stay readable (and hold only ids and enums).
    assert str(creditor.org_id).encode() in described.SerializeToString()
    # The same history, through caseloop's data converter, holds the case.
    handle = dev_env.client.get_workflow_handle(f"case-{case_id}")
    decoded = await TEST_DATA_CONVERTER.decode(
        history.events[0].workflow_execution_started_event_attributes.input.payloads
    )
    assert DEBTOR["name"] in str(decoded)
    # An encrypted history replays on the workflow code like the recorded ones do.
    replayer = Replayer(
        workflows=worker_module.WORKFLOWS,
        data_converter=TEST_DATA_CONVERTER,
        workflow_runner=worker_module.WORKFLOW_RUNNER,
        interceptors=worker_module.INTERCEPTORS,
    )
    await replayer.replay_workflow(WorkflowHistory(handle.id, list(history.events)))


async def test_codec_endpoint_decodes_what_the_worker_encrypted_for_an_ops_key(
    api: httpx.AsyncClient, creditor: Actor, ops: Actor, dev_env: WorkflowEnvironment
) -> None:
    case_id = await submitted_case(api, creditor)
    encrypted = started_input(await raw_history(dev_env, f"case-{case_id}"))
    assert DEBTOR["name"] not in texts_of(encrypted)

    decoded = await api.post("/api/ops/codec/decode", json=encrypted, headers=ops.headers)
    assert decoded.status_code == 200, decoded.text
    assert DEBTOR["name"] in texts_of(decoded.json())
    assert base64.b64decode(decoded.json()["payloads"][0]["metadata"]["encoding"]) == b"json/plain"

    # encode is the inverse: the UI uses it for the input of a signal or a new workflow.
    encoded = await api.post("/api/ops/codec/encode", json=decoded.json(), headers=ops.headers)
    assert encoded.status_code == 200, encoded.text
    [payload] = encoded.json()["payloads"]
    assert base64.b64decode(payload["metadata"][KEY_ID]) == b"test-2026"
    assert DEBTOR["name"] not in texts_of(encoded.json())
    again = json_format.ParseDict(encoded.json(), Payloads())
    assert DEBTOR["name"] in str(await TEST_DATA_CONVERTER.decode(again.payloads))


async def test_codec_endpoint_refuses_callers_without_an_ops_key(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, dev_env: WorkflowEnvironment
) -> None:
    case_id = await submitted_case(api, creditor)
    encrypted = started_input(await raw_history(dev_env, f"case-{case_id}"))
    nobody = await api.post("/api/ops/codec/decode", json=encrypted)
    assert nobody.status_code == 401
    assert nobody.json()["code"] == "unauthenticated"
    for actor in (creditor, partner):
        refused = await api.post("/api/ops/codec/decode", json=encrypted, headers=actor.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        assert DEBTOR["name"] not in refused.text
    # No CODEC_UI_TOKEN configured: the Web UI's path is not there at all.
    ui = await api.post(f"/api/ops/codec/ui/{UI_TOKEN}/decode", json=encrypted)
    assert ui.status_code == 404
    assert DEBTOR["name"] not in ui.text


async def test_codec_endpoint_answers_bad_payloads_with_a_problem(
    api: httpx.AsyncClient, ops: Actor
) -> None:
    bad = await api.post("/api/ops/codec/decode", content=b'{"payloads": 5}', headers=ops.headers)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_codec_request"
    unknown = {
        "payloads": [
            {
                "metadata": {
                    "encoding": base64.b64encode(b"binary/encrypted").decode(),
                    KEY_ID: base64.b64encode(b"retired-key").decode(),
                },
                "data": base64.b64encode(b"\0" * 40).decode(),
            }
        ]
    }
    refused = await api.post("/api/ops/codec/decode", json=unknown, headers=ops.headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "payload_key_unknown"
    assert "'retired-key'" in refused.json()["detail"]


@pytest.fixture
async def ui_api(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `make run` configures it for the dev Web UI."""
    configured = settings.model_copy(
        update={"codec_ui_token": SecretStr(UI_TOKEN), "codec_cors_origins": [UI_ORIGIN]}
    )
    app = create_app(configured, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as c:
            yield c


async def test_web_ui_decodes_with_its_token_from_its_origin_only(
    ui_api: httpx.AsyncClient, creditor: Actor, dev_env: WorkflowEnvironment
) -> None:
    case_id = await submitted_case(ui_api, creditor)
    encrypted = started_input(await raw_history(dev_env, f"case-{case_id}"))
    endpoint = f"/api/ops/codec/ui/{UI_TOKEN}"
    # The browser's preflight: the UI sends JSON with an X-Namespace header.
    preflight = await ui_api.options(
        f"{endpoint}/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    decoded = await ui_api.post(
        f"{endpoint}/decode",
        json=encrypted,
        headers={"Origin": UI_ORIGIN, "X-Namespace": "default"},
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert DEBTOR["name"] in texts_of(decoded.json())

    elsewhere = await ui_api.options(
        f"{endpoint}/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert elsewhere.status_code == 400
    assert "access-control-allow-origin" not in elsewhere.headers
    wrong = await ui_api.post(f"/api/ops/codec/ui/{'y' * 49}/decode", json=encrypted)
    assert wrong.status_code == 404
    assert DEBTOR["name"] not in wrong.text
    # The rest of the API stays closed to other origins' browsers.
    cases = await ui_api.options(
        "/api/cases", headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in cases.headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_access_log_shows_paths_without_query_strings_or_the_ui_token(
    settings: Settings,
) -> None:
    port = _free_port()
    configured = settings.model_copy(update={"codec_ui_token": SecretStr(UI_TOKEN)})
    # As `caseloop api` and `make run` serve it: uvicorn's own logging, the app from a factory.
    server = uvicorn.Server(
        uvicorn.Config(
            lambda: create_app(configured), factory=True, host="127.0.0.1", port=port, lifespan="on"
        )
    )
    access = _Lines()
    logging.getLogger("uvicorn.access").addHandler(access)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            listed = await client.get(
                "/api/cases", params={"debtorName": DEBTOR["name"], "page": 2}
            )
            assert listed.status_code == 401
            await client.post(f"/api/ops/codec/ui/{UI_TOKEN}/decode", json={"payloads": []})
    finally:
        server.should_exit = True
        await serving
        logging.getLogger("uvicorn.access").removeHandler(access)
    log = "\n".join(access.lines)
    assert '"GET /api/cases HTTP/1.1" 401' in log, log
    assert '"POST /api/ops/codec/ui/***/decode HTTP/1.1" 200' in log, log
    assert "debtorName" not in log
    assert "Nordisk" not in log
    assert UI_TOKEN not in log
