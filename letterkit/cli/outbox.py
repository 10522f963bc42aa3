"""``letterkit outbox`` and ``letterkit log``: what waits, what went, and the story of one letter."""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..presets import ADD_ACCOUNT_HINT
from . import _output
from ._app import app
from ._common import (
    CampaignOpt,
    JsonOpt,
    LetterkitTyper,
    examples,
)
from ._report import (
    _PATHS_HELP,
    SUMMARY_ROWS,
    AccountOpt,
    RateOpt,
    WindowOpt,
    YesOpt,
    _deliver,
    _esc,
    _exit_for,
    _outbox,
    _summary,
    emit_json_stream,
    next_due_json,
)

if TYPE_CHECKING:
    from ..config import Account
    from ..delivery import DeliveryReport
    from ..outbox import Outbox, Row
    from ..schedule import Due


# --- outbox ----------------------------------------------------------------------------------


def _due_json(due: "Due", now: dt.datetime) -> dict[str, Any]:
    """``due``: when a queued letter goes (ISO, null: now); ``waits_for``: window, quota,
    back-off, blocked, or null."""
    later = due.at >= now and bool(due.why)
    return {
        "due": due.at.astimezone(dt.UTC).isoformat(timespec="seconds") if later else None,
        "waits_for": due.why if later else None,
    }


outbox_app = LetterkitTyper(
    help=f"Letters waiting to be sent (queued) or refused (failed), and why. {_PATHS_HELP}",
    invoke_without_command=True,
    no_args_is_help=False,
    short_help="Letters waiting to be sent or refused, and why.",
)
app.add_typer(outbox_app, name="outbox")


def _row_cells(row: "Row") -> list[str]:
    return [
        str(row.id),
        row.status,
        row.recipient,
        ", ".join(row.rcpt),
        row.subject,
        row.queued_at,
        row.sent_at,
        row.reason or row.reply,
    ]


def _print_rows(
    rows: "Iterable[Row]",
    title: str,
    *,
    when: str,
    notes: dict[int, str] | None = None,
    dues: dict[int, str] | None = None,
) -> None:
    """Rows for people on a terminal (see :mod:`._ledger_view`), tab-separated lines when piped.
    ``notes``: what came back for each letter (``replied 2026-11-27``), a column of its own;
    ``dues``: when each queued letter is due and why (``letterkit outbox``: a ``due`` column)."""
    headers = ["id", "status", "recipient", "to", "subject", "queued_at", "sent_at", "reason"]
    if not _output.stdout_is_terminal():
        extra = (["response"] if notes is not None else []) + (["due"] if dues is not None else [])
        _output.emit_tsv([headers + extra])
        for r in rows:
            cells = _row_cells(r) + ([notes.get(r.id, "")] if notes is not None else [])
            _output.emit_tsv([cells + ([dues.get(r.id, "") or "now"] if dues is not None else [])])
        return
    from ._ledger_view import print_rows

    due = (lambda r: dues.get(r.id, "")) if dues is not None else None
    print_rows(rows, title, when=when, notes=notes, due=due)


def _schedule(box: "Outbox") -> "Iterator[tuple[Row, Due]]":
    """The letters in the outbox with when each is due and why (the default account's quota
    and ``[defaults] window``, back-offs from the ledger, and the window or quota the last
    run held a letter back for, if that is later: e.g. ``--window`` given to that run)."""
    from .. import clock
    from ..errors import ConfigError
    from ..outbox import IN_OUTBOX
    from ..schedule import Due, Quota, Schedule, plan, sent_last_day
    from ..service import queued_limits, schedule_for

    config = _output.load_config()
    try:
        acct = config.account()
    except ConfigError:  # several accounts and no default: no quota to show
        acct = None
    now = clock.now()
    schedule, quota = Schedule(), Quota(0)
    if acct is not None:
        schedule = queued_limits(box, 0, schedule_for(config, acct)[1], IN_OUTBOX)[1] or schedule
        quota = Quota(schedule.per_day, sent_last_day(box.ledger, acct.name, now))
    for row, due in plan(box.iter_rows(IN_OUTBOX), now, schedule, quota):
        if row.wait_reason in ("window", "quota") and row.next_attempt_at:  # set by the last run
            last = Due(dt.datetime.fromisoformat(row.next_attempt_at), row.wait_reason)
            due = last if last.at > due.at else due
        yield row, due


def _show(row_id: int, *, full: bool, as_json: bool) -> None:
    """The whole story of one letter (``outbox show`` and ``log show``)."""
    from ._ledger_view import print_story, story

    box = _outbox(readonly=True)
    try:
        data = story(box, box.get(row_id))
    finally:
        box.close()
    if as_json:
        _output.emit_json("letter", {"letter": data})
    else:
        print_story(data, full=full)


FullOpt = Annotated[bool, typer.Option("--full", help="Show the whole letter, not only how it begins.")]
IdArg = Annotated[
    int, typer.Argument(metavar="ID", help="Letter number from 'letterkit outbox' or 'letterkit log'.")
]


@outbox_app.callback(epilog=examples("letterkit outbox", "letterkit outbox --json"))
def outbox(ctx: typer.Context, as_json: JsonOpt = False, campaign_dir: CampaignOpt = None) -> None:
    """List the letters in the outbox (queued or failed) with the reason."""
    from .. import clock
    from ..schedule import text

    if ctx.invoked_subcommand:
        return
    box = _outbox()
    try:
        exists = box.paths.ledger.exists()
        if exists:
            box.reconcile_if_free()
        planned = _schedule(box) if exists else iter(())
        now = clock.now()
        if as_json:
            letters = ({**r.as_dict(), **_due_json(d, now)} for r, d in planned)
            emit_json_stream("outbox", {"paths": box.paths.as_dict()}, {"letters": letters})
            return
        queued = box.count(("queued",)) if exists else 0
        failed = box.count(("failed",)) if exists else 0
        if queued or failed:
            rows, dues = [], {}
            for r, d in planned:
                rows.append(r)
                dues[r.id] = text(d, now) if r.status == "queued" else ""
            _print_rows(rows, "Outbox", when="queued", dues=dues)
            _output.info(
                f"{queued} queued, {failed} failed — in {_esc(box.paths.outbox)}. "
                "Send with: letterkit outbox flush"
                + (" (--retry-failed to try the failed ones again)" if failed else "")
            )
        else:
            _output.info(f"The outbox is empty ({_esc(box.paths.outbox)}).")
    finally:
        box.close()


@outbox_app.command(
    "flush",
    short_help="Send the letters waiting in the outbox.",
    epilog=examples(
        "letterkit outbox flush",
        "letterkit outbox flush --account work --yes",
        "letterkit outbox flush --yes --rate 450/day --window 09:00-17:00 --wait",
    ),
)
def outbox_flush(
    account: AccountOpt = None,
    yes: YesOpt = False,
    rate: RateOpt = None,
    window: WindowOpt = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Keep running until every letter is sent, sleeping until the next is due (daily "
            "quota, send window, back-off). Ctrl-C or a crash loses nothing: run it again.",
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also retry letters the server refused before.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Before asking, show each letter whole (not only how it begins).")
    ] = False,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Deliver the letters waiting in the outbox through your mail account.

    Before asking, each letter is shown as it will leave: signer, From, Reply-To,
    subject and its first lines (--full: the whole letter).  Only letters that are due
    go (back-off, --rate N/day, --window); it says when the rest are (--wait: goes on).
    """
    from ..errors import ConfigError
    from ..outbox import IN_OUTBOX
    from ..service import schedule_for

    config = _output.load_config()
    acct = config.account(account)
    if acct is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    per_minute, schedule = schedule_for(config, acct, rate=rate, window=window, wait=wait)
    statuses = IN_OUTBOX if retry_failed else ("queued",)
    box = _outbox()
    try:
        if box.paths.ledger.exists() or box.paths.outbox.exists():
            box.reconcile_if_free(adopt=True)  # files put into outbox/new by hand are shown below
        waiting = box.count(statuses) if box.paths.ledger.exists() else 0
        interactive = _output.interactive()
        if waiting and not yes:
            _ask_to_flush(box, statuses, waiting, acct, full=full)
        elif waiting:
            _show_adopted(box, acct)
        report = _deliver(
            box,
            acct,
            rate=per_minute,
            retry_failed=retry_failed,
            show_progress=interactive and not as_json and _output.stdout_is_terminal(),
            schedule=schedule,
            keep_queued_limits=rate is None,  # --rate given: the user chose again
        )
        _report_flush(box, report, acct, as_json=as_json)
    finally:
        box.close()
    _exit_for(report)


def _show_adopted(box: "Outbox", acct: "Account") -> None:
    """Letters that appeared in outbox/new without letterkit: shown before they go, even under --yes."""
    from ..maildir import ADOPTED
    from ._review import review

    adopted = [row for row in box.iter_rows(("queued",)) if row.reply == ADOPTED]
    if adopted:
        _output.warn(
            f"{len(adopted)} letter(s) found in the outbox folder, not queued by letterkit; they go now:"
        )
        review(box, adopted, acct)


def _ask_to_flush(
    box: "Outbox", statuses: Iterable[str], waiting: int, acct: "Account", *, full: bool
) -> None:
    """Show each waiting letter as it will leave, then ask (NotConfirmed if no)."""
    from itertools import islice

    from ..errors import NotConfirmed
    from ._review import review

    if not _output.interactive():
        raise NotConfirmed(
            "not sending without confirmation: there is no terminal to ask on", hint="pass --yes"
        )
    review(box, islice(box.iter_rows(statuses), SUMMARY_ROWS), acct, full=full)
    if waiting > SUMMARY_ROWS:
        _output.info(f"… and {waiting - SUMMARY_ROWS} more (letterkit outbox lists them all)")
    if not typer.confirm(
        f"Send {waiting} letter(s) from {acct.from_addr} through account {acct.name!r}?",
        default=False,
        err=True,
    ):
        raise NotConfirmed("you declined; the letters stay in the outbox")


def _report_flush(box: "Outbox", report: "DeliveryReport", acct: "Account", *, as_json: bool) -> None:
    if as_json:

        def rows(status: str) -> Iterator[dict[str, Any]]:
            return (r.as_dict() for r in box.batch_rows(report.batch, (status,)))

        emit_json_stream(
            "outbox-flush",
            {"account": acct.name},
            {
                "sent": rows("sent"),
                "partial": rows("partial"),
                "failed": rows("failed"),
                "queued": rows("queued"),
            },
            {
                "error": str(report.error) if report.error else None,
                **next_due_json(report),
                "notes": report.notes,
            },
        )
    elif not report.total:
        failed = box.count(("failed",))
        _output.info(
            "Nothing to send: the outbox is empty."
            if not failed
            else f"Nothing queued; {failed} failed letter(s) are retried with --retry-failed."
        )
    else:
        _summary(box, report)


@outbox_app.command(
    "show", short_help="The whole story of one letter.", epilog=examples("letterkit outbox show 7 --full")
)
def outbox_show(
    row_id: IdArg, full: FullOpt = False, as_json: JsonOpt = False, campaign_dir: CampaignOpt = None
) -> None:
    """The whole story of one letter: addresses, signer, dates, attempts, reason, files, text."""
    _show(row_id, full=full, as_json=as_json)


@outbox_app.command(
    "drop",
    short_help="Take letters out of the outbox (kept in the log).",
    epilog=examples("letterkit outbox drop 3 4 --yes"),
)
def outbox_drop(
    ids: Annotated[
        list[int], typer.Argument(metavar="ID...", help="Letter number(s) from 'letterkit outbox'.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Drop without asking for confirmation.")] = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Take letters out of the outbox: they are not sent; the log keeps them as dropped.

    Asks first on a terminal; without one, --yes is required (as for send and flush).
    """
    from ..errors import NotConfirmed

    if not yes and not _output.interactive():
        raise NotConfirmed(
            "not dropping without confirmation: there is no terminal to ask on",
            hint="pass --yes; nothing was dropped",
        )
    box = _outbox()
    try:
        if not yes:
            for row in box.droppable(ids):
                _output.info(f"#{row.id} {row.status} to {_esc(row.recipient)}: {_esc(row.subject)}")
            if not typer.confirm(
                f"Drop {len(ids)} letter(s)? They will not be sent", default=False, err=True
            ):
                raise NotConfirmed("you declined; the letters stay in the outbox")
        for row_id in ids:
            row = box.drop(row_id)
            _output.info(
                f"Dropped #{row.id} to {_esc(row.recipient)} (was {row.status}); 'letterkit log' keeps it."
            )
    finally:
        box.close()


# --- log ---------------------------------------------------------------------------------------

log_app = LetterkitTyper(
    help="What was sent, prepared or delivered by hand (the ledger).",
    invoke_without_command=True,
    no_args_is_help=False,
    short_help="What was sent, prepared or delivered by hand.",
)
app.add_typer(log_app, name="log")


@log_app.callback(epilog=examples("letterkit log", "letterkit log --json"))
def log(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Option("--campaign-id", metavar="ID", help="Only this campaign id.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Only the last N letters.")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also letters still queued or failed.")] = False,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """List the letters sent (or partly refused), prepared by hand, delivered by hand and dropped."""
    from ..outbox import DELIVERED, STATUSES

    if ctx.invoked_subcommand:
        return
    box = _outbox(readonly=True)
    statuses = STATUSES if show_all else (*DELIVERED, "dropped")
    try:
        rows: Iterable[Row] = (
            box.rows(statuses, campaign=campaign, limit=limit)
            if limit
            else box.iter_rows(statuses, campaign=campaign)
        )
        from ..mailbox import outcome, responses

        answers = responses(box.ledger)
        notes = {letter: outcome(items) for letter, items in answers.items()}
        if as_json:
            letters = ({**r.as_dict(), "response": notes.get(r.id, "")} for r in rows)
            emit_json_stream("log", {"paths": box.paths.as_dict()}, {"letters": letters})
            return
        from itertools import chain

        it = iter(rows)
        first = next(it, None)
        if first is None:
            _output.info("Nothing sent yet." if not (campaign or show_all) else "No letters match.")
        else:
            _print_rows(chain([first], it), "Ledger", when="sent", notes=notes)
    finally:
        box.close()


@log_app.command("show", short_help="The whole story of one letter.", epilog=examples("letterkit log show 7"))
def log_show(
    row_id: IdArg, full: FullOpt = False, as_json: JsonOpt = False, campaign_dir: CampaignOpt = None
) -> None:
    """The whole story of one letter: addresses, signer, dates, server reply, files, text."""
    _show(row_id, full=full, as_json=as_json)


@log_app.command("done", epilog=examples("letterkit log done 12 --via fax"))
def log_done(
    row_id: Annotated[int, typer.Argument(metavar="ID", help="Letter number from 'letterkit log'.")],
    via: Annotated[str, typer.Option("--via", metavar="fax|post|web", help="How you delivered it.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier --via (the earlier one is kept as a note).")
    ] = False,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Record that you delivered a prepared letter by fax, post or web form."""
    box = _outbox()
    try:
        row = box.mark_done(row_id, via, force=force)
    finally:
        box.close()
    if as_json:
        _output.emit_json("log-done", {"letter": row.as_dict()})
    else:
        _output.info(f"Recorded: #{row.id} to {_esc(row.recipient)} delivered by {via}.")
