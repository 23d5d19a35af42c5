"""``caseloop doctor``: is this deployment able to run? Each check says what is wrong and how
to fix it; ``run_checks`` runs them all (a check that cannot run, because an earlier one
failed, is skipped and says so).

- Settings: they load; PAYLOAD_KEYS parse (and exist while payloads are encrypted); the portal's
  key; SMTP; Temporal's TLS files and key.
- Temporal: reachable at TEMPORAL_ADDRESS; TEMPORAL_NAMESPACE exists; every search attribute of
  ``domain.search_attributes`` is registered with its type; every schedule of ``schedules.py``
  exists and starts its workflow on TEMPORAL_TASK_QUEUE.
- The database: reachable at DATABASE_URL, and at the latest migration.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from codec import PayloadKeyError, parse_keys
from domain import search_attributes as sa
from schedules import NIGHTLY
from settings import Settings
from store.db import create_engine
from store.migrate import alembic_config

CONNECT_SECONDS = 10


@dataclass(frozen=True)
class Check:
    """One check: what was checked, whether it is fine, and if not what is wrong and the fix."""

    name: str
    ok: bool
    problem: str = ""
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}"
        return f"FAIL  {self.name}: {self.problem}" + (
            f"\n      fix: {self.fix}" if self.fix else ""
        )


def _ok(name: str) -> Check:
    return Check(name, True)


def check_settings(settings: Settings) -> list[Check]:
    """What is missing or inconsistent in settings that loaded."""
    checks = []
    name = "settings: PAYLOAD_KEYS"
    if settings.payload_keys is None:
        checks.append(
            Check(
                name,
                False,
                "not set, so the worker and the API refuse to start (payloads are encrypted)",
                "set PAYLOAD_KEYS=<id>:<base64> (print one with `caseloop payload-key`), "
                "or PAYLOAD_ENCRYPTION=false to store payloads in clear",
            )
            if settings.payload_encryption
            else _ok(name + " (payloads stored in clear: PAYLOAD_ENCRYPTION=false)")
        )
    else:
        try:
            parse_keys(settings.payload_keys.get_secret_value())
            checks.append(_ok(name))
        except (PayloadKeyError, ValueError) as error:
            checks.append(
                Check(
                    name,
                    False,
                    f"cannot be read ({error})",
                    "entries are <id>:<base64 of 32 bytes>, comma-separated; `caseloop payload-key` prints one",
                )
            )
    checks.append(
        _ok("settings: PORTAL_SECRET_KEY")
        if settings.portal_secret_key is not None
        else Check(
            "settings: PORTAL_SECRET_KEY",
            False,
            "not set, so the portal answers 503",
            "set PORTAL_SECRET_KEY to a random string of at least 32 characters",
        )
    )
    name = "settings: SMTP"
    if not settings.smtp_host:
        checks.append(
            Check(
                name,
                False,
                "SMTP_HOST is not set, so e-mails wait unsent",
                "set SMTP_HOST (and SMTP_PORT, SMTP_SECURITY, SMTP_USER, SMTP_PASSWORD)",
            )
        )
    elif settings.smtp_security == "none" and settings.smtp_host not in (
        "localhost",
        "127.0.0.1",
        "::1",
    ):
        checks.append(
            Check(
                name,
                False,
                f"SMTP_SECURITY=none sends e-mail in plaintext to {settings.smtp_host}",
                "use SMTP_SECURITY=starttls (port 587) or tls (port 465)",
            )
        )
    elif bool(settings.smtp_user) != (settings.smtp_password is not None):
        checks.append(
            Check(
                name,
                False,
                "SMTP_USER and SMTP_PASSWORD go together; one is missing",
                "set both, or neither",
            )
        )
    else:
        checks.append(_ok(name))
    name = "settings: Temporal TLS"
    cert, key = settings.temporal_tls_client_cert, settings.temporal_tls_client_key
    files = [p for p in (cert, key, settings.temporal_tls_server_ca_cert) if p is not None]
    missing = [str(p) for p in files if not Path(p).is_file()]
    if (cert is None) != (key is None):
        checks.append(
            Check(
                name,
                False,
                "TEMPORAL_TLS_CLIENT_CERT and TEMPORAL_TLS_CLIENT_KEY go together; one is missing",
                "set both (mTLS), or neither",
            )
        )
    elif missing:
        checks.append(
            Check(
                name,
                False,
                f"no such file: {', '.join(missing)}",
                "point the TEMPORAL_TLS_* settings at existing files",
            )
        )
    elif settings.temporal_api_key is not None and settings.temporal_tls is False:
        checks.append(
            Check(
                name,
                False,
                "TEMPORAL_API_KEY is set with TEMPORAL_TLS=false; Temporal Cloud refuses plaintext",
                "unset TEMPORAL_TLS (TLS is then on with the key)",
            )
        )
    else:
        checks.append(_ok(name))
    return checks


async def check_temporal(settings: Settings) -> list[Check]:
    """Reachable, the namespace, the search attributes and the schedules."""
    from temporal_client import connect

    where = f"{settings.temporal_address}, namespace {settings.temporal_namespace}"
    try:
        client = await asyncio.wait_for(connect(settings), CONNECT_SECONDS)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace)
        )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return [
                Check(
                    f"Temporal: namespace {settings.temporal_namespace}",
                    False,
                    f"does not exist at {settings.temporal_address}",
                    f"temporal operator namespace create --namespace {settings.temporal_namespace}"
                    " (or set TEMPORAL_NAMESPACE)",
                )
            ]
        return [
            Check(
                f"Temporal: {where}",
                False,
                f"answered {error.status.name}: {error.message}",
                "check TEMPORAL_ADDRESS, TEMPORAL_API_KEY and the TLS settings",
            )
        ]
    except (PayloadKeyError, ValueError) as error:
        return [Check("Temporal", False, f"not checked: {error}", "fix the settings above")]
    except (RuntimeError, OSError, TimeoutError) as error:
        return [
            Check(
                f"Temporal: {where}",
                False,
                f"not reachable ({type(error).__name__}: {error})"[:300],
                "start Temporal (`make run` starts a dev server) or fix TEMPORAL_ADDRESS",
            )
        ]
    return [
        _ok(f"Temporal: {where} reachable"),
        *await check_search_attributes(client),
        *await check_schedules(client, settings.temporal_task_queue),
    ]


async def check_search_attributes(client: Client) -> list[Check]:
    answer = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    registered = dict(answer.custom_attributes)
    checks = []
    for key in sa.ALL:
        cli_type = _cli(key.indexed_value_type.name)
        name = f"Temporal: search attribute {key.name} ({cli_type})"
        have = registered.get(key.name)
        if have is None:
            checks.append(
                Check(
                    name,
                    False,
                    "not registered, so the workflows cannot set it (their tasks fail)",
                    f"temporal operator search-attribute create --namespace {client.namespace} "
                    f"--name {key.name} --type {cli_type}",
                )
            )
        elif have != int(key.indexed_value_type):
            actual = _cli(IndexedValueType.Name(have).removeprefix("INDEXED_VALUE_TYPE_"))
            checks.append(
                Check(
                    name,
                    False,
                    f"registered as {actual}, not {cli_type}",
                    f"temporal operator search-attribute remove --namespace {client.namespace} "
                    f"--name {key.name}, then create it with --type {cli_type}",
                )
            )
        else:
            checks.append(_ok(name))
    return checks


def _cli(indexed_type: str) -> str:
    """KEYWORD_LIST -> KeywordList: the type as the temporal CLI spells it."""
    return "".join(part.title() for part in indexed_type.split("_"))


async def check_schedules(client: Client, task_queue: str) -> list[Check]:
    checks = []
    for job in NIGHTLY:
        name = f"Temporal: schedule {job.name}"
        try:
            described = await client.get_schedule_handle(job.name).describe()
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            checks.append(
                Check(
                    name,
                    False,
                    "missing, so its nightly job never runs",
                    "start a worker (`caseloop worker` creates missing schedules at start)",
                )
            )
            continue
        action = described.schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != job.workflow:
            checks.append(
                Check(
                    name,
                    False,
                    f"does not start {job.workflow}",
                    f"temporal schedule delete --schedule-id {job.name}, then restart a worker",
                )
            )
        elif action.task_queue != task_queue:
            checks.append(
                Check(
                    name,
                    False,
                    f"starts {job.workflow} on task queue {action.task_queue}, but the workers "
                    f"poll {task_queue}",
                    f"temporal schedule delete --schedule-id {job.name}, then restart a worker",
                )
            )
        else:
            checks.append(_ok(name))
    return checks


async def check_database(settings: Settings) -> list[Check]:
    """Reachable, and at the latest migration."""
    heads = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads()
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            try:
                current = set(
                    await connection.scalars(text("SELECT version_num FROM alembic_version"))
                )
            except DBAPIError:
                current = set()
    except (DBAPIError, OSError) as error:
        return [
            Check(
                "database",
                False,
                f"not reachable ({type(error).__name__})",
                "check DATABASE_URL and that the database runs",
            )
        ]
    finally:
        await engine.dispose()
    reachable = _ok("database: reachable")
    if current == set(heads):
        return [reachable, _ok(f"database: at the latest migration ({', '.join(heads)})")]
    at = ", ".join(sorted(current)) or "no migration"
    return [
        reachable,
        Check(
            "database: migrations",
            False,
            f"at {at}; the latest is {', '.join(heads)}",
            "caseloop db upgrade (with this DATABASE_URL)",
        ),
    ]


async def run_checks(settings: Settings | None = None) -> list[Check]:
    """Every check, in order (the settings from the environment unless given)."""
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']).upper() or 'settings'}: {e['msg']}"
                for e in error.errors()
            )
            return [Check("settings", False, problems, "fix these environment variables (or .env)")]
    return [
        *check_settings(settings),
        *await check_temporal(settings),
        *await check_database(settings),
    ]
