"""The outbox: letters queued durably, the Maildir views of them, and reconciliation.

Files (under :func:`letterkit.config.data_dir`, or any ``root`` you pass)::

    ledger.sqlite3         every letter and its message (:mod:`letterkit.ledger`)
    outbox/{tmp,new,cur}   a Maildir: one file per letter waiting to go (or failed)
    sent/{tmp,new,cur}     a Maildir: a copy of every message the server accepted
    prepared/CAMPAIGN/     PDF and text of letters that go by fax, post or web form

Both folders are ordinary Maildirs (``mutt -f ~/.local/share/letterkit/outbox``);
each file is exactly the message that is (or was) sent.  The ledger is the
truth and the folders are its views:

* :meth:`Outbox.queue` renders and checks every letter, then writes all their
  rows and messages in one transaction committed with ``synchronous=FULL``:
  that commit is the moment the letters count as queued, all at once, for one
  fsync.  Any error before it: nothing is queued.  Then the outbox files are
  written (unless the letters are delivered at once, see
  :mod:`letterkit.delivery`); they are not fsynced, since the ledger holds the same
  bytes and :meth:`Outbox.reconcile` rewrites a damaged one.
* Delivery files each sent message into ``sent/cur`` (written to ``sent/tmp``
  while the server takes it, or moved from the outbox) *before* it records the
  letter as sent: a copy in ``sent/cur`` is the mark reconcile goes by when a
  process was killed in between (``tmp/`` is no mark: reconcile clears it).
* :meth:`Outbox.reconcile`, at the start of every command that changes the
  outbox: a letter still queued whose copy is in ``sent/`` is marked sent; a
  queued letter's missing or damaged outbox file is rewritten; a recent sent
  letter's missing copy is rewritten; a regular file put into ``outbox/new``
  by hand (or by letterkit 0.1) is adopted as a queued letter, its envelope
  taken from its own To and Cc (never from a header letterkit would trust),
  and listed before it is sent.  So a process killed at any moment (even
  ``kill -9``) loses no letter, and at most the one in flight can go twice.

Only one process changes an outbox at a time (a lock file, ``outbox.lock``;
:meth:`Outbox.session` holds it across a queue and its delivery).
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import maildir
from .errors import OutboxError
from .fileutil import try_lock, unlock
from .ledger import DELIVERED, IN_OUTBOX, STATUSES, Ledger, Row, now_text, rcpt_text
from .maildir import Paths, legacy_message, size, stage, unique_name, write_maildir
from .validation import check_address

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextlib import AbstractContextManager

    from .config import Account
    from .letters import Letter

__all__ = [
    "DELIVERED",
    "IN_OUTBOX",
    "OTHER_SIGNER",
    "STATUSES",
    "Outbox",
    "Paths",
    "QueueResult",
    "Row",
    "Skipped",
]

HAND_CHANNELS = ("fax", "post", "web")
OTHER_SIGNER = "this recipient already got this letter from another signer on this machine"


@dataclass(frozen=True)
class Skipped:
    """A letter :meth:`Outbox.queue` left out, and why."""

    key: str
    recipient: str
    recipient_name: str
    reason: str
    status: str = ""  # the status of the earlier letter, if any
    row_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "recipient": self.recipient,
            "recipient_name": self.recipient_name,
            "reason": self.reason,
            "status": self.status,
            "id": self.row_id,
        }


@dataclass
class QueueResult:
    """What :meth:`Outbox.queue` did (counts and a batch id: memory stays flat).

    ``batch`` tags every letter this call queued and every letter of it that was
    already waiting (e.g. from an interrupted run): delivering ``batch`` sends
    exactly those.  ``queued``: new e-mail letters; ``waiting``: letters of this
    batch queued before; ``prepared``: letters written out for delivery by hand;
    ``skipped``: left out, and why (empty when an ``on_skip`` callback took them).
    """

    batch: str = ""
    queued: int = 0
    waiting: int = 0
    prepared: list[Row] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def to_deliver(self) -> int:
        """How many e-mail letters of this batch wait to be delivered."""
        return self.queued + self.waiting


class Outbox:
    """The outbox, sent folder and ledger under ``root`` (default: the user's data dir).

    ``readonly=True`` opens an existing ledger without writing anything (what
    ``send --dry-run`` and the listings use); a missing ledger then reads as empty.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> None:
        if root is None:
            from .config import data_dir

            root = data_dir()
        self.paths = Paths.under(Path(root))
        self.readonly = readonly
        self.ledger = Ledger(self.paths.ledger, readonly=readonly)
        self._lock_fd: int | None = None
        self._reconciled = False  # while the lock is held

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Outbox {self.paths.root}>"

    def close(self) -> None:
        self.ledger.close()

    # --- the lock --------------------------------------------------------------------

    def session(self) -> AbstractContextManager[None]:
        """Hold the outbox across several calls (a queue, then its delivery): other
        processes get an :class:`OutboxError` meanwhile, and it is reconciled once."""
        return self._locked()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_fd is not None:  # re-entrant within one Outbox
            yield
            return
        self.paths.root.mkdir(parents=True, exist_ok=True)
        lock = self.paths.root / "outbox.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not try_lock(fd):
                raise OutboxError(
                    f"another letterkit process is using the outbox ({lock})",
                    hint="wait for it to finish; see what is queued with: letterkit outbox",
                )
            self._lock_fd, self._reconciled = fd, False
            try:
                yield
            finally:
                self._lock_fd, self._reconciled = None, False
                unlock(fd)
        finally:
            os.close(fd)

    def ensure_reconciled(self) -> None:
        """Reconcile once per lock (the lock must be held)."""
        if not self._reconciled:
            self.reconcile()

    # --- files -----------------------------------------------------------------------

    def outbox_file(self, name: str, where: str = "new") -> Path:
        return self.paths.outbox_file(name, where)

    def sent_file(self, name: str) -> Path:
        return self.paths.sent_file(name)

    def path_of(self, row: Row) -> Path | None:
        """Where the letter's message file is (outbox or sent), if it is an e-mail."""
        if row.channel != "email" or not row.file:
            return None
        return self.outbox_file(row.file) if row.status in IN_OUTBOX else self.sent_file(row.file)

    def stored_message(self, row: Row) -> bytes | None:
        """The message of an e-mail letter, as it waits or as it was sent."""
        if row.channel != "email":
            return None
        data = self.ledger.message(row.id)
        if data is None and (path := self.path_of(row)) is not None:
            with suppress(OSError):
                data = path.read_bytes()
        return legacy_message(data)[1] if data is not None else None

    def write_outbox(self, batch: str) -> None:
        """Write the outbox files of a batch's waiting letters (the ledger holds them)."""
        try:
            for row, data in self.ledger.with_messages(batch, IN_OUTBOX):
                if data is not None and size(self.outbox_file(row.file)) != len(data):
                    write_maildir(self.paths.outbox, row.file, data, "new")
        except OSError as exc:
            raise OutboxError(
                f"the letters are queued, but their files could not be written to {self.paths.outbox}: "
                f"{exc.strerror}",
                hint="'letterkit outbox' tries again",
            ) from None

    def stage_sent(self, row: Row, message: bytes) -> str | None:
        """Write the copy of a letter that is leaving into ``sent/tmp`` (not a mark: mail
        programs and reconcile ignore ``tmp/``), so that :meth:`file_sent` only has to
        rename it.  Delivery calls this while the server takes the message.  Returns the
        file's path, or None when there is nothing to stage (the outbox file holds the
        message already) or it could not be written (then :meth:`file_sent` tries itself)."""
        if size(self.outbox_file(row.file)) == len(message):
            return None
        try:
            return stage(self.paths.sent, row.file, message)
        except OSError:
            return None

    @staticmethod
    def drop_staged(staged: str | None) -> None:
        """Remove a copy staged for a letter that did not go."""
        if staged is not None:
            with suppress(OSError):
                os.unlink(staged)

    def file_sent(self, row: Row, message: bytes, staged: str | None = None) -> str:
        """Put a sent letter's copy into ``sent/`` (the mark reconcile goes by): the staged
        copy (see :meth:`stage_sent`), else the outbox file, else a new file.  Returns a
        note for the ledger if it could not be written (the ledger keeps the message)."""
        try:
            if staged is not None:
                try:
                    os.replace(staged, self.sent_file(row.file))
                except FileNotFoundError:
                    staged = None  # removed meanwhile: written below
                else:
                    with suppress(OSError):
                        os.unlink(self.outbox_file(row.file))  # a stale outbox file (a re-dated letter)
                    return ""
            try:
                os.replace(self.outbox_file(row.file), self.sent_file(row.file))
                if size(self.sent_file(row.file)) != len(message):  # re-dated or re-addressed
                    write_maildir(self.paths.sent, row.file, message, "cur")
            except FileNotFoundError:  # delivered at once: there was no outbox file
                write_maildir(self.paths.sent, row.file, message, "cur")
        except OSError as exc:
            self.drop_staged(staged)
            return f" (no copy in {self.paths.sent}: {exc.strerror or exc}; the ledger keeps the message)"
        return ""

    # --- queries ---------------------------------------------------------------------

    def get(self, row_id: int) -> Row:
        return self.ledger.get(row_id)

    def latest(self, key: str) -> Row | None:
        return self.ledger.latest(key)

    def iter_rows(
        self, statuses: Iterable[str] | None = None, *, campaign: str | None = None
    ) -> Iterator[Row]:
        return self.ledger.iter_rows(statuses, campaign=campaign)

    def rows(
        self, statuses: Iterable[str] | None = None, *, campaign: str | None = None, limit: int | None = None
    ) -> list[Row]:
        return self.ledger.rows(statuses, campaign=campaign, limit=limit)

    def batch_rows(self, batch: str, statuses: Iterable[str] | None = None) -> Iterator[Row]:
        return self.ledger.batch_rows(batch, statuses)

    def count(self, statuses: Iterable[str], *, batch: str | None = None) -> int:
        return self.ledger.count(statuses, batch=batch)

    def pending(self, *, include_failed: bool = True) -> list[Row]:
        """Letters in the outbox (queued, and failed unless ``include_failed`` is False)."""
        if not self.readonly and self.paths.ledger.exists():
            self.reconcile_if_free()
        return self.rows(IN_OUTBOX if include_failed else ("queued",))

    def from_other_signer(self, letter: Letter) -> Row | None:
        """The newest letter of the same campaign and template that this recipient already got
        (or that waits for it) from another signer on this machine, if any."""
        prefix = f"{letter.campaign}/{letter.template}/{letter.contact.id}/"
        return self.ledger.with_prefix(
            prefix, other_than=letter.key, statuses=("queued", "sent", "partial", "prepared", "done")
        )

    def skip_reason(
        self, letter: Letter, *, resend: bool = False, other_signers: bool = False
    ) -> tuple[str, Row | None]:
        """Why :meth:`queue` would leave ``letter`` out ("" if not), and the deciding row.

        A recipient that already got this template from *another* signer on this
        machine (a changed ``--name``/``--email``) is skipped too, unless ``resend``
        or ``other_signers`` (the user was asked and said yes).
        """
        row = self.ledger.latest(letter.key)
        if row is None:
            other = None if (resend or other_signers) else self.from_other_signer(letter)
            if other is None:
                return "", None
            when = (other.sent_at or other.queued_at)[:10]
            return (
                f"{OTHER_SIGNER}: {other.signer} on {when} (#{other.id}, {other.status}); "
                "--resend sends it anyway",
                other,
            )
        when = (row.sent_at or row.queued_at)[:10]
        if row.status == "queued":
            return f"already waiting in the outbox (#{row.id})", row
        if row.status == "failed":
            return (
                f"failed earlier and still in the outbox (#{row.id}): {row.reply} — retry with "
                f"'letterkit outbox flush --retry-failed' or remove it with 'letterkit outbox drop {row.id}'",
                row,
            )
        if resend:
            return "", row
        if row.status in ("sent", "partial"):
            return f"sent on {when} (#{row.id}); use --resend to send it again", row
        if row.status == "prepared":
            return f"prepared for delivery by hand on {when} (#{row.id}); --resend redoes it", row
        if row.status == "done":
            return f"delivered by hand ({row.channel}) on {when} (#{row.id}); --resend redoes it", row
        return "", row

    # --- reconciliation ----------------------------------------------------------------

    def reconcile_if_free(self, *, adopt: bool = False) -> None:
        """Reconcile unless another process holds the outbox (then it is its job)."""
        with suppress(OutboxError), self._locked():
            self.reconcile(adopt=adopt)

    def reconcile(self, *, adopt: bool = True) -> int:
        """Bring the ledger and the folders into agreement after an interruption; returns how
        many letters were fixed.  ``adopt``: also take in messages put into ``outbox/new`` by
        hand (listings pass False: a read-only look never queues anything)."""
        fixed = maildir.reconcile(self.paths, self.ledger, adopt=adopt)
        if self._lock_fd is not None:
            self._reconciled = True
        return fixed

    # --- queueing --------------------------------------------------------------------

    def queue(
        self,
        letters: Iterable[Letter],
        *,
        account: Account | None = None,
        resend: bool = False,
        prepare_hand: bool = True,
        on_skip: Callable[[Skipped], None] | None = None,
        write_outbox: bool = True,
        other_signers: bool = False,
        limits: str = "",
        window: str = "",
    ) -> QueueResult:
        """Write every letter durably to the outbox (e-mail) or prepare it by hand; all or nothing.

        ``letters`` may be a generator (e.g. :func:`letterkit.letters.compose`): rows
        go into one open transaction a few hundred at a time, so memory stays flat.
        If any letter raises, nothing is queued.  ``account`` sets From (its own
        address, the signer's name); without one the signer's e-mail is used and
        From is set again when the letter leaves.  ``write_outbox=False`` leaves the
        outbox files unwritten (the letters are delivered at once; a stopped
        delivery writes them).  Letters for contacts without e-mail are written as
        PDF and text under ``prepared/CAMPAIGN/`` (with ``prepare_hand``).  Skipped
        letters go to ``on_skip`` if given, else into ``QueueResult.skipped``.
        ``limits``, ``window``: the ``--rate`` and ``--window`` they were queued with, kept
        with them (they hold when the letters are flushed later: :func:`letterkit.service.flush`).
        """
        result = QueueResult(batch=uuid.uuid4().hex)
        skip = on_skip or result.skipped.append
        with self._locked():
            self.ensure_reconciled()
            with self.ledger.transaction(durable=True):  # this commit is when the letters are queued
                hand = self._add_letters(
                    letters, account, result, skip, resend=resend, other_signers=other_signers
                )
                if limits or window:  # the --rate and --window given: they hold when the letters are flushed
                    self.ledger.set_limits(result.batch, limits, window)
                prepared = self._prepare(hand) if (hand and prepare_hand) else {}
                for _letter, row_id in hand:
                    self.ledger.update(row_id, file=json.dumps(prepared.get(row_id, {})))
            if write_outbox and result.queued:
                self.write_outbox(result.batch)
        result.prepared = list(self.batch_rows(result.batch, ("prepared",))) if hand else []
        return result

    def _add_letters(
        self,
        letters: Iterable[Letter],
        account: Account | None,
        result: QueueResult,
        skip: Callable[[Skipped], None],
        *,
        resend: bool,
        other_signers: bool,
    ) -> list[tuple[Letter, int]]:
        """Add the rows and messages of ``letters`` (inside the open transaction); returns the
        hand letters with their ids, to prepare once every letter is known to be valid."""
        from . import clock
        from .message import message_bytes

        from_addr = check_address(account.from_addr, "account From address") if account else None
        date, queued_at, next_id = clock.now(), now_text(), self.ledger.next_id()
        known: dict[str, bool] = {}
        rows: list[dict[str, Any]] = []
        messages: list[tuple[int, bytes]] = []
        hand: list[tuple[Letter, int]] = []
        for letter in letters:
            prefix = f"{letter.campaign}/{letter.template}/"
            if prefix not in known:
                known[prefix] = self.ledger.has_prefix(prefix)
            if known[prefix] and self._skipped(
                letter, result, skip, resend=resend, other_signers=other_signers
            ):
                continue
            row_id, next_id = next_id, next_id + 1
            data, message_id = b"", ""
            if letter.channel == "email":
                data, message_id = message_bytes(letter, from_addr=from_addr, date=date)
                messages.append((row_id, data))
                result.queued += 1
            else:
                hand.append((letter, row_id))
            rows.append(_new_row(row_id, letter, result.batch, queued_at, account, message_id, bool(data)))
            if len(rows) >= 256:
                self.ledger.insert(rows, messages)
                rows, messages = [], []
        self.ledger.insert(rows, messages)
        return hand

    def _skipped(
        self,
        letter: Letter,
        result: QueueResult,
        skip: Callable[[Skipped], None],
        *,
        resend: bool,
        other_signers: bool,
    ) -> bool:
        reason, prior = self.skip_reason(letter, resend=resend, other_signers=other_signers)
        if not reason:
            return False
        status, prior_id = (prior.status, prior.id) if prior else ("", None)
        skip(Skipped(letter.key, letter.contact.id, letter.contact.name, reason, status, prior_id))
        if (
            prior is not None
            and prior.key == letter.key
            and prior.status == "queued"
            and prior.batch != result.batch
        ):
            self.ledger.update(
                prior.id, batch=result.batch
            )  # waiting from an earlier run: goes with this batch
            result.waiting += 1
        return True

    def _prepare(self, letters: list[tuple[Letter, int]]) -> dict[int, dict[str, str]]:
        """Write PDF and text for each hand letter under prepared/CAMPAIGN/, named by its ledger
        id (and signer), so that no run ever overwrites the files of another letter."""
        from .export import prepare_by_hand, slugify

        done: dict[int, dict[str, str]] = {}
        for letter, row_id in letters:
            prefix = f"{row_id:05d}-{slugify(letter.signer.name, 'signer')}-"
            files = prepare_by_hand(
                letter, self.paths.prepared / slugify(letter.campaign, "campaign"), prefix=prefix
            )
            done[row_id] = {k: str(v) for k, v in files.items()}
        return done

    # --- hand letters and removal ------------------------------------------------------

    def mark_done(self, row_id: int, via: str, *, force: bool = False) -> Row:
        """Record that a prepared letter was delivered by hand (fax, post or web form).

        Marking it again by the same channel changes nothing; by another channel it
        is refused unless ``force`` (a record of delivery is not silently rewritten),
        and then the earlier record is kept in the letter's ``reply``.
        """
        if via not in HAND_CHANNELS:
            raise OutboxError(f"unknown channel {via!r}", hint=f"use one of: {', '.join(HAND_CHANNELS)}")
        row = self.get(row_id)
        if row.status not in ("prepared", "done"):
            raise OutboxError(
                f"letter #{row_id} is {row.status}, not a letter prepared for delivery by hand",
                hint="'letterkit log' lists prepared letters",
            )
        note = row.reply
        if row.status == "done":
            if row.channel == via:
                return row
            earlier = f"recorded first as delivered by {row.channel} on {row.sent_at[:10]}"
            if not force:
                raise OutboxError(
                    f"letter #{row_id} is already {earlier}",
                    hint=f"if it went by {via} instead (or too), pass --force: the earlier record is kept",
                )
            note = "; ".join(n for n in (row.reply, earlier) if n)
        with self.ledger.transaction():
            self.ledger.update(row_id, status="done", channel=via, sent_at=now_text(), reply=note)
        return self.get(row_id)

    def droppable(self, row_ids: Iterable[int]) -> list[Row]:
        """The letters :meth:`drop` would take out (raises for one not in the outbox):
        what to show a person before asking."""
        rows = [self.get(row_id) for row_id in row_ids]
        for row in rows:
            if row.status not in IN_OUTBOX:
                raise OutboxError(
                    f"letter #{row.id} is {row.status}, not waiting in the outbox",
                    hint="'letterkit outbox' lists what can be dropped",
                )
        return rows

    def drop(self, row_id: int) -> Row:
        """Take a queued or failed letter out of the outbox: it is not sent.

        Its outbox file goes; its ledger row stays as the record (status
        ``dropped``, the time in ``sent_at``, what it was in ``reply``), so
        ``letterkit log`` still shows what happened to it.  Returns the row as it was.
        """
        with self._locked():
            self.ensure_reconciled()
            (row,) = self.droppable([row_id])
            was = f"dropped by you; it was {row.status}" + (f": {row.reply}" if row.reply else "")
            with self.ledger.transaction():
                self.ledger.update(row_id, status="dropped", sent_at=now_text(), reply=was)
                self.ledger.delete_message(row_id)
            with suppress(FileNotFoundError):
                self.outbox_file(row.file).unlink()
        return row


def _new_row(
    row_id: int,
    letter: Letter,
    batch: str,
    queued_at: str,
    account: Account | None,
    message_id: str,
    email: bool,
) -> dict[str, Any]:
    s = letter.signer
    return {
        "id": row_id,
        "key": letter.key,
        "campaign": letter.campaign,
        "template": letter.template,
        "language": letter.language,
        "recipient": letter.contact.id,
        "recipient_name": letter.contact.name,
        "timezone": letter.contact.timezone,
        "signer": f"{s.name} <{s.email}>" if s.email else s.name,
        "signer_name": s.name,
        "signer_email": s.email,
        "channel": letter.channel,
        "status": "queued" if email else "prepared",
        "subject": letter.subject,
        "rcpt": rcpt_text(
            [check_address(a, f"recipient address of {letter.contact.id}") for a in (*letter.to, *letter.cc)]
        ),
        "message_id": message_id,
        "queued_at": queued_at,
        "account": account.name if account else "",
        "file": unique_name() if email else "",
        "batch": batch,
    }
