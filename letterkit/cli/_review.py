"""What ``outbox flush`` shows before it asks: each letter as it will leave.

A letter may have waited in the outbox for days (queued before an account
existed, or by an earlier version): before it goes, the person sending sees
who signs it, the From and Reply-To it will carry, and how it begins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import _output

if TYPE_CHECKING:
    from ..config import Account
    from ..outbox import Outbox, Row

BODY_LINES = 6  # lines of the body shown per letter (all of them with --full)


def _sender(row: Row, head: dict[str, str], account: Account) -> tuple[str, str]:
    """(From, Reply-To) as the letter will leave through ``account``."""
    import email.utils

    if row.account == account.name and head.get("from"):
        return head["from"], head.get("reply-to", "")
    name, _, signer_email = row.signer.partition(" <")
    signer_email = signer_email.rstrip(">")
    sender = email.utils.formataddr((name, account.from_addr))
    reply_to = signer_email if signer_email and signer_email.lower() != account.from_addr.lower() else ""
    return sender, email.utils.formataddr((name, reply_to)) if reply_to else ""


def review(box: Outbox, rows: Iterable[Row], account: Account, *, full: bool = False) -> None:
    """Print each letter's signer, From, Reply-To, subject and first lines (stderr)."""
    import email
    import email.policy

    from rich.text import Text

    console = _output.err()
    for row in rows:
        data = box.stored_message(row)
        if data is None:
            console.print(Text(f"#{row.id} → {row.recipient}: its message is missing", style="red"))
            continue
        msg = email.message_from_bytes(data, policy=email.policy.default)
        head = {k.lower(): str(v) for k, v in msg.items()}
        sender, reply_to = _sender(row, head, account)
        try:
            body = msg.get_content() if not msg.is_multipart() else ""
        except (LookupError, ValueError):
            body = ""
        lines = body.strip("\n").splitlines()
        shown = lines if full else lines[:BODY_LINES]
        text = Text()
        text.append(f"#{row.id} → {row.recipient}", style="bold")
        text.append(f"  {', '.join(row.rcpt)}\n")
        for label, value in (
            ("Signer", row.signer),
            ("From", sender),
            ("Reply-To", reply_to or "(none: replies go to From)"),
            ("Subject", head.get("subject", row.subject)),
        ):
            text.append(f"  {label + ':':<9} ", style="dim")
            text.append(f"{value}\n")
        for line in shown:
            text.append(f"  │ {line}\n")
        if len(lines) > len(shown):
            text.append(
                f"  │ … {len(lines) - len(shown)} more line(s) (--full shows the whole letter)\n", style="dim"
            )
        console.print(text)
