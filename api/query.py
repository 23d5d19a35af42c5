"""Query parameter types shared by the list endpoints, with the schema of what they accept."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from domain.base import not_a_number
from domain.time import check_timestamp

# An ISO 8601 timestamp, or a plain date (midnight UTC). The API also reads a timestamp without
# an offset (as UTC), which the schema leaves to its description.
QueryTimestamp = Annotated[
    dt.datetime,
    BeforeValidator(not_a_number),
    AfterValidator(check_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ],
            "description": "ISO 8601, in the years 1900 to 2099; without an offset it is read "
            "as UTC, a date as midnight UTC.",
        }
    ),
]
