"""``make run``: the Temporal dev server with its UI, migrations, the worker, the API and a mail
sink.

All of them run as child processes of this one; Ctrl-C (or SIGTERM) stops them in reverse order and
waits for each. Data lives under ``var/`` (Temporal's SQLite file and, by default, the read model),
so a second run carries on where the first stopped. Unless SMTP_HOST is set, e-mail goes to a
local sink (mail/sink.py) that keeps every message under ``var/mail/``.

Payloads are encrypted as in production. Unless PAYLOAD_KEYS is set, a dev key is generated into
``var/payload-keys`` (kept, so old histories stay readable); the Web UI decodes through the API's
codec endpoint at a secret path (CODEC_UI_TOKEN, else generated into ``var/codec-ui-token``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from api.routes.codec import UI_PREFIX
from codec import new_key_entry
from domain.search_attributes import dev_server_flags
from settings import Settings
from store.migrate import upgrade
from temporal_client import connect

STOP_GRACE_SECONDS = 15


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _start(name: str, argv: list[str]) -> tuple[str, subprocess.Popen[bytes]]:
    # A new session per child: the terminal's Ctrl-C reaches only us, and we stop the children in
    # order (API first, Temporal last) instead of all at once.
    return name, subprocess.Popen(argv, start_new_session=True)


def _stop(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for name, process in reversed(children):
        if process.poll() is None:
            print(f"stopping {name} ...", flush=True)
            process.send_signal(signal.SIGINT if name == "temporal" else signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _dev_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``, generated (readable by this user only) on first use."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value


def with_dev_secrets(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """``settings`` completed with the dev stack's payload key, codec UI token, portal secret
    key and the UI's origins, where not set; and the same as environment variables for the children."""
    env: dict[str, str] = {}
    update: dict[str, object] = {}
    var = settings.var_dir
    if settings.payload_keys is None and settings.payload_encryption:
        env["PAYLOAD_KEYS"] = _dev_secret(var / "payload-keys", new_key_entry)
        update["payload_keys"] = SecretStr(env["PAYLOAD_KEYS"])
    if settings.codec_ui_token is None:
        env["CODEC_UI_TOKEN"] = _dev_secret(
            var / "codec-ui-token", lambda: secrets.token_urlsafe(32)
        )
        update["codec_ui_token"] = SecretStr(env["CODEC_UI_TOKEN"])
    if settings.portal_secret_key is None:
        env["PORTAL_SECRET_KEY"] = _dev_secret(
            var / "portal-secret-key", lambda: secrets.token_urlsafe(32)
        )
        update["portal_secret_key"] = SecretStr(env["PORTAL_SECRET_KEY"])
    if not settings.codec_cors_origins:
        port = settings.temporal_ui_port
        update["codec_cors_origins"] = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
        env["CODEC_CORS_ORIGINS"] = json.dumps(update["codec_cors_origins"])
    return settings.model_copy(update=update), env


def with_mail_sink(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """``settings`` pointing SMTP at the local sink (unless SMTP_HOST is set), and the same as
    environment variables for the children."""
    if settings.smtp_host:
        return settings, {}
    env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(settings.mail_sink_port),
        "SMTP_SECURITY": "none",
    }
    update = {"smtp_host": "127.0.0.1", "smtp_port": settings.mail_sink_port}
    return settings.model_copy(update={**update, "smtp_security": "none"}), env


def ui_codec_endpoint(settings: Settings) -> str:
    """The codec endpoint the dev server's Web UI calls from the browser."""
    assert settings.codec_ui_token is not None
    host = _local(settings.api_host)
    token = settings.codec_ui_token.get_secret_value()
    return f"http://{host}:{settings.api_port}{UI_PREFIX}{token}"


def _wait_for_worker(settings: Settings, seconds: float, keep_waiting: Callable[[], bool]) -> bool:
    """Whether the worker reports polling (its /healthz) within ``seconds``, while
    ``keep_waiting()``; True at once when it serves no health (WORKER_METRICS_PORT=0)."""
    if not settings.worker_metrics_port:
        return True
    url = f"http://{_local(settings.metrics_host)}:{settings.worker_metrics_port}/healthz"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and keep_waiting():
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _local(host: str) -> str:
    """Where this machine reaches a server bound to ``host``."""
    return host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"


async def _wait_for_temporal(settings: Settings, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client = await connect(settings)
            await client.service_client.check_health()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def run_dev_stack(settings: Settings) -> int:
    """Run everything until interrupted; returns the exit code."""
    var = settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    settings, secret_env = with_dev_secrets(settings)
    settings, mail_env = with_mail_sink(settings)
    secret_env |= mail_env
    host, _, port = settings.temporal_address.rpartition(":")
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        children.append(
            _start(
                "temporal",
                [
                    _bin("temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    host or "127.0.0.1",
                    "--port",
                    port or "7233",
                    "--ui-port",
                    str(settings.temporal_ui_port),
                    "--namespace",
                    settings.temporal_namespace,
                    "--db-filename",
                    str(var / "temporal.db"),
                    "--log-level",
                    "error",
                    "--ui-codec-endpoint",
                    ui_codec_endpoint(settings),
                    *dev_server_flags(),
                ],
            )
        )
        if mail_env:
            children.append(
                _start(
                    "mail sink",
                    [
                        sys.executable,
                        "-m",
                        "mail.sink",
                        "--dir",
                        str(settings.mail_directory),
                        "--port",
                        str(settings.mail_sink_port),
                    ],
                )
            )
        asyncio.run(_wait_for_temporal(settings, 60))
        upgrade(settings.database_url)
        env = {**os.environ, **secret_env, "PYTHONUNBUFFERED": "1"}
        children.append(
            (
                "worker",
                subprocess.Popen([sys.executable, "-m", "worker"], env=env, start_new_session=True),
            )
        )
        children.append(
            (
                "api",
                subprocess.Popen(
                    [sys.executable, "-m", "api.server"],
                    env={
                        **env,
                        "API_HOST": settings.api_host,
                        "API_PORT": str(settings.api_port),
                    },
                    start_new_session=True,
                ),
            )
        )

        # The banner once the worker polls (the API starts meanwhile): what it lists works.
        def keep_waiting() -> bool:
            return not stop_requested and all(p.poll() is None for _, p in children)

        if not _wait_for_worker(settings, 60, keep_waiting):
            print("the worker does not report polling yet: .venv/bin/caseloop worker health")
        metrics = _local(settings.metrics_host)
        metrics_line = (
            f"API http://{metrics}:{settings.api_metrics_port}/metrics, worker "
            f"http://{metrics}:{settings.worker_metrics_port}/metrics and /healthz"
        )
        mail_line = (
            f"kept in {settings.mail_directory}: .venv/bin/caseloop mail list / mail show ID"
            if mail_env
            else f"sent through {settings.smtp_host}:{settings.smtp_port}"
        )
        print(
            f"""
caseloop is running (Ctrl-C stops everything):
  Portal         {settings.portal_base_url}  (sign-ins: .venv/bin/caseloop demo)
  API            http://{settings.api_host}:{settings.api_port}/api/health
  API docs       http://{settings.api_host}:{settings.api_port}/docs
  Temporal UI    http://localhost:{settings.temporal_ui_port}  (payloads decoded by the API)
  Temporal gRPC  {settings.temporal_address}  (payloads encrypted: decode with
                 --codec-endpoint http://{settings.api_host}:{settings.api_port}/api/ops/codec --codec-auth 'Bearer <ops key>')
  Database       {settings.database_url}
  Metrics        {metrics_line}
  E-mails        {mail_line}
Try: .venv/bin/caseloop demo  (prints a creditor, a partner and an ops sign-in)
""",
            flush=True,
        )
        while not stop_requested:
            for name, process in children:
                if process.poll() is not None:
                    print(
                        f"{name} exited with code {process.returncode}; stopping the rest",
                        flush=True,
                    )
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop(children)
