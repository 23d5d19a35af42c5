"""Case queries for the API. Visibility lives here, in one place: ``visible_to``."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.cases import HistoryEntry
from domain.enums import CaseStatus, ChangedBy, Lifecycle, OrgKind, SubStatus
from domain.lifecycle import LIFECYCLE_TABLE, statuses_for
from domain.transitions import FINISHED
from store import divisions as division_store
from store.accounts import Principal
from store.cursor import (
    COUNT_LIMIT_PARAM,
    Cursor,
    bounded_count,
    counted,
    encode_cursor,
    key_of,
    start_read,
    timestamp,
    uuid_of,
)
from store.db import transaction
from store.models import (
    BankAccount,
    Case,
    CaseHistory,
    CaseInvitation,
    CaseRegistration,
    Organisation,
    User,
)


def visible_branches(
    role: OrgKind, org_id: uuid.UUID | SQLColumnExpression[uuid.UUID]
) -> list[ColumnElement[bool]]:
    """The case-visibility rule, as disjoint conditions whose OR is the rule: creditors see
    their own cases, partners the cases assigned to them and those they are invited to quote
    on, ops everything. ``org_id`` may be a column (``store.tasks`` asks it of a task's owner).

    Lists read each branch in the order of its own index and merge them
    (``list_cases``), so a partner's list never scans the whole table for the OR."""
    if role is OrgKind.OPS:
        return [true()]
    if role is OrgKind.CREDITOR:
        return [Case.creditor_id == org_id]
    if role is OrgKind.PARTNER:
        invited = (
            select(CaseInvitation.case_id)
            .where(CaseInvitation.partner_id == org_id)
            .correlate_except(CaseInvitation)
        )
        return [
            Case.partner_id == org_id,
            and_(
                Case.id.in_(invited),
                or_(Case.partner_id.is_(None), Case.partner_id != org_id),
            ),
        ]
    return [false()]


def visible_to_org(
    role: OrgKind, org_id: uuid.UUID | SQLColumnExpression[uuid.UUID]
) -> ColumnElement[bool]:
    """Whether the case is visible to organisation ``org_id`` acting as ``role``."""
    return or_(*visible_branches(role, org_id))


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """Creditors see their own cases, partners the cases assigned to them, ops everything."""
    return visible_to_org(principal.role, principal.org_id)


@dataclass(frozen=True)
class CaseRow:
    case: Case
    partner_name: str | None
    division_name: str | None  # the current name of the case's division (None without one)


async def case_rows(session: AsyncSession, cases: Sequence[Case]) -> list[CaseRow]:
    """The rows of ``cases`` as the API shows them: with their divisions' names, read in one
    statement, and only when a case names a division (otherwise nothing more is read)."""
    named = {case.creditor_division_id for case in cases if case.creditor_division_id}
    found = await division_store.names(session, named) if named else {}
    return [
        CaseRow(
            case,
            case.partner_name,
            found.get(case.creditor_division_id) if case.creditor_division_id else None,
        )
        for case in cases
    ]


@functools.cache
def _visible_case(role: OrgKind) -> Select[Case]:
    """``get_case``'s statement for ``role``, built once (the case id and the caller's
    organisation are bound per call): every keyed action reads its case, often twice, and
    building the visibility expression anew cost more than running it."""
    org_id = bindparam("org_id", type_=Case.creditor_id.type)
    return select(Case).where(
        Case.id == bindparam("case_id", type_=Case.id.type), visible_to_org(role, org_id)
    )


async def get_case(
    *, session: AsyncSession, case_id: uuid.UUID, principal: Principal
) -> CaseRow | None:
    """The case if it exists and the caller may see it; None otherwise (the API says 404)."""
    case = await session.scalar(
        _visible_case(principal.role), {"case_id": case_id, "org_id": principal.org_id}
    )
    return (await case_rows(session, [case]))[0] if case else None


@dataclass(frozen=True)
class CaseFilter:
    statuses: list[CaseStatus]
    lifecycle: Lifecycle | None = None
    partner_id: uuid.UUID | None = None
    debtor_name: str | None = None
    amount_from: Decimal | None = None
    amount_to: Decimal | None = None
    status_changed_from: dt.datetime | None = None
    status_changed_to: dt.datetime | None = None
    last_modified_after: dt.datetime | None = None
    lifecycles: tuple[Lifecycle, ...] = ()  # any of them (``Statuses``)
    ids: tuple[uuid.UUID, ...] = ()  # any of them (``Ids``)
    division_ids: tuple[uuid.UUID, ...] = ()  # any of them (``DivisionIds``)


def _lifecycle_clause(lifecycle: Lifecycle) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for status, sub, catch_all in statuses_for(lifecycle):
        if not catch_all:
            clauses.append(and_(Case.status == status.value, Case.sub_status == sub))
            continue
        # A catch-all row covers every sub-status its status has no own row for.
        own = [s.value for (st, s) in LIFECYCLE_TABLE if st is status and s is not None]
        clauses.append(
            and_(
                Case.status == status.value,
                or_(Case.sub_status.is_(None), Case.sub_status.not_in(own)) if own else true(),
            )
        )
    return or_(*clauses)


def _filter_clauses(f: CaseFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.statuses:
        clauses.append(Case.status.in_([s.value for s in f.statuses]))
    if f.lifecycle is not None:
        clauses.append(_lifecycle_clause(f.lifecycle))
    if f.lifecycles:
        clauses.append(or_(*(_lifecycle_clause(lifecycle) for lifecycle in f.lifecycles)))
    if f.ids:
        clauses.append(Case.id.in_(f.ids))
    if f.division_ids:  # read through ix_cases_division_list
        clauses.append(Case.creditor_division_id.in_(f.division_ids))
    if f.partner_id is not None:
        clauses.append(Case.partner_id == f.partner_id)
    if f.debtor_name:
        clauses.append(
            func.lower(Case.debtor_name).contains(f.debtor_name.lower(), autoescape=True)
        )
    if f.amount_from is not None:
        clauses.append(Case.amount_to_recover >= f.amount_from)
    if f.amount_to is not None:
        clauses.append(Case.amount_to_recover <= f.amount_to)
    if f.status_changed_from is not None:
        clauses.append(Case.last_status_change >= f.status_changed_from)
    if f.status_changed_to is not None:
        clauses.append(Case.last_status_change <= f.status_changed_to)
    if f.last_modified_after is not None:
        clauses.append(Case.updated_at > f.last_modified_after)
    return clauses


LIST_NAME = "cases"


@dataclass(frozen=True)
class CasePosition:
    """A place in the case list (newest first, then id): the last case a page showed."""

    created_at: dt.datetime
    case_id: uuid.UUID

    @classmethod
    def parse(cls, cursor: Cursor) -> CasePosition:
        created, case_id = key_of(cursor, LIST_NAME, 2)
        return cls(timestamp(created), uuid_of(case_id))

    @classmethod
    def of(cls, case: Case) -> CasePosition:
        return cls(case.created_at, case.id)

    def cursor(self) -> str:
        return encode_cursor(LIST_NAME, (self.created_at.isoformat(), str(self.case_id)))

    def following(self) -> ColumnElement[bool]:
        """The cases after this one in the list's order (the first bound serves the index)."""
        moment = literal(self.created_at, Case.created_at.type)
        return and_(
            Case.created_at <= moment,
            or_(Case.created_at < moment, Case.id > literal(self.case_id, Case.id.type)),
        )


@dataclass(frozen=True)
class CaseSort:
    """An order of the case list: a column of ``cases`` (SORTABLE) or the lifecycle, and its
    direction; the case id breaks ties."""

    field: str
    descending: bool

    def __post_init__(self) -> None:
        if self.field not in SORTABLE:
            raise ValueError(f"cases cannot be sorted by {self.field!r}")


def _lifecycle_rank() -> ColumnElement[int]:
    """The lifecycle of a case as its place in ``Lifecycle`` (the order the portal lists them)."""
    return case(
        *((_lifecycle_clause(lifecycle), rank) for rank, lifecycle in enumerate(Lifecycle)),
        else_=len(Lifecycle),
    )


def _sort_key(field: str) -> ColumnElement[Any]:
    if field == "lifecycle":
        return _lifecycle_rank()
    if field == "close_code":  # NULL while open: first ascending, on every database alike
        return func.coalesce(Case.close_code, "")
    if field == "due_date":  # optional: a case without one last ascending, on every database
        return func.coalesce(Case.due_date, literal(dt.date(9999, 12, 31), Case.due_date.type))
    column: ColumnElement[Any] = getattr(Case, field)
    return column


# What a case list may be sorted by: columns that are NOT NULL (``close_code`` is read as ""
# while open, a missing ``due_date`` as the last day), so the order is total with the id; and
# the lifecycle (``_lifecycle_rank``).
SORTABLE = (
    "created_at",
    "updated_at",
    "last_status_change",
    "amount_to_recover",
    "date",
    "due_date",
    "debtor_name",
    "close_code",
    "lifecycle",
)
NEWEST_FIRST = CaseSort("created_at", descending=True)


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    total: int  # each visibility branch counted up to the caller's count_limit
    next: CasePosition | None  # where the next page starts, if a case follows


async def list_cases(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: CaseFilter,
    offset: int,
    limit: int,
    after: CasePosition | None = None,
    count_limit: int,
    sort: CaseSort | Sequence[CaseSort] | None = None,
) -> CasePage:
    """One page of the cases the caller may see, newest first (or in ``sort``'s order: keys
    in turn), starting at ``offset`` or after ``after`` (newest first only), and the total
    counted up to ``count_limit``.

    Each branch of the visibility rule (``visible_branches``: for a partner, its assigned cases
    and those it is invited to quote on) is read in its own index order and the branches are
    merged, so the OR never turns into a scan of every case."""
    branches = visible_branches(principal.role, principal.org_id)
    where = _filter_clauses(filters)
    counted_where = list(where)
    if after is not None:
        where.append(after.following())
    order = (sort,) if isinstance(sort, CaseSort) else tuple(sort or (NEWEST_FIRST,))
    if after is not None and order != (NEWEST_FIRST,):
        raise ValueError("a cursor pages the newest-first order only")
    keys = [(_sort_key(s.field), s.descending) for s in order]

    def ordered(column: Any, descending: bool) -> Any:
        return column.desc() if descending else column.asc()

    if len(branches) == 1:
        total = bounded_count(select(Case.id).where(branches[0], *counted_where))
        query = (
            select(Case)
            .where(branches[0], *where)
            .order_by(*(ordered(k, d) for k, d in keys), Case.id)
        )
    else:
        # Each branch's first rows in the list's order, read once (a CTE) for both the page
        # and the count: far enough for the page and for the bound of the count.
        labels = [f"key{i}" for i in range(len(keys))]
        reach = max(count_limit, offset + limit + 1)

        def firsts(conditions: list[ColumnElement[bool]], name: str) -> list[Any]:
            return [
                select(Case.id, *(k.label(lb) for (k, _), lb in zip(keys, labels, strict=True)))
                .where(branch, *conditions)
                .order_by(*(ordered(k, d) for k, d in keys), Case.id)
                .limit(reach)
                .cte(f"{name}{i}")
                for i, branch in enumerate(branches)
            ]

        parts = firsts(where, "branch")
        counted_parts = parts if after is None else firsts(counted_where, "counted")
        total = bounded_count(*(select(part.c.id) for part in counted_parts))
        union = union_all(
            *(select(part.c.id, *(part.c[label] for label in labels)) for part in parts)
        )
        merged = (  # the page's rows, found before any is read whole
            union.order_by(
                *(
                    ordered(union.selected_columns[lb], d)
                    for (_, d), lb in zip(keys, labels, strict=True)
                ),
                union.selected_columns.id,
            )
            .limit(offset + limit + 1)
            .subquery()
        )
        query = (
            select(Case)
            .join(merged, merged.c.id == Case.id)
            .order_by(
                *(ordered(merged.c[label], d) for (_, d), label in zip(keys, labels, strict=True)),
                merged.c.id,
            )
        )
    params = {COUNT_LIMIT_PARAM: count_limit}
    await start_read(session)
    rows = (
        await session.execute(counted(query.offset(offset).limit(limit + 1), total), params)
    ).all()
    if rows:
        found = rows[0].total
    elif offset == 0 and after is None:
        found = 0  # the first page is empty only when nothing matches
    else:  # past the last page: count on its own
        found = await session.scalar(select(total), params) or 0
    cases = [row[0] for row in rows]
    more = len(cases) > limit
    cases = cases[:limit]
    return CasePage(
        await case_rows(session, cases),
        found,
        CasePosition.of(cases[-1]) if more else None,
    )


@dataclass(frozen=True)
class StatusSummary:
    counts: dict[tuple[str, str | None], int]  # (status, subStatus) -> cases
    resolution_days: list[float]  # of each Resolved or Closed case: creation to its end
    close_codes: list[str | None]  # of each Resolved or Closed case


async def status_summary(
    *, session: AsyncSession, principal: Principal, filters: CaseFilter
) -> StatusSummary:
    """Counts and outcomes of the cases the caller may see (the same filters as the list)."""
    where = [visible_to(principal), *_filter_clauses(filters)]
    counts = {
        (status, sub): count
        for status, sub, count in await session.execute(
            select(Case.status, Case.sub_status, func.count())
            .where(*where)
            .group_by(Case.status, Case.sub_status)
        )
    }
    finished = await session.execute(
        select(Case.created_at, Case.last_status_change, Case.close_code).where(
            *where, Case.status.in_([s.value for s in FINISHED])
        )
    )
    days, codes = [], []
    for created, ended, code in finished:
        days.append((ended - created).total_seconds() / 86400)
        codes.append(code)
    return StatusSummary(counts=counts, resolution_days=days, close_codes=codes)


# How a partner reads ``changedBy`` of a change it may not see the details of.
CHANGED_BY_PLATFORM = "Platform"  # an ops user
CHANGED_BY_PARTNER = "Partner"  # a user of another partner


@dataclass(frozen=True)
class ReadableChange:
    """A status change as the caller may read it: the entry (``note`` withheld where the
    caller may not read it), who made it as shown (``API``, ``System``, the person's name, or
    for a partner ``Platform`` / ``Partner``), the person's user id where shown, and the kind of
    organisation that acted (None for ``API`` and ``System``; the timeline's actor)."""

    entry: HistoryEntry
    changed_by: str
    user_id: uuid.UUID | None
    org_kind: OrgKind | None


async def history(
    *, session: AsyncSession, principal: Principal, case_id: uuid.UUID, limit: int | None = None
) -> list[ReadableChange]:
    """The case's status changes, oldest first, as ``principal`` may read them (the caller must
    already have been checked to see the case). The one place that decides what a partner
    reads of the history; ``GET /history`` and the timeline both use it.

    A change made by a person shows that person's name (their e-mail address when they have no
    name) and user id. Creditors and ops read every entry so. A partner reads an entry's
    ``note`` and author only when the change was made by ``API``, ``System``, a user of the
    case's creditor or a user of its own organisation. Otherwise ``note`` is withheld (None)
    and the author is only "Platform" (an ops user) or "Partner" (another partner's user), no
    id: a partner must not read what ops or a rival partner wrote (a rejection reason, the
    partners asked to quote, a rival's fee), nor who they are.
    """
    query = select(CaseHistory).where(CaseHistory.case_id == case_id).order_by(CaseHistory.seq)
    if limit is not None:
        query = query.limit(limit)
    rows = list(await session.scalars(query))
    # changed_by is a user id as a string, or "API" / "System": join users to organisations.
    user_ids = {user_id for row in rows if (user_id := _user_id(row.changed_by)) is not None}
    people: dict[uuid.UUID, tuple[str, uuid.UUID, OrgKind]] = {}
    if user_ids:
        found = await session.execute(
            select(User.id, User.name, User.email, Organisation.id, Organisation.kind)
            .join(Organisation, Organisation.id == User.org_id)
            .where(User.id.in_(user_ids))
        )
        people = {
            user_id: (name or email, org_id, OrgKind(kind))
            for user_id, name, email, org_id, kind in found
        }
    readable_orgs: set[uuid.UUID] | None = None  # None: every organisation's (not a partner)
    if principal.role is OrgKind.PARTNER:
        creditor_id = await session.scalar(select(Case.creditor_id).where(Case.id == case_id))
        readable_orgs = {principal.org_id, *([creditor_id] if creditor_id else [])}
    changes = []
    for row in rows:
        entry = _history_entry(row)
        if row.changed_by in (ChangedBy.API.value, ChangedBy.SYSTEM.value):
            changes.append(ReadableChange(entry, row.changed_by, None, None))
            continue
        user_id = _user_id(row.changed_by)
        person = people.get(user_id) if user_id is not None else None
        if person is None:  # no user's id (never written so): as recorded, a partner's masked
            if readable_orgs is None:
                changes.append(ReadableChange(entry, row.changed_by, None, None))
            else:
                masked = entry.model_copy(update={"note": None})
                changes.append(ReadableChange(masked, CHANGED_BY_PLATFORM, None, None))
            continue
        name, org_id, kind = person
        if readable_orgs is None or org_id in readable_orgs:
            changes.append(ReadableChange(entry, name, user_id, kind))
            continue
        by_partner = kind is OrgKind.PARTNER
        changes.append(
            ReadableChange(
                entry.model_copy(update={"note": None}),
                CHANGED_BY_PARTNER if by_partner else CHANGED_BY_PLATFORM,
                None,
                kind,
            )
        )
    return changes


def _user_id(changed_by: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(changed_by)
    except ValueError:
        return None


def _history_entry(row: CaseHistory) -> HistoryEntry:
    return HistoryEntry(
        seq=row.seq,
        timestamp=row.timestamp,
        status=CaseStatus(row.status),
        sub_status=SubStatus(row.sub_status) if row.sub_status else None,
        changed_by=row.changed_by,
        note=row.note,
    )


async def bank_account_of(
    *, session: AsyncSession, bank_account_id: uuid.UUID, org_id: uuid.UUID
) -> BankAccount | None:
    return await session.scalar(
        select(BankAccount).where(BankAccount.id == bank_account_id, BankAccount.org_id == org_id)
    )


@dataclass(frozen=True)
class StartFacts:
    """What a new case's start needs from the read model (``start_facts``)."""

    contract_signed: bool  # the creditor's contract, as its account workflow projected it
    bank_account_currency: str | None  # the named bank account's, if it is the creditor's


# One statement, built once: the creditor's contract and the bank account its case names.
_START_FACTS = (
    select(Organisation.contract_signed_at, BankAccount.currency_code)
    .select_from(Organisation)
    .outerjoin(
        BankAccount,
        and_(
            BankAccount.id == bindparam("account", type_=BankAccount.id.type),
            BankAccount.org_id == Organisation.id,
        ),
    )
    .where(Organisation.id == bindparam("org", type_=Organisation.id.type))
)


async def start_facts(
    *, session: AsyncSession, org_id: uuid.UUID, bank_account_id: uuid.UUID | None
) -> StartFacts:
    """Whether ``org_id`` has signed its contract, and the currency of ``bank_account_id`` if it
    is one of ``org_id``'s bank accounts (None otherwise, or without an id): one statement."""
    row = (
        await session.execute(_START_FACTS, {"org": org_id, "account": bank_account_id})
    ).one_or_none()
    if row is None:
        return StartFacts(contract_signed=False, bank_account_currency=None)
    return StartFacts(contract_signed=row[0] is not None, bank_account_currency=row[1])


_REGISTERED = select(CaseRegistration).where(
    CaseRegistration.creditor_id == bindparam("creditor", type_=CaseRegistration.creditor_id.type),
    CaseRegistration.creditor_reference == bindparam("reference"),
)
_REGISTER = insert(CaseRegistration).returning(CaseRegistration.id)


async def register_case(
    *,
    sessions: async_sessionmaker[AsyncSession],
    creditor_id: uuid.UUID,
    creditor_reference: str,
    request_hash: str,
    division_id: uuid.UUID | None = None,
) -> CaseRegistration:
    """Reserve a creditor reference for a new case id, or return the earlier reservation.

    The caller compares ``request_hash``: the same submission continues with the same case (a
    retry), a different one is a duplicate reference. Plain statements, built once (the ORM's
    unit of work cost more than the INSERT); a new reservation is returned detached. A new
    reservation for ``division_id`` claims that division in the same transaction
    (``store.divisions.claim``: ``DivisionUnavailable`` unless it is the creditor's and active).
    """
    taken = {"creditor": creditor_id, "reference": creditor_reference}
    try:
        # One transaction: look, and reserve when the reference is free.
        async with transaction(sessions) as session:
            existing = await session.scalar(_REGISTERED, taken)
            if existing is not None:
                return existing
            if division_id is not None:
                await division_store.claim(
                    session, division_id=division_id, creditor_id=creditor_id
                )
            registration = CaseRegistration(
                case_id=uuid.uuid4(),
                creditor_id=creditor_id,
                creditor_reference=creditor_reference,
                request_hash=request_hash,
                created_at=dt.datetime.now(dt.UTC),
            )
            connection = await session.connection()
            inserted = await connection.execute(
                _REGISTER,
                {
                    "case_id": registration.case_id,
                    "creditor_id": creditor_id,
                    "creditor_reference": creditor_reference,
                    "request_hash": request_hash,
                    "created_at": registration.created_at,
                },
            )
            registration.id = inserted.scalar_one()
        return registration
    except IntegrityError:
        pass  # raced with another request for the same reference: read its row
    async with sessions() as session:
        existing = await session.scalar(_REGISTERED, taken)
    if existing is None:
        raise RuntimeError("case registration neither found nor created")
    return existing


async def retake_registration(
    *,
    sessions: async_sessionmaker[AsyncSession],
    registration: CaseRegistration,
    request_hash: str,
    division_id: uuid.UUID | None = None,
) -> CaseRegistration:
    """Give an abandoned reservation (its case never started) to a new submission, which claims
    its ``division_id`` as ``register_case`` does.

    Compare-and-set on the old hash, so of two racing submissions only one wins; the loser gets
    the winner's reservation back and is told the reference is taken.
    """
    async with transaction(sessions) as session:
        won = await session.scalar(
            update(CaseRegistration)
            .where(
                CaseRegistration.id == registration.id,
                CaseRegistration.request_hash == registration.request_hash,
            )
            .values(request_hash=request_hash)
            .returning(CaseRegistration.id)
        )
        if won is not None and division_id is not None:
            await division_store.claim(
                session, division_id=division_id, creditor_id=registration.creditor_id
            )
    async with sessions() as session:
        fresh = await session.get(CaseRegistration, registration.id)
    assert fresh is not None
    return fresh


async def cases_without_bank_account(
    *, session: AsyncSession, creditor_id: uuid.UUID, limit: int
) -> list[Case]:
    """A creditor's unfinished cases that have no bank account yet, oldest first (what its
    AssignBankAccount task counts)."""
    return list(
        await session.scalars(
            select(Case)
            .where(
                Case.creditor_id == creditor_id,
                Case.bank_account_id.is_(None),
                Case.status.not_in([s.value for s in FINISHED]),
            )
            .order_by(Case.created_at, Case.id)
            .limit(limit)
        )
    )
