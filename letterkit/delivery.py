"""Delivery: passes over the queued letters that are due, one SMTP connection for all of them.

For each letter due now (:mod:`letterkit.schedule`: its back-off, send window
and the daily quota), oldest first: wait for the pace (:mod:`letterkit.pacing`),
set its From for the account and its Date for now (when either changed since it
was queued), send it (its copy is written to ``sent/tmp`` while the server takes
it), file that copy in ``sent/cur`` (the mark reconcile goes by), record the
outcome in the ledger.  Outcomes are committed every
:data:`letterkit.ledger.COMMIT_EVERY` letters and before every wait, so a kill
loses at most those records — and :meth:`letterkit.outbox.Outbox.reconcile`
restores them from ``sent/``: at most the letter in flight at the kill can go twice.

A temporary failure (4xx, a dropped connection) *defers* that letter: it gets
its own next-attempt time (exponential back-off with jitter, in the ledger) and
the pass goes on; when the pass is over, the run sleeps until the next back-off
ends (if that is soon) and makes another pass.  A reply that means "slow down"
halves the pace (:mod:`letterkit.pacing`); one that means "you sent too much"
stops the batch, the letters left waiting a day.  A permanent refusal fails
that letter only.  When the connection cannot be had (server unreachable, TLS
or login refused), the batch stops (after a few reconnections with back-off in
the middle of a batch): the letters left stay queued, their files are written
to the outbox, and :attr:`DeliveryReport.error` says why.  The run ends when
nothing more is due soon; :attr:`DeliveryReport.next_due` says what waits, until when.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import InvalidValue, LetterkitError
from .ledger import COMMIT_EVERY, IN_OUTBOX
from .pacing import Pace, SendingBlocked, classify
from .schedule import Due, Quota, Schedule, backoff, due, sent_last_day
from .transport import DeliveryResult, ServerUnreachable, retry_delay
from .validation import check_address, is_loopback

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .config import Account
    from .ledger import Row
    from .outbox import Outbox, QueueResult
    from .transport import Transport

STALE_DATE_SECONDS = 300  # a letter whose Date is older than this gets a new one as it leaves (one
# held by a quota, a window, a back-off, a slow pace or a later flush; not one of a batch going now)
MAX_SERVER_DOWN = 3  # failed reconnections in a row (each after a back-off) before the batch stops
BLOCKED_FOR = dt.timedelta(days=1)  # after "you sent too much": a provider's daily quota renews
__all__ = ["DeliveryReport", "Pace", "SendReport", "as_it_leaves", "deliver", "refuse_placeholders"]


@dataclass
class DeliveryReport:
    """What :func:`deliver` did: counts per outcome (see :meth:`Outbox.batch_rows`).

    ``deferred`` letters are still queued (a temporary failure, or never tried
    because the batch stopped); ``waiting`` ones are queued too, but only wait for
    their send window or the daily quota (no failure: they go on a later run).
    ``next_due`` is when the first letter left is due and why; ``notes`` what the
    run said about its pace; ``error`` is why the batch stopped early, or None.
    """

    batch: str = ""
    account: str = ""
    total: int = 0
    sent: int = 0
    partial: int = 0
    failed: int = 0
    deferred: int = 0
    error: LetterkitError | None = None
    waiting: int = 0
    next_due: Due | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.partial or self.failed or self.deferred or self.error)

    @property
    def handled(self) -> int:
        """Letters with an outcome so far (sent, partial, failed or deferred)."""
        return self.sent + self.partial + self.failed + self.deferred

    def count(self, status: str) -> None:
        field = {"sent": "sent", "partial": "partial", "failed": "failed", "queued": "deferred"}[status]
        setattr(self, field, getattr(self, field) + 1)


@dataclass
class SendReport:
    """What :func:`send_letters` did: the queueing, then the delivery (None without an account)."""

    queue: QueueResult
    delivery: DeliveryReport | None

    @property
    def ok(self) -> bool:
        return self.delivery is None or self.delivery.ok


def as_it_leaves(message: bytes, row: Row, account: Account, now: dt.datetime | None = None) -> bytes:
    """The stored message with From set for ``account`` (when it was queued for another or
    none) and Date set to now (when it waited): edited as an ``EmailMessage``."""
    import email
    import email.policy
    import email.utils
    from email.headerregistry import Address

    readdress = row.account != account.name
    msg = None
    if readdress:
        msg = email.message_from_bytes(message, policy=email.policy.SMTP)
        del msg["From"], msg["Reply-To"]
        msg["From"] = Address(row.signer_name, addr_spec=account.from_addr)
        if row.signer_email and row.signer_email.lower() != account.from_addr.lower():
            msg["Reply-To"] = Address(row.signer_name, addr_spec=row.signer_email)
    now = now or clock.now()
    if _waited(row, now):
        msg = msg or email.message_from_bytes(message, policy=email.policy.SMTP)
        del msg["Date"]
        msg["Date"] = email.utils.format_datetime(now)
    return msg.as_bytes() if msg is not None else message


def _waited(row: Row, now: dt.datetime) -> bool:
    """Whether the letter was queued more than :data:`STALE_DATE_SECONDS` ago (its Date, set
    when it was queued, would then no longer say when it left)."""
    try:
        queued = dt.datetime.fromisoformat(row.queued_at)
    except ValueError:
        return True
    return queued.tzinfo is None or abs((now - queued).total_seconds()) > STALE_DATE_SECONDS


def refuse_placeholders(box: Outbox, batch: str, statuses: Iterable[str], account: Account) -> None:
    """Stop before the first letter leaves if one is signed with placeholder details
    (a reserved example domain, "Your Name"...) and the server is not on this machine."""
    from .placeholders import placeholder_reason

    if is_loopback(account.host):
        return
    for row in box.batch_rows(batch, statuses):
        if reason := placeholder_reason(name=row.signer_name, email=row.signer_email):
            raise InvalidValue(
                f"letter #{row.id} to {row.recipient} is signed with placeholder details ({reason}); "
                "nothing was sent and the letters stay in the outbox",
                hint=f"remove it with 'letterkit outbox drop {row.id}', set your own details with "
                "'letterkit signer set', and send again",
            )


def deliver(
    box: Outbox,
    transport: Transport,
    *,
    batch: str | None = None,
    rate: float = 0.0,
    retry_failed: bool = False,
    on_progress: Callable[[int, int, Row], None] | None = None,
    on_wait: Callable[[float], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] | None = None,
    schedule: Schedule | None = None,
) -> DeliveryReport:
    """Deliver the queued letters that are due over ``transport``, oldest first (see the
    module docstring); letters deferred meanwhile are tried again when their back-off ends.

    ``batch``: only the letters of one :meth:`Outbox.queue` call (default: every queued
    letter; they become a new batch).  ``rate``: letters per minute (0: no limit).
    ``retry_failed`` also retries letters refused before.  ``schedule``: daily quota, send
    window, back-off (default: none, the back-off base of ``$LETTERKIT_RETRY_DELAY``).
    ``on_progress(done, total, row)`` after each attempt, ``on_wait(seconds)`` before each
    wait, ``on_note(text)`` when the pace changes.  ``now``/``sleep``: the clock (default
    :func:`clock.running`; tests pass a fake one).  The transport is opened here if
    needed and left open (the caller closes it).
    """
    import uuid

    now = now or clock.running()
    account = transport.account
    mail_from = check_address(account.from_addr, f"account {account.name!r} From address")
    statuses = IN_OUTBOX if retry_failed else ("queued",)
    with box.session():
        box.ensure_reconciled()
        if batch is None:
            batch = uuid.uuid4().hex
            with box.ledger.transaction():
                box.ledger.new_batch(batch, statuses)
        report = DeliveryReport(batch, account.name, box.ledger.count(statuses, batch=batch, channel="email"))
        if not report.total:
            return report
        refuse_placeholders(box, batch, statuses, account)
        try:
            transport.open()
        except LetterkitError as exc:  # unreachable, TLS, AUTH, no password: nothing goes
            _stop(box, report, batch, statuses, exc, from_id=0)
            return report
        pace = Pace(rate, sleep=sleep, monotonic=lambda: now().timestamp(), on_wait=on_wait)
        run = _Run(box, transport, report, mail_from, pace, schedule or Schedule(backoff_base=retry_delay()))
        run.now, run.sleep, run.on_progress, run.on_wait, run.on_note = (
            now,
            sleep,
            on_progress,
            on_wait,
            on_note,
        )
        run.go(statuses)
    if report.error is not None or report.deferred:
        box.write_outbox(batch)  # what is left waits as files too (mail tools see it)
    return report


def _iso(when: dt.datetime) -> str:
    """A next-attempt time as the ledger keeps it (UTC, to the microsecond: sorts as text)."""
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


class _Run:
    """One delivery run: passes over the due letters until nothing more is due in it.

    Each pass sends, oldest first, the letters due now (:func:`letterkit.schedule.due`);
    a letter that meets a temporary failure gets its back-off and the pass goes on.
    Between passes the run sleeps until the next back-off ends, if that is soon
    (:attr:`Schedule.in_run_wait`); letters held by the window or the quota end the
    run, with :attr:`DeliveryReport.next_due` saying when the first of them is due.
    """

    def __init__(
        self, box: Outbox, transport: Transport, report: DeliveryReport, mail_from: str, pace: Pace,
        schedule: Schedule,
    ) -> None:  # fmt: skip
        self.box, self.ledger, self.transport, self.report = box, box.ledger, transport, report
        self.mail_from, self.pace, self.schedule = mail_from, pace, schedule
        self.now: Callable[[], dt.datetime] = clock.now
        self.sleep: Callable[[float], None] = time.sleep
        self.on_progress: Callable[[int, int, Row], None] | None = None
        self.on_wait: Callable[[float], None] | None = None
        self.on_note: Callable[[str], None] | None = None
        self.server_down = 0  # connection failures in a row
        self.deferred_ids: set[int] = set()  # letters deferred in this run (counted once)
        self.hold_until: dt.datetime | None = None  # no connection before this (server back-off)
        self.quota = Quota(0)

    def note(self, text: str) -> None:
        self.report.notes.append(text)
        if self.on_note is not None:
            self.on_note(text)

    def go(self, statuses: Sequence[str]) -> None:
        account = self.transport.account.name
        self.quota = Quota(self.schedule.per_day, sent_last_day(self.ledger, account, self.now()))
        with self.ledger.transaction():
            while not self._pass(statuses):
                statuses = ("queued",)  # a letter refused again in this run stays refused
                self.ledger.commit_and_continue()  # nothing stays unrecorded while we wait
                first = self._next_due()
                if first is None:
                    break
                seconds = (first.at - self.now()).total_seconds()
                if seconds > 0 and (first.why != "back-off" or seconds > self.schedule.in_run_wait):
                    break
                if seconds > 0:
                    if self.on_wait is not None:
                        self.on_wait(seconds)
                    self.sleep(seconds)
            self._finish()

    def _pass(self, statuses: Sequence[str]) -> bool:
        """Send every letter due now; True when the batch must stop."""
        now = self.now()
        if self.hold_until is not None and self.hold_until > now:
            return False
        for row, stored in self.ledger.with_messages(self.report.batch, statuses, due=_iso(now)):
            now = self.now()
            when = due(row, now, self.schedule, self.quota)
            if when.at > now:
                if (row.next_attempt_at, row.wait_reason) != (_iso(when.at), when.why):
                    self.ledger.update(row.id, next_attempt_at=_iso(when.at), wait_reason=when.why)
                continue
            if self.pace.must_wait():
                self.ledger.commit_and_continue()  # nothing stays unrecorded while we wait
            message = as_it_leaves(stored, row, self.transport.account, now) if stored is not None else None
            copy = _Copy(self.box, row, message)
            try:
                result = _send_one(self.transport, copy, self.mail_from, self.pace)
                self.server_down = 0
                if self._outcome(row, result, copy, stored_changed=message is not stored):
                    return True
            except ServerUnreachable as exc:
                return self._server_down(row, exc)
            except LetterkitError as exc:  # the server or the account, not this letter
                self._stop(exc, row.id)
                return True
            finally:
                copy.drop()  # staged for a letter that did not go
        return False

    def _outcome(self, row: Row, result: DeliveryResult, copy: _Copy, *, stored_changed: bool) -> bool:
        """Record what happened to ``row``; True when the batch must stop (blocked)."""
        kind = classify(result.code, result.reply) if result.status in ("deferred", "failed") else "ok"
        if kind == "blocked":
            self._blocked(row, result)
            return True
        now = self.now()
        retry_at = ""
        if result.status == "deferred":
            retry_at = _iso(now + dt.timedelta(seconds=self._backoff(row.attempts + result.attempts)))
        if result.status == "deferred" and kind == "slow":
            rate = self.pace.slow_down()
            self.note(f"the server asks to slow down ({result.reply}): now {rate:.3g} letters a minute")
        elif result.delivered and self.pace.went_through():
            pace = f"{self.pace.rate:.3g} letters a minute" if self.pace.interval else "no limit"
            self.note(f"letters go through again: the pace is back up to {pace}")
        if result.delivered:
            self.quota.take(now, len(row.rcpt))
        changes = _record(
            copy, result, self.transport.account.name, stored_changed=stored_changed, sent_at=now,
            retry_at=retry_at,
        )  # fmt: skip
        self._count(row.id, changes["status"])
        if self.report.handled % COMMIT_EVERY == 0:
            self.ledger.commit_and_continue()
        if self.on_progress is not None:
            self.on_progress(self.report.handled, self.report.total, replace(row, **changes))
        return False

    def _count(self, row_id: int, status: str) -> None:
        """Count an outcome (a letter deferred again in this run counts once)."""
        if row_id in self.deferred_ids:
            if status == "queued":
                return
            self.deferred_ids.discard(row_id)
            self.report.deferred -= 1
        elif status == "queued":
            self.deferred_ids.add(row_id)
        self.report.count(status)

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, self.schedule.backoff_base)

    def _server_down(self, row: Row, exc: ServerUnreachable) -> bool:
        """The connection could not be reopened: back off the server, or stop after a few tries."""
        self.server_down += 1
        if not exc.transient or self.server_down > MAX_SERVER_DOWN:
            self._stop(exc, row.id)
            return True
        seconds = self._backoff(self.server_down)
        self.hold_until = self.now() + dt.timedelta(seconds=seconds)
        self.note(f"{exc.message}; trying again in {seconds:.3g} s")
        return False

    def _next_due(self) -> Due | None:
        """The first due time of the batch's letters still queued (None: none is left)."""
        first: Due | None = None
        now = self.now()
        for row in self.ledger.batch_rows(self.report.batch, ("queued",)):
            if row.channel != "email":
                continue
            when = due(row, now, self.schedule, self.quota)
            if self.hold_until is not None and when.at < self.hold_until:
                when = Due(self.hold_until, "back-off")
            if first is None or when.at < first.at:
                first = when
        return first

    def _finish(self) -> None:
        """What is left in the batch: deferred (a failure) or waiting (window, quota), and when."""
        report, now = self.report, self.now()
        report.deferred = report.waiting = 0
        report.next_due = None
        for row in self.ledger.batch_rows(report.batch, ("queued",)):
            if row.channel != "email":
                continue
            when = due(row, now, self.schedule, self.quota)
            if when.why in ("window", "quota"):
                report.waiting += 1
                self.ledger.update(row.id, next_attempt_at=_iso(when.at), wait_reason=when.why)
            else:
                report.deferred += 1
            if report.next_due is None or when.at < report.next_due.at:
                report.next_due = when

    def _blocked(self, row: Row, result: DeliveryResult) -> None:
        """The server refuses more mail from this account: every letter left waits a day."""
        until = self.now() + BLOCKED_FOR
        account = self.transport.account
        error = SendingBlocked(
            f"{account.host}:{account.port}: the server refuses more mail from account "
            f"{account.name!r} for now ({result.reply})",
            hint=f"the letters left stay queued; try again after {until:%Y-%m-%d %H:%M}: "
            "letterkit outbox flush",
            until=_iso(until),
        )
        self.ledger.update(row.id, attempts=row.attempts + result.attempts)
        marks = {"next_attempt_at": _iso(until), "wait_reason": "blocked"}
        for left in list(self.ledger.batch_rows(self.report.batch, ("queued",))):
            if left.channel == "email":
                self.ledger.update(left.id, **marks, reply=f"not sent yet: {result.reply}")
        self.report.next_due = Due(until, "blocked")
        self.report.error = error
        self.report.deferred = self.ledger.count(("queued",), batch=self.report.batch, channel="email")

    def _stop(self, error: LetterkitError, from_id: int) -> None:
        """The batch stops: the letters left stay queued, saying why."""
        self.report.error = error
        with self.ledger.transaction():
            self.ledger.note_batch(self.report.batch, ("queued",), f"not sent yet: {error}", from_id=from_id)
        self.report.deferred = self.ledger.count(("queued",), batch=self.report.batch, channel="email")


@dataclass
class _Copy:
    """The letter in flight and its copy for ``sent/``: written to ``sent/tmp`` while the
    server takes the message (:meth:`Outbox.stage_sent`), renamed into ``sent/cur`` once
    the server has said yes (:meth:`Outbox.file_sent`, the mark), removed otherwise."""

    box: Outbox
    row: Row
    message: bytes | None
    staged: str | None = None
    tried: bool = False

    def stage(self) -> None:
        if not self.tried and self.message is not None:  # once, even if the letter is tried again
            self.tried = True
            self.staged = self.box.stage_sent(self.row, self.message)

    def file(self) -> str:
        """File the copy of a letter the server took; a note for the ledger if it could not be."""
        assert self.message is not None
        staged, self.staged = self.staged, None
        return self.box.file_sent(self.row, self.message, staged)

    def drop(self) -> None:
        staged, self.staged = self.staged, None
        self.box.drop_staged(staged)


def _send_one(transport: Transport, copy: _Copy, mail_from: str, pace: Pace) -> DeliveryResult:
    if copy.message is None:  # cannot happen after reconcile, unless edited by hand meanwhile
        return DeliveryResult("failed", "its message is missing from the ledger (deleted by hand?)")
    pace.wait()
    return transport.send(copy.message, mail_from, list(copy.row.rcpt), while_waiting=copy.stage)


def _stop(
    box: Outbox,
    report: DeliveryReport,
    batch: str,
    statuses: Iterable[str],
    error: LetterkitError,
    *,
    from_id: int,
) -> None:
    """The batch stops before it began: its letters stay queued, saying why."""
    report.error = error
    report.deferred += report.total - report.handled
    with box.ledger.transaction():
        box.ledger.note_batch(batch, tuple(statuses), f"not sent yet: {error}", from_id=from_id)


def _record(
    copy: _Copy,
    result: DeliveryResult,
    account: str,
    *,
    stored_changed: bool,
    sent_at: dt.datetime | None = None,
    retry_at: str = "",
) -> dict[str, Any]:
    """File the copy of a sent letter, then write its outcome into the ledger (committed by
    the caller); returns the changed fields (``replace(row, **changes)`` is the row now)."""
    import json

    box, row, message = copy.box, copy.row, copy.message
    refused = {a: list(v) for a, v in result.refused.items()}
    status: str
    when = (sent_at or clock.now()).astimezone(dt.UTC).isoformat(timespec="seconds")
    if result.delivered and message is not None:
        note = copy.file()  # first: the mark that it went
        if stored_changed:
            box.ledger.set_message(row.id, message)  # exactly what was sent
        status, sent, reply = result.status, when, result.reply
        if result.status == "partial":
            reply += "; refused: " + "; ".join(f"{a}: {m}" for a, (_c, m) in result.refused.items())
        reply += note
    elif result.status == "failed":
        status, sent, reply = "failed", "", result.reply
    else:
        status, sent, reply = "queued", "", f"deferred: {result.reply}"
    changes: dict[str, Any] = {
        "status": status,
        "sent_at": sent,
        "reply": reply,
        "refused": refused,
        "account": account,
        "attempts": row.attempts + result.attempts,
        "next_attempt_at": retry_at,
        "wait_reason": "back-off" if retry_at else "",
    }
    box.ledger.update(row.id, **{**changes, "refused": json.dumps(refused) if refused else ""})
    return changes
