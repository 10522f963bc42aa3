"""When each queued letter is due: its back-off, the daily quota, the recipient's office hours.

The way a mail server treats its queue: a letter that met a temporary failure
gets its own next-attempt time (exponential back-off with jitter, kept in the
ledger), so the others go on; an account that may send N recipients a day
sends what the last 24 hours leave, and the rest is due when the oldest of
those ages out; a letter meant to arrive in office hours waits for the next
weekday window in the recipient's own time zone.

:func:`due` answers, for one letter, *when* and *why* (``back-off``, ``window``,
``quota`` or ``blocked``); :func:`letterkit.delivery.deliver` sends the letters
that are due now, and ``letterkit outbox`` shows the others with their time.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidValue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .ledger import Ledger, Row

DAY = dt.timedelta(days=1)
BACKOFF_CAP = 4 * 3600.0  # a letter is retried at least every four hours
IN_RUN_WAIT = 300.0  # a run waits for back-offs up to this long; later ones are the next run's
JITTER = 0.25  # a back-off is up to a quarter longer, so deferred letters don't retry in step
WEEKDAYS = range(5)  # Monday to Friday


def backoff(attempts: int, base: float, rng: Callable[[], float] | None = None) -> float:
    """Seconds to wait after the ``attempts``-th temporary failure: ``base``, 2×, 4×, ... (at most
    :data:`BACKOFF_CAP`), plus up to :data:`JITTER` of it at random (``rng``: random.random)."""
    if rng is None:
        import random

        rng = random.random
    delay: float = min(BACKOFF_CAP, base * 2.0 ** max(0, attempts - 1))
    return delay * (1 + JITTER * rng())


def zone(name: str, where: str = "timezone") -> dt.tzinfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Vienna``); InvalidValue if there is none."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*", name):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(
            f"{where} {name!r} is not a time zone", hint="use an IANA name such as Europe/Vienna"
        ) from None


@dataclass(frozen=True)
class Window:
    """Office hours, e.g. 09:00-17:00, on weekdays, in the recipient's time zone."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Window:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*", text)
        try:
            if not m:
                raise ValueError(text)
            start, end = dt.time(int(m[1]), int(m[2])), dt.time(int(m[3]), int(m[4]))
        except ValueError:
            raise InvalidValue(f"send window {text!r} is not HH:MM-HH:MM", hint="e.g. 09:00-17:00") from None
        if start >= end:
            raise InvalidValue(f"send window {text!r} ends before it starts", hint="e.g. 09:00-17:00")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def next_open(self, when: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        """``when`` if it is inside the window in ``tz``, else when the window opens next."""
        local = when.astimezone(tz)
        for days in range(8):
            day = local.date() + dt.timedelta(days=days)
            if day.weekday() not in WEEKDAYS:
                continue
            start = dt.datetime.combine(day, self.start, tz)
            if local < start:
                return start
            if local < dt.datetime.combine(day, self.end, tz):
                return when
        raise AssertionError("a week always has a weekday")  # pragma: no cover


class Quota:
    """At most ``per_day`` recipients in any 24 hours (0: no quota), counting what was sent."""

    def __init__(self, per_day: int, sent: Iterable[tuple[dt.datetime, int]] = ()) -> None:
        self.per_day = max(0, per_day)
        self._sent: deque[tuple[dt.datetime, int]] = deque(sorted(sent))

    def used(self, now: dt.datetime) -> int:
        """Recipients sent in the 24 hours before ``now``."""
        return sum(n for t, n in self._sent if t > now - DAY)

    def earliest(self, n: int, now: dt.datetime) -> dt.datetime:
        """When ``n`` more recipients may go (``now`` if they may now)."""
        if not self.per_day:
            return now
        n = min(n, self.per_day)  # a letter to more than the quota goes alone
        live = sorted((t, k) for t, k in self._sent if t > now - DAY)
        used = sum(k for _t, k in live)
        for t, k in live:
            if used + n <= self.per_day:
                break
            used -= k
            now = max(now, t + DAY)
        return now

    def take(self, when: dt.datetime, n: int) -> None:
        self._sent.append((when, n))


def sent_last_day(ledger: Ledger, account: str, now: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """(when, recipients) of each letter this account sent in the 24 hours before ``now``."""
    since = (now - DAY).astimezone(dt.UTC).isoformat(timespec="seconds")
    rows = ledger.query(
        "WHERE account = ? AND status IN ('sent', 'partial') AND channel = 'email' AND sent_at >= ?",
        (account, since),
    )
    return [(dt.datetime.fromisoformat(r.sent_at), len(r.rcpt)) for r in rows if r.sent_at]


@dataclass(frozen=True)
class Schedule:
    """The rules of a delivery run besides the pace.

    ``per_day``: recipients in any 24 hours for the account (0: none); ``window``: send
    only in the recipient's office hours (contacts without a ``timezone``: in ``local``,
    the user's own zone, default the clock's), for letters queued without a ``--window``
    of their own, or for all when ``window_given`` (``--window`` given to this run);
    ``backoff_base``: the first back-off in seconds; ``wait``: keep running until every
    letter is sent (``outbox flush --wait``).
    """

    per_day: int = 0
    window: Window | None = None
    window_given: bool = False
    backoff_base: float = 2.0
    in_run_wait: float = IN_RUN_WAIT
    wait: bool = False
    local: dt.tzinfo | None = None

    def zone_of(self, row: Row, now: dt.datetime) -> dt.tzinfo:
        if row.timezone:
            try:
                return zone(row.timezone)
            except InvalidValue:
                pass  # validated when the contact was read; a ledger edited by hand: the user's zone
        return self.local or now.tzinfo or dt.UTC


@dataclass(frozen=True)
class Due:
    """When a letter is due and why it waits (``why`` empty: due now)."""

    at: dt.datetime
    why: str = ""


def due(row: Row, now: dt.datetime, schedule: Schedule, quota: Quota) -> Due:
    """When ``row`` may go, at ``now`` or later: its back-off, then its window and the quota."""
    at, why = now, ""
    if row.next_attempt_at and row.wait_reason not in ("window", "quota"):  # those: judged anew
        later = dt.datetime.fromisoformat(row.next_attempt_at)
        if later > now:
            at, why = later, row.wait_reason or "back-off"
    window = schedule.window if schedule.window_given or not row.window else queued_window(row.window)
    for _ in range(4):  # the window and the quota move each other: settle (both only move later)
        moved = False
        if window is not None:
            opens = window.next_open(at, schedule.zone_of(row, now))
            if opens > at:
                at, why, moved = opens, "window", True
        free = quota.earliest(len(row.rcpt), at)
        if free > at:
            at, why, moved = free, "quota", True
        if not moved:
            break
    return Due(at, why)


@functools.lru_cache(maxsize=16)
def queued_window(text: str) -> Window | None:
    """The ``--window`` a letter was queued with (``any``, or a ledger edited by hand: none)."""
    try:
        return Window.parse(text)
    except InvalidValue:
        return None


def plan(rows: Iterable[Row], now: dt.datetime, schedule: Schedule, quota: Quota) -> list[tuple[Row, Due]]:
    """Each letter in the outbox with when it is due, as runs would send them: the quota is
    spent in the order the letters become due otherwise (back-off, window), then queue
    order.  A failed letter waits for ``--retry-failed``: due "now", with no reason."""
    listed = list(rows)
    queued = [r for r in listed if r.status == "queued"]
    free = Quota(0)
    first = {r.id: due(r, now, schedule, free).at for r in queued}
    dues: dict[int, Due] = {}
    for row in sorted(queued, key=lambda r: (first[r.id], r.id)):
        dues[row.id] = due(row, now, schedule, quota)
        quota.take(dues[row.id].at, len(row.rcpt))
    return [(row, dues.get(row.id, Due(now))) for row in listed]


def text(when: Due, now: dt.datetime) -> str:
    """``now``, or e.g. ``2026-11-27 09:00 (window)`` in the time zone of ``now``."""
    if when.at <= now or not when.why:
        return "now"
    return f"{when.at.astimezone(now.tzinfo):%Y-%m-%d %H:%M} ({when.why})"
