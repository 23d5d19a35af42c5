"""Every timestamp the API accepts lies in one range (domain.time), in bodies and queries alike:
outside it a value cannot be stored, and accepting one once wedged a case for good."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_tasks import ready_case
from tests.support import Actor

EXTREMES = [
    "9999-12-31T23:59:59-01:00",  # overflows on the way to UTC
    "0001-01-01T00:00:00+01:00",  # underflows on the way to UTC
    "2100-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2100-01-01T00:30:00+01:00",  # 2099 in UTC, 2100 on its own clock
    "2099-12-31T23:59:59-01:00",  # 2100 in UTC
]


@pytest.mark.parametrize("moment", EXTREMES)
async def test_generic_task_with_out_of_range_deadline_is_422_and_the_case_keeps_answering(
    api: httpx.AsyncClient, creditor: Actor, moment: str
) -> None:
    case = await ready_case(api, creditor)
    refused = await api.post(
        "/api/tasks",
        json={"caseId": case["caseId"], "title": "t", "deadline": moment},
        headers=creditor.headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["deadline"]
    # Nothing was created, and the case still takes changes at once.
    tasks = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=creditor.headers)).json()
    assert not [t for t in tasks if t["type"] == "Generic"]
    created = await api.post(
        "/api/tasks",
        json={"caseId": case["caseId"], "title": "t", "deadline": "2099-12-31T22:59:59-01:00"},
        headers=creditor.headers,
    )
    assert created.status_code == 201, created.text


async def test_postponing_to_an_out_of_range_deadline_is_422(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case = await ready_case(api, creditor)
    created = await api.post(
        "/api/tasks", json={"caseId": case["caseId"], "title": "t"}, headers=creditor.headers
    )
    task = created.json()
    refused = await api.post(
        f"/api/tasks/{task['id']}/postpone",
        json={"deadline": EXTREMES[0], "reason": "later"},
        headers=creditor.headers,
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["deadline"]
    same = (await api.get(f"/api/tasks/{task['id']}", headers=creditor.headers)).json()
    assert same["deadline"] == task["deadline"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/cases", "dateFrom"),
        ("/api/cases", "dateTo"),
        ("/api/cases", "lastModifiedAfter"),
        ("/api/tasks", "deadlineFrom"),
        ("/api/tasks", "deadlineTo"),
    ],
)
@pytest.mark.parametrize("moment", EXTREMES[:2])
async def test_out_of_range_query_timestamps_are_422_naming_the_parameter(
    api: httpx.AsyncClient, creditor: Actor, path: str, parameter: str, moment: str
) -> None:
    response = await api.get(path, params={parameter: moment}, headers=creditor.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [parameter]
    edge = await api.get(path, params={parameter: "2099-12-31T23:59:59Z"}, headers=creditor.headers)
    assert edge.status_code == 200, edge.text
