"""How letters look in the terminal: a Rich panel per letter with its exact headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..letters import Letter


def letter_headers(letter: Letter, from_addr: str | None = None) -> list[tuple[str, str]]:
    """The headers a person should see before sending (From, To, Cc, Subject) or the hand channel."""
    from email.utils import formataddr

    sender = from_addr or letter.signer.email
    rows = [
        (
            "From",
            formataddr((letter.signer.name, sender))
            if sender
            else f"{letter.signer.name} <your account's address>",
        )
    ]
    if letter.to:
        rows.append(("To", ", ".join(formataddr((letter.contact.name, a)) for a in letter.to)))
        if letter.cc:
            rows.append(("Cc", ", ".join(letter.cc)))
    else:
        how = []
        c = letter.contact
        if c.fax:
            how.append(f"fax {c.fax}")
        if c.address:
            how.append("post: " + ", ".join(c.address))
        for url in c.web_form:
            how.append(f"web form {url}")
        rows.append(("To", f"{c.name} (by hand{', copy' if letter.copy else ''}: {'; '.join(how)})"))
    rows.append(("Subject", letter.subject))
    return rows


def show_letters(
    letters: Iterable[Letter], console: Console, *, from_addr: str | None = None, stale_note: bool = True
) -> int:
    """Print each letter as a panel; return how many were shown."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    count = 0
    for count, letter in enumerate(letters, 1):  # noqa: B007
        head = Table.grid(padding=(0, 1))
        head.add_column(style="bold", no_wrap=True)
        head.add_column()
        for name, value in letter_headers(letter, from_addr):
            head.add_row(f"{name}:", Text(value))
        # Notes go inside the panel, wrapped: a subtitle is one line and is cut at 80 columns.
        if stale_note and letter.contact.is_stale():
            checked = letter.contact.checked or "never"
            note = f"contact data last checked {checked}: verify the address before sending"
            head.add_row("Note:", Text(note, style="yellow"))
        if letter.verbatim:
            note = "verbatim template text — a personal --note makes it count for more"
            head.add_row("Note:", Text(note, style="dim"))
        console.print(
            Panel(
                _body(head, letter),
                title=f"[bold]{escape(letter.template)}[/] → {escape(letter.contact.id)}",
                subtitle=escape(letter.language),
                title_align="left",
                subtitle_align="left",
                expand=True,
            )
        )
    return count


def _body(head: RenderableType, letter: Letter) -> RenderableType:
    from rich.console import Group
    from rich.rule import Rule
    from rich.text import Text

    return Group(head, Rule(style="dim"), Text(letter.body.rstrip("\n")))
