"""What a long run of letters shows while it works, and the report after it, on stderr.

On a terminal a progress bar, which also says when the rate limit holds the next
letter back and until when (``Outbox.deliver(on_wait=...)`` tells it).  Anywhere
else — a cron job, a script, a pipe — one plain line per letter, never wrapped, so
that a log shows how far a batch got and what each letter did::

    [3/120] sent #57 kz-osce-delegation <kzosce@kazakhstan.at>

The delivery report after a batch uses the same one-block-per-letter layout as
``letterkit outbox`` (:mod:`._ledger_view`): ids and recipients whole, the reason
on its own line, at any terminal width.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from . import _output

if TYPE_CHECKING:
    from rich.console import Console

    from ..outbox import Row

VERBS = {"sent": "sent", "partial": "partly refused", "failed": "failed", "queued": "deferred"}


def progress_line(done: int, total: int, row: Row) -> str:
    """``[done/total] status #id recipient <addresses>``, then the reason if it did not go."""
    verb = VERBS.get(row.status, row.status)
    line = f"[{done}/{total}] {verb} #{row.id} {row.recipient} " + ", ".join(f"<{a}>" for a in row.rcpt)
    if row.status != "sent" and row.reply:
        line += f": {row.reply}"
    return " ".join(line.split())  # one line, whatever the server's reply held


def wait_text(seconds: float) -> str:
    """``waiting for rate limit until 10:42:05`` (the clock seam's time plus ``seconds``)."""
    import datetime as dt

    from .. import clock

    until = clock.now() + dt.timedelta(seconds=seconds)
    return f"waiting for rate limit until {until:%H:%M:%S}"


class Progress:
    """Progress of a batch: ``progress(done, total, row)`` after each letter, ``progress.waiting(s)``
    before a rate-limit pause, ``progress.stop()`` at the end.

    ``bar``: a Rich bar on ``console`` (default: the stderr console), started at the
    first letter, after any password prompt.  Otherwise plain lines on ``stream``
    (default: ``sys.stderr`` as it is when the line is written).
    """

    def __init__(
        self, label: str, *, bar: bool, console: Console | None = None, stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.bar = bar
        self._console = console
        self._stream = stream
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int, row: Row) -> None:
        if not self.bar:
            stream = self._stream or sys.stderr
            stream.write(progress_line(done, total, row) + "\n")
            stream.flush()  # a cron log or a `tail -f` sees each letter as it goes
            return
        from rich.markup import escape

        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self._console or _output.err(),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        description = f"{self.label} {escape(row.recipient)}"
        self._progress.update(self._task, completed=done, description=description)

    def waiting(self, seconds: float) -> None:
        """The rate limit holds the next letter back for ``seconds``: the bar says until when."""
        if self._progress is not None:
            description = f"{self.label}: [yellow]{wait_text(seconds)}[/]"
            self._progress.update(self._task, description=description, refresh=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def print_report(rows: Iterable[Row], *, title: str) -> int:
    """The letters of a batch for people (stderr), one block each; return how many."""
    from rich.markup import escape

    from ._ledger_view import row_text

    console = _output.err()
    count = 0
    for count, row in enumerate(rows, 1):
        if count == 1:
            console.print(f"[bold]{escape(title)}[/]")
        console.print(row_text(row, when="sent"))
    return count


def print_accounts(items: list[dict[str, Any]]) -> None:
    """Mail accounts for people (stdout), one block each, for 80 columns: the name whole on
    its own line, then server, login, From and the password's source, labelled and wrapped."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table

    console = _output.out()
    console.print("[bold]Mail accounts[/]")
    for item in items:
        default = "  [green](default)[/]" if item["default"] else ""
        console.print(f"[bold]{escape(item['name'])}[/]{default}")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("server", escape(f"{item['host']}:{item['port']} ({item['security']})"))
        grid.add_row("login", escape(item["username"] or "none"))
        grid.add_row("from", escape(item["from"]))
        label = "OAuth2" if item.get("auth") == "oauth2" else "password"
        grid.add_row(label, escape(item["password"]))
        console.print(Padding(grid, (0, 0, 0, 4), expand=False))
