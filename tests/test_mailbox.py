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
    return sqlite3.connect(tmp_path / "data" / "letterkit" / "ledger.sqlite3")


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
        ),  # fmt: skip
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
