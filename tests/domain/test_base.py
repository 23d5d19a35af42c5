"""Every payload refuses NUL characters, which PostgreSQL cannot store (a case's projection would
retry forever)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.base import ApiModel, has_nul, invisible_text
from domain.cases import CaseSubmission
from domain.chat import PostMessageInput
from tests.support import case_body


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"claimDescription": "Invoice\x00 17"}, ("claimDescription",)),
        (
            {"debtor": {"type": "Private", "name": "Jane\x00", "countryAlpha2": "DK"}},
            ("debtor", "name"),
        ),
    ],
)
def test_nul_characters_are_refused_naming_the_field(
    overrides: dict[str, object], field: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        CaseSubmission.model_validate(case_body(**overrides))
    [error] = caught.value.errors()
    assert error["loc"] == field and "NUL" in error["msg"]


def test_nul_characters_are_refused_in_workflow_inputs_too() -> None:
    with pytest.raises(ValidationError):
        PostMessageInput.model_validate(
            {
                "party": "Partner",
                "orgId": "0b1f2c3d-0000-4000-8000-000000000001",
                "userId": "0b1f2c3d-0000-4000-8000-000000000002",
                "body": "q\x00",
            }
        )
    assert CaseSubmission.model_validate(case_body(claimDescription="fine\\u0000 as text"))


class _Texts(ApiModel):
    text: str | None = None
    texts: list[str] = []


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("x", None),
        ("", None),
        ("\u200bx", None),  # starts with an invisible character, shows one later
        ("\u200b\u2060", "visible"),
        ("a\x00", "NUL"),
        ("\x00", "NUL"),
    ],
)
def test_a_plain_string_gets_the_same_verdict_alone_as_in_a_list(
    value: str, refused: str | None
) -> None:
    # ``ApiModel._storable`` checks a plain string on a fast path and a list by the general
    # rules (``has_nul``, ``invisible_text``): both must agree.
    assert (has_nul(value) or invisible_text(value)) == (refused is not None)
    for body in ({"text": value}, {"texts": [value]}):
        if refused is None:
            assert _Texts.model_validate(body)
        else:
            with pytest.raises(ValidationError, match=refused):
                _Texts.model_validate(body)
