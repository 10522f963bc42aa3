"""The user's own mailbox: a copy of each letter in Sent, and replies and bounces matched to letters.

**Copy to Sent** (:func:`copy_to_sent`, called by the service layer after each
delivery): the exact bytes the ledger keeps as sent are APPENDed to the Sent folder,
``\\Seen``, dated when the letter went.  A copy never fails or repeats a letter: a
failure is recorded in ``sent_copies`` and retried by the next ``outbox flush`` or
``mailbox sync``.  It is never appended twice: the state ``appending`` is committed
before the APPEND and ``done`` after; a letter found ``appending`` (the process died
in between) or with no record at all (it died between SMTP and the record) is first
looked for in Sent by its Message-ID (``UID SEARCH HEADER``).

**Sync** (:func:`sync`): new INBOX messages since the last sync (UIDVALIDITY and the
last UID kept in ``mailbox_state``) are read without changing anything (EXAMINE,
BODY.PEEK), their headers first; those that may answer a letter are read in full and
classified (:mod:`letterkit.replies`), matched to a letter by In-Reply-To/References,
a bounce's original Message-ID or failed recipient, then by sender and subject, and
recorded once in ``responses`` (keyed by the incoming Message-ID: a UIDVALIDITY change
rescans INBOX without counting anything twice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, LetterkitError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .config import Account
    from .imap import Fetched, ImapSession
    from .ledger import Ledger
    from .outbox import Outbox
    from .replies import Incoming

KINDS = ("reply", "auto-reply", "bounce")
WORDS = {"reply": "replied", "auto-reply": "auto-replied", "bounce": "bounced"}
HEADER_CHUNK = 200  # messages whose headers one FETCH reads


# --- account settings ---------------------------------------------------------------------------


def check_imap(account: Account) -> None:
    """The IMAP settings of an account are usable (called by Account.validated)."""
    from .config import SECURITY_MODES
    from .validation import check_header_value

    where = f"account {account.name!r}"
    check_header_value(account.imap_host, "IMAP host")
    if not account.imap_host.strip() or " " in account.imap_host:
        raise ConfigError(f"{where}: invalid IMAP host {account.imap_host!r}")
    if account.imap_security not in SECURITY_MODES:
        raise ConfigError(
            f"{where}: unknown IMAP security {account.imap_security!r}", hint="use tls or starttls"
        )
    if isinstance(account.imap_port, bool) or not 0 <= account.imap_port < 65536:
        raise ConfigError(f"{where}: IMAP port {account.imap_port} is out of range (1 to 65535)")
    check_header_value(account.sent_folder, "Sent folder")


def imap_options(account: Account, preset: str | None, **given: Any) -> Account:
    """``account`` with the IMAP options of ``account add`` (None: not given), a preset filling
    the rest; an explicit ``--imap-security`` brings its own port."""
    from .presets import IMAP_PRESETS

    chosen = dict(IMAP_PRESETS.get((preset or "").lower(), {}))
    if given.get("imap_host"):
        chosen = {k: v for k, v in chosen.items() if k == "save_sent"}
    if given.get("imap_security"):
        chosen.pop("imap_port", None)
    values = {**chosen, **{k: v for k, v in given.items() if v is not None}}
    if not values.get("imap_host"):
        if any(given.get(k) for k in ("imap_port", "imap_security", "sent_folder")):
            raise ConfigError(
                "--imap-port, --imap-security and --sent-folder need --imap-host (or a --preset)"
            )
        values = {k: v for k, v in values.items() if k == "save_sent"}
    return replace(account, **values).validated()


def check_account(account: Account, steps: list[str], *, interactive: bool = False) -> None:
    """``account test``: log in over IMAP, check IMAP4rev1 and find Sent (steps as they succeed)."""
    imap = session_for(account, interactive=interactive)
    imap.open(steps)
    try:
        if account.save_sent:
            steps.append(f"Sent folder: {imap.find_sent(account.sent_folder)}")
        else:
            steps.append("no copy to Sent: the provider files one itself")
        imap.examine("INBOX")
        steps.append("INBOX readable (read-only); LOGOUT")
    finally:
        imap.close()


# --- ledger records -----------------------------------------------------------------------------


def _state(ledger: Ledger, account: str, key: str) -> str:
    found = ledger.select("SELECT value FROM mailbox_state WHERE account = ? AND key = ?", (account, key))
    return str(found[0][0]) if found else ""


def _set_state(ledger: Ledger, account: str, **values: object) -> None:
    with ledger.transaction() as conn:
        for key, value in values.items():
            conn.execute(
                "INSERT OR REPLACE INTO mailbox_state (account, key, value) VALUES (?, ?, ?)",
                (account, key, str(value)),
            )


def _mark(ledger: Ledger, letter: int, state: str, folder: str = "", note: str = "") -> None:
    from .ledger import now_text

    with ledger.transaction(durable=state == "appending") as conn:
        conn.execute(
            "INSERT INTO sent_copies (id, state, folder, attempts, note, at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET state = excluded.state, folder = excluded.folder, "
            "attempts = attempts + excluded.attempts, note = excluded.note, at = excluded.at",
            (letter, state, folder, 1 if state == "appending" else 0, note, now_text()),
        )


def copies_due(ledger: Ledger, account: Account) -> list[tuple[int, str, str, str]]:
    """(id, message id, sent at, copy state or "") of the account's letters whose copy is not
    done yet, sent since the copying began for the account."""
    since = _state(ledger, account.name, "copy_since")
    if not since:
        return []
    return [
        (int(i), str(m), str(s), str(c or ""))
        for i, m, s, c in ledger.select(
            "SELECT l.id, l.message_id, l.sent_at, c.state FROM letters l "
            "LEFT JOIN sent_copies c ON c.id = l.id "
            "WHERE l.account = ? AND l.channel = 'email' AND l.status IN ('sent', 'partial') "
            "AND l.sent_at >= ? AND (c.state IS NULL OR c.state != 'done') ORDER BY l.id",
            (account.name, since),
        )
    ]


def copies_pending(ledger: Ledger) -> int:
    """How many copies to Sent wait for a retry (failed or interrupted)."""
    found = ledger.select("SELECT COUNT(*) FROM sent_copies WHERE state != 'done'")
    return int(found[0][0]) if found else 0


def copies_note(ledger: Ledger) -> str:
    """For people after a delivery: copies to Sent that wait for a retry, and why ("" if none)."""
    found = ledger.select("SELECT note FROM sent_copies WHERE state != 'done' ORDER BY at DESC, id DESC")
    if not found:
        return ""
    return (
        f"{len(found)} letter(s) sent but not copied to Sent yet ({found[0][0]}); "
        "retried by the next 'letterkit outbox flush' or 'letterkit mailbox sync'"
    )


# --- copy to Sent -------------------------------------------------------------------------------


@dataclass
class CopyReport:
    """What :func:`copy_to_sent` did."""

    folder: str = ""
    copied: int = 0
    found: int = 0  # already in Sent (an interrupted earlier run had appended it)
    failed: int = 0
    error: str = ""
    in_flight: int = field(default=0, repr=False)  # the letter whose APPEND is under way


def session_for(
    account: Account, *, interactive: bool = False, password: Callable[[], str] | None = None
) -> ImapSession:
    """An IMAP session with ``password``, else the account's own password source."""
    from .credentials import remembered_password
    from .imap import ImapSession

    if not account.imap_host:
        raise ConfigError(
            f"account {account.name!r} has no IMAP server",
            hint=f"letterkit account add {account.name} ... --imap-host imap.example.org --replace",
        )
    return ImapSession(account, password or remembered_password(account, interactive=interactive))


def copy_to_sent(
    box: Outbox,
    account: Account | None,
    *,
    interactive: bool = False,
    session: ImapSession | None = None,
    password: Callable[[], str] | None = None,
) -> CopyReport | None:
    """After a delivery: APPEND each letter sent and not copied yet to Sent (see the module doc).

    None when the account has no IMAP or its provider files copies itself.  Never raises
    a server's or the network's error: it is recorded and the copy retried later.
    """
    if account is None or not account.imap_host or not account.save_sent:
        return None
    ledger = box.ledger
    from .ledger import now_text

    if not _state(ledger, account.name, "copy_since"):  # copies begin with the first delivery seen
        first = ledger.select("SELECT MIN(NULLIF(sent_at, '')) FROM letters WHERE account = ? AND batch = "
                              "(SELECT batch FROM letters WHERE account = ? ORDER BY id DESC LIMIT 1)",
                              (account.name, account.name))  # fmt: skip
        _set_state(ledger, account.name, copy_since=(first[0][0] if first and first[0][0] else now_text()))
    due = copies_due(ledger, account)
    report = CopyReport()
    if not due:
        return report
    handled: list[int] = []
    try:
        if session is None:
            with session_for(account, interactive=interactive, password=password) as imap:
                _append_all(box, imap, account, due, report, handled)
        else:
            _append_all(box, session, account, due, report, handled)
    except LetterkitError as exc:
        report.error = str(exc)
        for letter, _mid, _sent, state in due:
            if letter not in handled:  # one in flight stays "appending": looked for in Sent next time
                in_flight = state == "appending" or letter == report.in_flight
                _mark(ledger, letter, "appending" if in_flight else "failed", note=str(exc))
                report.failed += 1
    return report


def _append_all(
    box: Outbox,
    imap: ImapSession,
    account: Account,
    due: list[tuple[int, str, str, str]],
    report: CopyReport,
    handled: list[int],
) -> None:
    """APPEND each letter of ``due`` (ids appended to ``handled`` once it is recorded)."""
    folder = imap.find_sent(account.sent_folder)
    report.folder = folder
    for letter, message_id, sent_at, state in due:
        # no record (a crash between SMTP and here) or "appending" (a crash or a dropped
        # connection during the APPEND): it may be in Sent already
        if state in ("", "appending") and message_id and imap.has_message_id(folder, message_id):
            _mark(box.ledger, letter, "done", folder, "found in Sent (appended before an interruption)")
            report.found += 1
        elif (data := box.ledger.message(letter)) is None:
            _mark(box.ledger, letter, "failed", folder, "its message is missing from the ledger")
            report.failed += 1
        else:
            _mark(box.ledger, letter, "appending", folder)
            report.in_flight = letter
            imap.append(folder, data, _when(sent_at))
            _mark(box.ledger, letter, "done", folder)
            report.copied += 1
        handled.append(letter)


def _when(sent_at: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(sent_at)
    except ValueError:
        from . import clock

        return clock.now()


# --- sync ---------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What :func:`sync` found in INBOX."""

    account: str
    scanned: int = 0
    recorded: list[dict[str, Any]] = field(default_factory=list)
    already: int = 0  # answers recorded by an earlier sync (a rescan)
    unrelated: int = 0
    notes: list[str] = field(default_factory=list)
    rescan: bool = False
    copies: CopyReport | None = None

    def count(self, kind: str) -> int:
        return sum(1 for r in self.recorded if r["kind"] == kind)


def _sent_ids(ledger: Ledger, account: str) -> dict[str, int]:
    found = ledger.select(
        "SELECT message_id, id FROM letters WHERE channel = 'email' AND status IN ('sent', 'partial') "
        "AND message_id != '' AND account = ?",
        (account,),
    )
    return {str(m): int(i) for m, i in found}


def _recipients(ledger: Ledger, account: str) -> dict[str, list[tuple[int, str]]]:
    """address -> [(letter id, subject)] of the account's sent letters, newest first."""
    import json

    found: dict[str, list[tuple[int, str]]] = {}
    for row_id, rcpt, subject in ledger.select(
        "SELECT id, rcpt, subject FROM letters WHERE channel = 'email' AND status IN ('sent', 'partial') "
        "AND account = ? ORDER BY id DESC",
        (account,),
    ):
        addresses = json.loads(rcpt) if str(rcpt).startswith("[") else str(rcpt).split(", ")
        for addr in addresses:
            found.setdefault(str(addr).lower(), []).append((int(row_id), str(subject)))
    return found


def match(
    incoming: Incoming, ids: dict[str, int], recipients: dict[str, list[tuple[int, str]]]
) -> int | None:
    """The letter ``incoming`` answers: by its references, a bounce's original or failed
    recipient, then by sender and subject; None if it answers none."""
    from .replies import normal_subject

    for ref in (*((incoming.original_id,) if incoming.original_id else ()), *incoming.refs):
        if ref in ids:
            return ids[ref]
    if incoming.kind == "bounce":
        for rcpt, _status in incoming.failed:
            if rcpt in recipients:
                return recipients[rcpt][0][0]
        return None
    subject = normal_subject(incoming.subject)
    for letter, sent_subject in recipients.get(incoming.sender, []):
        mine = normal_subject(sent_subject)
        if subject and mine and (subject == mine or mine in subject):
            return letter
    return None


def _record(ledger: Ledger, account: str, letter: int, incoming: Incoming) -> bool:
    """Record one answer; False if it was recorded before (same incoming Message-ID)."""
    rcpt, status = incoming.failed[0] if incoming.failed else ("", "")
    with ledger.transaction() as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO responses (letter, kind, account, message_id, sender, subject, date, "
            "excerpt, recipient, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (letter, incoming.kind, account, incoming.message_id, incoming.sender, incoming.subject,
             incoming.date, incoming.excerpt, rcpt, status),
        )  # fmt: skip
        return bool(cur.rowcount)


def sync(
    box: Outbox,
    account: Account,
    *,
    interactive: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Read INBOX's new messages, record the answers to letters, retry copies to Sent."""
    report = SyncReport(account.name)
    with session_for(account, interactive=interactive) as imap:
        if account.save_sent:
            report.copies = copy_to_sent(box, account, session=imap)
        _scan_inbox(box.ledger, imap, account, report, on_progress)
    return report


def _scan_inbox(
    ledger: Ledger,
    imap: ImapSession,
    account: Account,
    report: SyncReport,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    validity, _exists = imap.examine("INBOX")
    known_validity = _state(ledger, account.name, "inbox_uidvalidity")
    last = int(_state(ledger, account.name, "inbox_uid") or 0)
    if known_validity and known_validity != str(validity):
        report.rescan, last = True, 0
        report.notes.append(
            "INBOX was renumbered by the server (UIDVALIDITY changed): read again from the start"
        )
    uids = imap.uids_after(last)
    ids, recipients = _sent_ids(ledger, account.name), _recipients(ledger, account.name)
    for start in range(0, len(uids), HEADER_CHUNK):
        chunk = uids[start : start + HEADER_CHUNK]
        heads = imap.headers(chunk)  # the headers first: most mail answers no letter
        for uid in chunk:
            report.scanned += 1
            if _worth_reading(heads.get(uid, b""), ids, recipients):
                for fetched in imap.fetch([uid]):
                    _read(ledger, account, fetched, ids, recipients, report)
            else:
                report.unrelated += 1
            if on_progress is not None:
                on_progress(report.scanned, len(uids))
        _set_state(ledger, account.name, inbox_uidvalidity=validity, inbox_uid=chunk[-1])
    if not uids:
        _set_state(ledger, account.name, inbox_uidvalidity=validity, inbox_uid=last)


def _read(
    ledger: Ledger,
    account: Account,
    fetched: Fetched,
    ids: dict[str, int],
    recipients: dict[str, list[tuple[int, str]]],
    report: SyncReport,
) -> None:
    """Classify one message read whole and record it if it answers a letter."""
    from .replies import read_message

    where = f"INBOX message UID {fetched.uid}: "
    if fetched.truncated:
        report.notes.append(f"{where}{fetched.size // 1024} KiB, only its first part was read")
    _file(ledger, account, read_message(fetched.data, where=where), ids, recipients, report)


def _worth_reading(header: bytes, ids: dict[str, int], recipients: dict[str, Any]) -> bool:
    """From its header alone: may this message answer a letter (a reference to one, a sender
    letters went to, a delivery report, a mailer daemon)?  Only those are read whole."""
    import email
    import email.utils

    from .replies import message_ids

    msg = email.message_from_bytes(header)
    refs = [*message_ids(msg.get("In-Reply-To")), *message_ids(msg.get("References"))]
    sender = email.utils.parseaddr(str(msg.get("From", "")))[1].lower()
    return (
        any(r in ids for r in refs)
        or sender in recipients
        or msg.get_content_type() == "multipart/report"
        or sender.split("@")[0] in ("mailer-daemon", "postmaster")
        or not header  # a server that did not give the header: read the message
    )


def _file(
    ledger: Ledger,
    account: Account,
    incoming: Incoming,
    ids: dict[str, int],
    recipients: dict[str, list[tuple[int, str]]],
    report: SyncReport,
) -> None:
    letter = match(incoming, ids, recipients)
    if incoming.problem:
        if letter is not None or incoming.sender.split("@")[0] in ("mailer-daemon", "postmaster"):
            report.notes.append(incoming.problem)
        else:
            report.unrelated += 1
        return
    if letter is None:
        report.unrelated += 1
        return
    if not _record(ledger, account.name, letter, incoming):
        report.already += 1
        return
    report.recorded.append(
        {"letter": letter, "kind": incoming.kind, "from": incoming.sender, "date": incoming.date,
         "subject": incoming.subject, "recipient": incoming.failed[0][0] if incoming.failed else "",
         "status": incoming.failed[0][1] if incoming.failed else ""}
    )  # fmt: skip


# --- what the ledger knows, for log, check and contacts -----------------------------------------


def responses(ledger: Ledger, letters: Iterable[int] | None = None) -> dict[int, list[dict[str, Any]]]:
    """letter id -> its answers, oldest first."""
    found: dict[int, list[dict[str, Any]]] = {}
    columns = ("letter", "kind", "sender", "subject", "date", "excerpt", "recipient", "status")
    wanted = None if letters is None else set(letters)
    for values in ledger.select(f"SELECT {', '.join(columns)} FROM responses ORDER BY date, id"):
        item = dict(zip(columns, values, strict=True))
        if wanted is None or item["letter"] in wanted:
            found.setdefault(int(item["letter"]), []).append(item)
    return found


def outcome(answers: list[dict[str, Any]]) -> str:
    """One line for a letter's answers: ``replied 2026-11-27`` (a real reply wins)."""
    for kind in ("reply", "bounce", "auto-reply"):
        for item in answers:
            if item["kind"] == kind:
                return f"{WORDS[kind]} {str(item['date'])[:10]}".strip()
    return ""


def bounced_addresses(ledger: Ledger) -> dict[str, tuple[str, str]]:
    """address -> (date, status) of each address a letter bounced from (the latest)."""
    found: dict[str, tuple[str, str]] = {}
    for rcpt, date, status in ledger.select(
        "SELECT recipient, date, status FROM responses "
        "WHERE kind = 'bounce' AND recipient != '' ORDER BY date"
    ):
        found[str(rcpt).lower()] = (str(date)[:10], str(status))
    return found


def suspects(contacts: Iterable[Any]) -> dict[str, dict[str, str]]:
    """contact id -> {address, bounced (date), status} for each contact whose e-mail bounced.

    Reads the ledger only if there is one (``letterkit contacts`` stays quick on a new machine).
    """
    from .config import data_dir
    from .ledger import Ledger
    from .maildir import Paths

    path = Paths.under(data_dir()).ledger
    if not path.exists():
        return {}
    ledger = Ledger(path, readonly=True)
    try:
        bounced = bounced_addresses(ledger)
    finally:
        ledger.close()
    found = {}
    for c in contacts:
        for addr in (c.email, *c.cc):
            if addr and addr.lower() in bounced:
                date, status = bounced[addr.lower()]
                found[c.id] = {"address": addr, "bounced": date, "status": status}
    return found


def suspect_text(contact_id: str, item: dict[str, str]) -> str:
    return (
        f"contact {contact_id}: {item['address']} bounced on {item['bounced']} ({item['status']}): "
        "a suspect address; check it, or reach the contact by fax, post or web form (letterkit export)"
    )
