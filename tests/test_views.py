"""Ledger listings at 80 columns: ids, recipients, addresses and reasons stay legible."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json

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
    assert "Yours faithfully" in doc["letter"]["body"] and doc["letter"]["headers"]["Subject"]


def test_show_an_unknown_letter_is_a_one_line_error(invoke, ledger):
    result = invoke("log", "show", "99")
    assert result.exit_code == 2
    assert "no letter #99" in result.stderr and "Traceback" not in result.output
