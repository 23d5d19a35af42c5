"""The floor behind an HTTP API: a FastAPI app with nothing but the routes of the full case,
each one call to the floor's workflows (bench/floor.py), run by uvicorn on uvloop and h11 as
caseloop's API is (``api.server.uvicorn_options``, without its problem+json protocol). No
authentication, no database, no pydantic models of caseloop's: what any HTTP API in Python in
front of the design costs, so that ``bench fullcase`` can show what is left for caseloop's own
code between this floor and caseloop.

Run as its own process: ``python -m bench.floor_http ADDRESS TASK_QUEUE PORT``.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from bench import floor
from bench.floor import CHANGES, FloorCase


def create_app(address: str, task_queue: str) -> FastAPI:
    app = FastAPI()
    clients: list[Client] = []

    async def client() -> Client:
        if not clients:
            clients.append(await Client.connect(address))
        return clients[0]

    @app.post("/cases", status_code=201)
    async def create() -> dict[str, str]:
        case_id, account_id = await floor.create(await client(), task_queue)
        return {"caseId": case_id, "accountId": account_id}

    @app.post("/accounts/{account_id}/sign")
    async def sign(account_id: str) -> dict[str, str]:
        await floor.sign(await client(), account_id, task_queue)
        return {"accountId": account_id}

    @app.put("/cases/{case_id}/bank-account")
    async def bank_account(case_id: str, body: dict[str, Any]) -> dict[str, str]:
        handle = (await client()).get_workflow_handle(case_id)
        await handle.execute_update(FloorCase.bank_account, str(body["accountId"]))
        return {"caseId": case_id}

    @app.post("/cases/{case_id}/changes/{step}")
    async def change(case_id: str, step: str) -> dict[str, str]:
        handle = (await client()).get_workflow_handle(case_id)
        await handle.execute_update(FloorCase.change, step)
        return {"caseId": case_id, "step": step}

    return app


async def full_case(http: httpx.AsyncClient) -> None:
    """The full case's 8 requests against the floor's API."""
    created = (await http.post("/cases")).raise_for_status().json()
    case_id, account_id = created["caseId"], created["accountId"]
    (await http.post(f"/accounts/{account_id}/sign")).raise_for_status()
    (
        await http.put(f"/cases/{case_id}/bank-account", json={"accountId": account_id})
    ).raise_for_status()
    for step in CHANGES:
        (await http.post(f"/cases/{case_id}/changes/{step}")).raise_for_status()


if __name__ == "__main__":
    uvicorn.run(
        create_app(sys.argv[1], sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[3]),
        loop="uvloop",
        http="h11",
        log_level="warning",
        access_log=False,
    )
