"""A creditor's divisions (``/api/divisions``). Who sees which division lives here, in one place
(``_visible``): a creditor its own, ops every creditor's; partners none (the API refuses them).

A division a case has named is never deleted: the transaction that reserves a case for a
division (``store.cases.register_case``) also marks the division ``used`` (``claim``), with the
same statement that checks it is the creditor's and not archived, and ``delete`` removes only
an unused one. The two statements take the division's row lock, so of a submission and a
deletion racing for one division exactly one wins on every database."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, false, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.divisions import DivisionDetails
from domain.enums import OrgKind
from store.accounts import Principal
from store.db import transaction
from store.models import Division


class DivisionUnavailable(Exception):
    """The division a case names is not an active division of its creditor."""


def _visible(principal: Principal) -> ColumnElement[bool]:
    if principal.role is OrgKind.OPS:
        return true()
    if principal.role is OrgKind.CREDITOR:
        return Division.creditor_id == principal.org_id
    return false()


def _columns(details: DivisionDetails) -> dict[str, object]:
    """The stored columns of a division's details (every one: a PUT replaces them all)."""
    return {
        "company_name": details.company_name,
        "registration_number": details.registration_number,
        "address": details.address,
        "zip_code": details.zip_code,
        "state": details.state,
        "city": details.city,
        "country_code": details.country_code,
        "office_email": details.office_email,
        "office_phone": details.office_phone,
    }


def new_division(
    *, division_id: uuid.UUID, creditor_id: uuid.UUID, details: DivisionDetails, now: dt.datetime
) -> Division:
    return Division(
        id=division_id,
        creditor_id=creditor_id,
        **_columns(details),
        archived_at=None,
        used=False,
        created_at=now,
        updated_at=now,
    )


def same_details(division: Division, details: DivisionDetails) -> bool:
    """Whether ``division`` holds exactly ``details`` (a retried create finds its own row)."""
    return all(getattr(division, name) == value for name, value in _columns(details).items())


@dataclass(frozen=True)
class DivisionPage:
    total: int
    rows: list[Division]


async def list_divisions(
    *,
    session: AsyncSession,
    principal: Principal,
    include_archived: bool,
    offset: int,
    limit: int,
) -> DivisionPage:
    """The divisions the caller sees, oldest first, then by id; archived ones only when asked."""
    where = [_visible(principal)]
    if not include_archived:
        where.append(Division.archived_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Division).where(*where))
    rows = await session.scalars(
        select(Division)
        .where(*where)
        .order_by(Division.created_at, Division.id)
        .offset(offset)
        .limit(limit)
    )
    return DivisionPage(total or 0, list(rows))


async def get_division(
    *, session: AsyncSession, principal: Principal, division_id: uuid.UUID
) -> Division | None:
    """The division if the caller sees it; None otherwise (the API says 404)."""
    division: Division | None = await session.scalar(
        select(Division).where(Division.id == division_id, _visible(principal))
    )
    return division


def _owned(creditor_id: uuid.UUID, division_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    return (Division.id == division_id, Division.creditor_id == creditor_id)


async def replace(
    *,
    sessions: async_sessionmaker[AsyncSession],
    creditor_id: uuid.UUID,
    division_id: uuid.UUID,
    details: DivisionDetails,
    now: dt.datetime,
) -> Division | None:
    """Replace the details of the creditor's division; None if it has no such division."""
    async with transaction(sessions) as session:
        changed = await session.scalar(
            update(Division)
            .where(*_owned(creditor_id, division_id))
            .values(**_columns(details), updated_at=now)
            .returning(Division.id)
        )
        if changed is None:
            return None
        division = await session.get(Division, division_id, populate_existing=True)
    return division


async def archive(
    *,
    sessions: async_sessionmaker[AsyncSession],
    creditor_id: uuid.UUID,
    division_id: uuid.UUID,
    now: dt.datetime,
) -> Division | None:
    """Archive the creditor's division (again: no change); None if it has no such division."""
    async with transaction(sessions) as session:
        await session.execute(
            update(Division)
            .where(*_owned(creditor_id, division_id), Division.archived_at.is_(None))
            .values(archived_at=now, updated_at=now)
        )
        division = await session.scalar(
            select(Division)
            .where(*_owned(creditor_id, division_id))
            .execution_options(populate_existing=True)
        )
    return division


class Deletion(enum.Enum):
    DELETED = "deleted"
    IN_USE = "in use"
    NOT_FOUND = "not found"


async def delete_division(
    *, sessions: async_sessionmaker[AsyncSession], creditor_id: uuid.UUID, division_id: uuid.UUID
) -> Deletion:
    """Delete the creditor's division unless a case has named it."""
    async with transaction(sessions) as session:
        deleted = await session.scalar(
            delete(Division)
            .where(*_owned(creditor_id, division_id), Division.used.is_(False))
            .returning(Division.id)
        )
        if deleted is not None:
            return Deletion.DELETED
        exists = await session.scalar(select(Division.id).where(*_owned(creditor_id, division_id)))
    return Deletion.IN_USE if exists is not None else Deletion.NOT_FOUND


async def claim(session: AsyncSession, *, division_id: uuid.UUID, creditor_id: uuid.UUID) -> None:
    """Mark the division as named by a case, in the transaction that reserves the case;
    ``DivisionUnavailable`` unless it is one of ``creditor_id``'s divisions and not archived."""
    claimed = await session.scalar(
        update(Division)
        .where(*_owned(creditor_id, division_id), Division.archived_at.is_(None))
        .values(used=True)
        .returning(Division.id)
    )
    if claimed is None:
        raise DivisionUnavailable


async def names(session: AsyncSession, division_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The current name (``companyName``) of each division."""
    if not division_ids:
        return {}
    rows = await session.execute(
        select(Division.id, Division.company_name).where(Division.id.in_(division_ids))
    )
    return {division_id: name for division_id, name in rows}
