"""`letterkit send` end to end against a real SMTP server on 127.0.0.1 (STARTTLS + AUTH)."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import REAL_SIGNER, SIGNER
from smtp_server import (  # noqa: F401  (fixtures)
    PASSWORD,
    USERNAME,
    make_smtp_server,
    smtp_server,
    test_ca,
    write_campaign,
)

SIGNER_FROM = REAL_SIGNER[3]  # its e-mail: becomes Reply-To
SEND = ["send", "protest", "--yes", "--rate", "0", *REAL_SIGNER]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three missions by e-mail, a Cc by e-mail and a copy by hand (fax, post, web form)."""
    root = write_campaign(tmp_path / "camp")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    return root


@pytest.fixture
def mail_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same without the copy by hand (no PDF to write: faster)."""
    root = write_campaign(tmp_path / "camp", hand=False)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    return root


def add_account(invoke, server, name: str = "test"):  # type: ignore[no-untyped-def]
    result = invoke(*server.account_args(name), "--password-stdin", input=server.password + "\n")
    assert result.exit_code == 0, result.output
    return result


def addr(msg, header: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    (a,) = msg[header].addresses
    return a.display_name, a.addr_spec


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "letterkit"


def test_full_send_delivers_one_message_per_recipient(invoke, campaign, smtp_server, tmp_path):
    add_account(invoke, smtp_server)
    result = invoke(*SEND, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["kind"] == "send"
    assert [r["recipient"] for r in doc["sent"]] == ["kz-1", "kz-2", "kz-3"]
    assert doc["failed"] == [] and doc["queued"] == [] and doc["account"] == "test"
    msgs = smtp_server.messages
    assert len(msgs) == 3
    for i, m in enumerate(msgs, 1):
        assert m.tls and m.login == USERNAME
        assert m.mail_from == USERNAME
        assert m.rcpt_tos == [f"mission{i}@example.org", "osce@example.net"]
        msg = m.message
        assert msg["To"] == f"Mission {i} <mission{i}@example.org>"
        assert msg["Cc"] == "osce@example.net"
        assert addr(msg, "From") == ("A. Person", USERNAME)
        assert addr(msg, "Reply-To") == ("A. Person", SIGNER_FROM)
        assert msg["Message-ID"] and msg["Date"]
        assert not [h for h in msg if h.lower().startswith("x-letterkit")]
        assert "..A line starting with a dot." not in msg.get_content()
        assert ".A line starting with a dot." in msg.get_content()
    # the hand copy for the OSCE secretariat
    assert [h["recipient"] for h in doc["by_hand"]] == ["osce-hand"]
    # the hand copy for the OSCE secretariat is prepared, not e-mailed
    (hand,) = doc["by_hand"]
    assert hand["recipient"] == "osce-hand" and hand["channels"] == ["fax", "post", "web"]
    assert hand["fax"] == "+43 1 000 0000" and hand["web_form"] == ["https://forms.example.net/contact"]
    assert Path(hand["files"]["pdf"]).is_file() and Path(hand["files"]["txt"]).is_file()
    assert Path(hand["files"]["pdf"]).parent == data_dir(tmp_path) / "prepared" / "test-campaign"
    assert doc["paths"]["outbox"] == str(data_dir(tmp_path) / "outbox")
    # sent copies are in the sent Maildir, readable by mail programs
    import mailbox

    sent = mailbox.Maildir(data_dir(tmp_path) / "sent", create=False)
    assert len(sent) == 3
    assert not list((data_dir(tmp_path) / "outbox" / "new").iterdir())
    # the ledger
    log = invoke("log", "--json")
    assert log.exit_code == 0, log.output
    rows = json.loads(log.stdout)["letters"]
    assert [(r["recipient"], r["status"]) for r in rows] == [
        ("kz-1", "sent"), ("kz-2", "sent"), ("kz-3", "sent"), ("osce-hand", "prepared"),
    ]  # fmt: skip
    first = rows[0]
    assert first["message_id"] == msgs[0].message["Message-ID"]
    assert first["reply"].startswith("250 ") and first["account"] == "test"
    assert first["signer"] == f"A. Person <{SIGNER_FROM}>" and first["template"] == "protest"
    assert first["to"] == ["mission1@example.org", "osce@example.net"] and first["sent_at"]


def test_second_send_sends_nothing_and_resend_sends_again(invoke, campaign, smtp_server):
    add_account(invoke, smtp_server)
    assert invoke(*SEND).exit_code == 0
    assert smtp_server.count() == 3
    again = invoke(*SEND, "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["sent"] == [] and doc["queued"] == []
    assert [(h["recipient"], h["prepared_earlier"]) for h in doc["by_hand"]] == [("osce-hand", True)]
    reasons = {s["recipient"]: s["reason"] for s in doc["skipped"]}
    assert set(reasons) == {"kz-1", "kz-2", "kz-3", "osce-hand"}
    assert reasons["kz-1"].startswith("sent on ") and "--resend" in reasons["kz-1"]
    assert smtp_server.count() == 3
    people = invoke(*SEND)
    assert people.exit_code == 0 and "Skipping kz-1: sent on" in people.stderr
    resend = invoke(*SEND, "--resend", "--to", "kz-2", "--json")
    assert resend.exit_code == 0, resend.output
    assert [r["recipient"] for r in json.loads(resend.stdout)["sent"]] == ["kz-2"]
    assert smtp_server.count() == 4
    assert smtp_server.messages[3].rcpt_tos == ["mission2@example.org", "osce@example.net"]
    # two different Message-IDs for the two letters to kz-2
    assert smtp_server.messages[3].message["Message-ID"] != smtp_server.messages[1].message["Message-ID"]


def test_a_refused_recipient_fails_that_letter_alone(invoke, mail_campaign, make_smtp_server):
    server = make_smtp_server(reject_data={"mission2@example.org"})
    add_account(invoke, server)
    result = invoke(*SEND, "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["kz-1", "kz-3"]
    (failed,) = doc["failed"]
    assert failed["recipient"] == "kz-2"
    assert "554 5.7.1 Message rejected as spam" in failed["reason"]
    assert server.count() == 2
    # it stays in the outbox, marked failed with the server's reason
    box = json.loads(invoke("outbox", "--json").stdout)
    assert [(r["recipient"], r["status"]) for r in box["letters"]] == [("kz-2", "failed")]
    assert "rejected as spam" in box["letters"][0]["reason"]
    # a flush does not retry it ...
    flush = invoke("outbox", "flush", "--yes", "--rate", "0", "--json")
    assert flush.exit_code == 0, flush.output
    assert json.loads(flush.stdout)["sent"] == []
    # ... unless asked to; a send of the same letter says where it is
    again = invoke(*SEND, "--to", "kz-2")
    assert again.exit_code == 0 and "still in the outbox" in again.stderr
    server.handler.reject_data.clear()
    retry = invoke("outbox", "flush", "--yes", "--rate", "0", "--retry-failed", "--json")
    assert retry.exit_code == 0, retry.output
    assert [r["recipient"] for r in json.loads(retry.stdout)["sent"]] == ["kz-2"]
    assert server.count() == 3


def test_a_refused_copy_is_reported_not_called_sent(invoke, mail_campaign, make_smtp_server):
    server = make_smtp_server(reject_rcpt={"osce@example.net"})
    add_account(invoke, server)
    result = invoke(*SEND, "--to", "kz-1", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["sent"] == []
    (partial,) = doc["partial"]
    assert partial["status"] == "partial"
    assert list(partial["refused"]) == ["osce@example.net"]
    assert partial["refused"]["osce@example.net"][0] == 550
    assert "refused: osce@example.net" in partial["reason"]
    assert server.messages[0].rcpt_tos == ["mission1@example.org"]
    people = invoke("log")
    assert "partial" in people.stdout


def test_temporary_failures_and_dropped_connections_end_delivered(invoke, mail_campaign, make_smtp_server):
    server = make_smtp_server(tempfail_data=2, drop_after=1)
    add_account(invoke, server)
    result = invoke(*SEND, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["sent"]) == 3
    assert server.count() == 3 and server.handler.dropped == 1
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [f"mission{i}@example.org" for i in (1, 2, 3)]
    assert doc["sent"][0]["attempts"] == 3  # 451, 451, then accepted


def test_no_tty_without_yes_refuses_and_queues_nothing(invoke, mail_campaign, smtp_server, tmp_path):
    add_account(invoke, smtp_server)
    result = invoke("send", "protest", *SIGNER)
    assert result.exit_code == 2
    assert "--yes" in result.stderr and "nothing was queued" in result.stderr
    assert result.stdout == ""
    assert not (data_dir(tmp_path) / "ledger.sqlite3").exists()
    assert smtp_server.count() == 0


def test_dry_run_shows_the_envelope_and_touches_nothing(invoke, campaign, smtp_server, tmp_path):
    add_account(invoke, smtp_server)
    result = invoke("send", "protest", "--dry-run", *SIGNER)
    assert result.exit_code == 0, result.output
    assert f"MAIL FROM:<{USERNAME}> RCPT TO:<mission1@example.org>, <osce@example.net>" in result.stdout
    assert "would be sent" in result.stdout and "would be prepared for delivery by hand" in result.stdout
    doc = json.loads(invoke("send", "protest", "--dry-run", "--json", *SIGNER).stdout)
    assert doc["dry_run"] is True
    first = doc["letters"][0]
    assert first["action"] == "send"
    assert first["envelope"] == {
        "mail_from": USERNAME,
        "rcpt_to": ["mission1@example.org", "osce@example.net"],
    }
    assert first["headers"]["To"] == "Mission 1 <mission1@example.org>"
    assert doc["letters"][-1]["action"] == "prepare" and doc["letters"][-1]["envelope"] is None
    assert not data_dir(tmp_path).exists()
    assert smtp_server.count() == 0


def test_without_an_account_letters_are_queued_then_flushed(invoke, campaign, smtp_server, tmp_path):
    result = invoke(*SEND)
    assert result.exit_code == 0, result.output
    err = " ".join(result.stderr.split())
    assert "3 letter(s) are queued in the outbox" in err
    assert "No mail account is set up yet" in err and "letterkit outbox flush" in err
    assert "letterkit account add NAME --host" in err
    assert "Needs your hand" in result.stderr
    outbox = json.loads(invoke("outbox", "--json").stdout)
    assert [r["status"] for r in outbox["letters"]] == ["queued"] * 3
    assert outbox["paths"]["ledger"] == str(data_dir(tmp_path) / "ledger.sqlite3")
    # queued with the signer's address; flushed From the account, Reply-To the signer
    added = add_account(invoke, smtp_server)
    assert "3 letter(s) wait in the outbox" in " ".join(added.stderr.split())
    flush = invoke("outbox", "flush", "--yes", "--rate", "0")
    assert flush.exit_code == 0, flush.output
    assert smtp_server.count() == 3
    msg = smtp_server.messages[0].message
    assert addr(msg, "From") == ("A. Person", USERNAME)
    assert addr(msg, "Reply-To") == ("A. Person", SIGNER_FROM)
    assert smtp_server.messages[0].mail_from == USERNAME
    assert json.loads(invoke("outbox", "--json").stdout)["letters"] == []


def test_server_down_leaves_letters_queued_with_the_reason(invoke, mail_campaign, make_smtp_server):
    server = make_smtp_server()
    add_account(invoke, server)
    port = server.port
    server.stop()
    result = invoke(*SEND, "--json")
    assert result.exit_code == 1, result.output
    assert "connection refused" in result.stderr and "letterkit outbox flush" in result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["queued"]) == 3 and doc["sent"] == []
    assert "connection refused" in doc["error"]
    outbox = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert all(r["status"] == "queued" and "connection refused" in r["reason"] for r in outbox)
    # the server comes back (same port): a flush delivers them
    again = make_smtp_server(port=port)
    flush = invoke("outbox", "flush", "--yes", "--rate", "0")
    assert flush.exit_code == 0, flush.output
    assert again.count() == 3
    # and running the same send again neither re-queues nor re-sends
    rerun = invoke(*SEND)
    assert rerun.exit_code == 0 and again.count() == 3


def test_rerunning_send_delivers_letters_left_queued(invoke, mail_campaign, make_smtp_server):
    server = make_smtp_server()
    add_account(invoke, server)
    port = server.port
    server.stop()
    assert invoke(*SEND).exit_code == 1
    again = make_smtp_server(port=port)
    rerun = invoke(*SEND, "--json")
    assert rerun.exit_code == 0, rerun.output
    doc = json.loads(rerun.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["kz-1", "kz-2", "kz-3"]
    assert {s["recipient"] for s in doc["skipped"]} >= {"kz-1", "kz-2", "kz-3"}
    assert again.count() == 3


def test_wrong_password_aborts_and_keeps_letters(invoke, mail_campaign, smtp_server):
    result = invoke(*smtp_server.account_args(), "--password-stdin", input="not the password\n")
    assert result.exit_code == 0
    sent = invoke(*SEND)
    assert sent.exit_code == 2
    assert "wrong username or password" in sent.stderr
    assert "not the password" not in sent.output
    assert smtp_server.count() == 0
    outbox = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert len(outbox) == 3 and all("wrong username or password" in r["reason"] for r in outbox)


def test_untrusted_certificate_is_refused(invoke, mail_campaign, smtp_server):
    result = invoke(*smtp_server.account_args(ca=False), "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0
    sent = invoke(*SEND)
    assert sent.exit_code == 2
    assert "untrusted certificate" in sent.stderr and "--ca-file" in sent.stderr
    assert smtp_server.count() == 0
    assert smtp_server.handler.auth_failures == 0


def test_password_from_environment_and_no_keyring(invoke, mail_campaign, smtp_server, monkeypatch):
    import keyring
    import keyring.backends.fail

    add = invoke(*smtp_server.account_args())
    assert add.exit_code == 0, add.output
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())
    refused = invoke(*SEND)
    assert refused.exit_code == 2
    assert "no usable keyring backend" in refused.stderr
    assert "LETTERKIT_SMTP_PASSWORD" in refused.stderr and "password_command" in refused.stderr
    assert "Traceback" not in refused.output
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", PASSWORD)
    ok = invoke("outbox", "flush", "--yes", "--rate", "0", "--json")
    assert ok.exit_code == 0, ok.output
    assert smtp_server.count() == 3
    assert PASSWORD not in ok.output


def test_require_note_refuses_without_personal_words(invoke, tmp_path, monkeypatch, smtp_server):
    root = write_campaign(tmp_path / "strict", require_note=True)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    add_account(invoke, smtp_server)
    result = invoke(*SEND)
    assert result.exit_code == 2 and "personal words" in result.stderr
    ok = invoke(*SEND, "--note", "I have followed this case since 2010.")
    assert ok.exit_code == 0, ok.output
    assert "I have followed this case since 2010." in smtp_server.messages[0].message.get_content()


def test_edit_opens_each_letter_and_an_emptied_one_is_left_out(
    invoke, mail_campaign, smtp_server, tmp_path, monkeypatch
):
    # an "editor" that adds a line to each letter, except the second, which it empties
    editor = tmp_path / "editor.py"
    calls = tmp_path / "calls"
    editor.write_text(
        "import pathlib, sys\n"
        f"calls = pathlib.Path({str(calls)!r})\n"
        "n = len(calls.read_text()) if calls.exists() else 0\n"
        "calls.write_text('x' * (n + 1))\n"
        "letter = pathlib.Path(sys.argv[1])\n"
        "text = letter.read_text(encoding='utf-8')\n"
        "letter.write_text('' if n == 1 else text + '\\nEdited by hand.\\n', encoding='utf-8')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    add_account(invoke, smtp_server)
    result = invoke(*SEND, "--edit", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["kz-1", "kz-3"]
    assert {"recipient": "kz-2", "reason": "emptied in the editor"}.items() <= next(
        s for s in doc["skipped"] if s["recipient"] == "kz-2"
    ).items()
    assert all("Edited by hand." in m.message.get_content() for m in smtp_server.messages)


def test_open_forms_opens_the_web_form(invoke, campaign, tmp_path, monkeypatch):
    import webbrowser

    seen = tmp_path / "urls.txt"
    opener = tmp_path / "browser.py"
    opener.write_text(f"import sys\nopen({str(seen)!r}, 'a').write(sys.argv[1] + '\\n')\n", encoding="utf-8")
    monkeypatch.setenv("BROWSER", f"{sys.executable} {opener} %s")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no clipboard tool either
    monkeypatch.setattr(webbrowser, "_tryorder", None, raising=False)
    monkeypatch.setattr(webbrowser, "_browsers", {}, raising=False)
    result = invoke(*SEND, "--to", "osce-hand", "--open-forms")
    assert result.exit_code == 0, result.output
    assert seen.read_text().splitlines() == ["https://forms.example.net/contact"]
    assert "No clipboard tool found" in result.stderr
    assert "Needs your hand" in result.stderr and "+43 1 000 0000" in result.stderr


def test_hand_letters_are_prepared_once_and_marked_done(invoke, campaign):
    first = invoke(*SEND, "--to", "osce-hand", "--json")
    assert first.exit_code == 0, first.output
    (hand,) = json.loads(first.stdout)["by_hand"]
    assert hand["prepared_earlier"] is False
    again = json.loads(invoke(*SEND, "--to", "osce-hand", "--json").stdout)
    assert again["by_hand"][0]["prepared_earlier"] is True and again["by_hand"][0]["id"] == hand["id"]
    done = invoke("log", "done", str(hand["id"]), "--via", "fax", "--json")
    assert done.exit_code == 0, done.output
    row = json.loads(done.stdout)["letter"]
    assert row["status"] == "done" and row["channel"] == "fax"
    third = json.loads(invoke(*SEND, "--to", "osce-hand", "--json").stdout)
    assert third["by_hand"] == [] and "delivered by hand (fax)" in third["skipped"][0]["reason"]
    bad = invoke("log", "done", str(hand["id"] + 100), "--via", "fax")
    assert bad.exit_code == 2 and "no letter" in bad.stderr


def test_stale_contacts_and_non_ascii_letters(invoke, tmp_path, monkeypatch, smtp_server):
    root = write_campaign(tmp_path / "old", checked="2010-09")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    add_account(invoke, smtp_server)
    result = invoke("send", "solidarity", "--yes", "--rate", "0", *SIGNER)
    assert result.exit_code == 0, result.output
    assert "contact data last checked 2010-09: verify before relying on it" in result.stderr
    (m,) = smtp_server.messages
    assert m.rcpt_tos == ["support@example.org", "copy@example.net"]
    msg = m.message
    assert msg["Subject"] == "Солидарность" and "Дорогие друзья," in msg.get_content()


def test_json_output_is_only_json_and_rate_is_parsed(invoke, mail_campaign, smtp_server):
    from letterkit.config import parse_rate

    assert parse_rate("20/min", 0) == 20 and parse_rate("0", 20) == 0
    assert parse_rate("600/hour", 0) == 10 and parse_rate(None, 20) == 20 and parse_rate("1/s", 0) == 60
    add_account(invoke, smtp_server)
    bad = invoke(*SEND[:-2], "--rate", "fast")
    assert bad.exit_code == 2 and "not a rate" in bad.stderr
    result = invoke(*SEND, "--json")
    json.loads(result.stdout)  # nothing else on stdout


def test_deadline_passed_is_a_warning_and_in_the_json(invoke, mail_campaign, smtp_server):
    with (mail_campaign / "templates" / "campaign.toml").open("a", encoding="utf-8") as fh:
        fh.write('act_before = "2010-12-31"\n')
    add_account(invoke, smtp_server)
    result = invoke(*SEND, "--to", "kz-1", "--json")
    assert result.exit_code == 0, result.output
    assert "that date has passed" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["deadline_passed"] is True and len(doc["sent"]) == 1


def test_edit_without_an_editor_or_terminal_is_refused(invoke, mail_campaign, tmp_path):
    result = invoke(*SEND, "--edit")
    assert result.exit_code == 2 and "$EDITOR" in result.stderr
    assert not (data_dir(tmp_path) / "ledger.sqlite3").exists()
