"""Seed a PostgreSQL read model of issue 10's size with realistic rows, written directly (COPY).

    PYTHONPATH=$PWD .venv/bin/python -m bench.seed_read_model postgresql://…/db [--scale 1.0]

1,001 organisations (1 ops, 800 creditors, 200 partners), 200k cases, 1M tasks; the first
creditor ("big creditor") holds 24k cases with 120k tasks, the first partner ("big partner")
works 8 % of all assigned cases. Statuses follow the lifecycle table, partners and quote
invitations follow the statuses, tasks are of their side's catalogue types, a quarter open, most
with deadlines around today, some overdue and assigned. Rows go in with COPY, into the columns
the migrated schema has (so the same seed also fills the schema before issue 10). It writes
three API keys (``BENCH_KEYS``) for the big creditor, the big partner and ops, and ends with
``VACUUM ANALYZE``. The schema must exist (``store.migrate.upgrade``) and be empty.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from domain.enums import CaseStatus, SubStatus
from domain.tasks import CATALOGUE, AccessLevel, Scope, TaskStatus, TaskType

CREDITORS, PARTNERS = 800, 200
CASES = 200_000
BIG_CREDITOR_CASES = 24_000
TASKS_PER_CASE = 5  # the big creditor's cases: five creditor tasks each -> 120k
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NO_DEADLINE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
# Secrets of the bench's API keys (a throwaway database; never used elsewhere).
BENCH_KEYS = {
    "creditor": "clk_bench-creditor-0000000000000000000000000000",
    "partner": "clk_bench-partner-00000000000000000000000000000",
    "ops": "clk_bench-ops-000000000000000000000000000000000",
}

FIRST = [
    "Jens",
    "Maria",
    "Anne",
    "Peter",
    "Lars",
    "Mette",
    "Søren",
    "Hanne",
    "Niels",
    "Karen",
    "Michael",
    "Sofie",
    "Thomas",
    "Ida",
    "Henrik",
    "Emma",
    "Anders",
    "Laura",
    "Martin",
    "Julie",
    "Rasmus",
    "Camilla",
    "Mads",
    "Louise",
    "Christian",
    "Sara",
    "Jonas",
    "Lene",
    "Klaus",
]
LAST = [
    "Hansen",
    "Jensen",
    "Nielsen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Christiansen",
    "Poulsen",
    "Johansen",
    "Møller",
    "Mortensen",
    "Schmidt",
    "Müller",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Smith",
    "Johnson",
]
TRADES = [
    "Tømrer",
    "Murer",
    "VVS",
    "El",
    "Maler",
    "Auto",
    "Transport",
    "Byg",
    "Design",
    "Data",
    "Consult",
    "Handel",
    "Import",
    "Ejendomme",
    "Rengøring",
    "Catering",
    "Bageri",
    "Køkken",
    "Tag",
    "Glas",
]
FORMS = ("ApS", "A/S", "I/S", "GmbH", "AB", "Ltd")

# (status, sub-status, weight): where cases stand, roughly as a year of business leaves them.
STATUS_MIX: Sequence[tuple[CaseStatus, SubStatus | None, int]] = (
    (CaseStatus.CREATED, None, 4),
    (CaseStatus.VALIDATED, None, 2),
    (CaseStatus.VALIDATED, SubStatus.COLLECTING_QUOTES, 2),
    (CaseStatus.ASSIGNED, None, 3),
    (CaseStatus.IN_COLLECTION, None, 30),
    (CaseStatus.PAYMENT_PLAN, None, 8),
    (CaseStatus.ON_HOLD, SubStatus.MORE_INFO_REQUIRED, 3),
    (CaseStatus.RESOLVED, None, 28),
    (CaseStatus.CLOSED, None, 20),
)
WITHOUT_PARTNER = {CaseStatus.CREATED, CaseStatus.VALIDATED}


def _types(access: AccessLevel) -> list[TaskType]:
    return [
        spec.type
        for spec in CATALOGUE.values()
        if spec.scope is Scope.CASE and spec.access in (access, None)
    ]


CREDITOR_TYPES, PARTNER_TYPES = _types(AccessLevel.CREDITOR), _types(AccessLevel.PARTNER)
CHAT_TYPES = {TaskType.NEW_MESSAGE, TaskType.REPLY_TO_CHAT}


@dataclass
class Org:
    id: uuid.UUID
    kind: str
    name: str
    users: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Seeded:
    """What the benchmark asks about: the orgs, users and a case of the big creditor."""

    big_creditor: uuid.UUID
    big_partner: uuid.UUID
    ops: uuid.UUID
    creditor_user: uuid.UUID
    big_case: uuid.UUID
    searched_name: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _debtor(rng: random.Random) -> tuple[str, dict[str, Any]]:
    if rng.random() < 0.55:
        name = f"{rng.choice(LAST)} {rng.choice(TRADES)} {rng.choice(FORMS)}"
        kind = "Company"
    else:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        kind = "Private"
    return name, {
        "type": kind,
        "name": name,
        "contact_person": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "address": f"Vestergade {rng.randint(1, 200)}",
        "city": "Aarhus",
        "zip_code": "8000",
        "country_alpha2": "DK",
        "email": "debtor@example.dk",
    }


class Seeder:
    def __init__(self, connection: psycopg.Connection[Any], scale: float, seed: int) -> None:
        self.db = connection
        self.rng = random.Random(seed)
        self.scale = scale
        self.columns: dict[str, list[str]] = {}
        for table in ("organisations", "users", "api_keys", "cases", "case_invitations", "tasks"):
            rows = connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,),
            ).fetchall()
            self.columns[table] = [name for (name,) in rows]

    def copy(self, table: str, rows: Iterator[dict[str, Any]]) -> int:
        """COPY the rows' values for the columns the table has; the count written."""
        columns = self.columns[table]
        count = 0
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.db.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row.get(column) for column in columns])
                count += 1
        return count

    def run(self) -> Seeded:
        rng = self.rng
        ops = Org(uuid.uuid4(), "ops", "Caseloop Ops")
        creditors = [Org(uuid.uuid4(), "creditor", f"Creditor {i:03d}") for i in range(CREDITORS)]
        partners = [Org(uuid.uuid4(), "partner", f"Partner {i:03d}") for i in range(PARTNERS)]
        orgs = [ops, *creditors, *partners]
        for org in orgs:
            org.users = [uuid.uuid4(), uuid.uuid4()]
        self.copy(
            "organisations",
            (
                {
                    "id": o.id,
                    "kind": o.kind,
                    "name": o.name,
                    "country": "DK",
                    "timezone": "Europe/Copenhagen",
                    "created_at": NOW - dt.timedelta(days=900),
                    "account_version": 0,
                    "contract_signed_at": NOW - dt.timedelta(days=800),
                }
                for o in orgs
            ),
        )
        self.copy(
            "users",
            (
                {
                    "id": user,
                    "org_id": o.id,
                    "email": f"{user.hex[:12]}@example.com",
                    "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "active": True,
                    "created_at": NOW - dt.timedelta(days=900),
                }
                for o in orgs
                for user in o.users
            ),
        )
        holders = {"creditor": creditors[0], "partner": partners[0], "ops": ops}
        self.copy(
            "api_keys",
            (
                {
                    "id": uuid.uuid4(),
                    "user_id": holders[role].users[0],
                    "key_hash": _hash(secret),
                    "prefix": secret[:8],
                    "created_at": NOW,
                    "revoked_at": None,
                }
                for role, secret in BENCH_KEYS.items()
            ),
        )
        cases = int(CASES * self.scale)
        big_cases = int(BIG_CREDITOR_CASES * self.scale)
        case_rows: list[dict[str, Any]] = []
        invitations: list[dict[str, Any]] = []
        statuses = [(s, sub) for s, sub, _ in STATUS_MIX]
        weights = [w for _, _, w in STATUS_MIX]
        searched = ""
        for number in range(cases):
            creditor = creditors[0] if number < big_cases else rng.choice(creditors[1:])
            status, sub = rng.choices(statuses, weights)[0]
            partner = None
            if status not in WITHOUT_PARTNER:
                partner = partners[0] if rng.random() < 0.08 else rng.choice(partners[1:])
            created = NOW - dt.timedelta(seconds=rng.randint(0, 730 * 86400))
            name, debtor = _debtor(rng)
            if number == 0:
                searched = name.split()[0]
            case_id = uuid.uuid4()
            case_rows.append(
                {
                    "id": case_id,
                    "version": 5,
                    "case_number": f"CL-2026-{number + 1:06d}",
                    "creditor_id": creditor.id,
                    "partner_id": partner.id if partner else None,
                    "partner_name": partner.name if partner else None,
                    "submitted_by": creditor.users[0],
                    "creditor_reference": f"INV-{number:07d}",
                    "currency_code": "DKK",
                    "amount_to_recover": f"{rng.randint(500, 500_000)}.00",
                    "date": (created - dt.timedelta(days=60)).date(),
                    "due_date": (created - dt.timedelta(days=30)).date(),
                    "claim_description": "Unpaid invoice for services delivered.",
                    "debtor_name": name,
                    "debtor": json.dumps(debtor),
                    "bank_account_id": None,
                    "status": status.value,
                    "sub_status": sub.value if sub else None,
                    "last_status_change": created + dt.timedelta(days=rng.randint(0, 60)),
                    "close_code": None,
                    "created_at": created,
                    "updated_at": created + dt.timedelta(days=rng.randint(0, 90)),
                    "details": "{}",
                    # not columns: what the tasks below need
                    "_creditor": creditor,
                    "_partner": partner,
                }
            )
            if sub is SubStatus.COLLECTING_QUOTES:
                invited = rng.sample(partners, 3)
                if rng.random() < 0.05 and partners[0] not in invited:
                    invited[0] = partners[0]
                invitations += [{"case_id": case_id, "partner_id": p.id} for p in invited]
        self.copy("cases", iter(case_rows))
        self.copy("case_invitations", iter(invitations))
        tasks = self.copy("tasks", self._tasks(case_rows, partners, big_cases))
        print(f"seeded {len(orgs)} organisations, {cases} cases, {tasks} tasks", flush=True)
        return Seeded(
            big_creditor=creditors[0].id,
            big_partner=partners[0].id,
            ops=ops.id,
            creditor_user=creditors[0].users[0],
            big_case=case_rows[0]["id"],
            searched_name=searched,
        )

    def _tasks(
        self, cases: list[dict[str, Any]], partners: list[Org], big_cases: int
    ) -> Iterator[dict[str, Any]]:
        for number, case in enumerate(cases):
            creditor, partner = case["_creditor"], case["_partner"]
            if number < big_cases or partner is None:
                sides = [(creditor, AccessLevel.CREDITOR)] * TASKS_PER_CASE
            else:
                sides = [(creditor, AccessLevel.CREDITOR)] * 3 + [
                    (partner, AccessLevel.PARTNER)
                ] * 2
            for owner, access in sides:
                yield self._task(case, owner, access, partners)

    def _task(
        self, case: dict[str, Any], owner: Org, access: AccessLevel, partners: list[Org]
    ) -> dict[str, Any]:
        rng = self.rng
        visible = True
        if access is AccessLevel.PARTNER and rng.random() < 0.02:
            owner, visible = rng.choice(partners), False  # a partner that lost the case
        kind = rng.choice(CREDITOR_TYPES if access is AccessLevel.CREDITOR else PARTNER_TYPES)
        if rng.random() < 0.4:
            kind = rng.choice(sorted(CHAT_TYPES))
        created = case["created_at"] + dt.timedelta(hours=rng.randint(0, 24 * 200))
        is_open = rng.random() < 0.25
        deadline = None
        if is_open and rng.random() < 0.85:
            deadline = NOW + dt.timedelta(minutes=rng.randint(-30 * 1440, 60 * 1440))
        elif not is_open and rng.random() < 0.7:
            deadline = created + dt.timedelta(days=rng.randint(1, 14))
        solved = None if is_open else created + dt.timedelta(days=rng.randint(0, 10))
        task_id = str(uuid.uuid4())
        return {
            "id": task_id,
            "version": 3,
            "workflow_id": f"case-{case['id']}",
            "key": f"{kind.value}:{task_id[:8]}" if kind in CHAT_TYPES else kind.value,
            "type": kind.value,
            "title": CATALOGUE[kind].label,
            "description": "",
            "status": (TaskStatus.OPEN if is_open else TaskStatus.SOLVED).value,
            "access_level": access.value,
            "scope": Scope.CASE.value,
            "owner_org_id": owner.id,
            "case_id": case["id"],
            "relationship_id": None,
            "deadline": deadline,
            "sort_deadline": deadline or NO_DEADLINE,
            "original_deadline": deadline,
            "date_created": created,
            "date_solved": solved,
            "overdue_since": deadline if is_open and deadline and deadline < NOW else None,
            "assignee_id": rng.choice(owner.users) if rng.random() < 0.3 else None,
            "resolved_by": None
            if is_open
            else json.dumps({"kind": "system", "user_id": None, "reason": "done"}),
            "case_reference": case["creditor_reference"],
            "case_visible": visible,
        }


def seed(url: str, *, scale: float = 1.0, seed_value: int = 10) -> Seeded:
    started = time.monotonic()
    with psycopg.connect(url, autocommit=False) as connection:
        seeded = Seeder(connection, scale, seed_value).run()
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    print(f"seeding took {time.monotonic() - started:.0f} s", flush=True)
    return seeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="postgresql://… of a migrated, empty database")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    seeded = seed(args.url.replace("postgresql+psycopg://", "postgresql://"), scale=args.scale)
    print(json.dumps({k: str(v) for k, v in dataclasses.asdict(seeded).items()}))


if __name__ == "__main__":
    main()
