"""The pieces of ``letterkit send`` for people: skipped letters, stale data, the editor, letters
that need your hand, the queued list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import typer

from . import _output
from ._report import SUMMARY_ROWS, _esc

if TYPE_CHECKING:
    from ..campaign import Campaign
    from ..config import Account
    from ..contacts import Contact
    from ..letters import Letter
    from ..outbox import Outbox, QueueResult, Row, Skipped


class _Skips:
    """Collects what ``queue`` left out without holding it in memory.

    People see the first few as lines on stderr; ``--json`` gets every one from
    a spool file; hand letters prepared earlier are kept (they are few) for the
    'Needs your hand' list.
    """

    SHOW = 20

    def __init__(self, *, people: bool, keep: bool) -> None:
        import tempfile

        self.people = people
        self.count = 0
        self.prepared: list[Skipped] = []
        self.spool = (
            tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
            if keep
            else None
        )

    def emptied(self, letter: Letter) -> None:
        """A letter the signer emptied in the editor (``send --edit``)."""
        from ..outbox import Skipped

        self(Skipped(letter.key, letter.contact.id, letter.contact.name, "emptied in the editor"))

    def __call__(self, skip: Skipped) -> None:
        import json

        self.count += 1
        if skip.status == "prepared":
            self.prepared.append(skip)
        if self.spool is not None:
            self.spool.write(json.dumps(skip.as_dict(), ensure_ascii=False) + "\n")
        if self.people and self.count <= self.SHOW:
            _output.info(f"Skipping {_esc(skip.recipient)}: {_esc(skip.reason)}")

    def finish(self) -> None:
        if self.people and self.count > self.SHOW:
            _output.info(f"… {self.count - self.SHOW} more letters skipped ({self.count} in all).")

    def items(self) -> Iterator[dict[str, Any]]:
        import json

        if self.spool is None:
            return
        self.spool.seek(0)
        for line in self.spool:
            yield json.loads(line)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def _compact(box: Outbox, queued: QueueResult, account: Account | None) -> None:
    """What is about to go, one line per letter (send --yes on a terminal)."""
    from itertools import islice

    from rich.table import Table

    if not queued.to_deliver:
        return
    sender = account.from_addr if account else "(no account yet)"
    table = Table(title=f"Queued from {_esc(sender)}", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True, min_width=3)  # ids whole at 80 columns
    table.add_column("recipient", no_wrap=True, overflow="fold")
    table.add_column("to / cc", overflow="fold")
    table.add_column("subject", overflow="ellipsis", no_wrap=True, max_width=50)
    for row in islice(box.batch_rows(queued.batch, ("queued",)), SUMMARY_ROWS):
        table.add_row(str(row.id), _esc(row.recipient), _esc(", ".join(row.rcpt)), _esc(row.subject))
    _output.err().print(table)
    if queued.to_deliver > SUMMARY_ROWS:
        _output.info(f"… and {queued.to_deliver - SUMMARY_ROWS} more")


def _by_hand_entries(
    campaign: Campaign, queued: QueueResult, skips: _Skips, box: Outbox
) -> list[dict[str, Any]]:
    """Letters the signer must deliver: prepared now, or prepared earlier and not yet done."""
    rows: list[tuple[Row, bool]] = [(r, False) for r in queued.prepared]
    rows += [(box.get(s.row_id), True) for s in skips.prepared if s.row_id is not None]
    wanted = {row.recipient for row, _ in rows}
    contacts = {c.id: c for c in campaign.iter_contacts() if c.id in wanted} if wanted else {}
    entries: list[dict[str, Any]] = []
    for row, earlier in rows:
        c = contacts.get(row.recipient)
        entries.append(
            {
                "id": row.id,
                "recipient": row.recipient,
                "recipient_name": row.recipient_name,
                "channels": [ch for ch in (c.channels if c else ()) if ch != "email"],
                "fax": c.fax if c else "",
                "address": list(c.address) if c else [],
                "web_form": list(c.web_form) if c else [],
                "files": row.files,
                "prepared_earlier": earlier,
            }
        )
    return entries


def _show_by_hand(entries: list[dict[str, Any]]) -> None:
    """One block per recipient without e-mail: how to reach it and the files ready for it."""
    from rich.panel import Panel
    from rich.table import Table

    if not entries:
        return
    console = _output.err()
    console.print("[bold]Needs your hand[/] — these recipients have no e-mail address:")
    for e in entries:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        if e["fax"]:
            grid.add_row("fax", _esc(e["fax"]))
        if e["address"]:
            grid.add_row("post", _esc("\n".join(e["address"])))
        for i, url in enumerate(e["web_form"]):
            grid.add_row("web form" if i == 0 else "", _esc(url))
        labels = {"pdf": "PDF to print", "txt": "text for forms"}
        for kind, path in e["files"].items():
            grid.add_row(labels.get(kind, kind), _esc(path))
        who = _esc(e["recipient_name"] or e["recipient"])
        earlier = " [dim](prepared earlier)[/]" if e["prepared_earlier"] else ""
        console.print(Panel(grid, title=f"#{e['id']} {who}{earlier}", title_align="left"))
    _output.info(
        "When you have faxed, posted or submitted one, record it: letterkit log done ID --via fax|post|web"
    )


def copy_to_clipboard(text: str) -> str | None:
    """Put ``text`` on the clipboard with the first tool available; its name, or None."""
    import os
    import shutil
    import subprocess

    candidates = []
    if os.environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    candidates += [
        ["xclip", "-selection", "clipboard"],
        ["xsel", "--clipboard", "--input"],
        ["pbcopy"],
        ["clip.exe"],
    ]
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        try:
            subprocess.run(argv, input=text.encode("utf-8"), check=True, timeout=5, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return argv[0]
    return None


def _open_forms(entries: list[dict[str, Any]]) -> None:
    """Open each web form in the browser, with the letter's text on the clipboard."""
    import webbrowser
    from pathlib import Path

    with_forms = [e for e in entries if e["web_form"]]
    if not with_forms:
        _output.info("No web forms to open.")
        return
    for n, e in enumerate(with_forms, 1):
        txt = e["files"].get("txt")
        tool = None
        if txt:
            try:
                tool = copy_to_clipboard(Path(txt).read_text(encoding="utf-8"))
            except OSError:
                tool = None
        if tool:
            _output.info(f"The letter to {_esc(e['recipient'])} is on the clipboard ({tool}): paste it.")
        else:
            _output.info(
                "No clipboard tool found (wl-copy, xclip, xsel, pbcopy, clip.exe): "
                f"copy the text from {_esc(txt or 'the prepared .txt file')}"
            )
        for url in e["web_form"]:
            if not webbrowser.open(url):
                _output.warn(f"could not open a browser; open {url} yourself")
        if n < len(with_forms) and _output.interactive():
            typer.prompt("Press Enter for the next web form", default="", show_default=False, err=True)


def _run_editor(text: str, name: str) -> str:
    """Open ``text`` in $VISUAL or $EDITOR (else nano/vi) and return what was saved."""
    import os
    import shlex
    import shutil
    import subprocess
    import tempfile

    from ..errors import InvalidValue

    command = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not command:
        command = next((e for e in ("nano", "vi") if shutil.which(e)), "")
    if not command:
        raise InvalidValue("--edit needs an editor: set EDITOR (e.g. EDITOR=nano)")
    with tempfile.TemporaryDirectory(prefix="letterkit-") as tmp:
        path = os.path.join(tmp, f"{name}.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            done = subprocess.run([*shlex.split(command), path], check=False)
        except OSError as exc:
            raise InvalidValue(f"cannot start the editor {command!r}: {exc.strerror}") from None
        if done.returncode != 0:
            raise InvalidValue(
                f"the editor {command!r} exited with status {done.returncode}",
                hint="nothing was queued",
            )
        with open(path, encoding="utf-8") as fh:
            return fh.read()


def _edited(
    letters: Iterable[Letter], require_note: bool, on_empty: Callable[[Letter], None]
) -> Iterator[Letter]:
    """Open each letter in $EDITOR before it is queued.

    Saving unchanged (or quitting) keeps the letter as it is; emptying it leaves
    that letter out (reported as skipped).  When the campaign asks for personal
    words, a letter left unchanged without a --note stops the whole send.
    """
    from ..errors import InvalidValue

    for letter in letters:
        text = _run_editor(letter.body, f"letter-{letter.contact.id}").replace("\r\n", "\n")
        if not text.strip():
            on_empty(letter)
            continue
        if "\x00" in text:
            raise InvalidValue(f"the edited letter to {letter.contact.id} contains a NUL byte")
        edited = letter.with_body(text)
        if require_note and edited.verbatim:
            raise InvalidValue(
                f"the letter to {letter.contact.id} was left unchanged, and this campaign asks "
                "for personal words",
                hint="write a few lines of your own in each letter, or pass --note; nothing was queued",
            )
        yield edited


class _StaleContacts:
    """Notes, as letters stream past, which recipients' contact data is old (a few ids kept)."""

    SHOW = 8

    def __init__(self) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.dates: set[str] = set()
        self.reported = False

    def note(self, contact: Contact) -> None:
        if contact.is_stale():
            self.count += 1
            self.dates.add(contact.checked or "never")
            if len(self.ids) < self.SHOW:
                self.ids.append(contact.id)

    def track(self, letters: Iterable[Letter]) -> Iterator[Letter]:
        for letter in letters:
            self.note(letter.contact)
            yield letter

    def report(self, base: dict[str, Any]) -> None:
        """Warn (once) and add the warning to the JSON document's ``warnings``."""
        if self.reported:
            return
        self.reported = True
        for w in self.warnings():
            _output.warn(w)
            base["warnings"].append(w)

    def warnings(self) -> list[str]:
        if not self.count:
            return []
        more = f" and {self.count - len(self.ids)} more" if self.count > len(self.ids) else ""
        return [
            f"contact data last checked {', '.join(sorted(self.dates))}: verify before relying on it "
            f"({', '.join(self.ids)}{more})"
        ]
