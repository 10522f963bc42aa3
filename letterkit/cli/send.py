"""``letterkit send``: compose, check, show, confirm, queue durably, deliver, report.

The decisions are the library's (:class:`letterkit.service.SendJob`); this module asks
and renders.
"""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..presets import ADD_ACCOUNT_HINT
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
    NameOpt,
    NoteFileOpt,
    NoteOpt,
    OrgOpt,
    ToOpt,
    examples,
)
from ._report import (
    _PATHS_HELP,
    AccountOpt,
    RateOpt,
    WindowOpt,
    YesOpt,
    _esc,
    _exit_for,
    _outbox,
    _summary,
    emit_json_stream,
    next_due_json,
)
from ._send_parts import (
    _by_hand_entries,
    _compact,
    _edited,
    _open_forms,
    _show_by_hand,
    _Skips,
    _StaleContacts,
)

if TYPE_CHECKING:
    from ..config import Account
    from ..delivery import DeliveryReport
    from ..letters import Letter
    from ..outbox import Outbox, QueueResult
    from ..service import SendJob


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
    window: WindowOpt = None,
    open_forms: Annotated[
        bool,
        typer.Option(
            "--open-forms",
            help="Open the web forms of recipients without e-mail, with the letter on the clipboard.",
        ),
    ] = False,
    follow_up: Annotated[
        bool,
        typer.Option(
            "--follow-up",
            help="Only to contacts whose letter had no reply after --days: threaded, 'Re:' its subject.",
        ),
    ] = False,
    days: Annotated[
        int, typer.Option("--days", metavar="N", help="With --follow-up: days without reply.")
    ] = 14,
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
        window=window,
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
    if follow_up:
        from ..followup import follow_ups

        letters = follow_ups(letters, days=days)
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
    job: "SendJob", letters: "Iterable[Letter]", *, resend: bool, as_json: bool, base: dict[str, Any]
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
    job: "SendJob",
    letters: "Iterable[Letter]",
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

    def queued_now(queued: "QueueResult") -> None:
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
                box, letters, resend=resend, other_signers=other_signers, on_skip=skips, on_queued=queued_now,
                on_progress=progress, on_wait=progress.waiting, interactive=interactive, on_note=_output.warn,
            )  # fmt: skip
        finally:
            progress.stop()
        _finish_send(box, sent.queue, sent.delivery, skips, acct, after["by_hand"], open_forms, as_json, base)
    finally:
        skips.close()
        box.close()


def _confirm_send(
    box: "Outbox", letters: "list[Letter]", acct: "Account | None", *, resend: bool
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


def _keep_first(letters: "Iterable[Letter]", kept: "list[Letter]", limit: int) -> "Iterator[Letter]":
    """Pass letters through, keeping the first ``limit`` of them in ``kept``."""
    for letter in letters:
        if len(kept) < limit:
            kept.append(letter)
        yield letter


def _finish_send(
    box: "Outbox",
    queued: "QueueResult",
    report: "DeliveryReport | None",
    skips: _Skips,
    acct: "Account | None",
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
                **next_due_json(report),
            },
        )
    _exit_for(report)


def _dry_run(
    job: "SendJob",
    letters: "Iterable[Letter]",
    *,
    resend: bool,
    as_json: bool,
    base: dict[str, Any],
) -> None:
    """Show every letter with its envelope and what send would do; write nothing."""
    box = _outbox(readonly=True)
    from_addr = job.account.from_addr if job.account else None
    counts: dict[str, int] = {}

    def plans() -> "Iterator[tuple[Letter, str, str, dict[str, Any] | None]]":
        for p in job.plan(box, letters, resend=resend):
            counts[p.action] = counts.get(p.action, 0) + 1
            yield p.letter, p.action, p.reason, p.envelope

    try:
        if as_json:
            _dry_run_json(plans(), from_addr, base)
        else:
            _dry_run_people(plans(), from_addr)
    finally:
        box.close()
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items()) or "no letters"
    _output.info(f"Dry run: {summary}. Nothing was queued or sent.")


Plans = Iterable[tuple["Letter", str, str, "dict[str, Any] | None"]]  # (letter, action, reason, envelope)


def _dry_run_json(plans: Plans, from_addr: str | None, base: dict[str, Any]) -> None:
    from ._render import letter_headers

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
        for letter, action, reason, envelope in plans
    )
    empty: dict[str, Any] = {key: [] for key in ("sent", "partial", "queued", "failed", "skipped", "by_hand")}
    empty["error"] = None
    emit_json_stream("send", base, {"letters": items}, empty)


def _dry_run_people(plans: Plans, from_addr: str | None) -> None:
    from rich.text import Text

    from ._render import show_letters

    for letter, action, reason, envelope in plans:
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
