"""What an SMTP reply asks of a sender: go on, try this letter later, slow down, or stop.

Providers answer a sender who goes too fast with ordinary-looking codes: Gmail
``421 4.7.0 Try again later, closing connection`` or ``451 4.7.x``, Microsoft
4.5.x/4.7.x, and in the end a 5xx such as ``550 5.4.5 Daily user sending quota
exceeded``.  :data:`RULES` is the table that tells these apart (first match wins);
add a row for a provider whose wording it misses.

Kinds:

``temporary``  try this letter again later (back-off); the batch goes on
``slow``       the same, and the server asks us to send more slowly: halve the pace
``blocked``    the account is refused for sending too much: stop the batch, try tomorrow
``permanent``  this letter is refused for good
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import TransportError

Kind = Literal["ok", "temporary", "slow", "blocked", "permanent"]

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Rule:
    """Replies with a code in ``codes`` (a class like 4 = every 4xx) whose enhanced status
    code starts with ``enhanced`` (empty: any) and whose text matches ``words`` (empty:
    any) mean ``kind``."""

    codes: tuple[int, ...]
    kind: Kind
    enhanced: str = ""
    words: str = ""
    why: str = ""

    def matches(self, code: int, text: str) -> bool:
        if code not in self.codes and code // 100 not in self.codes:
            return False
        if self.enhanced:
            found = _ENHANCED.search(text)
            if not found or not found.group(0).startswith(self.enhanced):
                return False
        return not self.words or re.search(self.words, text, re.IGNORECASE) is not None


_TOO_MUCH = r"quota|limit|too many|\brate\b|throttl|exceeded|sending too"

RULES: list[Rule] = [
    # greylisting: an ordinary "later" (the same letter goes through after some minutes)
    Rule((4,), "temporary", words=r"grey|gray", why="greylisting"),
    # 5xx: refused for sending too much (Gmail 5.4.5; 5.7.x with quota wording, e.g. Microsoft)
    Rule((5,), "blocked", enhanced="5.4.5", why="daily sending quota exceeded"),
    Rule((5,), "blocked", enhanced="5.7.", words=_TOO_MUCH, why="sending limit exceeded"),
    Rule((5,), "blocked", words=r"sending quota|daily (user )?sending|quota exceeded", why="quota"),
    # slow down: 421 (service closing), 4.7.x (policy), or rate wording
    Rule((421,), "slow", why="the server closes the connection"),
    Rule((450, 451, 452), "slow", enhanced="4.7.", why="policy (rate) limit"),
    Rule((450, 451, 452), "slow", words=_TOO_MUCH + r"|slow down|try later", why="rate limit"),
    Rule((4,), "temporary"),
    Rule((5,), "permanent"),
    Rule((2,), "ok"),
]


def classify(code: int, text: str = "") -> Kind:
    """The kind of reply ``code`` with ``text`` (e.g. ``451``, ``"4.3.0 try again later"``).

    A code that is not an SMTP reply (0, -1: no reply at all, the connection went)
    is ``temporary``.
    """
    for rule in RULES:
        if rule.matches(code, text):
            return rule.kind
    return "temporary"


def reply_code(reply: str) -> int:
    """The three-digit code a reply text starts with (0 if none): ``"451 4.3.0 ..."`` -> 451;
    also the code inside texts like ``"DATA refused: 451 ..."``."""
    found = re.search(r"(?:^|: |\()([2-5]\d\d)\b", reply)
    return int(found.group(1)) if found else 0


class SendingBlocked(TransportError):
    """The server refuses more mail from this account for now (a daily quota): the batch
    stops, the letters stay queued until :attr:`until`."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, until: str = "") -> None:
        super().__init__(message, hint=hint)
        self.until = until
