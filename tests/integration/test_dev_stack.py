"""`make run`'s stack end to end: real processes, real ports, data kept across restarts."""

from __future__ import annotations

import base64
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import ui_codec_endpoint, with_dev_secrets
from settings import Settings
from tests.support import TEST_PAYLOAD_KEYS, bundled_binary

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
        "TEMPORAL_UI_PORT": str(_free_port()),
        "API_PORT": str(_free_port()),
        "MAIL_SINK_PORT": str(_free_port()),
        "API_METRICS_PORT": str(_free_port()),
        "WORKER_METRICS_PORT": str(_free_port()),
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'caseloop.db'}",
        "TEMPORAL_TASK_QUEUE": "caseloop-stack-test",
    }


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.api = f"http://127.0.0.1:{env['API_PORT']}"
        # A file, not a pipe: nobody reads a pipe while the stack runs, and a full pipe would
        # block every process writing to it.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the stack)
        self.process = subprocess.Popen(
            [str(BIN / "caseloop"), "dev"],
            env=env,
            start_new_session=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self, seconds: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.api}/api/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not healthy within {seconds}s:\n{self.output()}")

    def wait_worker_polling(self, seconds: float = 60) -> dict[str, Any]:
        """The worker's ``/healthz`` once it reports polling: the API answers before the
        worker has polled both task queue types, and until then ``/healthz`` says 503."""
        url = f"http://127.0.0.1:{self.env['WORKER_METRICS_PORT']}/healthz"
        started = time.monotonic()
        last: Any = None
        while time.monotonic() - started < seconds:
            assert self.process.poll() is None, self.output()
            try:
                answer = httpx.get(url, timeout=2)
                last = answer.json()
                if answer.status_code == 200:
                    return dict(last)
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.5)
        raise AssertionError(f"worker not polling within {seconds}s: {last}\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def output(self) -> str:
        """Everything the stack printed (stopping it first, so the log is complete)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.seek(0)
        return self.log.read()[-20_000:]


@pytest.fixture
def stack(stack_env: dict[str, str]) -> Iterator[Stack]:
    running = Stack(stack_env)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dev_stack_serves_api_ui_and_demo_and_keeps_data(
    stack: Stack, stack_env: dict[str, str]
) -> None:
    assert stack.wait_healthy() < 60
    ui = httpx.get(f"http://127.0.0.1:{stack_env['TEMPORAL_UI_PORT']}/", timeout=5)
    assert ui.status_code == 200
    # The metrics and health endpoints on their ports (docs/operations.md, "Metrics and health").
    worker = f"http://127.0.0.1:{stack_env['WORKER_METRICS_PORT']}"
    assert stack.wait_worker_polling()["polling"] is True
    assert "caseloop_worker_polling 1.0" in httpx.get(f"{worker}/metrics", timeout=5).text
    assert httpx.get(f"{stack.api}/api/health/live", timeout=5).status_code == 200
    assert httpx.get(f"{stack.api}/api/health/ready", timeout=5).status_code == 200
    api_metrics = f"http://127.0.0.1:{stack_env['API_METRICS_PORT']}/metrics"
    assert 'route="/api/health"' in httpx.get(api_metrics, timeout=5).text
    assert httpx.get(f"{stack.api}/metrics", timeout=5).status_code == 404
    health = _run(
        [str(BIN / "caseloop"), "worker", "health"], {**stack_env, "METRICS_HOST": "127.0.0.1"}
    )
    assert health.startswith("ok: task queue 'caseloop-stack-test'")

    demo = _run([str(BIN / "caseloop"), "demo", "--api-url", stack.api], stack_env)
    case_id = demo.split("Demo case")[1].split()[0]
    creditor_key = demo.split("API keys")[1].split("creditor")[1].split()[0]
    headers = {"Authorization": f"Bearer {creditor_key}"}
    case = httpx.get(f"{stack.api}/api/cases/{case_id}", headers=headers, timeout=5)
    assert case.status_code == 200
    # It waits for what the demo says (the contract), not for data it lacks.
    assert (case.json()["status"], case.json()["subStatus"]) == (
        "Created",
        "Pending contract signing",
    )
    # Each demo user signs in to the portal with the password the demo printed.
    for role in ("creditor", "partner", "ops"):
        email, _, password = demo.split(f"\n  {role} ")[1].split("\n")[0].split()[:3]
        with httpx.Client(base_url=stack.api, timeout=5) as browser:
            form = browser.get("/portal/sign-in")
            token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
            signed_in = browser.post(
                "/portal/sign-in", data={"email": email, "password": password, "csrf_token": token}
            )
            assert signed_in.status_code == 303, (role, signed_in.text)
            cases = browser.get("/portal/cases")
            assert cases.status_code == 200
            assert (case_id in cases.text) is (role != "partner"), role
    # A second demo reuses the same sign-ins and makes another case.
    again = _run([str(BIN / "caseloop"), "demo", "--api-url", stack.api], stack_env)
    assert again.split("Demo case")[1].split()[0] != case_id
    assert demo.split("Sign in")[1].split("Move")[0] == again.split("Sign in")[1].split("Move")[0]

    listed = _run(
        [
            bundled_binary("temporal"),
            "workflow",
            "list",
            "--address",
            stack_env["TEMPORAL_ADDRESS"],
            "--query",
            "CaseStatus='Created'",
            "--output",
            "json",
        ],
        stack_env,
    )
    assert f"case-{case_id}" in {wf["execution"]["workflowId"] for wf in json.loads(listed)}

    # The stack's mail sink keeps what is sent to it, and `caseloop mail list` reads it there.
    with smtplib.SMTP("127.0.0.1", int(stack_env["MAIL_SINK_PORT"]), timeout=10) as smtp:
        smtp.sendmail(
            "no-reply@caseloop.localhost",
            ["alice@demo-creditor.example"],
            b"To: alice@demo-creditor.example\r\nSubject: sink check\r\n\r\nHello\r\n",
        )
    mails = _run([str(BIN / "caseloop"), "mail", "list"], stack_env)
    assert "alice@demo-creditor.example  sink check" in mails, mails

    assert stack.stop() == 0, stack.output()

    again = Stack(stack_env)
    try:
        again.wait_healthy()
        after = httpx.get(f"{again.api}/api/cases/{case_id}", headers=headers, timeout=5)
        assert after.status_code == 200, "the read model survives a restart"
        listed = _run(
            [
                bundled_binary("temporal"),
                "workflow",
                "list",
                "--address",
                stack_env["TEMPORAL_ADDRESS"],
                "--query",
                f"WorkflowId='case-{case_id}'",
                "--output",
                "json",
            ],
            stack_env,
        )
        assert json.loads(listed), "the workflow survives a restart"
    finally:
        assert again.stop() == 0, again.output()


def _show(stack_env: dict[str, str], workflow_id: str, *codec: str) -> tuple[str, Any]:
    """``temporal workflow show`` of a workflow: its detailed text and its JSON."""
    base = [bundled_binary("temporal"), "workflow", "show", "-w", workflow_id, *codec]
    base += ["--address", stack_env["TEMPORAL_ADDRESS"]]
    text = _run([*base, "--detailed"], stack_env)
    return text, json.loads(_run([*base, "--output", "json"], stack_env))


def _payload_texts(node: object) -> str:
    """Every payload's data in ``node``, decoded from base64 (a JSON payload's text)."""
    if isinstance(node, dict):
        return "\n".join(
            base64.b64decode(value).decode(errors="replace")
            if key == "data" and isinstance(value, str)
            else _payload_texts(value)
            for key, value in node.items()
        )
    if isinstance(node, list):
        return "\n".join(_payload_texts(item) for item in node)
    return ""


def test_dev_stack_stores_cases_encrypted_and_its_web_ui_decodes_them(
    stack: Stack, stack_env: dict[str, str]
) -> None:
    stack.wait_healthy()
    demo = _run([str(BIN / "caseloop"), "demo", "--api-url", stack.api], stack_env)
    case_id = demo.split("Demo case")[1].split()[0]
    debtor = "Nordisk Tømrer ApS"  # the demo case's debtor

    text, shown = _show(stack_env, f"case-{case_id}")
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in text  # base64 of the encoding binary/encrypted
    assert debtor not in text, "Temporal shows the debtor name in clear"
    assert debtor not in _payload_texts(shown), "Temporal holds the debtor name in clear"

    # The Web UI is told the codec endpoint: the API's, at its secret path.
    ui = f"http://localhost:{stack_env['TEMPORAL_UI_PORT']}"
    endpoint = httpx.get(f"{ui}/api/v1/settings", timeout=5).json()["Codec"]["Endpoint"]
    assert endpoint.startswith(f"{stack.api}/api/ops/codec/ui/"), endpoint
    token = (Path(stack_env["VAR_DIR"]) / "codec-ui-token").read_text().strip()
    assert endpoint.endswith(token)
    # What the UI's browser does with a case's payloads: a CORS preflight, then /decode.
    started = shown["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
    browser = {"Origin": ui, "X-Namespace": "default"}
    preflight = httpx.options(
        f"{endpoint}/decode",
        headers={
            "Origin": ui,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
        timeout=5,
    )
    assert preflight.status_code == 200, preflight.text
    decoded = httpx.post(f"{endpoint}/decode", json=started, headers=browser, timeout=5)
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == ui
    assert debtor in base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()

    # An ops engineer's CLI decodes with an ops key; the dev secrets are the user's alone.
    caseloop = str(BIN / "caseloop")
    org_flags = ["--kind", "ops", "--name", "Ops", "--country", "DK", "--timezone", "UTC"]
    org = _run([caseloop, "org", "create", *org_flags], stack_env).strip()
    user = _run([caseloop, "user", "create", "--org", org, "--email", "ops@ops.example"], stack_env)
    key = _run([caseloop, "key", "create", "--user", user.strip()], stack_env).strip()
    text, _ = _show(
        stack_env,
        f"case-{case_id}",
        "--codec-endpoint",
        f"{stack.api}/api/ops/codec",
        "--codec-auth",
        f"Bearer {key}",
    )
    assert debtor in text
    for name in ("payload-keys", "codec-ui-token"):
        assert (Path(stack_env["VAR_DIR"]) / name).stat().st_mode & 0o777 == 0o600
    assert stack.stop() == 0, stack.output()
    assert token not in stack.output(), "the access log hides the Web UI's token"


def test_dev_secrets_are_generated_once_and_kept_and_never_replace_configured_ones(
    tmp_path: Path,
) -> None:
    plain = Settings(var_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    first, env = with_dev_secrets(plain)
    again, env_again = with_dev_secrets(plain)
    assert env == env_again, "a second run reads the same key: old histories stay readable"
    assert first.payload_keys is not None and again.payload_keys is not None
    assert first.payload_keys.get_secret_value() == env["PAYLOAD_KEYS"]
    assert json.loads(env["CODEC_CORS_ORIGINS"]) == [
        "http://localhost:8233",
        "http://127.0.0.1:8233",
    ]
    assert first.portal_secret_key is not None
    assert first.portal_secret_key.get_secret_value() == env["PORTAL_SECRET_KEY"]
    assert (tmp_path / "portal-secret-key").stat().st_mode & 0o777 == 0o600
    assert ui_codec_endpoint(first) == (
        f"http://127.0.0.1:8000/api/ops/codec/ui/{env['CODEC_UI_TOKEN']}"
    )
    configured = Settings(
        var_dir=tmp_path / "other",
        payload_keys=TEST_PAYLOAD_KEYS,
        codec_ui_token="t" * 32,
        codec_cors_origins=["https://temporal.example"],
        portal_secret_key="p" * 32,
        _env_file=None,  # type: ignore[call-arg]
    )
    kept, extra = with_dev_secrets(configured)
    assert extra == {}
    assert kept == configured
    assert not (tmp_path / "other").exists()
