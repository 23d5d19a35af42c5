"""The ``caseloop`` command: accounts, migrations, the worker, the API and the local dev stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import httpx
import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.enums import OrgKind
from domain.ids import case_workflow_id, creditor_workflow_id, relationship_workflow_id
from settings import get_settings
from store import accounts, passwords
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade

if TYPE_CHECKING:
    from ops.reproject import Reprojected

app = typer.Typer(
    help="caseloop: the back office of a debt-collection marketplace.", no_args_is_help=True
)
org_app = typer.Typer(
    help="Organisations (creditors, partners, platform ops).", no_args_is_help=True
)
user_app = typer.Typer(help="Users of an organisation.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The read-model database.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks: tools for receivers.", no_args_is_help=True)
mail_app = typer.Typer(
    help="The e-mails the local mail sink of `make run` kept (VAR_DIR/mail).", no_args_is_help=True
)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(db_app, name="db")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(mail_app, name="mail")
case_app = typer.Typer(
    help="Cases for ops: explain what one waits on, rebuild its read-model rows.",
    no_args_is_help=True,
)
account_app = typer.Typer(help="Creditor accounts for ops.", no_args_is_help=True)
relationship_app = typer.Typer(help="Creditor-partner relationships for ops.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(account_app, name="account")
app.add_typer(relationship_app, name="relationship")

T = TypeVar("T")


def _with_session(work: Callable[[accounts.AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction; account errors exit 2 with their message."""

    async def run() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except accounts.AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except DBAPIError as exc:
        typer.echo(
            f"error: database not ready ({exc.orig}); run `caseloop db upgrade` first", err=True
        )
        raise typer.Exit(1) from exc


@org_app.command("create")
def org_create(
    kind: Annotated[OrgKind, typer.Option(help="creditor, partner, or ops (platform staff)")],
    name: Annotated[str, typer.Option()],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2, e.g. DK")],
    timezone: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Copenhagen")],
) -> None:
    """Create an organisation and print its id."""
    org = _with_session(
        lambda s: accounts.create_org(
            session=s, kind=kind, name=name, country=country, timezone=timezone
        )
    )
    typer.echo(org.id)


@user_app.command("create")
def user_create(
    org: Annotated[uuid.UUID, typer.Option(help="organisation id")],
    email: Annotated[str, typer.Option()],
    name: Annotated[str | None, typer.Option()] = None,
    password: Annotated[
        str | None,
        typer.Option(help="the portal password; without it, a one-time set-password link"),
    ] = None,
) -> None:
    """Create a user in an organisation and print its id (standard output, alone, for scripts)
    and, without --password, a one-time set-password link for the portal (standard error)."""

    async def create(session: accounts.AsyncSession) -> uuid.UUID:
        user = await accounts.create_user(session=session, org_id=org, email=email, name=name)
        if password is not None:
            await passwords.set_password(session=session, user_id=user.id, password=password)
        return user.id

    user_id = _with_session(create)
    typer.echo(user_id)
    if password is None:
        link = _password_link(user_id, 0)
        typer.echo(
            f"set-password link: {link}"
            if link
            else "no set-password link: PORTAL_SECRET_KEY is not set (use --password, or "
            "`caseloop user password-link` once it is)",
            err=True,
        )


def _password_link(user_id: uuid.UUID, stamp: int) -> str | None:
    """The portal link that sets this user's password (one use; PORTAL_PASSWORD_LINK_HOURS);
    None without PORTAL_SECRET_KEY to sign it."""
    from portal.security import Signer

    settings = get_settings()
    signer = Signer.from_settings(settings)
    if signer is None:
        return None
    token = signer.password_token(user_id, stamp)
    return f"{settings.portal_base_url.rstrip('/')}/password/{token}"


@user_app.command("password-link")
def user_password_link(email: Annotated[str, typer.Option()]) -> None:
    """Print a one-time link with which the user sets a new portal password (it also ends
    their sessions once used)."""

    async def find(session: accounts.AsyncSession) -> tuple[uuid.UUID, int]:
        found = await passwords.user_by_email(session=session, email=email)
        if found is None:
            raise accounts.AccountError(f"no active user with e-mail {email}")
        return found

    user_id, stamp = _with_session(find)
    link = _password_link(user_id, stamp)
    if link is None:
        typer.echo("error: PORTAL_SECRET_KEY is not set, so no link can be signed", err=True)
        raise typer.Exit(2)
    typer.echo(link)


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's portal password (asked for twice unless given); ends their sessions."""

    async def change(session: accounts.AsyncSession) -> None:
        found = await passwords.user_by_email(session=session, email=email)
        if found is None:
            raise accounts.AccountError(f"no active user with e-mail {email}")
        await passwords.set_password(session=session, user_id=found[0], password=password)

    _with_session(change)
    typer.echo("password set")


@key_app.command("create")
def key_create(user: Annotated[uuid.UUID, typer.Option(help="user id")]) -> None:
    """Create an API key for a user and print it. It is shown once; only its hash is stored."""
    _, secret = _with_session(lambda s: accounts.create_key(session=s, user_id=user))
    typer.echo(secret)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to DATABASE_URL."""
    upgrade(get_settings().database_url)
    typer.echo("database is at the latest migration")


@webhooks_app.command("listen")
def webhooks_listen(
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8765,
    secret: Annotated[
        str | None,
        typer.Option(
            help="the subscription's secret (whsec_...) to verify signatures with",
            envvar="CASELOOP_WEBHOOK_SECRET",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    body: Annotated[bool, typer.Option("--body", help="print each event's JSON body too")] = False,
) -> None:
    """Run a local webhook receiver: print each event (type, ids, case, whether its signature
    verified), answering 204 when it verifies and 400 when it does not. Subscribe
    http://localhost:PORT/ with WEBHOOKS_ALLOW_LOCALHOST=true (docs/api.md, "Webhooks")."""
    import webhook_receiver

    def echo(line: str) -> None:
        typer.echo(line)

    try:
        webhook_receiver.listen(host=host, port=port, secret=secret, show_body=body, echo=echo)
    except ValueError as exc:  # a malformed secret
        typer.echo(f"error: --secret is not a whsec_ secret ({exc})", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port} ({exc})", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass


@mail_app.command("list")
def mail_list() -> None:
    """List the kept e-mails, newest first: when (UTC), to, subject, id."""
    from mail.sink import list_messages

    directory = get_settings().mail_directory
    messages = list_messages(directory)
    if not messages:
        typer.echo(f"no e-mails in {directory}")
        return
    for message in messages:
        when = message.received.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{when}  {message.to}  {message.subject}  {message.id}")


@mail_app.command("show")
def mail_show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="the id `caseloop mail list` shows")],
    html: Annotated[bool, typer.Option("--html", help="the HTML body instead of the text")] = False,
) -> None:
    """Print a kept e-mail: its headers, then its text (or, with --html, its HTML) body."""
    from mail.sink import read_message

    message = read_message(get_settings().mail_directory, ident)
    if message is None:
        typer.echo(f"error: no e-mail with id {ident}", err=True)
        raise typer.Exit(2)
    for name, value in message.items():
        typer.echo(f"{name}: {value}")
    body = message.get_body(preferencelist=("html",) if html else ("plain",))
    typer.echo("")
    typer.echo(body.get_content() if body is not None else "(no such body)")


def _with_ops(work: Callable[[Client, async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run ``work`` with a Temporal client and the read model; a workflow Temporal does not know
    exits 2, an unreachable Temporal or database 1 (``caseloop doctor`` says why)."""

    from temporal_client import connect

    async def run() -> T:
        settings = get_settings()
        engine = create_engine(settings.database_url)
        try:
            client = await connect(settings)
            return await work(client, session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"error: Temporal answered {exc.status.name}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except (RuntimeError, OSError, DBAPIError) as exc:
        typer.echo(f"error: {exc}; run `caseloop doctor`", err=True)
        raise typer.Exit(1) from exc


@case_app.command("explain")
def case_explain(
    case_id: Annotated[uuid.UUID, typer.Argument(metavar="ID", help="the case id")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON, as the ops endpoint")] = False,
) -> None:
    """Explain a case in plain words: its status, open tasks (deadline, who owes each), pending
    timers, the last history events, projection lag, and anything failing."""
    from ops.explain import explain_case

    explanation = _with_ops(lambda client, sessions: explain_case(client, sessions, case_id))
    if explanation is None:
        typer.echo(f"error: no case {case_id} (no workflow and no read-model row)", err=True)
        raise typer.Exit(2)
    typer.echo(
        explanation.model_dump_json(by_alias=True, indent=2) if as_json else explanation.text()
    )


def _echo_reprojected(done: Reprojected) -> None:
    if done.projections == 0:
        typer.echo(f"{done.workflow_id}: never projected anything; nothing to write")
    else:
        typer.echo(
            f"{done.workflow_id}: {done.projections} projections of {done.runs} run(s) written "
            f"again, up to version {done.version}"
        )


@case_app.command("reproject")
def case_reproject(
    case_id: Annotated[
        uuid.UUID | None, typer.Argument(metavar="[ID]", help="the case id (or --all)")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="every case Temporal knows")] = False,
    batch: Annotated[int, typer.Option(min=1, help="cases at once with --all")] = 20,
    after_reset: Annotated[
        bool,
        typer.Option(
            "--after-reset",
            help="the workflow was reset: drop the abandoned run's rows first (one case only)",
        ),
    ] = False,
) -> None:
    """Rebuild a case's read-model rows (case row, history, chat messages, tasks) from its
    workflow's history, idempotently: what was deleted or altered is written again, an intact
    case stays exactly as it is, and nothing is sent again (docs/operations.md)."""
    from ops.reproject import reproject_all, reproject_case

    if (case_id is None) == (not every) or (every and after_reset):
        typer.echo("error: name one case ID, or --all (--after-reset: one case)", err=True)
        raise typer.Exit(2)
    if case_id is not None:
        _echo_reprojected(
            _with_ops(
                lambda client, sessions: reproject_case(
                    client, sessions, case_id, after_reset=after_reset
                )
            )
        )
        return

    def progress(done: int, failed: list[str]) -> None:
        typer.echo(f"{done} cases reprojected" + (f", {len(failed)} failed" if failed else ""))

    failed = _with_ops(
        lambda client, sessions: reproject_all(client, sessions, batch=batch, progress=progress)
    )
    for line in failed:
        typer.echo(f"failed: {line}", err=True)
    if failed:
        raise typer.Exit(1)


@account_app.command("reproject")
def account_reproject(
    creditor_id: Annotated[uuid.UUID, typer.Argument(metavar="CREDITOR_ID")],
    after_reset: Annotated[
        bool,
        typer.Option(
            "--after-reset", help="the workflow was reset: drop the abandoned run's rows first"
        ),
    ] = False,
) -> None:
    """Rebuild a creditor account's read-model rows (contract state, account tasks) from its
    workflow's history, as `caseloop case reproject` does for a case."""
    from ops.reproject import reproject

    workflow_id = creditor_workflow_id(creditor_id)
    _echo_reprojected(
        _with_ops(
            lambda client, sessions: reproject(
                client, sessions, workflow_id, after_reset=after_reset
            )
        )
    )


@relationship_app.command("reproject")
def relationship_reproject(
    creditor_id: Annotated[uuid.UUID, typer.Argument(metavar="CREDITOR_ID")],
    partner_id: Annotated[uuid.UUID, typer.Argument(metavar="PARTNER_ID")],
    after_reset: Annotated[
        bool,
        typer.Option(
            "--after-reset", help="the workflow was reset: drop the abandoned run's rows first"
        ),
    ] = False,
) -> None:
    """Rebuild a creditor-partner pair's read-model rows (the pair, its general chat, its
    tasks) from its workflow's history, as `caseloop case reproject` does for a case."""
    from ops.reproject import reproject

    workflow_id = relationship_workflow_id(creditor_id, partner_id)
    _echo_reprojected(
        _with_ops(
            lambda client, sessions: reproject(
                client, sessions, workflow_id, after_reset=after_reset
            )
        )
    )


@app.command()
def doctor() -> None:
    """Check the settings, Temporal (reachable, namespace, search attributes, schedules) and the
    database (reachable, at the latest migration); say what is wrong and how to fix it. Exits 1
    when something is."""
    from ops.doctor import run_checks

    checks = asyncio.run(run_checks())
    for check in checks:
        typer.echo(check.line())
    failed = [check for check in checks if not check.ok]
    typer.echo("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    if failed:
        raise typer.Exit(1)


@app.command("payload-key")
def payload_key() -> None:
    """Print a new payload encryption key entry for PAYLOAD_KEYS (<id>:<base64>).

    Put it first in PAYLOAD_KEYS to encrypt with it, keeping older keys after it for as long as
    histories written with them exist (see docs/operations.md).
    """
    from codec import new_key_entry

    typer.echo(new_key_entry())


worker_app = typer.Typer(
    help="Run the Temporal worker (all workflows and activities); `worker health` checks one.",
    invoke_without_command=True,
)
app.add_typer(worker_app, name="worker")


@worker_app.callback()
def worker(ctx: typer.Context) -> None:
    """Run the Temporal worker (all workflows and activities)."""
    if ctx.invoked_subcommand is None:
        import worker as worker_module

        worker_module.main()


@worker_app.command("health")
def worker_health(
    url: Annotated[
        str | None,
        typer.Option(help="the worker's /healthz (default: METRICS_HOST:WORKER_METRICS_PORT)"),
    ] = None,
) -> None:
    """Whether the worker polls its task queue (and when it last did); exit 1 when not."""
    settings = get_settings()
    if url is None:
        if not settings.worker_metrics_port:
            typer.echo("error: WORKER_METRICS_PORT is 0: the worker serves no health", err=True)
            raise typer.Exit(2)
        url = f"http://{settings.metrics_host}:{settings.worker_metrics_port}/healthz"
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        typer.echo(f"unavailable: the worker does not answer at {url} ({type(exc).__name__})")
        raise typer.Exit(1) from exc
    body = answer.json()
    polls = ", ".join(f"{kind} {at or 'never'}" for kind, at in body.get("lastPoll", {}).items())
    typer.echo(f"{body.get('status')}: task queue {body.get('taskQueue')!r}, last polls: {polls}")
    if answer.status_code != 200:
        raise typer.Exit(1)


@app.command()
def api() -> None:
    """Serve the HTTP API with uvicorn on API_HOST:API_PORT."""
    from api.server import serve

    serve()


@app.command()
def dev() -> None:
    """Run the whole stack locally: Temporal dev server + UI, migrations, worker, API (make run)."""
    from devstack import run_dev_stack

    raise typer.Exit(run_dev_stack(get_settings()))


# The demo's accounts, the same on every run (README.md names them): local demos only.
DEMO_PASSWORD = "caseloop-demo"
DEMO_ACCOUNTS: dict[str, tuple[OrgKind, str, str, str]] = {
    "creditor": (OrgKind.CREDITOR, "Demo Creditor", "Alice", "alice@demo-creditor.example"),
    "partner": (OrgKind.PARTNER, "Demo Partner", "Bob", "bob@demo-partner.example"),
    "ops": (OrgKind.OPS, "Demo Platform", "Olga", "olga@demo-ops.example"),
}


@app.command()
def demo(
    api_url: Annotated[
        str | None, typer.Option(help="defaults to http://API_HOST:API_PORT")
    ] = None,
) -> None:
    """Create a demo creditor, partner and ops user (each with a portal password and an API
    key), submit a case that can move, and print how to sign in and what to do next."""
    settings = get_settings()
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    suffix = uuid.uuid4().hex[:6]

    async def make_accounts(session: accounts.AsyncSession) -> dict[str, str]:
        made: dict[str, str] = {}
        for role, (kind, org_name, person, email) in DEMO_ACCOUNTS.items():
            found = await passwords.user_by_email(session=session, email=email)
            if found is None:
                org = await accounts.create_org(
                    session=session,
                    kind=kind,
                    name=org_name,
                    country="DK",
                    timezone="Europe/Copenhagen",
                )
                user = await accounts.create_user(
                    session=session, org_id=org.id, email=email, name=person
                )
                await passwords.set_password(
                    session=session, user_id=user.id, password=DEMO_PASSWORD
                )
                user_id, org_id = user.id, org.id
            else:  # a second demo reuses the accounts (and leaves their passwords alone)
                user_id = found[0]
                principal = await passwords.principal_of_user(session=session, user_id=user_id)
                org_id = principal.org_id
            _, key = await accounts.create_key(session=session, user_id=user_id)
            made |= {role: str(org_id), f"{role}_email": email, f"{role}_key": key}
        return made

    made = _with_session(make_accounts)
    body = {
        "creditorReference": f"DEMO-{suffix}",
        "currencyCode": "DKK",
        "amountToRecover": "12500.00",
        "date": "2026-09-01",
        "dueDate": "2026-10-01",
        "claimDescription": "Unpaid invoice 2026-0917 for consulting services.",
        "debtor": {
            "type": "Company",
            "name": "Nordisk Tømrer ApS",
            "contactPerson": "Jens Nordisk",
            "email": "jens@nordisk-tomrer.example",
            "address": "Tømrervej 12",
            "zipCode": "8000",
            "city": "Aarhus",
            "countryAlpha2": "DK",
        },
    }
    try:
        response = httpx.post(
            f"{base}/api/cases",
            json=body,
            headers={"Authorization": f"Bearer {made['creditor_key']}", "Idempotency-Key": suffix},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        typer.echo(
            f"error: the API at {base} is not reachable ({exc}); start it with `make run`", err=True
        )
        raise typer.Exit(1) from exc
    if response.status_code != 201:
        typer.echo(
            f"error: creating the demo case failed: {response.status_code} {response.text}",
            err=True,
        )
        raise typer.Exit(1)
    case = response.json()
    portal = settings.portal_base_url.rstrip("/")
    key = made["creditor_key"]
    typer.echo(
        f"""Demo case {case["caseId"]}  {case["caseNumber"]}  status {case["status"]}{
            " · " + case["subStatus"] if case.get("subStatus") else ""
        }

Sign in to the portal at {portal}/sign-in as
  creditor  {made["creditor_email"]}  password {DEMO_PASSWORD}
  partner   {made["partner_email"]}  password {DEMO_PASSWORD}
  ops       {made["ops_email"]}  password {DEMO_PASSWORD}

Move the case on: as the creditor, open Tasks and solve Sign Contract and Assign Bank Account
(the case is then Validated); as ops, assign it to Demo Partner; as the partner,
open Review New Case and accept it (In Collection).

The same through the API, with the API keys
  creditor {key}
  partner {made["partner_key"]}
  ops {made["ops_key"]}
  curl -H 'Authorization: Bearer {key}' {base}/api/tasks
  curl -X POST -H 'Authorization: Bearer {key}' {base}/api/account/contract/sign
Find its workflow:
  .venv/bin/temporal workflow list --address {settings.temporal_address} \\
      --query "CaseStatus='Created' AND CreditorId='{made["creditor"]}'"
  {settings.workflow_ui_url(case_workflow_id(uuid.UUID(case["caseId"])))}
API docs: {base}/docs"""
    )


if __name__ == "__main__":
    app()
