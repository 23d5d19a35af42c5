"""The API's metrics: by route template and status, on their own port, never the public one."""

from __future__ import annotations

import uuid

import httpx

from observability.server import MetricsServer
from tests.observability.metrics import (
    OPERATIONS,
    assert_documented_are_served,
    documented_metrics,
    scrape,
)
from tests.support import Actor, case_body


async def test_the_metrics_port_serves_every_documented_api_metric_by_route_template(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assert (await api.get(f"/api/cases/{case_id}", headers=creditor.headers)).status_code == 200
    missing = await api.get(f"/api/cases/{uuid.uuid4()}", headers=creditor.headers)
    assert missing.status_code == 404
    assert (await api.get("/api/cases")).status_code == 401  # the guard's answer, no key
    assert (await api.get(f"/no/such/{uuid.uuid4()}")).status_code == 404

    server = MetricsServer("127.0.0.1", 0).start()
    try:
        served = await scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()

    assert_documented_are_served(served, "API")
    requests = "caseloop_http_requests_total"
    route = "/api/cases/{case_id}"
    assert served.value(requests, method="GET", route=route, status="200") >= 1
    assert served.value(requests, method="GET", route=route, status="404") >= 1
    assert served.value(requests, method="POST", route="/api/cases", status="201") >= 1
    assert served.value(requests, route="unrouted", status="401") >= 1
    assert served.value(requests, route="unrouted", status="404") >= 1
    timed = "caseloop_http_request_duration_seconds_count"
    assert served.value(timed, method="GET", route=route) >= 2
    # Never a raw path: no id ever becomes a label value.
    assert case_id not in served.text
    assert "/no/such" not in served.text


async def test_the_public_api_port_serves_no_metrics(api: httpx.AsyncClient, ops: Actor) -> None:
    for path in ("/metrics", "/api/metrics"):
        for headers in ({}, ops.headers):
            answer = await api.get(path, headers=headers)
            assert answer.status_code in (401, 404), (path, answer.status_code)
            assert "caseloop_http_requests" not in answer.text


async def test_the_metrics_server_answers_404_beside_metrics() -> None:
    server = MetricsServer("127.0.0.1", 0).start()
    try:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        server.stop()
    assert answer.status_code == 404  # the API's metrics server has no health: the API has its own


def test_every_row_of_the_metric_tables_is_read() -> None:
    rows = [
        line
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith(("| `caseloop_", "| `temporal_"))
    ]
    assert len(rows) == len(documented_metrics()) >= 20
