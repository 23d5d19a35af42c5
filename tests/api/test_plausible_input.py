"""Implausible values get 422 naming the field and create nothing: invoice and payment dates out
of range, a due date too far out, codes that are no currency, text of invisible characters, and
IBANs that break their country's rules. Values at the edges of each range are accepted."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import BankAccount, Case, CaseRegistration
from tests.api.test_status import in_collection, pay
from tests.support import Actor, case_body


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date": "0001-01-01"}, "date"),
        ({"date": "1899-12-31", "dueDate": "1900-01-31"}, "date"),
        ({"dueDate": "9999-12-31"}, "dueDate"),
        ({"date": "2020-01-01", "dueDate": "2025-01-01"}, "dueDate"),  # more than 1826 days
        ({"currencyCode": "XXX"}, "currencyCode"),
        ({"currencyCode": "XTS"}, "currencyCode"),
        ({"currencyCode": "XAU"}, "currencyCode"),
        ({"creditorReference": "\u200b\u200b\u200b"}, "creditorReference"),
        ({"claimDescription": "\u2060\u200d\ufeff"}, "claimDescription"),
    ],
)
async def test_implausible_case_value_is_422_naming_the_field_and_creates_nothing(
    api: httpx.AsyncClient,
    creditor: Actor,
    sessions: async_sessionmaker[AsyncSession],
    overrides: dict[str, object],
    field: str,
) -> None:
    response = await api.post("/api/cases", json=case_body(**overrides), headers=creditor.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert fields(response) == [field]
    assert await rows(sessions, CaseRegistration) == 0
    assert await rows(sessions, Case) == 0


async def test_plausible_edge_values_are_accepted(api: httpx.AsyncClient, creditor: Actor) -> None:
    today = dt.datetime.now(ZoneInfo(creditor.principal.timezone)).date()
    longest = today + dt.timedelta(days=1826)
    bodies = [
        case_body(date=today.isoformat(), dueDate=longest.isoformat(), currencyCode="XOF"),
        case_body(date="1900-01-01", dueDate="1900-01-01", creditorReference="INV\u200b-1900"),
    ]
    for body in bodies:
        response = await api.post("/api/cases", json=body, headers=creditor.headers)
        assert response.status_code == 201, response.text
        case = response.json()
        assert (case["date"], case["dueDate"], case["currencyCode"]) == (
            body["date"],
            body["dueDate"],
            body["currencyCode"],
        )
        assert case["creditorReference"] == body["creditorReference"]


async def test_correcting_a_case_to_an_implausible_date_is_422_and_changes_nothing(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case = (await api.post("/api/cases", json=case_body(), headers=creditor.headers)).json()
    url = f"/api/cases/{case['caseId']}"
    for change, field in (({"date": "0001-01-01"}, "date"), ({"dueDate": "9999-12-31"}, "dueDate")):
        response = await api.patch(url, json=change, headers=creditor.headers)
        assert (response.status_code, fields(response)) == (422, [field]), response.text
    unchanged = (await api.get(url, headers=creditor.headers)).json()
    assert (unchanged["date"], unchanged["dueDate"]) == (case["date"], case["dueDate"])


async def test_payment_dated_0001_is_422_naming_paid_on_and_records_nothing(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    ancient = await pay(api, partner, cid, "100.00", paidOn="0001-01-01")
    assert (ancient.status_code, fields(ancient)) == (422, ["paidOn"])
    commission = await api.post(
        f"/api/cases/{cid}/commission-payments",
        json={"amount": "10.00", "paidOn": "0001-01-01"},
        headers=partner.headers,
    )
    assert (commission.status_code, fields(commission)) == (422, ["paidOn"])
    listed = (await api.get(f"/api/cases/{cid}/payments/summary", headers=creditor.headers)).json()
    assert (listed["payments"], listed["commissionPayments"]) == ([], [])

    earliest = await pay(api, partner, cid, "100.00", paidOn="1900-01-01")
    assert (earliest.status_code, earliest.json()["paidOn"]) == (201, "1900-01-01")


def with_check_digits(country: str, bban: str) -> str:
    """An IBAN whose ISO 13616 check digits are right, whatever its BBAN."""
    number = int("".join(str(int(char, 36)) for char in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


@pytest.mark.parametrize(
    ("iban", "compact"),
    [
        ("DK50 0040 0440 1162 43", "DK5000400440116243"),
        ("de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
        ("NL91ABNA0417164300", "NL91ABNA0417164300"),
        ("NO93 8601 1117 947", "NO9386011117947"),
        ("ES91 2100 0418 4502 0005 1332", "ES9121000418450200051332"),
    ],
)
async def test_valid_iban_of_its_country_is_stored_compact(
    api: httpx.AsyncClient, creditor: Actor, iban: str, compact: str
) -> None:
    response = await api.post(
        "/api/bank-accounts",
        json={"iban": iban, "holderName": "Acme", "currencyCode": "EUR"},
        headers=creditor.headers,
    )
    assert (response.status_code, response.json().get("iban")) == (201, compact), response.text


@pytest.mark.parametrize(
    ("iban", "message"),
    [
        ("DK50 0040 0440 1162 4", "has the wrong length for an IBAN of its country"),
        # Right check digits do not save a Danish IBAN of 17 characters.
        (
            with_check_digits("DK", "0040044011624"),
            "has the wrong length for an IBAN of its country",
        ),
        ("DK51 0040 0440 1162 43", "has wrong check digits"),
        ("DE00 3704 0044 0532 0130 00", "has wrong check digits"),
        # ISO check digits right, the Norwegian account number's own check digit wrong.
        (
            with_check_digits("NO", "86011117948"),
            "fails the national checksum of its account number",
        ),
        (
            with_check_digits("BE", "539007547035"),
            "fails the national checksum of its account number",
        ),
        ("XX50 0040 0440 1162 43", "is not an IBAN: unknown country code"),
        ("DK50-0040-0440-1162-43", "does not have the format of an IBAN of its country"),
    ],
)
async def test_iban_breaking_its_country_rules_is_422_naming_it_and_stores_nothing(
    api: httpx.AsyncClient,
    creditor: Actor,
    sessions: async_sessionmaker[AsyncSession],
    iban: str,
    message: str,
) -> None:
    response = await api.post(
        "/api/bank-accounts",
        json={"iban": iban, "holderName": "Acme", "currencyCode": "DKK"},
        headers=creditor.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "iban", "message": message}]
    assert await rows(sessions, BankAccount) == 0
