"""Plausible values, in the models the API and the workflows share: business dates in range, due
dates within a payment term, currencies in current use, text with something visible in it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from domain.cases import CURRENCY_CODES, CaseSubmission, RecordPaymentInput
from domain.chat import PostMessageInput
from domain.plausible import MAX_PAYMENT_TERM
from tests.support import case_body


def refusal(model: Any, data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    [error] = caught.value.errors()
    return error["loc"], error["msg"].removeprefix("Value error, ")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date": "0001-01-01"}, "date"),
        ({"date": "1899-12-31"}, "date"),
        ({"dueDate": "9999-12-31"}, "dueDate"),
        ({"date": "2026-09-01", "dueDate": "2026-08-31"}, "dueDate"),
        ({"date": "2020-01-01", "dueDate": "2025-01-01"}, "dueDate"),  # 1827 days
    ],
)
def test_implausible_invoice_dates_are_refused_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    loc, _ = refusal(CaseSubmission, case_body(**overrides))
    assert loc == (field,)


def test_edge_dates_are_accepted() -> None:
    earliest = CaseSubmission.model_validate(case_body(date="1900-01-01", dueDate="1900-01-01"))
    assert earliest.due_date == dt.date(1900, 1, 1)
    longest = dt.date(2020, 1, 1) + MAX_PAYMENT_TERM
    assert CaseSubmission.model_validate(
        case_body(date="2020-01-01", dueDate=longest.isoformat())
    ).due_date == dt.date(2024, 12, 31)


def test_payment_dates_are_checked_in_the_workflow_input_too() -> None:
    payment = {
        "partnerId": str(uuid.uuid4()),
        "userId": str(uuid.uuid4()),
        "amount": "10.00",
        "paidTo": "Creditor",
    }
    loc, message = refusal(RecordPaymentInput, {**payment, "paidOn": "0001-01-01"})
    assert (loc, message) == (("paidOn",), "must lie between 1900-01-01 and 2099-12-31")
    assert RecordPaymentInput.model_validate({**payment, "paidOn": "1900-01-01"})


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XSU"])
def test_codes_that_are_no_currency_are_refused(code: str) -> None:
    loc, message = refusal(CaseSubmission, case_body(currencyCode=code))
    assert loc == ("currencyCode",) and "currency in current use" in message


def test_currencies_in_current_use_are_accepted_x_codes_included() -> None:
    for code in ("EUR", "DKK", "usd", "XOF", "XAF", "XCD", "XPF", "XCG"):
        assert CaseSubmission.model_validate(case_body(currencyCode=code)).currency_code == (
            code.upper()
        )
    assert "HRK" not in CURRENCY_CODES, "a withdrawn currency is not in current use"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"creditorReference": "\u200b\u200b\u200b"}, ("creditorReference",)),
        ({"claimDescription": "\u2060\ufeff\u200d"}, ("claimDescription",)),
        (
            {"debtor": {"type": "Private", "name": "\u3164", "countryAlpha2": "DK"}},
            ("debtor", "name"),
        ),
        (
            {"debtor": {"type": "Private", "name": "J", "city": "\u200e ", "countryAlpha2": "DK"}},
            ("debtor", "city"),
        ),
    ],
)
def test_text_without_a_visible_character_is_refused_naming_the_field(
    overrides: dict[str, object], field: tuple[str, ...]
) -> None:
    assert refusal(CaseSubmission, case_body(**overrides)) == (
        field,
        "must contain a visible character",
    )


def test_text_with_a_visible_character_is_kept_as_sent() -> None:
    submission = CaseSubmission.model_validate(
        case_body(creditorReference="INV\u200b-7", claimDescription="📄")
    )
    assert (submission.creditor_reference, submission.claim_description) == ("INV\u200b-7", "📄")
    message = {
        "party": "Partner",
        "orgId": str(uuid.uuid4()),
        "userId": str(uuid.uuid4()),
    }
    assert refusal(PostMessageInput, {**message, "body": "\u200b"})[0] == ("body",)
