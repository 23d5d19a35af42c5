"""The base model every payload uses: camelCase on the wire, snake_case in Python."""

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from domain.time import YEARS_DESCRIPTION, check_timestamp


def decimal_json_schema(pattern: str, *, number: dict[str, Any] | None = None) -> WithJsonSchema:
    """The JSON schema of a decimal field: a JSON number within ``number``'s bounds, or a string
    matching ``pattern``. pydantic's own leaves the string unconstrained, so a document would
    promise that ``""`` or ``"0"`` is an amount."""
    return WithJsonSchema(
        {"anyOf": [{"type": "number", **(number or {})}, {"type": "string", "pattern": pattern}]}
    )


def _integral_float_as_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# For a strict integer field (no "5", no true), placed after its Field: 5.0 is the integer 5, as
# JSON Schema has it.
INTEGRAL_FLOAT_AS_INT = BeforeValidator(_integral_float_as_int)


# A decimal literal as a query parameter or in a body: digits, an optional point and fraction.
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"


def has_nul(value: Any) -> bool:
    """Whether a string (or a list or dict of them) holds a NUL character, which PostgreSQL
    cannot store in text: accepted, it would block the case's projection for good."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    return False


# Letters and symbols that print nothing (the Hangul fillers, the blank Braille pattern).
BLANK_GRAPHEMES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_visible(char: str) -> bool:
    """Whether a character prints something: a letter, digit, punctuation mark or symbol. Spaces,
    control and format characters (zero-width spaces, joiners, direction marks, the BOM), lone
    combining marks and unassigned or private-use code points do not."""
    return unicodedata.category(char)[0] in "LNPS" and char not in BLANK_GRAPHEMES


def invisible_text(value: Any) -> bool:
    """Whether a non-empty string (or one in a list or dict) has no visible character at all."""
    if isinstance(value, str):
        return value != "" and not any(is_visible(char) for char in value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(invisible_text(item) for item in value)
    if isinstance(value, dict):
        return any(invisible_text(key) or invisible_text(item) for key, item in value.items())
    return False


_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def not_a_number(value: Any) -> Any:
    """Refuse a number for a date or timestamp: pydantic would read it as Unix time, and the API
    takes ISO 8601 only (bodies here, query parameters in ``api.query``)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("must be an ISO 8601 date or timestamp, such as 2026-11-01T00:00:00Z")
    return value


# A date or timestamp in a request body: ISO 8601, not a number.
# Both only in the years 1900 to 2099 (domain/time.py; ``ApiModel`` checks timestamps,
# ``domain.plausible.PlausibleDate`` business dates), which the schema says with a pattern.
IsoDate = Annotated[dt.date, BeforeValidator(not_a_number), Field(description=YEARS_DESCRIPTION)]
IsoDatetime = Annotated[
    dt.datetime, BeforeValidator(not_a_number), Field(description=YEARS_DESCRIPTION)
]


NUL_REFUSED = "must not contain NUL (\\u0000) characters"
INVISIBLE_REFUSED = "must contain a visible character"
# What ``ApiModel`` checks: text (alone or in a collection) and timestamps.
_HOLDS_TEXT_OR_TIME = (str, list, tuple, set, frozenset, dict, dt.datetime)


class ApiModel(BaseModel):
    """A pydantic model that reads and writes camelCase JSON and accepts field names too.

    What every field must be so that any database can store it and a person can read it,
    checked here once for the API and the workflows alike (422 naming the field at the API): no
    text anywhere in it holds a NUL character; text that is not empty shows at least one visible
    character (whitespace is trimmed, and a value of only invisible characters, zero-width
    spaces for example, is refused); and every timestamp lies in ``domain.time``'s range (a
    naive one is read as UTC).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        str_strip_whitespace=True,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Called for every field of every model validated (the workers decode a case record
        # per projection): values of any other type than these hold no text and no timestamp,
        # and a plain string is checked directly, the rest by the general rules below.
        if not isinstance(value, _HOLDS_TEXT_OR_TIME):
            return value
        if type(value) is str:
            if "\x00" in value:
                raise ValueError(NUL_REFUSED)
            if value and not is_visible(value[0]) and not any(map(is_visible, value)):
                raise ValueError(INVISIBLE_REFUSED)
            return value
        if has_nul(value):
            raise ValueError(NUL_REFUSED)
        if invisible_text(value):
            raise ValueError(INVISIBLE_REFUSED)
        if isinstance(value, dt.datetime):
            return check_timestamp(value)
        if isinstance(value, list) and any(isinstance(item, dt.datetime) for item in value):
            return [
                check_timestamp(item) if isinstance(item, dt.datetime) else item for item in value
            ]
        return value
