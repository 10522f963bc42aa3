"""The one place letterkit asks what day and time it is.

Letters are dated, contacts go stale, deadlines pass, sent letters are
stamped: all of it reads :func:`now` or :func:`today` here, never the system
clock directly.  ``LETTERKIT_NOW`` (an ISO date or date-time, e.g.
``2026-11-26`` or ``2026-11-26T09:30:00+01:00``) fixes the clock for a run:
tests set it so that no result depends on the day they run, and an organiser
can use it to reproduce yesterday's letters exactly.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

ENV = "LETTERKIT_NOW"


def _fixed() -> dt.datetime | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{ENV}={text!r} is not an ISO date or date-time",
            hint="e.g. 2026-11-26 or 2026-11-26T09:30:00+00:00",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def now() -> dt.datetime:
    """The current time, timezone-aware (local zone unless ``LETTERKIT_NOW`` says otherwise)."""
    return _fixed() or dt.datetime.now().astimezone()


def today() -> dt.date:
    """Today's date, as the signer's calendar has it."""
    return now().date()


def running() -> Callable[[], dt.datetime]:
    """A clock for a long run: :func:`now` at the start, moved on by the monotonic clock.

    With ``LETTERKIT_NOW`` set, :func:`now` stands still; a delivery run that waits
    for a back-off must still see its wait end.  (Tests pass a fake clock instead.)
    """
    import time

    start, t0 = now(), time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - t0)
