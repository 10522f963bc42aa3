"""IMAP: the copy in Sent, `mailbox sync` (replies, automatic replies, bounces), follow-ups.

Against real servers on 127.0.0.1: pymap (IMAP, tests/imap_server.py) and aiosmtpd (SMTP).
"""

# ruff: noqa: F811  (pytest fixtures imported from the server modules are parameters here)

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REAL_SIGNER
from imap_server import ImapServer, imap_server, make_imap_server  # noqa: F401
from smtp_server import PASSWORD, make_smtp_server, smtp_server, test_ca, write_campaign  # noqa: F401

SEND = ["send", "protest", "--yes", "--rate", "0", *REAL_SIGNER]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_campaign(tmp_path / "camp", hand=True)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    return root


def add_account(invoke, smtp, imap: ImapServer | None, *extra: str):  # type: ignore[no-untyped-def]
    args = [*smtp.account_args(), *(imap.imap_args() if imap else []), *extra]
    result = invoke(*args, "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    return result


def ledger(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "data" / "letterkit" / "ledger.sqlite3", timeout=10)


def sent_messages(tmp_path: Path) -> list[tuple[int, str, str, str]]:
    with ledger(tmp_path) as db:
        return db.execute(
            "SELECT id, recipient, message_id, subject FROM letters WHERE channel = 'email' ORDER BY id"
        ).fetchall()


def reply(to_mid: str, subject: str, sender: str, body: str, **headers: str) -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = "activist@example.org"
    msg["Subject"] = subject
    msg["Date"] = "Fri, 27 Nov 2026 09:30:00 +0000"
    msg["Message-ID"] = f"<{abs(hash((to_mid, subject, body)))}@mission.example.org>"
    if to_mid:
        msg["In-Reply-To"] = to_mid
        msg["References"] = to_mid
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg.as_bytes()


def dsn(original_mid: str, rcpt: str, status: str = "5.1.1", *, malformed: bool = False) -> bytes:
    report = "Reporting-MTA: dns; mx.example.org\r\n\r\n" + (
        "" if malformed else f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}\r\n"
    )
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: activist@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Fri, 27 Nov 2026 09:31:00 +0000\r\n"
        f"Message-ID: <dsn{int(malformed)}-{abs(hash(rcpt))}@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\n\r\n{report}"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original_mid}\r\nSubject: x\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_send_copies_to_sent_and_sync_classifies_every_kind(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    add_account(invoke, smtp_server, imap_server)
    result = invoke(*SEND)
    assert result.exit_code == 0, result.output
    letters = sent_messages(tmp_path)
    assert len(letters) == 3
    copies = imap_server.messages("Sent Mail")  # the folder marked \Sent (RFC 6154)
    sent = [m.data for m in smtp_server.messages]
    assert [data for _flags, data in copies] == sent  # the exact bytes that were sent, in order
    assert all(b"\\Seen" in flags for flags, _data in copies)
    (id1, _r1, mid1, subj1), (id2, _r2, mid2, subj2), (id3, _r3, mid3, _s3) = letters
    inbox_before = [
        reply(
            mid1, f"Re: {subj1}", "Mission 1 <mission1@example.org>", "We received your letter.\n\n> quoted"
        ),
        reply(
            mid2,
            f"Automatic reply: {subj2}",
            "mission2@example.org",
            "I am out of the office until May.",
            Auto_Submitted="auto-replied",
        ),
        dsn(mid3, "mission3@example.org"),
        reply("", "Lunch?", "friend@example.net", "Unrelated."),
    ]
    for data in inbox_before:
        imap_server.append("INBOX", data)
    before = imap_server.messages("INBOX")

    result = invoke("mailbox", "sync", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["kind"] == "mailbox-sync"
    kinds = {r["letter"]: (r["kind"], r["status"]) for r in doc["responses"]}
    assert kinds == {id1: ("reply", ""), id2: ("auto-reply", ""), id3: ("bounce", "5.1.1")}
    assert doc["unrelated"] == 1 and doc["scanned"] == 4
    assert imap_server.messages("INBOX") == before  # nothing read as \Seen, moved or deleted
    assert len(imap_server.messages("Sent Mail")) == 3

    log = invoke("log")
    assert log.exit_code == 0, log.output
    lines = {line.split("\t")[0]: line for line in log.stdout.splitlines()}
    assert "replied 2026-11-27" in lines[str(id1)]
    assert "auto-replied 2026-11-27" in lines[str(id2)]
    assert "bounced 2026-11-27" in lines[str(id3)]
    show = invoke("log", "show", str(id1))
    assert "mission1@example.org" in show.stdout and "We received your letter." in show.stdout
    assert "quoted" not in show.stdout

    again = invoke("mailbox", "sync", "--json")
    assert json.loads(again.stdout)["responses"] == []  # nothing new, nothing counted twice


def test_copy_lands_in_a_localized_sent_folder(invoke, campaign, smtp_server, make_imap_server, tmp_path):
    imap = make_imap_server(special_use=None, folders=("Archiv", "Отправленные"))
    add_account(invoke, smtp_server, imap)
    assert invoke(*SEND).exit_code == 0
    assert len(imap.messages("Отправленные")) == 3  # found by its usual name (modified UTF-7 on the wire)
    assert imap.messages("Archiv") == []


def test_sent_folder_override_and_provider_copies(invoke, campaign, smtp_server, make_imap_server, tmp_path):
    imap = make_imap_server(folders=("Gesendet",))
    add_account(invoke, smtp_server, imap, "--sent-folder", "Gesendet")
    assert invoke(*SEND).exit_code == 0
    assert len(imap.messages("Gesendet")) == 3 and imap.messages("Sent Mail") == []
    # a provider that files copies itself (the preset's save_sent = false, here said by hand): none
    add_account(invoke, smtp_server, imap, "--no-save-sent", "--replace")
    assert invoke(*SEND, "--resend").exit_code == 0
    assert len(imap.messages("Gesendet")) == 3


def test_gmail_preset_files_no_copy_of_its_own():
    from letterkit.service import AccountOptions, account_from_options

    acct, _note = account_from_options(AccountOptions(name="g", preset="gmail", username="me@gmail.com"))
    assert (acct.imap_host, acct.imap_port, acct.imap_security, acct.save_sent) == (
        "imap.gmail.com", 993, "tls", False)  # fmt: skip
    acct, _note = account_from_options(
        AccountOptions(name="g", preset="posteo", username="me@posteo.de", imap={"save_sent": None})
    )
    assert acct.imap_host == "posteo.de" and acct.save_sent


def test_missing_sent_folder_fails_no_letter_and_is_retried(
    invoke, campaign, smtp_server, make_imap_server, tmp_path
):
    imap = make_imap_server(special_use=None, folders=("Archive",))
    add_account(invoke, smtp_server, imap)
    result = invoke(*SEND)
    assert result.exit_code == 0, result.output  # the letters went: the copy is not the letter
    assert smtp_server.count() == 3
    assert "no Sent folder" in result.stderr and "mailbox sync" in result.stderr
    with ledger(tmp_path) as db:
        assert db.execute("SELECT COUNT(*) FROM sent_copies WHERE state = 'failed'").fetchone() == (3,)
    with imap.client() as c:
        assert c.create('"Sent"')[0] == "OK"
    flushed = invoke("outbox", "flush", "--yes")  # nothing to send: the copies are retried
    assert flushed.exit_code == 0, flushed.output
    assert len(imap.messages("Sent")) == 3
    synced = invoke("mailbox", "sync", "--json")
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout)["sent_copies"]["copied"] == 0
    assert len(imap.messages("Sent")) == 3
    assert smtp_server.count() == 3  # nothing was sent again


@pytest.mark.slow
def test_kill_9_between_smtp_and_append_then_sync_appends_once(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    # an IMAP "server" that accepts the connection and never answers: the send hangs right
    # after SMTP, before any APPEND, where it is killed
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    add_account(invoke, smtp_server, imap_server)
    config = tmp_path / "config" / "letterkit" / "config.toml"
    real = config.read_text()
    config.write_text(
        real.replace(f"imap_port = {imap_server.port}", f"imap_port = {silent.getsockname()[1]}")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "letterkit", *SEND],
        env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    path = tmp_path / "data" / "letterkit" / "ledger.sqlite3"
    while True:
        if path.exists():
            with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10) as db:
                try:
                    if db.execute("SELECT COUNT(*) FROM letters WHERE status = 'sent'").fetchone()[0] == 3:
                        break
                except sqlite3.OperationalError:  # not created yet
                    pass
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    silent.close()
    assert smtp_server.count() == 3 and imap_server.messages("Sent Mail") == []
    config.write_text(real)
    assert invoke("mailbox", "sync").exit_code == 0
    assert invoke("mailbox", "sync").exit_code == 0
    assert invoke("outbox", "flush", "--yes").exit_code == 0
    assert len(imap_server.messages("Sent Mail")) == 3  # each once


def test_an_append_that_landed_before_a_crash_is_not_repeated(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    assert len(imap_server.messages("Sent Mail")) == 3
    with ledger(tmp_path) as db:  # what a kill -9 right after the APPEND's OK leaves behind
        db.execute("UPDATE sent_copies SET state = 'appending'")
    result = invoke("mailbox", "sync", "--json")
    assert result.exit_code == 0, result.output
    copies = json.loads(result.stdout)["sent_copies"]
    assert copies["found"] == 3 and copies["copied"] == 0
    assert len(imap_server.messages("Sent Mail")) == 3


def test_uidvalidity_change_rescans_without_counting_twice(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    (id1, _r, mid1, subj1), *_ = sent_messages(tmp_path)
    answer = reply(mid1, f"Re: {subj1}", "mission1@example.org", "Thank you.")
    imap_server.append("INBOX", answer)
    first = json.loads(invoke("mailbox", "sync", "--json").stdout)
    assert [r["letter"] for r in first["responses"]] == [id1]
    with imap_server.client() as c:  # the server renumbers INBOX: a new UIDVALIDITY
        assert c.rename("INBOX", "Old")[0] == "OK"
    imap_server.append("INBOX", answer)
    imap_server.append("INBOX", reply(mid1, f"Re: {subj1}", "mission1@example.org", "And a second answer."))
    second = json.loads(invoke("mailbox", "sync", "--json").stdout)
    assert second["rescan"] is True and second["scanned"] == 2
    assert second["already_recorded"] == 1 and len(second["responses"]) == 1
    with ledger(tmp_path) as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone() == (2,)


def test_untrusted_imap_certificate_is_refused(invoke, campaign, smtp_server, make_imap_server, tmp_path):
    imap = make_imap_server(untrusted=True)  # its certificate comes from a CA the account does not trust
    add_account(invoke, smtp_server, imap)
    result = invoke("mailbox", "sync")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "certificate" in result.stderr
    assert "Traceback" not in result.output


def test_plaintext_imap_only_on_loopback():
    from letterkit.config import Account
    from letterkit.errors import LetterkitError
    from letterkit.mailbox import session_for

    acct = Account("a", "smtp.example.org", from_addr="a@example.org", imap_host="imap.example.org",
                   imap_security="none")  # fmt: skip
    with pytest.raises(LetterkitError, match="in clear"):
        session_for(acct).open()


def test_password_never_in_output_or_files(invoke, campaign, smtp_server, imap_server, tmp_path):
    outputs = [add_account(invoke, smtp_server, imap_server).output]
    for args in (SEND, ["mailbox", "sync", "--json"], ["account", "test"], ["log", "--json"], ["followup"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert all(PASSWORD not in out for out in outputs)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "keyring.json":
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_account_test_checks_imap(invoke, campaign, smtp_server, imap_server):
    add_account(invoke, smtp_server, imap_server)
    result = invoke("account", "test", "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert "capability IMAP4rev1" in steps and "Sent folder: Sent Mail" in steps


def test_a_server_without_imap4rev1_is_one_line(invoke, campaign, smtp_server, tmp_path):
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def old_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"* OK old server ready\r\n")
            data = conn.recv(1024)
            tag = data.split(b" ")[0]
            conn.sendall(b"* CAPABILITY IMAP4 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            conn.recv(1024)

    threading.Thread(target=old_server, daemon=True).start()
    args = [
        "--imap-host",
        "127.0.0.1",
        "--imap-port",
        str(listener.getsockname()[1]),
        "--imap-security",
        "none",
    ]
    result = invoke(*smtp_server.account_args(), *args, "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    result = invoke("mailbox", "sync")
    listener.close()
    assert result.exit_code == 2 and "IMAP4rev1" in result.stderr
    assert result.stderr.count("\n") == 1


def test_malformed_dsn_and_huge_message_are_skipped_with_a_note(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    (id1, _r, mid1, subj1), *_ = sent_messages(tmp_path)
    imap_server.append("INBOX", dsn(mid1, "mission1@example.org", malformed=True))
    huge = reply(mid1, f"Re: {subj1}", "mission1@example.org", "Big answer.\n" + "x" * 80 + "\n")
    huge = huge.replace(b"Big answer.", b"Big answer.\n" + (b"y" * 76 + b"\r\n") * 9000)
    imap_server.append("INBOX", huge)
    before = imap_server.messages("INBOX")
    result = invoke("mailbox", "sync", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert any("malformed" in n for n in doc["notes"])
    assert any("only its first part was read" in n for n in doc["notes"])
    assert [(r["letter"], r["kind"]) for r in doc["responses"]] == [(id1, "reply")]
    assert imap_server.messages("INBOX") == before


def test_followup_lists_unanswered_letters_and_threads_the_follow_up(
    invoke, campaign, smtp_server, imap_server, tmp_path, monkeypatch
):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    (_id1, _r, mid1, subj1), (id2, _r2, mid2, subj2), (id3, _r3, mid3, _s3) = sent_messages(tmp_path)
    imap_server.append("INBOX", reply(mid1, f"Re: {subj1}", "mission1@example.org", "Noted."))
    imap_server.append("INBOX", reply(mid2, subj2, "mission2@example.org", "On vacation.", X_Autoreply="yes"))
    assert invoke("mailbox", "sync").exit_code == 0
    assert json.loads(invoke("followup", "--json").stdout)["letters"] == []  # not 14 days yet
    monkeypatch.setenv("LETTERKIT_NOW", "2026-12-11T10:00:00+00:00")
    doc = json.loads(invoke("followup", "--json").stdout)
    assert doc["version"] == 1
    assert [(x["id"], x["came_back"]) for x in doc["letters"]] == [
        (id2, "auto-replied 2026-11-27"),
        (id3, ""),
    ]
    assert [x["id"] for x in json.loads(invoke("followup", "--days", "30", "--json").stdout)["letters"]] == []

    # one follow-up to each, threaded to the original, from the same signer only
    (campaign / "templates" / "followup.en.txt.j2").write_text(
        '+++\nsubject = "Follow-up"\nto = ["group:kazakhstan"]\ncc = []\n+++\n'
        "I wrote to you and had no reply.\n"
    )
    other = invoke("send", "followup", "--follow-up", "--yes", "--rate", "0", *REAL_SIGNER[:2],
                   "--email", "someone.else@home.internal", "--json")  # fmt: skip
    assert other.exit_code == 0, other.output
    assert smtp_server.count() == 3  # nobody waits for a follow-up from that signer
    sent = invoke("send", "followup", "--follow-up", "--yes", "--rate", "0", *REAL_SIGNER, "--json")
    assert sent.exit_code == 0, sent.output
    assert [r["recipient"] for r in json.loads(sent.stdout)["sent"]] == ["kz-2", "kz-3"]
    for m, (mid, subject) in zip(smtp_server.messages[3:], [(mid2, subj2), (mid3, subj1)], strict=True):
        assert m.message["In-Reply-To"] == mid and m.message["References"] == mid
        assert m.message["Subject"] == f"Re: {subject}"
    assert json.loads(invoke("followup", "--json").stdout)["letters"] == []  # once per original
    again = invoke("send", "followup", "--follow-up", "--yes", "--rate", "0", *REAL_SIGNER, "--json")
    assert again.exit_code == 0 and smtp_server.count() == 5


def test_a_bounce_offers_other_channels_and_flags_the_address(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    recipients = campaign / "recipients.toml"
    text = recipients.read_text()
    mail = 'email = "mission3@example.org"\n'
    recipients.write_text(text.replace(mail, mail + 'fax = "+43 1 000 0003"\n'))
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    *_, (id3, _r3, mid3, _s3) = sent_messages(tmp_path)
    imap_server.append("INBOX", dsn(mid3, "mission3@example.org", "5.1.1"))
    result = invoke("mailbox", "sync")
    assert result.exit_code == 0, result.output
    assert (
        f"#{id3} bounce from mailer-daemon@mx.example.org 2026-11-27 (mission3@example.org: 5.1.1)"
        in result.stdout
    )
    assert "kz-3 can also be reached by fax: letterkit export protest --to kz-3 --format pdf" in result.stderr
    assert "bounces 1, unrelated 0" in result.stderr
    check = invoke("check", str(campaign))
    assert "contact kz-3: mission3@example.org bounced on 2026-11-27 (5.1.1): a suspect address" in " ".join(
        check.output.split()
    )
    contacts = json.loads(invoke("contacts", "--json").stdout)["contacts"]
    flagged = {c["id"]: c["suspect"] for c in contacts if c["suspect"]}
    assert flagged == {
        "kz-3": {"address": "mission3@example.org", "bounced": "2026-11-27", "status": "5.1.1"}
    }
    shown = invoke("log", "show", str(id3))
    assert "bounce from mailer-daemon@mx.example.org" in shown.stdout and "5.1.1" in shown.stdout


def test_a_long_sync_says_how_far_it_is(invoke, campaign, smtp_server, imap_server, tmp_path):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    imap_server.append_many(
        "INBOX", [reply("", f"Note {i}", "someone@example.net", "Hello.") for i in range(120)]
    )
    result = invoke("mailbox", "sync")
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("Reading INBOX")]
    assert lines == ["Reading INBOX: 50/120 messages", "Reading INBOX: 100/120 messages",
                     "Reading INBOX: 120/120 messages"]  # fmt: skip
    assert "unrelated 120" in result.stderr
    # they were told apart by their headers, fetched 200 at a time (the UIDs read right)
    from letterkit.mailbox import session_for

    acct = smtp_server.account(imap_host="127.0.0.1", imap_port=imap_server.port, imap_security="starttls")
    with session_for(acct) as session:
        session.examine("INBOX")
        uids = session.uids_after(0)
        heads = session.headers(uids)
    assert sorted(heads) == uids and len(uids) == 120
    assert all(f"Subject: Note {i}".encode() in heads[u] for i, u in enumerate(uids))


def test_delayed_and_unreadable_reports_are_not_bounces():
    from letterkit.replies import read_message

    delayed = dsn("<a@b>", "x@example.org").replace(b"Action: failed", b"Action: delayed")
    assert read_message(delayed).kind == "" and "delayed" in read_message(delayed).problem
    assert read_message(dsn("<a@b>", "x@example.org", malformed=True)).problem.endswith(
        "(malformed): skipped"
    )
    ru = reply("<a@b>", "Re: x", "a@example.org", "Я в отпуске до понедельника.")
    assert read_message(ru).kind == "auto-reply"
    real = reply("<a@b>", "Re: x", "a@example.org", "Thank you, we have passed your letter on.")
    assert read_message(real).kind == "reply"


def test_folder_lists_as_servers_send_them():
    from letterkit.imap import decode_name, encode_name, parse_list, pick_sent

    assert encode_name("Отправленные") == "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"
    assert decode_name(encode_name("Envoyés & reçus")) == "Envoyés & reçus"
    data = [
        b'(\\HasNoChildren) "." INBOX',
        (b'(\\HasNoChildren \\Sent) "." {11}', b'Sent "Box"'),  # a name sent as a literal
        b'(\\Noselect \\HasChildren) NIL "[Gmail]"',
        b'(\\HasNoChildren) "." "INBOX.Sent"',
        b'(\\HasNoChildren) "." "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"',
    ]
    folders = parse_list(data)
    assert [n for _a, n in folders] == ["INBOX", 'Sent "Box"', "[Gmail]", "INBOX.Sent", "Отправленные"]
    assert pick_sent(folders) == 'Sent "Box"'  # \Sent wins over the names
    unmarked = [(frozenset(), n) for _a, n in folders]
    assert pick_sent(unmarked) == "INBOX.Sent"
    assert pick_sent(unmarked, "Отправленные") == "Отправленные"
    assert pick_sent(unmarked, "Nowhere") is None
    assert pick_sent([(frozenset(), "Archive")]) is None


def test_a_reply_without_references_is_matched_by_sender_and_subject(
    invoke, campaign, smtp_server, imap_server, tmp_path
):
    add_account(invoke, smtp_server, imap_server)
    assert invoke(*SEND).exit_code == 0
    (_id1, _r1, _m1, subj), (id2, *_rest), *_ = sent_messages(tmp_path)
    imap_server.append("INBOX", reply("", f"AW:  {subj}", "Mission 2 <MISSION2@example.org>", "Danke."))
    imap_server.append(
        "INBOX", reply("", "Another matter", "mission2@example.org", "Unrelated to the letter.")
    )
    doc = json.loads(invoke("mailbox", "sync", "--json").stdout)
    assert [(r["letter"], r["kind"]) for r in doc["responses"]] == [(id2, "reply")]
    assert doc["unrelated"] == 1


def test_a_typed_password_is_asked_for_once_for_smtp_and_the_copy(
    invoke, campaign, smtp_server, imap_server, monkeypatch
):
    import getpass

    from letterkit import credentials
    from letterkit.campaign import load_campaign
    from letterkit.config import Signer, load_config
    from letterkit.letters import compose
    from letterkit.service import send_letters

    add_account(invoke, smtp_server, imap_server)
    assert credentials.delete_password("test")  # nothing stored: the password is typed
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or PASSWORD)
    signer = Signer(name="A. Person", email="a.person@home.internal", city="Leeds", country="UK")
    letters = compose(load_campaign(str(campaign)), "protest", signer, cc=())
    report = send_letters(letters, account=load_config().account(), rate=0, interactive=True)
    assert report.delivery is not None and report.delivery.sent == 3
    assert len(imap_server.messages("Sent Mail")) == 3
    assert len(prompts) == 1  # SMTP and IMAP share the one typed password
