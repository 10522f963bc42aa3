"""First run you can trust: nothing signed with placeholder details reaches a real address."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json

import pytest
from conftest import REAL_SIGNER, SIGNER
from smtp_server import PASSWORD, make_smtp_server, smtp_server, test_ca, write_campaign  # noqa: F401

import letterkit
from letterkit.placeholders import is_reserved_address, placeholder_reason

REMOTE = ["account", "add", "remote", "--host", "mail.invalid", "--from", "me@home.internal", "--no-login"]


@pytest.mark.parametrize(
    "address",
    [
        "you@example.org",
        "a@EXAMPLE.COM",
        "x@mail.example.net",
        "y@host.test",
        "z@a.example",
        "q@b.invalid",
        "w@c.localhost",
        "v@example.org.",
    ],
)
def test_reserved_domains(address: str) -> None:
    assert is_reserved_address(address)


@pytest.mark.parametrize(
    "address", ["a.person@home.internal", "x@example.org.uk", "y@myexample.org", "z@posteo.de"]
)
def test_real_domains(address: str) -> None:
    assert not is_reserved_address(address)


def test_placeholder_words() -> None:
    assert "placeholder 'Your Name'" in placeholder_reason(name="Your Name", email="me@home.internal")
    assert placeholder_reason(name="K. Person", email="me@home.internal", city="Leeds") == ""


def _queue_placeholder_letter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A letter signed you@example.org, queued as an older letterkit (or a script) did."""
    campaign = letterkit.load_campaign(write_campaign(tmp_path / "camp", missions=1, hand=False))
    signer = letterkit.Signer(name="Your Name", email="you@example.org", city="Your City")
    with letterkit.Outbox() as box:
        result = box.queue(letterkit.compose(campaign, "protest", signer), account=None)
    assert result.queued == 1


def test_flush_refuses_a_placeholder_letter_for_a_real_server(invoke, tmp_path):
    _queue_placeholder_letter(tmp_path)
    assert invoke(*REMOTE).exit_code == 0
    result = invoke("outbox", "flush", "--yes")
    assert result.exit_code == 2, result.output
    assert "placeholder details" in result.stderr and "letterkit outbox drop 1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    (row,) = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert row["status"] == "queued"  # kept


def test_a_placeholder_letter_may_go_to_a_server_on_this_machine(invoke, tmp_path, smtp_server):
    _queue_placeholder_letter(tmp_path)
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("outbox", "flush", "--yes")
    assert result.exit_code == 0, result.output
    assert smtp_server.count() == 1


def test_send_with_placeholder_details_and_a_real_server_queues_nothing(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=2)))
    assert invoke(*REMOTE).exit_code == 0
    result = invoke("send", "protest", "--yes", *SIGNER)
    assert result.exit_code == 0, result.output
    assert "Nothing was queued" in result.stderr
    assert json.loads(invoke("log", "--json").stdout)["letters"] == []


def test_send_json_says_why_nothing_was_queued(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1, hand=False)))
    result = invoke("send", "protest", "--yes", "--json", *SIGNER)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and "reserved example domain" in doc["placeholder"]
    real = json.loads(invoke("send", "protest", "--yes", "--json", *REAL_SIGNER).stdout)
    assert real["dry_run"] is False and len(real["queued"]) == 1


def test_a_letter_that_waited_is_dated_when_it_leaves(invoke, tmp_path, smtp_server, monkeypatch):
    """Queued on 26 November (no account yet), sent on 3 December: Date says 3 December."""
    import email.utils

    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1, hand=False)))
    monkeypatch.setenv("LETTERKIT_NOW", "2026-11-26T10:00:00+00:00")
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    monkeypatch.setenv("LETTERKIT_NOW", "2026-12-03T08:15:00+00:00")
    result = invoke("outbox", "flush", "--yes")
    assert result.exit_code == 0, result.output
    (m,) = smtp_server.messages
    assert email.utils.parsedate_to_datetime(m.message["Date"]).isoformat() == "2026-12-03T08:15:00+00:00"
    sent_copy = next((tmp_path / "data" / "letterkit" / "sent" / "cur").iterdir()).read_bytes()
    assert b"3 Dec 2026 08:15:00" in sent_copy


def test_a_letter_sent_at_once_keeps_its_date(invoke, tmp_path, smtp_server, monkeypatch):
    import email.utils

    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1, hand=False)))
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0
    (m,) = smtp_server.messages
    assert email.utils.parsedate_to_datetime(m.message["Date"]).isoformat() == "2026-11-26T10:00:00+00:00"


OTHER = ["--name", "K. Person", "--email", "k.person@home.internal", "--city", "Bristol"]


def _sent_once_by_a(invoke, tmp_path, smtp_server, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=2, hand=False)))
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    assert invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER).exit_code == 0
    return smtp_server.count()


def test_another_signer_is_skipped_under_yes(invoke, tmp_path, smtp_server, monkeypatch):
    """Changing --name/--email does not send the same template to the same recipient again."""
    first = _sent_once_by_a(invoke, tmp_path, smtp_server, monkeypatch)
    result = invoke("send", "protest", "--yes", "--rate", "0", "--json", *OTHER)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["sent"] == [] and len(doc["skipped"]) == first
    assert all("another signer" in s["reason"] and "A. Person" in s["reason"] for s in doc["skipped"])
    assert smtp_server.count() == first
    again = invoke("send", "protest", "--yes", "--rate", "0", "--resend", *OTHER)
    assert again.exit_code == 0, again.output
    assert smtp_server.count() == 2 * first


def test_another_signer_is_asked_on_a_terminal(invoke, tmp_path, smtp_server, monkeypatch):
    from letterkit.cli import _output

    first = _sent_once_by_a(invoke, tmp_path, smtp_server, monkeypatch)
    monkeypatch.setattr(_output, "interactive", lambda: True)
    declined = invoke("send", "protest", "--rate", "0", *OTHER, input="n\n")
    assert "already got this letter from another signer" in declined.stderr
    assert smtp_server.count() == first
    accepted = invoke("send", "protest", "--rate", "0", *OTHER, input="y\ny\n")
    assert accepted.exit_code == 0, accepted.output
    assert smtp_server.count() == 2 * first


def test_prepared_files_are_named_by_letter_and_signer_and_never_overwritten(invoke, tmp_path, monkeypatch):
    """Two signers (or a --resend) prepare two sets of files; the ledger points at each one."""
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=0, hand=True)))
    first = json.loads(invoke("send", "protest", "--yes", "--json", "--to", "osce-hand", *REAL_SIGNER).stdout)
    second = json.loads(invoke("send", "protest", "--yes", "--json", "--to", "osce-hand", "--resend",
                               *REAL_SIGNER).stdout)  # fmt: skip
    (a,), (b,) = first["by_hand"], second["by_hand"]
    assert a["id"] != b["id"] and a["files"]["pdf"] != b["files"]["pdf"]
    for entry in (a, b):
        name = entry["files"]["pdf"].rsplit("/", 1)[1]
        assert name.startswith(f"{entry['id']:05d}-a-person-") and name.endswith(".pdf")
    rows = {r["id"]: r for r in json.loads(invoke("log", "--json").stdout)["letters"]}
    assert rows[a["id"]]["files"] == a["files"] and rows[b["id"]]["files"] == b["files"]
    from pathlib import Path

    assert all(Path(p).is_file() for e in (a, b) for p in e["files"].values())


def test_a_signer_on_the_command_line_is_a_whole_person(invoke, tmp_path, monkeypatch):
    """ "K. Person" given on the command line does not sign from the stored signer's Leeds."""
    assert invoke("signer", "set", "--name", "A. Person", "--email", "a.person@home.internal",
                  "--city", "Leeds", "--country", "UK").exit_code == 0  # fmt: skip
    result = invoke("preview", "protest", "--to", "osce-secretariat", "--name", "K. Person",
                    "--email", "k.person@home.internal")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "K. Person" in result.stdout and "Leeds" not in result.stdout and "UK" not in result.stdout
    stored = invoke("preview", "protest", "--to", "osce-secretariat")
    assert "A. Person" in stored.stdout and "Leeds" in stored.stdout


def test_a_template_that_prints_a_detail_not_given_stops(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1, hand=False)))
    assert invoke("signer", "set", "--name", "A. Person", "--city", "Leeds").exit_code == 0
    result = invoke("preview", "protest", "--name", "K. Person", "--email", "k.person@home.internal")
    assert result.exit_code == 2, result.output
    assert "signer's city, which was not given: add --city" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    ok = invoke("preview", "protest", "--name", "K. Person", "--city", "Bristol")
    assert ok.exit_code == 0, ok.output
    assert "Bristol" in ok.stdout and "Leeds" not in ok.stdout


def test_flush_shows_each_letter_as_it_will_leave_before_asking(invoke, tmp_path, smtp_server, monkeypatch):
    from letterkit.cli import _output

    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", missions=1, hand=False)))
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0  # queued: no account yet
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    monkeypatch.setattr(_output, "interactive", lambda: True)
    declined = invoke("outbox", "flush", input="n\n")
    err = declined.stderr
    assert "Signer:   A. Person <a.person@home.internal>" in err
    assert 'From:     "A. Person" <activist@example.org>' in err  # the account's own address
    assert 'Reply-To: "A. Person" <a.person@home.internal>' in err
    assert "│ I am A. Person of Leeds." in err and "more line(s) (--full shows the whole letter)" in err
    assert smtp_server.count() == 0  # declined: nothing sent
    full = invoke("outbox", "flush", "--full", input="n\n")
    assert "Yours faithfully" in full.stderr and "more line(s)" not in full.stderr


@pytest.mark.parametrize(
    ("value", "per_minute"), [('"30/min"', 30.0), ('"600/hour"', 10.0), ("12", 12.0), ("0", 0.0)]
)
def test_defaults_rate_reads_like_the_option(tmp_path, value, per_minute):
    from letterkit.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[defaults]\nrate = {value}\n", encoding="utf-8")
    assert load_config(path).rate == per_minute


@pytest.mark.parametrize("value", ['"fast"', "true", "-1", "nan", '"20/fortnight"'])
def test_a_bad_defaults_rate_names_the_file(invoke, tmp_path, value, monkeypatch):
    config = tmp_path / "config" / "letterkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"[defaults]\nrate = {value}\n", encoding="utf-8")
    result = invoke("send", "protest", "--dry-run", *REAL_SIGNER)
    assert result.exit_code == 2, result.output
    assert "[defaults]: rate" in result.stderr and "Traceback" not in result.output


def test_addresses_stay_lists_and_one_bad_letter_blocks_no_other(invoke, tmp_path, smtp_server, monkeypatch):
    """A quoted local part with ", " reaches the server whole; a letter whose envelope became
    invalid (edited by hand) fails alone and the batch goes on."""
    import sqlite3

    camp = write_campaign(tmp_path / "camp", missions=3, hand=False)
    recipients = camp / "recipients.toml"
    recipients.write_text(
        recipients.read_text(encoding="utf-8").replace('"mission2@example.org"', "'\"x, y\"@example.org'"),
        encoding="utf-8",
    )
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(camp))
    assert invoke("check", str(camp)).exit_code == 0
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0  # queued: no account yet
    with sqlite3.connect(tmp_path / "data" / "letterkit" / "ledger.sqlite3") as conn:
        conn.execute("UPDATE letters SET rcpt = ? WHERE recipient = 'kz-1'", ('["not an address"]',))
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("outbox", "flush", "--yes", "--rate", "0", "--json")
    assert result.exit_code == 1, result.output  # one letter failed
    doc = json.loads(result.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["kz-2", "kz-3"]
    assert [r["recipient"] for r in doc["failed"]] == ["kz-1"] and "not an address" in doc["failed"][0][
        "reason"
    ]
    assert ['"x, y"@example.org', "osce@example.net"] in [m.rcpt_tos for m in smtp_server.messages]


def test_a_file_dropped_into_the_outbox_is_shown_and_goes_to_its_own_to(invoke, tmp_path, smtp_server):
    """Adopted only by a command that sends, shown before it goes, envelope from its To/Cc."""
    new = tmp_path / "data" / "letterkit" / "outbox" / "new"
    new.mkdir(parents=True)
    (new / "hand-made.eml").write_bytes(
        b"X-Letterkit-Rcpt: victim@example.net\nFrom: someone@home.internal\n"
        b"To: Friend <friend@example.org>\nSubject: hello\n\nbody\n"
    )
    (new / "link.eml").symlink_to(tmp_path / "elsewhere.eml")
    assert json.loads(invoke("outbox", "--json").stdout)["letters"] == []  # a listing adopts nothing
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("outbox", "flush", "--yes", "--rate", "0")
    assert result.exit_code == 0, result.output
    assert "found in the outbox folder" in result.stderr and "Subject:  hello" in result.stderr
    (m,) = smtp_server.messages
    assert m.rcpt_tos == ["friend@example.org"] and b"X-Letterkit" not in m.data
