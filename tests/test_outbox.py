"""The outbox as a library: queueing all-or-nothing, the ledger, delivery, reconciliation."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import mailbox
import os
import sqlite3
import time
from pathlib import Path

import pytest
from smtp_server import (  # noqa: F401  (fixtures)
    PASSWORD,
    SIGNER_FROM,
    USERNAME,
    make_smtp_server,
    smtp_server,
    test_ca,
    write_campaign,
)

from letterkit.campaign import load_campaign
from letterkit.config import Signer
from letterkit.delivery import deliver
from letterkit.errors import OutboxError, TemplateError
from letterkit.letters import compose
from letterkit.outbox import Outbox
from letterkit.service import send_letters
from letterkit.transport import SmtpTransport

SIGNER = Signer(name="A. Person", email=SIGNER_FROM, city="Leeds", country="UK")


@pytest.fixture
def campaign(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Four missions by e-mail with a Cc; the copy by hand only where a test needs it."""
    return load_campaign(write_campaign(tmp_path / "camp", missions=4, hand=False))


@pytest.fixture
def hand_campaign(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_campaign(write_campaign(tmp_path / "hand", missions=4))


@pytest.fixture
def box(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Outbox(tmp_path / "state") as b:
        yield b


def letters(campaign, **kw):  # type: ignore[no-untyped-def]
    return compose(campaign, "protest", SIGNER, **kw)


def transport(server):  # type: ignore[no-untyped-def]
    return SmtpTransport(server.account(), lambda: PASSWORD, backoff=0.001)


def files(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


def stored(box: Outbox) -> int:
    """How many messages of letters still in the outbox the ledger holds (what makes them durable)."""
    with sqlite3.connect(box.paths.ledger) as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM messages m JOIN letters l ON l.id = m.id "
                "WHERE l.status IN ('queued', 'failed')"
            ).fetchone()[0]
        )


def test_queue_writes_a_maildir_and_the_ledger(hand_campaign, box, smtp_server):
    result = box.queue(letters(hand_campaign, to=["group:kazakhstan"]), account=smtp_server.account())
    assert (result.queued, result.waiting, result.skipped) == (4, 0, [])
    assert [r.recipient for r in result.prepared] == ["osce-hand"]
    md = mailbox.Maildir(box.paths.outbox, create=False)
    assert len(md) == 4 and files(box.paths.outbox / "tmp") == []
    rows = list(box.batch_rows(result.batch, ("queued",)))
    assert [r.recipient for r in rows] == ["kz-1", "kz-2", "kz-3", "kz-4"]
    first = rows[0]
    assert first.rcpt == ("mission1@example.org", "osce@example.net") and first.account == "test"
    message = box.path_of(first).read_bytes()
    # the letter's metadata is in the ledger only; the file is the message exactly as it will go
    assert first.key == "test-campaign/protest/kz-1/a.person@example.org"
    assert (first.campaign, first.template, first.recipient) == ("test-campaign", "protest", "kz-1")
    assert (first.signer_name, first.signer_email) == ("A. Person", SIGNER_FROM)
    assert message.startswith(b"From: ") and b"X-Letterkit" not in message
    data = message
    assert first.message_id and first.message_id.encode() in message
    assert os.stat(box.path_of(first)).st_mode & 0o777 == 0o600
    # the ledger holds every message too (what makes the queue durable): the user's alone
    assert stored(box) == 4 and box.stored_message(first) == data
    assert os.stat(box.paths.ledger).st_mode & 0o777 == 0o600
    assert os.stat(f"{box.paths.ledger}-wal").st_mode & 0o777 == 0o600


def test_nothing_is_queued_when_a_letter_is_invalid(campaign, box):
    def some_then_broken():  # type: ignore[no-untyped-def]
        yield from letters(campaign, to=["kz-1", "kz-2"])
        raise TemplateError("templates/protest.en.txt.j2:3: 'x' is undefined")

    with pytest.raises(TemplateError):
        box.queue(some_then_broken())
    assert files(box.paths.outbox / "tmp") == [] and files(box.paths.outbox / "new") == []
    assert box.rows() == [] and stored(box) == 0
    assert box.queue(letters(campaign, to=["kz-1"])).queued == 1  # and the outbox still works


def test_queued_letters_are_not_queued_twice(campaign, box):
    first = box.queue(letters(campaign, to=["kz-1", "kz-2"]))
    again = box.queue(letters(campaign, to=["kz-1", "kz-2", "kz-3"]), resend=True)
    assert again.queued == 1 and again.waiting == 2
    assert [s.recipient for s in again.skipped] == ["kz-1", "kz-2"]
    assert "already waiting in the outbox" in again.skipped[0].reason
    # the batch tags the waiting letters too, so deliver(batch=...) sends all three
    assert [r.recipient for r in box.batch_rows(again.batch, ("queued",))] == ["kz-1", "kz-2", "kz-3"]
    assert list(box.batch_rows(first.batch, ("queued",))) == []


def test_deliver_moves_to_sent_and_records_the_reply(campaign, box, smtp_server):
    result = box.queue(letters(campaign, to=["kz-1", "kz-2"]), account=smtp_server.account())
    progress = []
    report = deliver(
        box,
        transport(smtp_server),
        batch=result.batch,
        on_progress=lambda d, t, r: progress.append((d, t, r.status)),
    )
    assert (report.total, report.sent, report.ok) == (2, 2, True)
    assert progress == [(1, 2, "sent"), (2, 2, "sent")]
    assert files(box.paths.outbox / "new") == []
    assert len(mailbox.Maildir(box.paths.sent, create=False)) == 2
    assert stored(box) == 0  # the copies in sent/ are synced: the ledger lets the messages go
    rows = box.rows(("sent",))
    assert [r.reply for r in rows] == [
        "250 2.0.0 Ok: queued as TEST00001",
        "250 2.0.0 Ok: queued as TEST00002",
    ]
    assert all(r.sent_at and r.account == "test" and r.attempts == 1 for r in rows)
    sent_file = box.path_of(rows[0])
    assert sent_file.name.endswith(":2,S") and sent_file.parent.name == "cur"
    # what went over the wire has no X-Letterkit headers and the account's From
    msg = smtp_server.messages[0].message
    assert not [h for h in msg if h.lower().startswith("x-letterkit")]
    assert msg["From"].addresses[0].addr_spec == USERNAME
    # the skip rule now says "sent"
    again = box.queue(letters(campaign, to=["kz-1"]))
    assert again.queued == 0 and again.skipped[0].reason.startswith("sent on ")


def test_queued_without_account_is_readdressed_at_delivery(campaign, box, smtp_server):
    box.queue(letters(campaign, to=["kz-1"]))
    (row,) = box.pending()
    message = box.path_of(row).read_bytes()
    assert (
        row.account == "" and f"<{SIGNER_FROM}>".encode() in message.split(b"\n\n")[0].split(b"\r\n\r\n")[0]
    )
    report = deliver(box, transport(smtp_server))
    assert report.sent == 1
    msg = smtp_server.messages[0].message
    assert msg["From"].addresses[0].addr_spec == USERNAME
    assert msg["Reply-To"].addresses[0].addr_spec == SIGNER_FROM
    assert msg["From"].addresses[0].display_name == "A. Person"
    (sent,) = box.rows(("sent",))
    assert sent.account == "test"
    copy = box.path_of(sent).read_bytes()
    assert copy == box.stored_message(sent) and f"<{USERNAME}>".encode() in copy  # the copy is what went
    assert files(box.paths.outbox / "new") == [] and files(box.paths.sent / "tmp") == []  # the old file went


def test_a_letter_is_dated_again_only_when_it_waited(campaign, box, smtp_server):
    """A letter leaving within five minutes of being queued keeps its Date (a big batch going
    at once is not waiting); one that waited longer gets the time it leaves."""
    import datetime as dt
    import email.utils
    from dataclasses import replace

    from letterkit.delivery import as_it_leaves

    account = smtp_server.account()
    box.queue(letters(campaign, to=["kz-1"]), account=account)
    (row,) = box.pending()
    stored = box.stored_message(row)
    assert stored is not None
    queued = dt.datetime.fromisoformat(row.queued_at)
    for minutes, redated in ((4, False), (6, True)):
        leaves = queued + dt.timedelta(minutes=minutes)
        message = as_it_leaves(stored, row, account, leaves)
        assert (message is not stored) is redated
        date = email.message_from_bytes(message)["Date"]
        assert (email.utils.parsedate_to_datetime(date) == leaves.replace(microsecond=0)) is redated
    assert as_it_leaves(stored, replace(row, queued_at="not a time"), account, queued) is not stored


def test_rate_limit_paces_letters_after_the_first(campaign, box, smtp_server):
    box.queue(letters(campaign))
    waits: list[float] = []
    report = deliver(box, transport(smtp_server), rate=600, sleep=waits.append)  # one per 0.1 s
    assert report.sent == 4
    assert len(waits) == 3 and all(0 < w <= 0.1 for w in waits)
    box.queue(letters(campaign), resend=True)
    none: list[float] = []
    deliver(box, transport(smtp_server), rate=0, sleep=none.append)
    assert none == []


def test_a_real_rate_limit_takes_time(campaign, box, smtp_server):
    import time

    box.queue(letters(campaign, to=["kz-1", "kz-2", "kz-3"]))
    start = time.monotonic()
    assert deliver(box, transport(smtp_server), rate=1200).sent == 3  # 50 ms apart
    assert time.monotonic() - start >= 0.09


def test_reconcile_after_a_crash_between_send_and_ledger(campaign, box, smtp_server):
    box.queue(letters(campaign, to=["kz-1", "kz-2"]))
    first, second = box.pending()
    # killed after the rename to sent/ but before the ledger update
    os.replace(box.path_of(first), box.sent_file(first.file))
    # killed after the ledger commit but before the move from tmp/ to new/
    os.replace(box.path_of(second), box.paths.outbox / "tmp" / second.file)
    assert box.reconcile() == 2
    assert box.get(first.id).status == "sent"
    assert "after an interruption" in box.get(first.id).reply
    assert box.get(second.id).status == "queued" and box.path_of(second).exists()
    assert deliver(box, transport(smtp_server)).sent == 1
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == ["mission2@example.org"]


def test_reconcile_adopts_orphans_and_notes_missing_files(campaign, box):
    box.queue(letters(campaign, to=["kz-1", "kz-2"]))
    a, b = box.pending()
    conn = sqlite3.connect(box.paths.ledger)
    conn.execute("DELETE FROM letters WHERE id = ?", (a.id,))  # a power cut undid its commit
    conn.commit()
    conn.close()
    box.path_of(b).unlink()  # deleted by hand (or lost in a power cut): the ledger has it
    box.reconcile()
    rows = {r.recipient: r for r in box.pending()}
    # the orphan file is adopted: its envelope is its own To and Cc, and it says to check it
    adopted = rows["mission1@example.org"]
    assert adopted.status == "queued" and adopted.rcpt == a.rcpt and adopted.file == a.file
    assert adopted.key == f"outbox/{a.file}" and "check it before it goes" in adopted.reason
    assert rows["kz-2"].status == "queued" and box.path_of(b).read_bytes() == box.stored_message(b)
    assert stored(box) == 2  # the orphan's message is adopted with it, the undone row's dropped
    # gone from both the folder and the ledger: that letter is lost, and said so
    box.path_of(b).unlink()
    with sqlite3.connect(box.paths.ledger) as conn:
        conn.execute("DELETE FROM messages WHERE id = ?", (b.id,))
    box.reconcile()
    assert box.get(b.id).status == "failed" and "missing" in box.get(b.id).reason


def test_a_mail_program_moving_files_to_cur_is_undone(campaign, box):
    box.queue(letters(campaign, to=["kz-1"]))
    (row,) = box.pending()
    os.replace(box.path_of(row), box.paths.outbox / "cur" / f"{row.file}:2,S")
    box.reconcile()
    assert box.path_of(row).exists() and box.get(row.id).status == "queued"


def test_a_batch_delivered_at_once_writes_each_outbox_file_just_ahead(campaign, box, smtp_server):
    result = box.queue(letters(campaign), account=smtp_server.account(), write_outbox=False)
    assert result.queued == 4 and files(box.paths.outbox / "new") == [] and stored(box) == 4
    seen: list[list[str]] = []
    report = deliver(
        box,
        transport(smtp_server),
        batch=result.batch,
        on_progress=lambda d, t, r: seen.append(files(box.paths.sent / "cur")),
    )
    assert report.sent == 4 and smtp_server.count() == 4
    assert [len(s) for s in seen] == [1, 2, 3, 4]  # each letter's file moved to sent/ as it went
    assert files(box.paths.outbox / "new") == [] and files(box.paths.outbox / "tmp") == []
    assert stored(box) == 0


def test_the_copy_is_written_while_the_server_takes_the_letter(campaign, box, make_smtp_server):
    """Each letter's copy is written to sent/tmp before its reply is read (the server sees it
    there), renamed into sent/cur once the server said yes, and removed when it said no."""
    staged: list[int] = []

    def data_reply(number: int, rcpt: list[str]) -> str | None:
        for _ in range(400):  # the client writes the copy before it reads this reply
            if files(box.paths.sent / "tmp"):
                break
            time.sleep(0.005)
        staged.append(len(files(box.paths.sent / "tmp")))
        return {2: "550 5.7.1 refused here", 3: "451 4.3.0 try again later"}.get(number)

    server = make_smtp_server(data_reply=data_reply)
    with box.session():  # as send_letters does: no outbox files are written
        result = box.queue(letters(campaign), account=server.account(), write_outbox=False)
        report = deliver(box, transport(server), batch=result.batch)
    assert staged[:4] == [1, 1, 1, 1]  # one copy waiting in tmp/ while the server decides
    assert (report.sent, report.failed) == (3, 1) and server.count() == 3
    assert files(box.paths.sent / "tmp") == []  # the refused and the deferred one left none behind
    sent = box.rows(("sent",))
    assert sorted(files(box.paths.sent / "cur")) == sorted(box.sent_file(r.file).name for r in sent)
    assert all(box.sent_file(r.file).read_bytes() == box.stored_message(r) for r in sent)
    (failed,) = box.rows(("failed",))
    assert failed.recipient == "kz-2" and not box.sent_file(failed.file).exists()


def test_letters_left_by_a_stopped_batch_are_in_the_outbox_folder(campaign, box, make_smtp_server):
    server = make_smtp_server()
    result = box.queue(letters(campaign), account=server.account(), write_outbox=False)
    server.stop()  # unreachable: nothing can go
    report = deliver(box, transport(server), batch=result.batch)
    assert report.error is not None and report.deferred == 4
    assert len(mailbox.Maildir(box.paths.outbox, create=False)) == 4  # mail tools see them


def test_a_server_lost_mid_batch_keeps_the_rest_queued(campaign, box, make_smtp_server):
    server = make_smtp_server()
    result = box.queue(letters(campaign), account=server.account(), write_outbox=False)

    def stop_after_two(done: int, total: int, row) -> None:  # type: ignore[no-untyped-def]
        if done == 2:
            server.stop()

    report = deliver(box, transport(server), batch=result.batch, on_progress=stop_after_two)
    assert report.error is not None and (report.sent, report.deferred) == (2, 2)
    assert server.count() == 2
    sent, waiting = box.rows(("sent",)), box.pending()
    assert [r.recipient for r in sent] == ["kz-1", "kz-2"] and all(box.path_of(r).exists() for r in sent)
    assert [r.recipient for r in waiting] == ["kz-3", "kz-4"]
    assert all("not sent yet" in r.reply for r in waiting)
    assert len(mailbox.Maildir(box.paths.outbox, create=False)) == 2 and stored(box) == 2


def test_a_copy_that_cannot_be_filed_keeps_the_message(campaign, box, smtp_server, monkeypatch):
    box.queue(letters(campaign, to=["kz-1"]))
    (row,) = box.pending()
    cur = box.paths.sent / "cur"

    class DiskFailsOnceConnected(SmtpTransport):
        def open(self) -> None:
            super().open()
            cur.rmdir()
            cur.write_text("not a folder")  # from now on, no copy can be filed

    report = deliver(box, DiskFailsOnceConnected(smtp_server.account(), lambda: PASSWORD))
    assert report.sent == 1 and smtp_server.count() == 1  # sent, and recorded as sent
    sent = box.get(row.id)
    assert sent.status == "sent" and "the ledger keeps the message" in sent.reply
    assert box.stored_message(sent) is not None
    cur.unlink()
    cur.mkdir()

    def disk_full(*args, **kwargs):  # type: ignore[no-untyped-def]  (a full disk cannot be made here)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("letterkit.maildir.write_maildir", disk_full)
        assert box.reconcile() == 0 and box.pending() == []  # usable meanwhile
    box.reconcile()  # the next operation files the copy from the ledger
    assert (copy := box.path_of(sent)) is not None and copy.exists()
    assert smtp_server.count() == 1


def test_an_older_ledger_is_read_as_it_is(campaign, box, tmp_path):
    """A read-only look at a ledger from an older letterkit (without the newer columns)
    works, and changes nothing in it; the next command that writes adds the columns."""
    box.queue(letters(campaign, to=["kz-1"]))
    box.close()
    with sqlite3.connect(box.paths.ledger) as conn:
        for column in ("timezone", "limits"):
            conn.execute(f"ALTER TABLE letters DROP COLUMN {column}")
    conn.close()
    with Outbox(box.paths.root, readonly=True) as look:
        (row,) = look.pending()
        assert (row.recipient, row.timezone, row.limits) == ("kz-1", "", "")
        assert look.ledger.limits_of(["queued"]) == []
    with sqlite3.connect(box.paths.ledger) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(letters)")}
    conn.close()
    assert "limits" not in columns
    with Outbox(box.paths.root) as again:
        assert [r.recipient for r in again.pending()] == ["kz-1"]
    with sqlite3.connect(box.paths.ledger) as conn:
        assert "limits" in {r[1] for r in conn.execute("PRAGMA table_info(letters)")}
    conn.close()


def test_one_process_at_a_time(campaign, box, tmp_path):
    box.queue(letters(campaign, to=["kz-1"]))
    with box.session(), Outbox(tmp_path / "state") as other:
        with pytest.raises(OutboxError, match="another letterkit process is using the outbox"):
            other.queue(letters(campaign, to=["kz-2"]))
        assert len(other.pending()) == 1  # reading still works


def test_drop_and_mark_done(hand_campaign, box):
    result = box.queue(letters(hand_campaign, to=["kz-1", "kz-2"]))
    kz1, kz2 = box.pending()
    dropped = box.drop(kz1.id)
    assert dropped.recipient == "kz-1" and not box.path_of(kz1).exists()
    assert box.stored_message(kz1) is None and stored(box) == 1
    assert [r.recipient for r in box.pending()] == ["kz-2"]
    with pytest.raises(OutboxError, match="not a letter prepared for delivery by hand"):
        box.mark_done(kz2.id, "fax")
    (hand,) = result.prepared
    assert Path(hand.files["pdf"]).is_file() and Path(hand.files["txt"]).is_file()
    done = box.mark_done(hand.id, "post")
    assert (done.status, done.channel) == ("done", "post") and done.sent_at
    with pytest.raises(OutboxError, match="unknown channel"):
        box.mark_done(hand.id, "pigeon")
    with pytest.raises(OutboxError, match="no letter #999"):
        box.drop(999)


def test_send_letters_in_one_call(campaign, box, smtp_server):
    report = send_letters(letters(campaign), account=smtp_server.account(), outbox=box,
                          password_provider=lambda: PASSWORD, rate=0)  # fmt: skip
    assert report.ok and report.queue.queued == 4 and report.delivery.sent == 4
    assert smtp_server.count() == 4
    queued_only = send_letters(letters(campaign), account=None, outbox=box, resend=True)
    assert queued_only.delivery is None and queued_only.queue.queued == 4


def test_readonly_outbox_never_creates_anything(tmp_path, campaign):
    ro = Outbox(tmp_path / "nothing", readonly=True)
    letter = next(letters(campaign, to=["kz-1"]))
    assert ro.skip_reason(letter) == ("", None)
    assert ro.rows() == [] and ro.count(("queued",)) == 0
    assert not (tmp_path / "nothing").exists()


def test_one_session_for_several_batches(campaign, box, smtp_server):
    """Queue and deliver twice under one lock: the first batch's clean-up never gets in the way."""
    with box.session():
        for to in (["kz-1", "kz-2"], ["kz-3", "kz-4"]):
            result = box.queue(letters(campaign, to=to), account=smtp_server.account(), write_outbox=False)
            assert deliver(box, transport(smtp_server), batch=result.batch, rate=0).sent == 2
    assert smtp_server.count() == 4 and stored(box) == 0
    assert len(mailbox.Maildir(box.paths.sent, create=False)) == 4
