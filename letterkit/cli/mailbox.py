"""``letterkit mailbox sync`` and ``letterkit followup``: replies, bounces and follow-ups."""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..presets import ADD_ACCOUNT_HINT
from . import _output
from ._app import app
from ._common import CampaignOpt, JsonOpt, LetterkitTyper, examples
from ._report import AccountOpt, _esc, _outbox

if TYPE_CHECKING:
    from ..mailbox import SyncReport

mailbox_app = LetterkitTyper(
    help="Your own mailbox over IMAP: replies and bounces matched to your letters, copies in Sent.",
    no_args_is_help=True,
    short_help="Replies and bounces from your mailbox (IMAP).",
    epilog=examples("letterkit mailbox sync"),
)
app.add_typer(mailbox_app, name="mailbox")

PROGRESS_FROM = 50  # messages: a sync this long says how far it is


class _Progress:
    """A line on stderr every :data:`PROGRESS_FROM` messages of a long sync (whole lines: a
    log file or a pipe reads them as they come)."""

    def __call__(self, done: int, total: int) -> None:
        if total >= PROGRESS_FROM and (done % PROGRESS_FROM == 0 or done == total):
            sys.stderr.write(f"Reading INBOX: {done}/{total} messages\n")
            sys.stderr.flush()


@mailbox_app.command(
    "sync",
    short_help="Read new mail in INBOX: replies, automatic replies, bounces.",
    epilog=examples("letterkit mailbox sync", "letterkit mailbox sync --account work --json"),
)
def mailbox_sync(
    account: AccountOpt = None, as_json: JsonOpt = False, campaign_dir: CampaignOpt = None
) -> None:
    """Read the new messages in INBOX (never deleting, moving or flagging one), record those that
    answer your letters, and retry copies to Sent that failed.

    Exit status: 0 done; 2 something to fix (TLS, password, no IMAP server set); 1 the server
    cannot be reached now.
    """
    from ..errors import ConfigError
    from ..mailbox import sync

    config = _output.load_config()
    acct = config.account(account)
    if acct is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    box = _outbox()
    try:
        report = sync(box, acct, interactive=_output.interactive(), on_progress=_Progress())
        if as_json:
            _output.emit_json("mailbox-sync", _sync_json(report))
        else:
            _print_sync(report, _other_channels(box, report))
    finally:
        box.close()


def _sync_json(report: "SyncReport") -> dict[str, Any]:
    copies = report.copies
    return {
        "account": report.account,
        "scanned": report.scanned,
        "rescan": report.rescan,
        "responses": report.recorded,
        "already_recorded": report.already,
        "unrelated": report.unrelated,
        "notes": report.notes,
        "sent_copies": None
        if copies is None
        else {k: v for k, v in vars(copies).items() if k != "in_flight"},
    }


def _other_channels(box: Any, report: "SyncReport") -> dict[int, str]:
    """letter id -> the command preparing the letter for the contact's other channels."""
    from ..errors import LetterkitError

    found: dict[int, str] = {}
    try:
        contacts = {c.id: c for c in _output.load_campaign().contacts}
    except LetterkitError:
        contacts = {}
    for item in report.recorded:
        if item["kind"] != "bounce":
            continue
        row = box.get(item["letter"])
        contact = contacts.get(row.recipient)
        ways = [c for c in contact.channels if c != "email"] if contact is not None else []
        fmt = "txt" if ways == ["web"] else "pdf"
        if ways:
            found[row.id] = (
                f"{row.recipient} can also be reached by {', '.join(ways)}: "
                f"letterkit export {row.template} --to {row.recipient} --format {fmt} --out letters"
            )
    return found


def _print_sync(report: "SyncReport", others: dict[int, str]) -> None:
    copies = report.copies
    if copies is not None and (copies.copied or copies.found):
        _output.info(f"{copies.copied + copies.found} letter(s) copied to {_esc(copies.folder)}.")
    if copies is not None and copies.error:
        _output.warn(f"copy to Sent failed, retried next time: {_esc(copies.error)}")
    for note in report.notes:
        _output.info(_esc(note))
    for item in report.recorded:
        what = {"reply": "reply", "auto-reply": "automatic reply", "bounce": "bounce"}[item["kind"]]
        extra = f" ({item['recipient']}: {item['status']})" if item["kind"] == "bounce" else ""
        _output.out().print(
            f"#{item['letter']} {what} from {_esc(item['from'])} {str(item['date'])[:10]}{_esc(extra)}",
            highlight=False,
        )
        if item["letter"] in others:
            _output.info("  " + _esc(others[item["letter"]]))
    _output.info(
        f"{report.scanned} new message(s) read: replies {report.count('reply')}, "
        f"automatic replies {report.count('auto-reply')}, bounces {report.count('bounce')}, "
        f"unrelated {report.unrelated}."
    )


@app.command(
    "followup",
    short_help="Letters with no reply after N days.",
    epilog=examples("letterkit followup", "letterkit followup --days 21 --json"),
)
def followup(
    days: Annotated[int, typer.Option("--days", metavar="N", help="Days without a reply.", min=0)] = 14,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """List the letters with no real reply (automatic replies do not count) after N days.

    Send one follow-up to each with: letterkit send TEMPLATE --follow-up (once per letter).
    Run 'letterkit mailbox sync' first so that the replies are known.
    """
    from ..followup import as_json as item_json, due

    box = _outbox(readonly=True)
    try:
        found = due(box.ledger, days=days)
    finally:
        box.close()
    if as_json:
        _output.emit_json("followup", {"days": days, "letters": [item_json(r, c) for r, c in found]})
        return
    if not found:
        _output.info(f"No letter waits for a reply for {days} days or more.")
        return
    console = _output.out()
    for row, came_back in found:
        line = f"#{row.id} {row.recipient} {row.sent_at[:10]} {row.subject}"
        console.print(_esc(line + (f" ({came_back})" if came_back else "")), highlight=False)
    _output.info(
        f"{len(found)} letter(s) without a reply after {days} days: letterkit send followup --follow-up"
    )
