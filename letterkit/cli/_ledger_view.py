"""Ledger rows for people, made for an 80-column terminal.

Each letter is one line that never loses its id, status or recipient (long
values push the line rather than being cut), the addresses on the next line,
and a reason or server reply on a line of its own, wrapped at the terminal's
width.  ``letterkit outbox show ID`` / ``letterkit log show ID`` tell the
whole story of one letter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _output

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Group

    from ..outbox import Outbox, Row

STYLE = {"sent": "green", "partial": "yellow", "failed": "red", "queued": "yellow", "dropped": "dim"}
BODY_LINES = 8


def _when(row: Row, when: str) -> str:
    stamp = row.sent_at if (when == "sent" and row.sent_at) else row.queued_at
    return stamp[:16].replace("T", " ")


def row_text(row: Row, *, when: str, note: str = "", due: str = "") -> Group:
    """One letter: ``#id status recipient when``, then addresses, then the reason, the
    second and third lines indented (wrapped lines keep the indent)."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    head = Text(overflow="fold")
    head.append(f"{'#' + str(row.id):>6} ", style="bold")
    head.append(f"{row.status:<9}", style=STYLE.get(row.status, ""))
    head.append(f"{row.recipient:<24} ")
    head.append(_when(row, when), style="dim")
    if row.channel == "email":
        to = ", ".join(row.rcpt)
    else:
        to = "by hand" if row.channel == "hand" else f"by hand ({row.channel})"
    parts: list[Any] = [head, Padding(Text(to, overflow="fold"), (0, 0, 0, 7), expand=False)]
    reason = row.reason or (row.reply if row.status in ("sent", "partial") and row.reply else "")
    if reason:
        style = "red" if row.status == "failed" else "dim"
        parts.append(Padding(Text(f"└ {reason}", style=style, overflow="fold"), (0, 0, 0, 7), expand=False))
    if note:  # replied / auto-replied / bounced, and when (letterkit mailbox sync)
        style = "red" if note.startswith("bounced") else "green" if note.startswith("replied") else "dim"
        parts.append(Padding(Text(f"└ {note}", style=style, overflow="fold"), (0, 0, 0, 7), expand=False))
    if due and due != "now":
        parts.append(Padding(Text(f"due {due}", style="yellow", overflow="fold"), (0, 0, 0, 7), expand=False))
    return Group(*parts)


def print_rows(
    rows: Iterable[Row],
    title: str,
    *,
    when: str,
    notes: dict[int, str] | None = None,
    due: Callable[[Row], str] | None = None,
) -> None:
    """Letters for people on stdout, one block each (see :func:`row_text`); ``due(row)``: when
    a queued letter is due and why, on a line of its own ("" or "now": no line)."""
    console = _output.out()
    console.print(f"[bold]{title}[/]  [dim](# · status · recipient · {when}; addresses; reason)[/]")
    for row in rows:
        note = (notes or {}).get(row.id, "")
        console.print(row_text(row, when=when, note=note, due=due(row) if due is not None else ""))


def story(box: Outbox, row: Row) -> dict[str, Any]:
    """Everything the ledger and the folders know about one letter."""
    data = row.as_dict()
    data["path"] = str(box.path_of(row) or "")
    data["body"] = ""
    stored = box.stored_message(row)
    if stored is not None:
        import email
        import email.policy

        msg = email.message_from_bytes(stored, policy=email.policy.default)
        data["headers"] = {k: str(v) for k, v in msg.items()}
        try:
            data["body"] = msg.get_content() if not msg.is_multipart() else ""
        except (LookupError, ValueError):
            data["body"] = ""
    from ..mailbox import responses

    data["responses"] = responses(box.ledger, [row.id]).get(row.id, [])
    return data


def print_story(data: dict[str, Any], *, full: bool) -> None:
    """One letter, label by label, wrapped to the terminal (stdout)."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    labels = [
        ("letter", f"#{data['id']} ({data['status']})"),
        ("recipient", f"{data['recipient']} — {data['recipient_name']}"),
        ("to / cc", ", ".join(data["to"]) or data["channel"]),
        ("signer", data["signer"]),
        ("campaign", f"{data['campaign']} / {data['template']} ({data['language']})"),
        ("subject", data["subject"]),
        ("queued", data["queued_at"]),
        ("sent / done", data["sent_at"]),
        ("attempts", str(data["attempts"])),
        ("account", data["account"]),
        ("message-id", data["message_id"]),
        ("server reply" if data["status"] in ("sent", "partial") else "reason", data["reply"]),
        ("file", data["path"]),
    ]
    paths = {"file", *data["files"]}
    labels += [(kind, path) for kind, path in data["files"].items()]
    console = _output.out()
    width = console.width - 2 - max(len(label) for label, value in labels if value)
    for label, value in labels:
        if value:
            text = _path_lines(str(value), width) if label in paths else str(value)
            grid.add_row(label, Text(text, overflow="fold"))
    console.print(grid)
    lines = data["body"].strip("\n").splitlines()
    shown = lines if full else lines[:BODY_LINES]
    for line in shown:
        console.print(Text(f"  │ {line}"))
    if len(lines) > len(shown):
        console.print(
            Text(f"  │ … {len(lines) - len(shown)} more line(s) (--full shows the whole letter)"), style="dim"
        )
    print_responses(data.get("responses", []))


def _path_lines(path: str, width: int) -> str:
    """A path too long for its column breaks after its folder, so the file name stays whole."""
    folder, sep, name = path.rpartition("/")
    return f"{folder}{sep}\n{name}" if len(path) > width and sep and len(name) <= width else path


def print_responses(items: list[dict[str, Any]]) -> None:
    """What came back: each reply, automatic reply or bounce with its sender, date and first lines."""
    from rich.text import Text

    console = _output.out()
    for item in items:
        what = {"reply": "reply", "auto-reply": "automatic reply", "bounce": "bounce"}.get(item["kind"], "")
        head = f"{what} from {item['sender']}, {str(item['date'])[:16].replace('T', ' ')}"
        if item["kind"] == "bounce":
            head += f": {item['recipient']} refused ({item['status']})"
        console.print(Text(head, style="bold", overflow="fold"))
        for line in str(item["excerpt"]).splitlines():
            console.print(Text(f"  ┆ {line}", overflow="fold"))
