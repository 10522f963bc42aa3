"""What an incoming message is: a reply, an automatic reply or a bounce (no I/O here).

* a **bounce** is a delivery status notification (RFC 3464): ``multipart/report;
  report-type=delivery-status`` whose report says ``Action: failed`` for a recipient,
  with its ``Status`` code (``5.1.1``); the bounced message's Message-ID comes from its
  returned copy or headers;
* an **automatic reply** says so (RFC 3834 ``Auto-Submitted`` other than ``no``,
  ``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``) or uses the usual
  vacation wording, in English or Russian, in its subject or first lines;
* anything else that answers a letter is a **reply**.

:func:`read_message` never raises on a malformed message: what cannot be read is
reported in ``problem`` and the caller skips it with a note.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

AUTO_WORDS = re.compile(
    r"out of (the )?office|out-of-office|automatic reply|auto[- ]?reply|autoresponse|auto[- ]?response"
    r"|on (annual )?(vacation|holiday|leave)|away from (the|my) (office|desk)|currently away"
    r"|автоответ|автоматическ\w+ ответ|в отпуске|вне офиса|отсутству\w+ (в офисе|на рабочем месте|до)",
    re.IGNORECASE,
)
SUBJECT_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|tr|rv|ответ|отв|автоответ|automatic reply|auto(matische)? ?(reply|antwort)"
    r"|out of office( reply)?|undeliverable|undelivered)\s*(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)
EXCERPT_LINES = 6


@dataclass(frozen=True)
class Incoming:
    """One message from INBOX as letterkit understands it."""

    message_id: str
    sender: str  # the From address, lower-case
    sender_name: str
    subject: str
    date: str  # ISO 8601, UTC, or "" if the Date header is unreadable
    refs: tuple[str, ...]  # In-Reply-To first, then References newest first
    kind: str  # reply, auto-reply, bounce, or "" (not an answer: a delay notice, unreadable)
    excerpt: str = ""
    failed: tuple[tuple[str, str], ...] = ()  # a bounce: (recipient, status code)
    original_id: str = ""  # a bounce: the Message-ID of the bounced message
    problem: str = ""  # why it was skipped


def normal_subject(subject: str) -> str:
    """A subject without Re:/Fwd:/Автоответ: prefixes and extra spaces, case-folded."""
    return " ".join(SUBJECT_PREFIX.sub("", subject).split()).casefold()


def message_ids(value: str | None) -> list[str]:
    """The <...> ids in a Message-ID, In-Reply-To or References header."""
    return re.findall(r"<[^<>\s]+>", str(value or ""))


def _address(msg: Message) -> tuple[str, str]:
    name, addr = email.utils.parseaddr(str(msg.get("From", "")))
    return name, addr.strip().lower()


def _date(msg: Message) -> str:
    import datetime as dt

    try:
        when = email.utils.parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def _text(msg: EmailMessage) -> str:
    """The first text/plain part (html with its tags taken out when there is none)."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = str(part.get_content())
    except (LookupError, ValueError, AssertionError):
        return ""
    if part.get_content_subtype() == "html":
        text = re.sub(r"<[^>]*>", " ", text)
    return text


def excerpt(text: str) -> str:
    """The first lines of the message's own words (quoted lines and the quote header left out)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or re.match(
            r"^(on .+ wrote:|-----original message-----)$", stripped, re.I
        ):
            break
        if stripped:
            lines.append(stripped)
        if len(lines) == EXCERPT_LINES:
            break
    return "\n".join(lines)


def _automatic(msg: Message, subject: str, text: str) -> bool:
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponse"):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(AUTO_WORDS.search(subject) or AUTO_WORDS.search(text[:600]))


def _report(msg: EmailMessage) -> tuple[list[tuple[str, str, str]], str]:
    """(recipient, action, status) of each recipient block of a DSN, and the original's Message-ID."""
    found: list[tuple[str, str, str]] = []
    original = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload() or []:
                if not hasattr(block, "get"):
                    continue
                rcpt = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
                if rcpt:
                    addr = rcpt.split(";", 1)[-1].strip().strip("<>").lower()
                    found.append(
                        (
                            addr,
                            str(block.get("Action", "")).strip().lower(),
                            str(block.get("Status", "")).strip(),
                        )
                    )
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and not original:
            original = _original_id(part)
    return found, original


def _original_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and hasattr(payload[0], "get"):
        ids = message_ids(payload[0].get("Message-ID"))
    else:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload or "")
        m = re.search(r"^Message-ID:\s*(<[^>]+>)", text, re.I | re.M)
        ids = [m.group(1)] if m else []
    return ids[0] if ids else ""


def stable_id(data: bytes) -> str:
    """An id for a message without Message-ID: the same however often it is read."""
    return "<sha256:" + hashlib.sha256(data[:65536]).hexdigest()[:32] + ">"


def read_message(data: bytes, *, where: str = "") -> Incoming:
    """What ``data`` (a message, or its first bytes) is; see the module docstring."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    ids = message_ids(str(msg.get("Message-ID", "")))
    refs = (
        *message_ids(str(msg.get("In-Reply-To", ""))),
        *reversed(message_ids(str(msg.get("References", "")))),
    )
    name, addr = _address(msg)
    subject = " ".join(str(msg.get("Subject", "")).split())
    base: dict[str, Any] = {
        "message_id": ids[0] if ids else stable_id(data),
        "sender": addr,
        "sender_name": name,
        "subject": subject,
        "date": _date(msg),
        "refs": tuple(dict.fromkeys(refs)),
    }
    if msg.get_content_type() == "multipart/report":
        if str(msg.get_param("report-type", "")).lower() != "delivery-status":
            return Incoming(**base, kind="", problem=f"{where}a report that is not about delivery: skipped")
        blocks, original = _report(msg)
        failed = tuple((r, s or "5.0.0") for r, action, s in blocks if action == "failed")
        if not blocks:
            return Incoming(
                **base, kind="", problem=f"{where}a delivery report naming no recipient (malformed): skipped"
            )
        if not failed:
            return Incoming(
                **base, kind="", problem=f"{where}a delivery report without a failure (delayed?): skipped"
            )
        return Incoming(
            **base, kind="bounce", failed=failed, original_id=original, excerpt=excerpt(_text(msg))
        )
    text = _text(msg)
    kind = "auto-reply" if _automatic(msg, subject, text) else "reply"
    return Incoming(**base, kind=kind, excerpt=excerpt(text))
