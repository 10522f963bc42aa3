"""Shared by send, outbox and account: options, the delivery call, reports and JSON streams.

Only Typer and the shared option types are imported at module level: the
library (outbox, transport, credentials; sqlite3, smtplib, ssl, keyring, Rich)
is imported when a command runs, so ``letterkit --version`` stays fast.

stdout carries data only (tables, TSV when piped, or ``--json``); everything
for people (previews, progress, summaries, warnings) goes to stderr.

JSON documents (``--json``; every one has ``"version": 1`` and ``"kind"``).
ROW is a ledger row: ``id, key, campaign, template, language, recipient,
recipient_name, signer, channel, status, subject, to, message_id, queued_at,
sent_at, reply, reason, refused, account, files, attempts``.

``send``::

    {"kind": "send", "campaign", "template", "account": NAME|null, "dry_run": false,
     "deadline_passed": bool, "warnings": [str],
     "sent": [ROW], "partial": [ROW], "queued": [ROW], "failed": [ROW],
     "skipped": [{"recipient", "recipient_name", "reason", "status", "id", "key"}],
     "by_hand": [{"id", "recipient", "recipient_name", "channels", "fax", "address",
                  "web_form", "files": {"pdf", "txt"}, "prepared_earlier": bool}],
     "paths": {"outbox", "sent", "ledger", "prepared"}, "error": str|null,
     "next_due": ISO|null, "waits_for": str|null}  (as for ``outbox flush``)

``queued`` lists the letters still in the outbox at the end (no account, a
temporary failure, or a stopped batch: ``reason`` says which).

``send --dry-run``: the same keys (all lists empty) plus ``"dry_run": true`` and
``"letters": [{"action": "send"|"queue"|"prepare"|"skip", "reason", "recipient",
"recipient_name", "channel", "subject", "headers": {...}, "envelope": {"mail_from",
"rcpt_to"}|null, "body"}]``.

``outbox``: ``{"kind": "outbox", "paths", "letters": [ROW]}``;
``outbox flush``: ``{"kind": "outbox-flush", "account", "sent", "partial", "failed",
"queued", "error", "next_due": ISO|null, "waits_for": "window"|"quota"|"back-off"|"blocked"|null,
"notes": [str]}``; in ``outbox``, each ROW also has ``due`` (ISO, null: now) and
``waits_for``; ``log``: ``{"kind": "log", "paths", "letters": [ROW]}``;
``log done``: ``{"kind": "log-done", "letter": ROW}``;
``account list``: ``{"kind": "accounts", "config", "default", "accounts": [...]}``;
``account test``: ``{"kind": "account-test", "account", "ok", "steps", "error"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _output

if TYPE_CHECKING:
    from ..config import Account
    from ..delivery import DeliveryReport
    from ..outbox import Outbox
    from ..schedule import Schedule


SUMMARY_ROWS = 50  # longest table printed for people; longer batches list only problems


_PATHS_HELP = (
    "Files live in your data folder ($XDG_DATA_HOME/letterkit, on Linux usually "
    "~/.local/share/letterkit; 'letterkit outbox --json' prints the exact paths): outbox/ and "
    "sent/ are Maildirs any mail program can read, ledger.sqlite3 records every letter, "
    "prepared/ holds PDFs and text for letters delivered by hand."
)

AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        metavar="NAME",
        help="Mail account to send through (default: $LETTERKIT_ACCOUNT, the default one, or the only one).",
        show_default=False,
    ),
]
RateOpt = Annotated[
    str | None,
    typer.Option(
        "--rate",
        metavar="N/min",
        help="At most N letters per minute (also N/hour); 0 for no limit. N/day: at most N "
        "recipients in any 24 hours (the rest wait in the outbox). "
        "Default: [defaults] rate in config.toml, else 20/min, and for a Gmail, Google Workspace "
        "or Outlook.com account 90% of the provider's daily limit.",
        show_default=False,
    ),
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        metavar="HH:MM-HH:MM",
        help="Send only in office hours on weekdays, in each recipient's time zone (its contact's "
        "'timezone'; contacts without one: your own computer's zone). Letters outside it wait in "
        "the outbox. Default: [defaults] window in config.toml; 'any' for none.",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Send without asking for confirmation.")]


# --- helpers -----------------------------------------------------------------------------


def _outbox(readonly: bool = False) -> Outbox:
    from ..outbox import Outbox

    return Outbox(readonly=readonly)


def _esc(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def _deliver(
    box: Outbox,
    account: Account,
    *,
    rate: float,
    retry_failed: bool,
    show_progress: bool,
    schedule: Schedule | None = None,
    keep_queued_limits: bool = True,
) -> DeliveryReport:
    """``outbox flush``: deliver what waits; progress on stderr, a bar on a terminal
    (``show_progress``), else a line per letter (see :mod:`._views`)."""
    from ..service import flush
    from ._views import Progress

    progress = Progress("Sending", bar=show_progress)
    try:
        return flush(
            box,
            account,
            rate=rate,
            retry_failed=retry_failed,
            on_progress=progress,
            on_wait=progress.waiting,
            interactive=_output.interactive(),
            schedule=schedule,
            on_note=_output.warn,
            keep_queued_limits=keep_queued_limits,
        )
    finally:
        progress.stop()


def emit_json_stream(
    kind: str,
    head: dict[str, Any],
    lists: dict[str, Iterable[dict[str, Any]]],
    tail: dict[str, Any] | None = None,
) -> None:
    """Like ``emit_json`` but the lists are written item by item (flat memory for 20,000 letters).

    The document is the same as ``{"version": 1, "kind": kind, **head, **lists, **tail}``.
    """
    import json

    write = sys.stdout.write
    _output.STATE.json_written = True
    dump = json.JSONEncoder(ensure_ascii=False, default=str).encode  # one encoder for every item

    doc = json.dumps(
        {"version": _output.JSON_VERSION, "kind": kind, **head}, ensure_ascii=False, indent=2, default=str
    )
    write(doc[:-2])  # without the closing "\n}"
    for key, items in lists.items():
        write(f",\n  {dump(key)}: [")
        first = True
        for item in items:
            write(("\n    " if first else ",\n    ") + dump(item))
            first = False
        write("]" if first else "\n  ]")
    for key, value in (tail or {}).items():
        write(f",\n  {dump(key)}: {dump(value)}")
    write("\n}\n")


def _summary(box: Outbox, report: DeliveryReport) -> None:
    """What was sent, what failed and why, for people (stderr; see :func:`._views.print_report`)."""
    from itertools import islice

    from ._views import print_report

    if not report.total:
        return
    if report.error is not None and not (report.sent or report.partial or report.failed):
        _output.info(f"{report.deferred} letter(s) stay queued in the outbox; nothing was sent.")
        return
    problems_only = report.total > SUMMARY_ROWS
    statuses = ("partial", "failed", "queued") if problems_only else ("sent", "partial", "failed", "queued")
    listed = print_report(islice(box.batch_rows(report.batch, statuses), SUMMARY_ROWS), title="Delivery")
    _output.info(
        f"{report.sent} sent, {report.partial} partly refused, {report.failed} failed, "
        f"{report.deferred} still queued"
        + (" (only letters with a problem are listed)" if problems_only and listed else "")
    )
    from ..mailbox import copies_note

    if note := copies_note(box.ledger):
        _output.warn(note)
    waiting(report)


def waiting(report: DeliveryReport) -> None:
    """What waits in the outbox after a run, and until when (window, quota, back-off)."""
    from .. import clock
    from ..schedule import text

    if report.next_due is None or not (report.deferred or report.waiting):
        return
    left = report.deferred + report.waiting
    _output.info(
        f"{left} letter(s) wait in the outbox; the next is due {text(report.next_due, clock.now())}. "
        "'letterkit outbox' shows each one's time; 'letterkit outbox flush' (--wait: until all are "
        "sent) sends them when due."
    )


def _exit_for(report: DeliveryReport | None) -> None:
    """Raise the batch's error (its own exit code), or exit 1 if any letter was not delivered."""
    if report is None:
        return
    if report.error is not None:
        raise report.error
    if not report.ok:
        n = report.failed + report.partial + report.deferred
        _output.error(f"{n} letter(s) not (fully) delivered; see 'letterkit outbox' and 'letterkit log'")
        raise typer.Exit(1)


def next_due_json(report: DeliveryReport | None) -> dict[str, Any]:
    """The JSON report's ``next_due`` (ISO, null: nothing waits) and ``waits_for`` (window,
    quota, back-off, blocked or null): when the first letter left in the outbox is due."""
    import datetime as dt

    due = report.next_due if report is not None else None
    if due is None or not due.why:
        return {"next_due": None, "waits_for": None}
    return {"next_due": due.at.astimezone(dt.UTC).isoformat(timespec="seconds"), "waits_for": due.why}
