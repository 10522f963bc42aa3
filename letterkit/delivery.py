"""Delivery: a straight loop over the queued letters, one SMTP connection for all of them.

For each letter, oldest first: wait for the rate limit, set its From for the
account and its Date for now (when either changed since it was queued), send
it, file its copy in ``sent/`` (the mark reconcile goes by), record the outcome
in the ledger.  Outcomes are committed every :data:`letterkit.ledger.COMMIT_EVERY`
letters and before every wait, so a kill loses at most those records — and
:meth:`letterkit.outbox.Outbox.reconcile` restores them from ``sent/``: at most
the letter in flight at the kill can go twice.

A temporary failure the transport gave up on leaves that letter queued with the
reason; a permanent one fails that letter only.  When the connection itself
cannot be had (server unreachable, TLS or login refused), the batch stops: the
letters left stay queued, their files are written to the outbox, and
:attr:`DeliveryReport.error` says why.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import InvalidValue, LetterkitError
from .ledger import COMMIT_EVERY, IN_OUTBOX, now_text
from .transport import DeliveryResult, is_loopback
from .validation import check_address

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .config import Account
    from .ledger import Row
    from .outbox import Outbox, QueueResult
    from .transport import Transport

STALE_DATE_SECONDS = 30  # a letter whose Date is older than this gets a new one as it leaves


@dataclass
class DeliveryReport:
    """What :func:`deliver` did: counts per outcome (see :meth:`Outbox.batch_rows`).

    ``deferred`` letters are still queued (a temporary failure, or never tried
    because the batch stopped); ``error`` is why the batch stopped early, or None.
    """

    batch: str = ""
    account: str = ""
    total: int = 0
    sent: int = 0
    partial: int = 0
    failed: int = 0
    deferred: int = 0
    error: LetterkitError | None = None

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


class Pace:
    """At most ``rate`` letters a minute (0: no limit); the first goes at once.

    ``on_wait(seconds)`` is told before each wait, so a progress display can say
    until when; ``sleep`` and ``monotonic`` are injectable (tests use a fake clock).
    """

    def __init__(
        self,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.interval = 60.0 / rate if rate and rate > 0 else 0.0
        self._sleep, self._monotonic, self._on_wait = sleep, monotonic, on_wait
        self._next = 0.0

    def must_wait(self) -> float:
        """Seconds until the next letter may go (0: now)."""
        if not self.interval or not self._next:
            return 0.0
        return max(0.0, self._next - self._monotonic())

    def wait(self) -> None:
        if (seconds := self.must_wait()) > 0:
            if self._on_wait is not None:
                self._on_wait(seconds)
            self._sleep(seconds)
        self._next = self._monotonic() + self.interval


def as_it_leaves(message: bytes, row: Row, account: Account) -> bytes:
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
    now = clock.now()
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
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Deliver queued letters over ``transport``, oldest first (see the module docstring).

    ``batch``: only the letters of one :meth:`Outbox.queue` call (default: every
    queued letter; they become a new batch).  ``rate``: letters per minute (0: no
    limit).  ``retry_failed`` also retries letters refused before.
    ``on_progress(done, total, row)`` is called after each letter, ``on_wait(seconds)``
    before each wait for the rate limit.  The transport is opened here if needed
    and left open (the caller closes it).
    """
    import uuid

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
        pace = Pace(rate, sleep=sleep, on_wait=on_wait)
        with box.ledger.transaction():
            for row, stored in box.ledger.with_messages(batch, statuses):
                if pace.must_wait():
                    box.ledger.commit_and_continue()  # nothing stays unrecorded while we wait
                message = as_it_leaves(stored, row, account) if stored is not None else None
                try:
                    result = _send_one(transport, message, mail_from, row.rcpt, pace)
                except LetterkitError as exc:  # the server or the account, not this letter
                    _stop(box, report, batch, statuses, exc, from_id=row.id)
                    break
                changes = _record(
                    box, row, result, message, account.name, stored_changed=message is not stored
                )
                report.count(changes["status"])
                if report.handled % COMMIT_EVERY == 0:
                    box.ledger.commit_and_continue()
                if on_progress is not None:
                    on_progress(report.handled, report.total, replace(row, **changes))
    if report.error is not None or report.deferred:
        box.write_outbox(batch)  # what is left waits as files too (mail tools see it)
    return report


def _send_one(
    transport: Transport, message: bytes | None, mail_from: str, rcpt: Iterable[str], pace: Pace
) -> DeliveryResult:
    if message is None:  # cannot happen after reconcile, unless edited by hand meanwhile
        return DeliveryResult("failed", "its message is missing from the ledger (deleted by hand?)")
    pace.wait()
    return transport.send(message, mail_from, list(rcpt))


def _stop(
    box: Outbox,
    report: DeliveryReport,
    batch: str,
    statuses: Iterable[str],
    error: LetterkitError,
    *,
    from_id: int,
) -> None:
    """The batch stops: the letters from ``from_id`` on stay queued, saying why."""
    report.error = error
    report.deferred += report.total - report.handled
    with box.ledger.transaction():
        box.ledger.note_batch(batch, tuple(statuses), f"not sent yet: {error}", from_id=from_id)


def _record(
    box: Outbox,
    row: Row,
    result: DeliveryResult,
    message: bytes | None,
    account: str,
    *,
    stored_changed: bool,
) -> dict[str, Any]:
    """File the copy of a sent letter, then write its outcome into the ledger (committed by
    the caller); returns the changed fields (``replace(row, **changes)`` is the row now)."""
    import json

    refused = {a: list(v) for a, v in result.refused.items()}
    status: str
    if result.delivered and message is not None:
        note = box.file_sent(row, message)  # first: the mark that it went
        if stored_changed:
            box.ledger.set_message(row.id, message)  # exactly what was sent
        status, sent_at, reply = result.status, now_text(), result.reply
        if result.status == "partial":
            reply += "; refused: " + "; ".join(f"{a}: {m}" for a, (_c, m) in result.refused.items())
        reply += note
    elif result.status == "failed":
        status, sent_at, reply = "failed", "", result.reply
    else:
        status, sent_at, reply = "queued", "", f"deferred: {result.reply}"
    changes: dict[str, Any] = {
        "status": status,
        "sent_at": sent_at,
        "reply": reply,
        "refused": refused,
        "account": account,
        "attempts": row.attempts + result.attempts,
    }
    box.ledger.update(row.id, **{**changes, "refused": json.dumps(refused) if refused else ""})
    return changes
