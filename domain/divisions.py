"""A creditor's divisions, in Debitura's shapes (``DivisionsApi``): what a creditor sends, what the
API answers, and the division a case names (``CreditorDivisionDto``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import pycountry
from pydantic import EmailStr, Field

from domain.base import ApiModel
from domain.cases import CountryAlpha2

# Loaded once at import (pycountry reads its data lazily).
COUNTRY_NAMES = {country.alpha_2: country.name for country in pycountry.countries}


class DivisionDetails(ApiModel):
    """Debitura's ``CreateDivisionRequestDto`` and ``UpdateDivisionRequestDto`` (the same
    fields): a PUT replaces them all, so an optional field left out is cleared. caseloop asks a
    visible ``companyName`` (Debitura allows an empty one) and bounds every text."""

    company_name: Annotated[str, Field(min_length=1, max_length=200)]
    registration_number: Annotated[str | None, Field(max_length=50)] = None
    address: Annotated[str | None, Field(max_length=200)] = None
    zip_code: Annotated[str | None, Field(max_length=50)] = None
    state: Annotated[str | None, Field(max_length=100)] = None
    city: Annotated[str, Field(min_length=1, max_length=100)]
    country_code: CountryAlpha2
    office_email: Annotated[EmailStr, Field(max_length=250)] | None = None
    office_phone: Annotated[str | None, Field(max_length=50)] = None


class CreateDivisionRequest(DivisionDetails):
    """``POST /api/divisions``."""


class UpdateDivisionRequest(DivisionDetails):
    """``PUT /api/divisions/{id}``."""


class DivisionCountry(ApiModel):
    """Debitura's ``DivisionCountryDto``. ``id`` (Debitura's own number for the country) is
    null: caseloop names countries by their ISO 3166-1 alpha-2 code only."""

    id: int | None
    name: str
    alpha2: str


class Division(ApiModel):
    """Debitura's ``DivisionDto``."""

    id: UUID
    company_name: str
    registration_number: str | None
    address: str | None
    zip_code: str | None
    state: str | None
    city: str
    country: DivisionCountry
    office_email: str | None
    office_phone: str | None
    is_archived: bool
    created_utc: dt.datetime
    updated_utc: dt.datetime
