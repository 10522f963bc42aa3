"""Follow-ups: letters with no real reply after some days, and the one follow-up each may get.

An automatic reply is no answer; a bounced letter gets no e-mail follow-up (the
contact's other channels are offered instead).  A letter followed up once (its
follow-up is recorded in the ledger's ``followups``) is not listed again, and
follow-ups themselves are never followed up.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from . import clock

if TYPE_CHECKING:
    from .ledger import Ledger, Row

DEFAULT_DAYS = 14


def due(ledger: Ledger, *, days: int = DEFAULT_DAYS) -> list[tuple[Row, str]]:
    """(letter, what came back: "" or "auto-replied DATE") of each letter awaiting a follow-up:
    sent at least ``days`` ago, no reply and no bounce, not followed up, not a follow-up."""
    from .mailbox import outcome, responses

    cutoff = (clock.now().astimezone(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="seconds")
    rows = ledger.query(
        "WHERE channel = 'email' AND status IN ('sent', 'partial') AND sent_at != '' AND sent_at <= ? "
        "ORDER BY id",
        (cutoff,),
    )
    done = {int(a) for pair in ledger.select("SELECT id, original FROM followups") for a in pair}
    answers = responses(ledger, [r.id for r in rows])
    found = []
    for row in rows:
        got = answers.get(row.id, [])
        if row.id in done or any(a["kind"] in ("reply", "bounce") for a in got):
            continue
        found.append((row, outcome(got)))
    return found


def thread_headers(ledger: Ledger, original: Row) -> dict[str, str]:
    """In-Reply-To, References and the "Re:" subject of a follow-up to ``original``."""
    subject = original.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return {"In-Reply-To": original.message_id, "References": original.message_id, "Subject": subject}


def as_json(row: Row, came_back: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "recipient": row.recipient,
        "to": list(row.rcpt),
        "subject": row.subject,
        "sent_at": row.sent_at,
        "signer": row.signer,
        "template": row.template,
        "came_back": came_back,
    }
