"""Commands: send, outbox, log and account — delivery through the user's own mail account.

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
     "paths": {"outbox", "sent", "ledger", "prepared"}, "error": str|null}

``queued`` lists the letters still in the outbox at the end (no account, a
temporary failure, or a stopped batch: ``reason`` says which).

``send --dry-run``: the same keys (all lists empty) plus ``"dry_run": true`` and
``"letters": [{"action": "send"|"queue"|"prepare"|"skip", "reason", "recipient",
"recipient_name", "channel", "subject", "headers": {...}, "envelope": {"mail_from",
"rcpt_to"}|null, "body"}]``.

``outbox``: ``{"kind": "outbox", "paths", "letters": [ROW]}``;
``outbox flush``: ``{"kind": "outbox-flush", "account", "sent", "partial", "failed",
"queued", "error"}``; ``log``: ``{"kind": "log", "paths", "letters": [ROW]}``;
``log done``: ``{"kind": "log-done", "letter": ROW}``;
``account list``: ``{"kind": "accounts", "config", "default", "accounts": [...]}``;
``account test``: ``{"kind": "account-test", "account", "ok", "steps", "error"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config import parse_rate
from . import _common, _output
from ._app import app
from ._common import (
    CampaignOpt,
    CityOpt,
    CosignersOpt,
    CountryOpt,
    EmailOpt,
    JsonOpt,
    LangOpt,
    LetterkitTyper,
    NameOpt,
    NoteFileOpt,
    NoteOpt,
    OrgOpt,
    ToOpt,
    examples,
)

if TYPE_CHECKING:
    from ..campaign import Campaign
    from ..config import Account
    from ..contacts import Contact
    from ..delivery import DeliveryReport
    from ..letters import Letter
    from ..outbox import Outbox, QueueResult, Row, Skipped
    from ..service import SendJob

SUMMARY_ROWS = 50  # longest table printed for people; longer batches list only problems

from ..service import PRESETS  # noqa: E402  (the preset names appear in --help)

ADD_ACCOUNT_HINT = (  # no password source here: account add names the ones this machine has
    "letterkit account add NAME --host smtp.example.org --username you@example.org --from you@example.org"
)

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
        help="At most N letters per minute (also N/hour); 0 for no limit. "
        "Default: [defaults] rate in config.toml, else 20/min.",
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
    box: Outbox, account: Account, *, rate: float, retry_failed: bool, show_progress: bool
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


class _Skips:
    """Collects what ``queue`` left out without holding it in memory.

    People see the first few as lines on stderr; ``--json`` gets every one from
    a spool file; hand letters prepared earlier are kept (they are few) for the
    'Needs your hand' list.
    """

    SHOW = 20

    def __init__(self, *, people: bool, keep: bool) -> None:
        import tempfile

        self.people = people
        self.count = 0
        self.prepared: list[Skipped] = []
        self.spool = (
            tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
            if keep
            else None
        )

    def emptied(self, letter: Letter) -> None:
        """A letter the signer emptied in the editor (``send --edit``)."""
        from ..outbox import Skipped

        self(Skipped(letter.key, letter.contact.id, letter.contact.name, "emptied in the editor"))

    def __call__(self, skip: Skipped) -> None:
        import json

        self.count += 1
        if skip.status == "prepared":
            self.prepared.append(skip)
        if self.spool is not None:
            self.spool.write(json.dumps(skip.as_dict(), ensure_ascii=False) + "\n")
        if self.people and self.count <= self.SHOW:
            _output.info(f"Skipping {_esc(skip.recipient)}: {_esc(skip.reason)}")

    def finish(self) -> None:
        if self.people and self.count > self.SHOW:
            _output.info(f"… {self.count - self.SHOW} more letters skipped ({self.count} in all).")

    def items(self) -> Iterator[dict[str, Any]]:
        import json

        if self.spool is None:
            return
        self.spool.seek(0)
        for line in self.spool:
            yield json.loads(line)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


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


def _compact(box: Outbox, queued: QueueResult, account: Account | None) -> None:
    """What is about to go, one line per letter (send --yes on a terminal)."""
    from itertools import islice

    from rich.table import Table

    if not queued.to_deliver:
        return
    sender = account.from_addr if account else "(no account yet)"
    table = Table(title=f"Queued from {_esc(sender)}", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True, min_width=3)  # ids whole at 80 columns
    table.add_column("recipient", no_wrap=True, overflow="fold")
    table.add_column("to / cc", overflow="fold")
    table.add_column("subject", overflow="ellipsis", no_wrap=True, max_width=50)
    for row in islice(box.batch_rows(queued.batch, ("queued",)), SUMMARY_ROWS):
        table.add_row(str(row.id), _esc(row.recipient), _esc(", ".join(row.rcpt)), _esc(row.subject))
    _output.err().print(table)
    if queued.to_deliver > SUMMARY_ROWS:
        _output.info(f"… and {queued.to_deliver - SUMMARY_ROWS} more")


def _by_hand_entries(
    campaign: Campaign, queued: QueueResult, skips: _Skips, box: Outbox
) -> list[dict[str, Any]]:
    """Letters the signer must deliver: prepared now, or prepared earlier and not yet done."""
    rows: list[tuple[Row, bool]] = [(r, False) for r in queued.prepared]
    rows += [(box.get(s.row_id), True) for s in skips.prepared if s.row_id is not None]
    wanted = {row.recipient for row, _ in rows}
    contacts = {c.id: c for c in campaign.iter_contacts() if c.id in wanted} if wanted else {}
    entries: list[dict[str, Any]] = []
    for row, earlier in rows:
        c = contacts.get(row.recipient)
        entries.append(
            {
                "id": row.id,
                "recipient": row.recipient,
                "recipient_name": row.recipient_name,
                "channels": [ch for ch in (c.channels if c else ()) if ch != "email"],
                "fax": c.fax if c else "",
                "address": list(c.address) if c else [],
                "web_form": list(c.web_form) if c else [],
                "files": row.files,
                "prepared_earlier": earlier,
            }
        )
    return entries


def _show_by_hand(entries: list[dict[str, Any]]) -> None:
    """One block per recipient without e-mail: how to reach it and the files ready for it."""
    from rich.panel import Panel
    from rich.table import Table

    if not entries:
        return
    console = _output.err()
    console.print("[bold]Needs your hand[/] — these recipients have no e-mail address:")
    for e in entries:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        if e["fax"]:
            grid.add_row("fax", _esc(e["fax"]))
        if e["address"]:
            grid.add_row("post", _esc("\n".join(e["address"])))
        for i, url in enumerate(e["web_form"]):
            grid.add_row("web form" if i == 0 else "", _esc(url))
        labels = {"pdf": "PDF to print", "txt": "text for forms"}
        for kind, path in e["files"].items():
            grid.add_row(labels.get(kind, kind), _esc(path))
        who = _esc(e["recipient_name"] or e["recipient"])
        earlier = " [dim](prepared earlier)[/]" if e["prepared_earlier"] else ""
        console.print(Panel(grid, title=f"#{e['id']} {who}{earlier}", title_align="left"))
    _output.info(
        "When you have faxed, posted or submitted one, record it: letterkit log done ID --via fax|post|web"
    )


def copy_to_clipboard(text: str) -> str | None:
    """Put ``text`` on the clipboard with the first tool available; its name, or None."""
    import os
    import shutil
    import subprocess

    candidates = []
    if os.environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    candidates += [
        ["xclip", "-selection", "clipboard"],
        ["xsel", "--clipboard", "--input"],
        ["pbcopy"],
        ["clip.exe"],
    ]
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        try:
            subprocess.run(argv, input=text.encode("utf-8"), check=True, timeout=5, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return argv[0]
    return None


def _open_forms(entries: list[dict[str, Any]]) -> None:
    """Open each web form in the browser, with the letter's text on the clipboard."""
    import webbrowser
    from pathlib import Path

    with_forms = [e for e in entries if e["web_form"]]
    if not with_forms:
        _output.info("No web forms to open.")
        return
    for n, e in enumerate(with_forms, 1):
        txt = e["files"].get("txt")
        tool = None
        if txt:
            try:
                tool = copy_to_clipboard(Path(txt).read_text(encoding="utf-8"))
            except OSError:
                tool = None
        if tool:
            _output.info(f"The letter to {_esc(e['recipient'])} is on the clipboard ({tool}): paste it.")
        else:
            _output.info(
                "No clipboard tool found (wl-copy, xclip, xsel, pbcopy, clip.exe): "
                f"copy the text from {_esc(txt or 'the prepared .txt file')}"
            )
        for url in e["web_form"]:
            if not webbrowser.open(url):
                _output.warn(f"could not open a browser; open {url} yourself")
        if n < len(with_forms) and _output.interactive():
            typer.prompt("Press Enter for the next web form", default="", show_default=False, err=True)


def _run_editor(text: str, name: str) -> str:
    """Open ``text`` in $VISUAL or $EDITOR (else nano/vi) and return what was saved."""
    import os
    import shlex
    import shutil
    import subprocess
    import tempfile

    from ..errors import InvalidValue

    command = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not command:
        command = next((e for e in ("nano", "vi") if shutil.which(e)), "")
    if not command:
        raise InvalidValue("--edit needs an editor: set EDITOR (e.g. EDITOR=nano)")
    with tempfile.TemporaryDirectory(prefix="letterkit-") as tmp:
        path = os.path.join(tmp, f"{name}.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            done = subprocess.run([*shlex.split(command), path], check=False)
        except OSError as exc:
            raise InvalidValue(f"cannot start the editor {command!r}: {exc.strerror}") from None
        if done.returncode != 0:
            raise InvalidValue(
                f"the editor {command!r} exited with status {done.returncode}",
                hint="nothing was queued",
            )
        with open(path, encoding="utf-8") as fh:
            return fh.read()


def _edited(
    letters: Iterable[Letter], require_note: bool, on_empty: Callable[[Letter], None]
) -> Iterator[Letter]:
    """Open each letter in $EDITOR before it is queued.

    Saving unchanged (or quitting) keeps the letter as it is; emptying it leaves
    that letter out (reported as skipped).  When the campaign asks for personal
    words, a letter left unchanged without a --note stops the whole send.
    """
    from ..errors import InvalidValue

    for letter in letters:
        text = _run_editor(letter.body, f"letter-{letter.contact.id}").replace("\r\n", "\n")
        if not text.strip():
            on_empty(letter)
            continue
        if "\x00" in text:
            raise InvalidValue(f"the edited letter to {letter.contact.id} contains a NUL byte")
        edited = letter.with_body(text)
        if require_note and edited.verbatim:
            raise InvalidValue(
                f"the letter to {letter.contact.id} was left unchanged, and this campaign asks "
                "for personal words",
                hint="write a few lines of your own in each letter, or pass --note; nothing was queued",
            )
        yield edited


class _StaleContacts:
    """Notes, as letters stream past, which recipients' contact data is old (a few ids kept)."""

    SHOW = 8

    def __init__(self) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.dates: set[str] = set()
        self.reported = False

    def note(self, contact: Contact) -> None:
        if contact.is_stale():
            self.count += 1
            self.dates.add(contact.checked or "never")
            if len(self.ids) < self.SHOW:
                self.ids.append(contact.id)

    def track(self, letters: Iterable[Letter]) -> Iterator[Letter]:
        for letter in letters:
            self.note(letter.contact)
            yield letter

    def report(self, base: dict[str, Any]) -> None:
        """Warn (once) and add the warning to the JSON document's ``warnings``."""
        if self.reported:
            return
        self.reported = True
        for w in self.warnings():
            _output.warn(w)
            base["warnings"].append(w)

    def warnings(self) -> list[str]:
        if not self.count:
            return []
        more = f" and {self.count - len(self.ids)} more" if self.count > len(self.ids) else ""
        return [
            f"contact data last checked {', '.join(sorted(self.dates))}: verify before relying on it "
            f"({', '.join(self.ids)}{more})"
        ]


# --- send ------------------------------------------------------------------------------------

_SEND_HELP = f"""Send a template's letters through your own mail account.

Every letter is composed and checked first (nothing leaves if one is invalid),
shown, and confirmed on a terminal (--yes skips the question; without a
terminal --yes is required). Letters are written durably to the outbox, then
delivered over one connection; an interrupted send is resumed by running it
again or 'letterkit outbox flush'. Letters already sent (same campaign,
template, recipient and signer) are skipped unless --resend.

Recipients without e-mail (fax, post, web form) get a PDF and a text file under
prepared/ and a 'Needs your hand' list at the end.  Without a mail account the
letters stay queued until you add one and run 'letterkit outbox flush'.

{_PATHS_HELP}
"""


@app.command(
    help=_SEND_HELP,
    short_help="Send letters through your own mail account.",
    epilog=examples(
        "letterkit send protest --dry-run",
        'letterkit send protest --to group:missions --note "I ask you to act."',
    ),
)
def send(
    template: Annotated[str, typer.Argument(metavar="TEMPLATE", help="Template name, e.g. protest.")],
    to: ToOpt = None,
    cc: Annotated[
        list[str] | None,
        typer.Option(
            "--cc",
            metavar="SEL",
            help="Copies instead of the template's (repeatable): id or group:NAME; --cc '' for none.",
        ),
    ] = None,
    lang: LangOpt = None,
    account: AccountOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show exactly what would be sent, envelope included; change nothing."),
    ] = False,
    yes: YesOpt = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send again letters the ledger says were sent already.")
    ] = False,
    note: NoteOpt = None,
    note_file: NoteFileOpt = None,
    edit: Annotated[
        bool,
        typer.Option(
            "--edit",
            help="Open each letter in $EDITOR before it is queued (save unchanged to keep it, "
            "empty it to leave that letter out).",
        ),
    ] = False,
    cosigners: CosignersOpt = None,
    rate: RateOpt = None,
    open_forms: Annotated[
        bool,
        typer.Option(
            "--open-forms",
            help="Open the web forms of recipients without e-mail, with the letter on the clipboard.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    name: NameOpt = None,
    email: EmailOpt = None,
    city: CityOpt = None,
    country: CountryOpt = None,
    organisation: OrgOpt = None,
    campaign_dir: CampaignOpt = None,
) -> None:
    from ..service import SendJob

    config = _output.load_config()
    job = SendJob.create(
        config,
        _output.load_campaign(),
        template,
        _common.resolve_signer(config, name, email, city, country, organisation),
        account=account,
        rate=rate,
        to=to or (),
        cc=cc,
        language=lang,
        note=_common.read_note(note, note_file),
        cosigners=_common.read_cosigners(cosigners),
        will_edit=edit,
    )
    _check_editor(edit)
    for w in job.warnings:
        _output.warn(w)
    dry = dry_run or job.dry_run_only  # placeholder details (the quick start): shown, never queued
    if not dry and not yes and not _output.interactive():
        from ..errors import NotConfirmed

        raise NotConfirmed(
            "not sending without confirmation: there is no terminal to ask on",
            hint="pass --yes to send, or --dry-run to see what would be sent; nothing was queued",
        )
    skips = _Skips(people=not as_json, keep=as_json)
    letters = job.letters()
    if edit:
        letters = _edited(letters, job.campaign.require_note, skips.emptied)
    base: dict[str, Any] = {
        "campaign": job.campaign.id,
        "template": template,
        "account": job.account.name if job.account else None,
        "dry_run": dry,
        "deadline_passed": job.campaign.deadline_passed(),
        "warnings": job.warnings,
    }
    if dry:
        _send_dry_run(job, letters, resend=resend, as_json=as_json, base=base)
    else:
        _send_now(
            job, letters, skips, yes=yes, resend=resend, open_forms=open_forms, as_json=as_json, base=base
        )


def _check_editor(edit: bool) -> None:
    import os

    from ..errors import InvalidValue

    if edit and not (_output.interactive() or os.environ.get("VISUAL") or os.environ.get("EDITOR")):
        raise InvalidValue(
            "--edit needs an editor: there is no terminal and neither $VISUAL nor $EDITOR is set",
            hint="set EDITOR (e.g. EDITOR=nano) or run on a terminal",
        )


def _send_dry_run(
    job: SendJob, letters: Iterable[Letter], *, resend: bool, as_json: bool, base: dict[str, Any]
) -> None:
    stale = _StaleContacts()
    for contact in job.recipients():
        stale.note(contact)
    stale.report(base)
    if job.placeholder:
        base["placeholder"] = job.placeholder
    _dry_run(job, letters, resend=resend, as_json=as_json, base=base)
    if job.placeholder and not as_json:
        _output.info(
            f"Nothing was queued: {job.placeholder}, so these letters are only a preview. "
            "To send them, sign with your own details — letterkit signer set --name 'Your Name' "
            f"--email you@your-provider --city … --country … — then run: letterkit send {job.template}"
        )


def _send_now(
    job: SendJob,
    letters: Iterable[Letter],
    skips: _Skips,
    *,
    yes: bool,
    resend: bool,
    open_forms: bool,
    as_json: bool,
    base: dict[str, Any],
) -> None:
    """Confirm (on a terminal), queue durably, deliver, report."""
    from ..errors import NotConfirmed
    from ._views import Progress

    people, interactive, acct = not as_json, _output.interactive(), job.account
    stale = _StaleContacts()
    letters = stale.track(letters)  # no extra pass over the contacts: noted as letters stream past
    shown: list[Letter] = []
    if yes and people and acct is None:  # nothing leaves now: show what is queued (a few letters)
        letters = _keep_first(letters, shown, SHOW_QUEUED + 1)
    box = _outbox()
    other_signers = False  # under --yes, letters another signer sent already are skipped
    progress = Progress("Sending", bar=interactive and people and _output.stdout_is_terminal())
    after: dict[str, Any] = {}

    def queued_now(queued: QueueResult) -> None:
        """Between queueing and delivery: what was queued, and what needs your hand."""
        skips.finish()
        if shown and len(shown) <= SHOW_QUEUED:
            from ._render import show_letters

            keys = {row.key for row in box.batch_rows(queued.batch, ("queued", "prepared"))}
            show_letters([lt for lt in shown if lt.key in keys], _output.err())
        stale.report(base)
        if people and yes and interactive:
            _compact(box, queued, acct)
        after["by_hand"] = _by_hand_entries(job.campaign, queued, skips, box)

    try:
        if not yes:
            letters = list(letters)  # a person reads them all: a human-sized batch
            stale.report(base)
            go, other_signers = _confirm_send(box, letters, acct, resend=resend)
            if not go:
                raise NotConfirmed("you declined; nothing was queued or sent")
            skips.people = False  # the skipped letters were listed with the preview
        try:
            sent = job.run(
                box,
                letters,
                resend=resend,
                other_signers=other_signers,
                on_skip=skips,
                on_queued=queued_now,
                on_progress=progress,
                on_wait=progress.waiting,
                interactive=interactive,
            )
        finally:
            progress.stop()
        _finish_send(box, sent.queue, sent.delivery, skips, acct, after["by_hand"], open_forms, as_json, base)
    finally:
        skips.close()
        box.close()


def _confirm_send(
    box: Outbox, letters: list[Letter], acct: Account | None, *, resend: bool
) -> tuple[bool, bool]:
    """Show the letters (stderr) and ask: (go on, also to recipients another signer wrote to)."""
    from ..outbox import OTHER_SIGNER
    from ._render import show_letters

    fresh, others = [], []
    for letter in letters:
        reason, _row = box.skip_reason(letter, resend=resend)
        if reason.startswith(OTHER_SIGNER):
            _output.warn(f"{letter.contact.id}: {reason}")
            others.append(letter)
        elif reason:
            _output.info(f"Skipping {_esc(letter.contact.id)}: {_esc(reason)}")
        else:
            fresh.append(letter)
    again = bool(others) and typer.confirm(
        f"{len(others)} recipient(s) already got this letter from another signer on this machine. "
        "Send it to them again, signed by you?",
        default=False,
        err=True,
    )
    if again:
        fresh += others
    if not fresh:
        return True, again  # nothing new: no question to ask (waiting letters of the batch still go)
    from_addr = acct.from_addr if acct else None
    show_letters(fresh, _output.err(), from_addr=from_addr)
    n_mail = sum(1 for lt in fresh if lt.channel == "email")
    n_hand = len(fresh) - n_mail
    if acct is None:
        what = f"Queue {n_mail} letter(s) in the outbox (no mail account is set up yet)"
    else:
        what = f"Send {n_mail} letter(s) from {acct.from_addr} through account {acct.name!r}"
    if n_hand:
        what += f" and prepare {n_hand} for delivery by hand"
    return bool(typer.confirm(what + "?", default=False, err=True)), again


SHOW_QUEUED = 10  # send --yes without an account shows the letters in full up to this many


def _keep_first(letters: Iterable[Letter], kept: list[Letter], limit: int) -> Iterator[Letter]:
    """Pass letters through, keeping the first ``limit`` of them in ``kept``."""
    for letter in letters:
        if len(kept) < limit:
            kept.append(letter)
        yield letter


def _finish_send(
    box: Outbox,
    queued: QueueResult,
    report: DeliveryReport | None,
    skips: _Skips,
    acct: Account | None,
    by_hand: list[dict[str, Any]],
    open_forms: bool,
    as_json: bool,
    base: dict[str, Any],
) -> None:
    if open_forms:
        _open_forms(by_hand)
    if not as_json:
        if report is not None:
            _summary(box, report)
        _show_by_hand(by_hand)
        if acct is None and queued.to_deliver:
            _output.info(
                f"{queued.to_deliver} letter(s) are queued in the outbox ({_esc(box.paths.outbox)}). "
                f"No mail account is set up yet: add yours with `{ADD_ACCOUNT_HINT}`, "
                "then send them with `letterkit outbox flush`."
            )
        elif not queued.to_deliver and not by_hand:
            _output.info("Nothing new to send.")
    else:

        def rows(*statuses: str) -> Iterator[dict[str, Any]]:
            return (r.as_dict() for r in box.batch_rows(queued.batch, statuses))

        emit_json_stream(
            "send",
            base,
            {
                "sent": rows("sent"),
                "partial": rows("partial"),
                "queued": rows("queued"),
                "failed": rows("failed"),
                "skipped": skips.items(),
            },
            {
                "by_hand": by_hand,
                "paths": box.paths.as_dict(),
                "error": str(report.error) if report and report.error else None,
            },
        )
    _exit_for(report)


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


def _dry_run(
    job: SendJob,
    letters: Iterable[Letter],
    *,
    resend: bool,
    as_json: bool,
    base: dict[str, Any],
) -> None:
    """Show every letter with its envelope and what send would do; write nothing."""
    from ._render import letter_headers, show_letters

    box = _outbox(readonly=True)
    from_addr = job.account.from_addr if job.account else None
    counts: dict[str, int] = {}

    def plans() -> Iterator[tuple[Letter, str, str, dict[str, Any] | None]]:
        for p in job.plan(box, letters, resend=resend):
            counts[p.action] = counts.get(p.action, 0) + 1
            yield p.letter, p.action, p.reason, p.envelope

    try:
        if as_json:
            items = (
                {
                    "action": action,
                    "reason": reason,
                    "recipient": letter.contact.id,
                    "recipient_name": letter.contact.name,
                    "channel": letter.channel,
                    "subject": letter.subject,
                    "headers": dict(letter_headers(letter, from_addr)),
                    "envelope": envelope,
                    "body": letter.body,
                }
                for letter, action, reason, envelope in plans()
            )
            emit_json_stream(
                "send",
                base,
                {"letters": items},
                {
                    "sent": [],
                    "partial": [],
                    "queued": [],
                    "failed": [],
                    "skipped": [],
                    "by_hand": [],
                    "error": None,
                },
            )
            return
        from rich.text import Text

        for letter, action, reason, envelope in plans():
            show_letters([letter], _output.out(), from_addr=from_addr)
            if envelope:
                line = (
                    f"Envelope: MAIL FROM:<{from_addr or 'your account address'}> "
                    f"RCPT TO:{', '.join(f'<{a}>' for a in envelope['rcpt_to'])}"
                )
            else:
                line = "By hand: a PDF and a text file would be written under prepared/"
            verdict = {
                "send": "would be sent",
                "queue": "would be queued (no mail account yet)",
                "prepare": "would be prepared for delivery by hand",
                "skip": f"would be skipped: {reason}",
            }[action]
            _output.out().print(Text(f"{line}\n→ {verdict}\n"))
    finally:
        box.close()
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items()) or "no letters"
    _output.info(f"Dry run: {summary}. Nothing was queued or sent.")


# --- outbox ----------------------------------------------------------------------------------

outbox_app = LetterkitTyper(
    help=f"Letters waiting to be sent (queued) or refused (failed), and why. {_PATHS_HELP}",
    invoke_without_command=True,
    no_args_is_help=False,
    short_help="Letters waiting to be sent or refused, and why.",
)
app.add_typer(outbox_app, name="outbox")


def _row_cells(row: Row) -> list[str]:
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


def _print_rows(rows: Iterable[Row], title: str, *, when: str) -> None:
    """Rows for people on a terminal (see :mod:`._ledger_view`), tab-separated lines when piped."""
    headers = ["id", "status", "recipient", "to", "subject", "queued_at", "sent_at", "reason"]
    if not _output.stdout_is_terminal():
        _output.emit_tsv([headers])
        for r in rows:
            _output.emit_tsv([_row_cells(r)])
        return
    from ._ledger_view import print_rows

    print_rows(rows, title, when=when)


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
    from ..outbox import IN_OUTBOX

    if ctx.invoked_subcommand:
        return
    box = _outbox()
    try:
        exists = box.paths.ledger.exists()
        if exists:
            box.reconcile_if_free()
        rows = box.iter_rows(IN_OUTBOX) if exists else iter(())
        if as_json:
            emit_json_stream(
                "outbox", {"paths": box.paths.as_dict()}, {"letters": (r.as_dict() for r in rows)}
            )
            return
        queued = box.count(("queued",)) if exists else 0
        failed = box.count(("failed",)) if exists else 0
        if queued or failed:
            _print_rows(rows, "Outbox", when="queued")
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
    epilog=examples("letterkit outbox flush", "letterkit outbox flush --account work --yes"),
)
def outbox_flush(
    account: AccountOpt = None,
    yes: YesOpt = False,
    rate: RateOpt = None,
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
    subject and its first lines (--full: the whole letter).
    """
    from itertools import islice

    from ..errors import ConfigError, NotConfirmed
    from ..outbox import IN_OUTBOX

    config = _output.load_config()
    acct = config.account(account)
    if acct is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    per_minute = parse_rate(rate, config.rate)
    statuses = IN_OUTBOX if retry_failed else ("queued",)
    box = _outbox()
    try:
        if box.paths.ledger.exists():
            box.reconcile_if_free()
        waiting = box.count(statuses) if box.paths.ledger.exists() else 0
        interactive = _output.interactive()
        if waiting and not yes:
            if not interactive:
                raise NotConfirmed(
                    "not sending without confirmation: there is no terminal to ask on",
                    hint="pass --yes",
                )
            from ._review import review

            review(box, islice(box.iter_rows(statuses), SUMMARY_ROWS), acct, full=full)
            if waiting > SUMMARY_ROWS:
                _output.info(f"… and {waiting - SUMMARY_ROWS} more (letterkit outbox lists them all)")
            if not typer.confirm(
                f"Send {waiting} letter(s) from {acct.from_addr} through account {acct.name!r}?",
                default=False,
                err=True,
            ):
                raise NotConfirmed("you declined; the letters stay in the outbox")
        report = _deliver(
            box,
            acct,
            rate=per_minute,
            retry_failed=retry_failed,
            show_progress=interactive and not as_json and _output.stdout_is_terminal(),
        )
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
                {"error": str(report.error) if report.error else None},
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
    finally:
        box.close()
    _exit_for(report)


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
        if as_json:
            emit_json_stream("log", {"paths": box.paths.as_dict()}, {"letters": (r.as_dict() for r in rows)})
            return
        from itertools import chain

        it = iter(rows)
        first = next(it, None)
        if first is None:
            _output.info("Nothing sent yet." if not (campaign or show_all) else "No letters match.")
        else:
            _print_rows(chain([first], it), "Ledger", when="sent")
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


# --- account ------------------------------------------------------------------------------------

account_app = LetterkitTyper(
    help="Your SMTP mail accounts (in config.toml; passwords never are: they stay in the OS "
    "keyring, $LETTERKIT_SMTP_PASSWORD or a password_command).",
    no_args_is_help=True,
    short_help="Your SMTP mail accounts.",
    epilog=examples("letterkit account add mine --preset gmail", "letterkit account list"),
)
app.add_typer(account_app, name="account")


def _read_password_stdin() -> str:
    """One line from standard input (typed hidden when stdin is a terminal)."""
    from ..errors import CredentialError

    if sys.stdin.isatty():
        import getpass

        line = getpass.getpass("Password (stored in the OS keyring): ")
    else:
        line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CredentialError("--password-stdin: no password on standard input; nothing was saved")
    return password


@account_app.command(
    "add",
    short_help="Add your SMTP account.",
    epilog=examples(
        "letterkit account add mine --preset gmail --username me@gmail.com",
        "letterkit account add work --host smtp.example.org --from me@example.org --password-stdin",
    ),
)
def account_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A short name for the account, e.g. personal.")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", metavar="PROVIDER", help=f"Fill host, port and security for: {', '.join(PRESETS)}."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", metavar="HOST", help="SMTP server, e.g. smtp.example.org.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", metavar="PORT", help="Port (default: 587 starttls, 465 tls, 25 none)."),
    ] = None,
    security: Annotated[
        str | None,
        typer.Option("--security", metavar="starttls|tls|none", help="Encryption (default starttls)."),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option("--username", metavar="LOGIN", help="Login name (default: the --from address)."),
    ] = None,
    from_addr: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="ADDR", help="Your own address: letters go From it (default: --username)."
        ),
    ] = None,
    ca_file: Annotated[
        str | None, typer.Option("--ca-file", metavar="FILE", help="PEM file of a private CA to trust.")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input into the OS keyring."),
    ] = False,
    password_command: Annotated[
        str | None,
        typer.Option(
            "--password-command", metavar="CMD", help="Command printing the password, e.g. 'pass show mail'."
        ),
    ] = None,
    no_login: Annotated[
        bool, typer.Option("--no-login", help="The server needs no login (no AUTH).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for the server.")
    ] = 30.0,
    default: Annotated[bool, typer.Option("--default", help="Make it the default account.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an account of that name (e.g. a new password).")
    ] = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Add your SMTP account (the password goes to the OS keyring, never to a file)."""
    from ..errors import InvalidValue
    from ..service import AccountOptions, account_from_options, add_account

    if password_stdin and password_command:
        raise InvalidValue("give --password-stdin or --password-command, not both")
    acct, note = account_from_options(
        AccountOptions(
            name=name,
            preset=preset,
            host=host,
            port=port,
            security=security,
            username=username,
            from_addr=from_addr,
            ca_file=ca_file,
            password_command=password_command,
            no_login=no_login,
            timeout=timeout,
        )
    )
    config = _output.load_config()
    if password_stdin and not acct.username:
        raise InvalidValue("--password-stdin with --no-login: there is no login to use it for")
    password = _read_password_stdin() if password_stdin else None
    path, stored = add_account(config, acct, password=password, default=default, replace=replace)
    _output.info(
        f"Account {_esc(name)} saved in {_esc(path)}: {_esc(acct.host)}:{acct.port} ({acct.security}), "
        f"From {_esc(acct.from_addr)}; password {_esc(stored)}."
    )
    if note:
        _output.info(_esc(note) + ".")
    _output.info(f"Check it with: letterkit account test {_esc(name)}")
    _hint_waiting()


def _hint_waiting() -> None:
    from ..config import data_dir
    from ..outbox import Paths

    if not Paths.under(data_dir()).ledger.exists():
        return
    box = _outbox(readonly=True)
    try:
        waiting = box.count(("queued",))
    finally:
        box.close()
    if waiting:
        _output.info(f"{waiting} letter(s) wait in the outbox: send them with: letterkit outbox flush")


@account_app.command("list", epilog=examples("letterkit account list", "letterkit account list --json"))
def account_list(as_json: JsonOpt = False, campaign_dir: CampaignOpt = None) -> None:
    """List your mail accounts and where each password comes from."""
    from ..config import config_path
    from ..credentials import password_source
    from ..errors import ConfigError

    config = _output.load_config()
    try:
        chosen = config.account()
    except ConfigError:  # several accounts, none the default (or $LETTERKIT_ACCOUNT unknown)
        chosen = None
    default = chosen.name if chosen else ""
    items = []
    for acct in sorted(config.accounts.values(), key=lambda a: a.name):
        items.append(
            {
                "name": acct.name,
                **acct.as_dict(),
                "default": acct.name == default,
                "password": password_source(acct) if acct.username else "none",
            }
        )
    if as_json:
        _output.emit_json(
            "accounts",
            {"config": str(config.path or config_path()), "default": default or None, "accounts": items},
        )
        return
    if not items:
        _output.info(f"No mail account yet. Add yours with: {ADD_ACCOUNT_HINT}")
        return
    headers = ["name", "host", "port", "security", "username", "from", "password", "default"]
    cells = [
        [i["name"], i["host"], str(i["port"]), i["security"], i["username"], i["from"], i["password"],
         "yes" if i["default"] else ""]
        for i in items
    ]  # fmt: skip
    if not _output.stdout_is_terminal():
        _output.emit_tsv([headers, *cells])
        return
    from ._views import print_accounts

    print_accounts(items)


@account_app.command(
    "test",
    short_help="Check the connection, TLS and password.",
    epilog=examples("letterkit account test", "letterkit account test work"),
)
def account_test(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="Account name (default: the default account).")
    ] = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Connect, check TLS and the password, then quit without sending anything.

    Exit status: 0 the account works; 2 something to fix in your setup (no password,
    wrong password or login refused, untrusted certificate, TLS mode, unknown
    account); 1 the server cannot be reached now (down, refused, timed out, unknown
    host): try again later.

    Example: letterkit account test personal
    """
    from ..errors import ConfigError, LetterkitError
    from ..service import smtp_transport

    config = _output.load_config()
    acct = config.account(name)
    if acct is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    transport = smtp_transport(acct, interactive=_output.interactive())
    steps: list[str] = []
    try:
        transport.check(steps)
    except LetterkitError as exc:
        if as_json:
            _output.emit_json(
                "account-test", {"account": acct.name, "ok": False, "steps": steps, "error": str(exc)}
            )
        else:
            for step in steps:
                _output.info(f"[green]✓[/] {_esc(step)}")
        raise
    if as_json:
        _output.emit_json("account-test", {"account": acct.name, "ok": True, "steps": steps, "error": None})
        return
    for step in steps:
        _output.info(f"[green]✓[/] {_esc(step)}")
    _output.info(f"Account {_esc(acct.name)} works.")


@account_app.command(
    "remove",
    short_help="Remove an account and its stored password.",
    epilog=examples("letterkit account remove work"),
)
def account_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    campaign_dir: CampaignOpt = None,
) -> None:
    """Remove an account from config.toml and its password from the OS keyring."""
    from ..config import save_config
    from ..credentials import delete_password
    from ..errors import ConfigError, CredentialError

    config = _output.load_config()
    if name not in config.accounts:
        known = ", ".join(sorted(config.accounts)) or "none"
        raise ConfigError(f"no account named {name!r} (known: {known})")
    del config.accounts[name]
    if config.default_account == name:
        config.default_account = ""
    save_config(config)
    try:
        had = delete_password(name)
    except CredentialError as exc:
        _output.warn(f"could not reach the keyring to delete the password: {exc}")
        had = False
    _output.info(f"Account {_esc(name)} removed" + (" with its password from the keyring." if had else "."))
