"""Query parameter types shared by the list endpoints, with the schema of what they accept."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _not_a_number(value: Any) -> Any:
    """pydantic reads a number as Unix time; the API takes ISO 8601 only."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("must be an ISO 8601 date or timestamp, such as 2026-11-01T00:00:00Z")
    return value


# An ISO 8601 timestamp, or a plain date (midnight UTC). The API also reads a timestamp without
# an offset (as UTC), which the schema leaves to its description.
QueryTimestamp = Annotated[
    dt.datetime,
    BeforeValidator(_not_a_number),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ],
            "description": "ISO 8601; without an offset it is read as UTC, a date as midnight UTC.",
        }
    ),
]
