"""Ledger listings at 80 columns: ids, recipients, addresses and reasons stay legible."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REAL_SIGNER
from smtp_server import PASSWORD, make_smtp_server, smtp_server, test_ca, write_campaign  # noqa: F401

LONG_REASON = (
    "550 5.1.1 <mission1@example.org>: Recipient address rejected: User unknown in virtual mailbox "
    "table; please check the address and try again (this text is long on purpose)"
)


@pytest.fixture
def terminal80(monkeypatch: pytest.MonkeyPatch) -> None:
    """A person at an 80-column terminal."""
    from letterkit.cli import _output

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)


@pytest.fixture
def ledger(invoke, tmp_path, make_smtp_server, monkeypatch):  # type: ignore[no-untyped-def]
    """Three letters sent, one refused with a long reason."""
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=3, hand=False)))
    server = make_smtp_server(reject_data={"mission1@example.org"})
    server.handler.reject_message = LONG_REASON
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    return server


def _lines_fit(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_outbox_at_80_columns_keeps_ids_and_whole_reasons(invoke, ledger, terminal80):
    result = invoke("outbox")
    assert result.exit_code == 0, result.output
    out = result.stdout
    _lines_fit(out)
    assert "#1 failed" in out and "kz-1" in out and "mission1@example.org, osce@example.net" in out
    assert " ".join(LONG_REASON.split()[:6]) in " ".join(out.split())
    assert "(this text is long on purpose)" in " ".join(out.split())


def test_log_at_80_columns_keeps_ids_recipients_and_addresses(invoke, ledger, terminal80):
    result = invoke("log")
    assert result.exit_code == 0, result.output
    _lines_fit(result.stdout)
    for n in (2, 3):
        assert f"#{n} sent" in result.stdout and f"kz-{n}" in result.stdout
        assert f"mission{n}@example.org" in result.stdout


def test_show_tells_the_whole_story_of_one_letter(invoke, ledger, terminal80):
    result = invoke("outbox", "show", "1")
    assert result.exit_code == 0, result.output
    _lines_fit(result.stdout)
    text = " ".join(result.stdout.split())
    parts = ("#1 (failed)", "kz-1", "A. Person <a.person@home.internal>", "(this text is long on purpose)")
    assert all(part in text for part in parts) and "│ " in result.stdout
    doc = json.loads(invoke("log", "show", "2", "--json").stdout)
    assert doc["version"] == 1 and doc["kind"] == "letter" and doc["letter"]["status"] == "sent"
    shown = invoke("log", "show", "2").stdout
    _lines_fit(shown)
    name = Path(doc["letter"]["path"]).name
    assert len(name) > 40 and any(line.strip() == name for line in shown.splitlines())  # whole, on its line
    assert "Yours faithfully" in doc["letter"]["body"] and doc["letter"]["headers"]["Subject"]


def test_show_an_unknown_letter_is_a_one_line_error(invoke, ledger):
    result = invoke("log", "show", "99")
    assert result.exit_code == 2
    assert "no letter #99" in result.stderr and "Traceback" not in result.output


# --- progress: a line per letter off a terminal, the rate-limit wait on one --------------------


def test_send_off_a_terminal_prints_one_progress_line_per_letter(
    invoke, tmp_path, make_smtp_server, monkeypatch
):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=3, hand=False)))
    server = make_smtp_server(reject_data={"mission1@example.org"})
    server.handler.reject_message = LONG_REASON
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # progress is for people: stderr only
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1/3] failed #1 kz-1 <mission1@example.org>, <osce@example.net>: ")
    assert lines[0].endswith("(this text is long on purpose)")  # the whole reason, on one line
    assert lines[1:] == [
        "[2/3] sent #2 kz-2 <mission2@example.org>, <osce@example.net>",
        "[3/3] sent #3 kz-3 <mission3@example.org>, <osce@example.net>",
    ]


def test_flush_off_a_terminal_prints_one_progress_line_per_letter(invoke, tmp_path, smtp_server, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=2, hand=False)))
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0  # no account: queued
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("outbox", "flush", "--yes", "--rate", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert progress == [
        "[1/2] sent #1 kz-1 <mission1@example.org>, <osce@example.net>",
        "[2/2] sent #2 kz-2 <mission2@example.org>, <osce@example.net>",
    ]
    assert smtp_server.count() == 2


def test_deliver_tells_how_long_the_rate_limit_holds_a_letter(tmp_path, smtp_server, monkeypatch):
    """deliver(on_wait=...) hears of each pause before it happens (no real sleeping here)."""
    import letterkit
    from letterkit import Outbox
    from letterkit.transport import SmtpTransport

    campaign = letterkit.load_campaign(str(write_campaign(tmp_path / "camp", missions=3, hand=False)))
    signer = letterkit.Signer(name="A. Person", email="a.person@home.internal", city="Leeds", country="UK")
    box = Outbox()  # the data dir, in tmp_path (conftest)
    account = smtp_server.account()
    queued = box.queue(letterkit.compose_all(campaign, "protest", signer), account=account)
    waits: list[float] = []
    slept: list[float] = []
    transport = SmtpTransport(account, lambda: PASSWORD)
    try:
        report = letterkit.deliver(
            box, transport, batch=queued.batch, rate=6, sleep=slept.append, on_wait=waits.append
        )
    finally:
        transport.close()
        box.close()
    assert report.sent == 3
    assert waits == slept and len(waits) == 2  # before the 2nd and 3rd letter, not the first
    assert all(9 < w <= 10 for w in waits)  # 6 a minute: ten seconds apart


def test_the_bar_says_it_waits_for_the_rate_limit_and_until_when():
    """On a terminal the bar names the pause and its end (the clock seam: 10:00:00 in tests)."""
    from io import StringIO

    from rich.console import Console

    from letterkit.cli._views import Progress, wait_text
    from letterkit.outbox import Row

    screen = StringIO()
    console = Console(file=screen, width=80, force_terminal=True, color_system=None)
    row = Row(*([0, "k", "c", "t", "en", "kz-osce-delegation", "n", "s", "email", "sent", "subj"]),
              ("kzosce@kazakhstan.at",), "", "", "", "", {}, "", "", 1)  # fmt: skip
    progress = Progress("Sending", bar=True, console=console)
    progress(1, 3, row)
    progress.waiting(125.4)
    progress.stop()
    assert wait_text(125.4) == "waiting for rate limit until 10:02:05"
    assert "Sending: waiting for rate limit until 10:02:05" in screen.getvalue()


def test_a_terminal_send_shows_the_wait_on_its_bar(invoke, tmp_path, make_smtp_server, monkeypatch):
    """End to end on a (pretend) terminal with a fast rate: a fraction of a second in all."""
    from io import StringIO

    from rich.console import Console

    from letterkit.cli import _output

    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=2, hand=False)))
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    screen = StringIO()
    console = Console(file=screen, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(_output, "interactive", lambda: True)
    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)
    monkeypatch.setattr(_output, "err", lambda: console)
    # the run's clock stands still (LETTERKIT_NOW), so the second letter always has to wait its
    # 0.1 s however slow a loaded machine sends the first
    from letterkit import clock

    monkeypatch.setattr(clock, "running", lambda: clock.now)
    result = invoke("send", "protest", "--yes", "--rate", "600/min", *REAL_SIGNER)
    assert result.exit_code == 0, result.output
    assert "Sending: waiting for rate limit until 10:00:00" in screen.getvalue()
    assert "[1/2]" not in screen.getvalue() + result.stderr  # a bar, not log lines


# --- other listings at 80 columns ---------------------------------------------------------------


def test_preview_footer_notes_are_whole_at_80_columns(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    campaign = write_campaign(tmp_path / "camp", missions=1, hand=False, checked="2010-09")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(campaign))
    signer = ["--name", "A", "--email", "a@example.org", "--city", "Leeds", "--country", "UK"]
    result = invoke("preview", "protest", *signer, "--to", "kz-1")
    assert result.exit_code == 0, result.output
    _lines_fit(result.stdout)
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "contact data last checked 2010-09: verify the address before sending" in text
    assert "verbatim template text — a personal --note makes it count for more" in text


def test_contacts_and_accounts_at_80_columns_keep_long_ids_whole(invoke, tmp_path, terminal80, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1)))
    long_id = "kz-permanent-mission-united-nations-geneva"
    long_name = "Permanent Mission of the Republic of Kazakhstan to the United Nations Office at Geneva"
    added = invoke("contacts", "add", "--id", long_id, "--name", long_name, "--group", "kazakhstan",
                   "--email", "geneva@example.org")  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = invoke("contacts")
    assert listed.exit_code == 0, listed.output
    _lines_fit(listed.stdout)
    assert f"{long_id}  checked 2026-11-26" in listed.stdout.splitlines()  # whole, on its own line
    assert long_name in " ".join(listed.stdout.split()) and "kz-1  checked" in listed.stdout
    host, user = "smtp.mailbox-provider.example.net", "very.long.username@mailbox-provider.example.net"
    for name, extra in (("personal-mailbox", []), ("work", ["--default"])):
        args = ["account", "add", name, "--host", host, "--username", user, "--from", user, *extra]
        assert invoke(*args).exit_code == 0
    accounts = invoke("account", "list")
    assert accounts.exit_code == 0, accounts.output
    _lines_fit(accounts.stdout)
    out = accounts.stdout
    assert "personal-mailbox\n" in out and "work  (default)" in out
    assert f"{host}:587 (starttls)" in out and out.count(user) == 4


def test_delivery_report_at_80_columns_keeps_the_whole_reason(
    invoke, tmp_path, make_smtp_server, monkeypatch
):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=2, hand=False)))
    monkeypatch.setenv("COLUMNS", "80")
    server = make_smtp_server(reject_data={"mission1@example.org"})
    server.handler.reject_message = LONG_REASON
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    report = result.stderr[result.stderr.index("Delivery") : result.stderr.index("1 sent, ")]
    _lines_fit(report)
    assert "#1 failed   kz-1" in report and "mission1@example.org, osce@example.net" in report
    assert "(this text is long on purpose)" in " ".join(report.split())


def test_export_off_a_terminal_prints_a_line_per_file(invoke, tmp_path):
    result = invoke("export", "protest", "--format", "pdf", "--out", str(tmp_path / "out"), *REAL_SIGNER)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert (
        len(lines) == 2 and lines[0].startswith("[1/2] rendered ") and lines[1].startswith("[2/2] rendered ")
    )
    assert "kz-osce-delegation" in result.stderr and "osce-secretariat" in result.stderr
    assert result.stdout == ""
