"""Output and state shared by every command, without importing Typer or Rich up front.

Two consoles: ``out()`` for data on stdout, ``err()`` for people on stderr.
Rich is imported the first time a console is needed.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from rich.console import Console

    from ..campaign import Campaign
    from ..config import Config

JSON_VERSION = 1


class _State:
    """Options of the root command that every subcommand needs."""

    campaign_dir: str | None = None
    json = False  # --json was given: failures are JSON documents too
    warned_unscoped = False  # the warning about unscoped user contacts was given in this run
    json_written = False  # a JSON document went to stdout (an error then needs no second one)

    def reset(self, campaign_dir: str | None = None) -> None:
        """Start a run afresh (the tests run many in one process)."""
        vars(self).clear()
        self.campaign_dir = campaign_dir


STATE = _State()
_consoles: dict[str, Console] = {}


def out() -> Console:
    """Rich console for data (stdout)."""
    if "out" not in _consoles:
        from rich.console import Console

        _consoles["out"] = Console(highlight=False)
    return _consoles["out"]


def err() -> Console:
    """Rich console for people (stderr): progress, warnings, errors."""
    if "err" not in _consoles:
        from rich.console import Console

        _consoles["err"] = Console(stderr=True, highlight=False)
    return _consoles["err"]


def reset_consoles() -> None:
    """Forget cached consoles (CliRunner swaps sys.stdout between invocations)."""
    _consoles.clear()


def _plain_stderr() -> bool:
    return "err" not in _consoles and not sys.stderr.isatty()


def error(message: str) -> None:
    """One line on stderr: ``error: message`` (plain text, no markup)."""
    if _plain_stderr():
        sys.stderr.write(f"error: {message}\n")
        return
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    """One line on stderr: ``warning: message`` (plain text, no markup)."""
    if _plain_stderr():
        sys.stderr.write(f"warning: {message}\n")
        return
    from rich.markup import escape

    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    """A plain message for people (stderr); ``message`` may use Rich markup."""
    err().print(message, soft_wrap=True)


def interactive() -> bool:
    """True when a person is at the terminal (stdin and stderr are TTYs)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def emit_tsv(rows: list[list[str]]) -> None:
    """Tab-separated rows on stdout (what listings print when piped, like gh does)."""
    clean = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
    sys.stdout.write("".join("\t".join(cell.translate(clean) for cell in row) + "\n" for row in rows))


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """Write one versioned JSON document to stdout."""
    import json

    doc = {"version": JSON_VERSION, "kind": kind, **payload}
    STATE.json_written = True
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")


def emit_error_json(code: int, message: str) -> None:
    """A failure as a JSON document on stdout: ``{"version", "kind": "error", "code", "message"}``."""
    emit_json("error", {"code": code, "message": " ".join(message.split())})


def load_campaign(*, with_user_contacts: bool = True) -> Campaign:
    from ..campaign import load_campaign as _load

    campaign = _load(STATE.campaign_dir, with_user_contacts=with_user_contacts)
    if with_user_contacts and not STATE.warned_unscoped and campaign.unscoped_warning():
        STATE.warned_unscoped = True
        warn(campaign.unscoped_warning())
    return campaign


def load_config() -> Config:
    from ..config import load_config as _load

    return _load()
