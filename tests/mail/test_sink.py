"""The local mail sink keeps each message as a file; `caseloop mail list/show` read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

import cli
from devstack import with_mail_sink
from mail.sink import list_messages, start_sink
from settings import Settings
from tests.mail.conftest import LINK, mail_activities, partner_wrote


async def test_the_sink_keeps_each_message_and_caseloop_mail_lists_and_shows_them(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(var_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    server = await start_sink(settings.mail_directory)
    port = server.sockets[0].getsockname()[1]
    async with server:
        activities = mail_activities(sessions, port)
        await ActivityEnvironment().run(activities.send_email, partner_wrote("alice@c.example"))
        later = partner_wrote("carl@c.example", key="partner-wrote:case-2:msg-1")
        later = later.model_copy(update={"subject": "A second e-mail"})
        await ActivityEnvironment().run(activities.send_email, later)
    files = sorted(settings.mail_directory.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"], "one file per message, nothing partial"
    newest, oldest = list_messages(settings.mail_directory)
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    runner = CliRunner()

    listed = runner.invoke(cli.app, ["mail", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f"Carl <carl@c.example>  A second e-mail  {newest.id}")
    assert lines[1].endswith(
        f"Alice <alice@c.example>  Nordic Collect wrote in case CL-1001  {oldest.id}"
    ), "newest first: when, to, subject, id"
    assert lines[1][:19] == oldest.received.strftime("%Y-%m-%d %H:%M:%S")

    shown = runner.invoke(cli.app, ["mail", "show", oldest.id])
    assert shown.exit_code == 0, shown.output
    assert "Message-ID: <" in shown.output and "List-Unsubscribe:" in shown.output
    assert "Message 5 <b>" in shown.output and f"Read and answer: {LINK}" in shown.output
    assert "<html" not in shown.output

    as_html = runner.invoke(cli.app, ["mail", "show", oldest.id, "--html"])
    assert as_html.exit_code == 0, as_html.output
    assert f'href="{LINK}"' in as_html.output and "Message 5 &lt;b&gt;" in as_html.output

    unknown = runner.invoke(cli.app, ["mail", "show", "../../etc"])
    assert unknown.exit_code == 2 and "no e-mail with id" in unknown.output


def test_caseloop_mail_list_says_when_there_are_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(var_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    listed = CliRunner().invoke(cli.app, ["mail", "list"])
    assert listed.exit_code == 0 and f"no e-mails in {tmp_path / 'mail'}" in listed.output


def test_the_dev_stack_points_smtp_at_its_sink_unless_a_server_is_configured(
    tmp_path: Path,
) -> None:
    plain = Settings(var_dir=tmp_path, mail_sink_port=2525, _env_file=None)  # type: ignore[call-arg]
    dev, env = with_mail_sink(plain)
    assert env == {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525", "SMTP_SECURITY": "none"}
    assert (dev.smtp_host, dev.smtp_port, dev.smtp_security) == ("127.0.0.1", 2525, "none")
    configured = Settings(smtp_host="smtp.example.com", _env_file=None)  # type: ignore[call-arg]
    assert with_mail_sink(configured) == (configured, {})
