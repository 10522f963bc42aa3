"""Follow-ups: letters with no real reply after some days, and the one follow-up each may get.

An automatic reply is no answer; a bounced letter gets no e-mail follow-up (the
contact's other channels are offered instead).  A follow-up is the letter "Re: <the
original's subject>" to the same recipient from the same signer, threaded by
In-Reply-To/References: the ledger knows a letter was followed up by that later
letter, so it gets one follow-up only, and follow-ups themselves are never followed up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import clock

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .ledger import Ledger, Row
    from .letters import Letter

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
    later = {
        (str(r), str(s), str(w))
        for r, s, w in ledger.select(
            "SELECT recipient, subject, signer FROM letters WHERE channel = 'email' "
            "AND status IN ('queued', 'sent', 'partial') AND subject LIKE 'Re: %'"
        )
    }
    answers = responses(ledger, [r.id for r in rows])
    found = []
    for row in rows:
        got = answers.get(row.id, [])
        followed = (row.recipient, follow_subject(row.subject), row.signer) in later
        if row.subject.startswith("Re: ") or followed or any(a["kind"] in ("reply", "bounce") for a in got):
            continue
        found.append((row, outcome(got)))
    return found


def follow_subject(subject: str) -> str:
    return subject if subject.startswith("Re: ") else f"Re: {subject}"


def threaded(letters: Iterable[Letter], originals: list[tuple[Row, str]]) -> Iterator[Letter]:
    """``letters`` as follow-ups of ``originals`` (:func:`due`): each to a contact with a letter
    awaiting one from the same signer, "Re:" its subject and threaded to it; letters to
    anyone else are left out."""
    waiting: dict[tuple[str, str, str], Row] = {}
    for row, _came_back in originals:
        waiting.setdefault((row.recipient, row.signer_name, row.signer_email), row)
    for letter in letters:
        signer = letter.signer
        original = waiting.get((letter.contact.id, signer.name, signer.email))
        if original is None or letter.channel != "email":
            continue
        yield replace(letter, subject=follow_subject(original.subject), in_reply_to=original.message_id)


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


def follow_ups(letters: Iterable[Letter], *, days: int = DEFAULT_DAYS) -> Iterator[Letter]:
    """``send --follow-up``: the letters as follow-ups of those in the ledger awaiting one."""
    from .outbox import Outbox

    box = Outbox(readonly=True)
    try:
        originals = due(box.ledger, days=days)
    finally:
        box.close()
    return threaded(letters, originals)
