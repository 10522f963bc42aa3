"""The pace of a delivery run: at most so many letters a minute, slower when the server asks.

A server that answers "slow down" (see :mod:`letterkit.replies`) halves the pace
for the rest of the run; after :data:`SPEED_UP_AFTER` letters in a row go through,
it is raised a step back towards the rate the user configured.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

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
