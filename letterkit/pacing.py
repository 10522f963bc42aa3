"""The pace of a delivery run, and what an SMTP reply asks of it.

Providers answer a sender who goes too fast with ordinary-looking codes: Gmail
``421 4.7.0 Try again later, closing connection`` or ``451 4.7.x``, Microsoft
4.5.x/4.7.x, and in the end a 5xx such as ``550 5.4.5 Daily user sending quota
exceeded``.  :data:`RULES` is the table that tells these apart (first match wins);
add a row for a provider whose wording it misses.  Kinds:

``temporary``  try this letter again later (back-off); the batch goes on
``slow``       the same, and the server asks us to send more slowly: halve the pace
``blocked``    the account is refused for sending too much: stop the batch, try tomorrow
``permanent``  this letter is refused for good

:class:`Pace`: at most so many letters a minute; a "slow down" halves the pace for
the rest of the run, and after :data:`SPEED_UP_AFTER` letters in a row go through
it is raised a step back towards the rate the user configured.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import TransportError

if TYPE_CHECKING:
    from collections.abc import Callable


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


SPEED_UP_AFTER = 20  # letters accepted in a row before the pace goes up a step
SPEED_UP = 0.75  # each step: the pause between letters times this
SLOWEST = 3600.0  # a pause between letters never grows beyond an hour


class Pace:
    """At most ``rate`` letters a minute (0: no limit); the first goes at once.

    ``on_wait(seconds)`` is told before each wait, so a progress display can say
    until when; ``sleep`` and ``monotonic`` are injectable (tests use a fake clock).
    """

    def __init__(
        self,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.interval = 60.0 / rate if rate and rate > 0 else 0.0
        self.configured = self.interval
        self._sleep, self._monotonic, self._on_wait = sleep, monotonic, on_wait
        self._next = 0.0
        self._last = 0.0
        self._gap = 0.0  # the time between the last two letters (the pace without a limit)
        self._streak = 0

    @property
    def rate(self) -> float:
        """Letters a minute now (0: no limit)."""
        return 60.0 / self.interval if self.interval else 0.0

    def must_wait(self) -> float:
        """Seconds until the next letter may go (0: now)."""
        if not self.interval or not self._next:
            return 0.0
        return max(0.0, self._next - self._monotonic())

    def wait(self) -> None:
        if (seconds := self.must_wait()) > 0:
            if self._on_wait is not None:
                self._on_wait(seconds)
            self._sleep(seconds)
        now = self._monotonic()
        if self._last:
            self._gap = now - self._last
        self._last = now
        self._next = now + self.interval

    def slow_down(self) -> float:
        """Halve the pace (without a limit: half the pace seen so far); returns the new rate."""
        current = self.interval or self._gap or 1.0
        self.interval = min(SLOWEST, max(current * 2, 0.01))
        self._next = self._last + self.interval if self._last else 0.0
        self._streak = 0
        return self.rate

    def went_through(self) -> bool:
        """One more letter accepted; True when this raised the pace a step."""
        if self.interval <= self.configured:
            return False
        self._streak += 1
        if self._streak < SPEED_UP_AFTER:
            return False
        self._streak = 0
        faster = self.interval * SPEED_UP
        floor = self.configured or 0.05  # without a limit: a pause this short is no pause
        self.interval = self.configured if faster <= floor else faster
        return True
