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


def review(box: Outbox, rows: Iterable[Row], account: Account, *, full: bool = False) -> None:
    """Print each letter's signer, From, Reply-To, subject and first lines (stderr)."""
    import email
    import email.policy

    from rich.text import Text

    from ..delivery import as_it_leaves

    console = _output.err()
    for row in rows:
        data = box.stored_message(row)
        if data is None:
            console.print(Text(f"#{row.id} → {row.recipient}: its message is missing", style="red"))
            continue
        # as delivery will send it: From for this account, Reply-To the signer, Date now
        msg = email.message_from_bytes(as_it_leaves(data, row, account), policy=email.policy.default)
        head = {k.lower(): str(v) for k, v in msg.items()}
        sender, reply_to = head.get("from", ""), head.get("reply-to", "")
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
