"""Shared CLI plumbing: consoles, JSON output, campaign and signer options."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..campaign import Campaign
    from ..config import Config, Signer

JSON_VERSION = 1


@dataclass
class _State:
    campaign_dir: str | None = None


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


def error(message: str) -> None:
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    from rich.markup import escape

    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    """A plain message for people (stderr); ``message`` may use Rich markup."""
    err().print(message, soft_wrap=True)


def interactive() -> bool:
    """True when a person is at the terminal (stdin and stderr are TTYs)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """Write one versioned JSON document to stdout."""
    doc = {"version": JSON_VERSION, "kind": kind, **payload}
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")


def load_campaign() -> Campaign:
    from ..campaign import load_campaign as _load

    return _load(STATE.campaign_dir)


def load_config() -> Config:
    from ..config import load_config as _load

    return _load()


# --- options shared by several commands --------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ToOpt = Annotated[
    list[str] | None,
    typer.Option("--to", help="Recipients: a contact id or group:NAME (repeatable). Default: the template's."),
]
LangOpt = Annotated[
    str | None,
    typer.Option("--lang", help="Write every letter in this language (default: each recipient's)."),
]
NameOpt = Annotated[str | None, typer.Option("--name", envvar="LETTERKIT_SIGNER_NAME", help="Signer's name.")]
EmailOpt = Annotated[
    str | None, typer.Option("--email", envvar="LETTERKIT_SIGNER_EMAIL", help="Signer's e-mail address.")
]
CityOpt = Annotated[str | None, typer.Option("--city", help="Signer's city.")]
CountryOpt = Annotated[str | None, typer.Option("--country", help="Signer's country.")]
OrgOpt = Annotated[str | None, typer.Option("--organisation", "--organization", help="Signer's organisation.")]
CosignersOpt = Annotated[
    str | None,
    typer.Option("--cosigners", help="CSV of co-signers (name,city,country,organisation,consent)."),
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Your personal words, added to every letter.")]
NoteFileOpt = Annotated[str | None, typer.Option("--note-file", help="Read the personal note from a file.")]


def resolve_signer(
    config: Config,
    name: str | None,
    email: str | None,
    city: str | None,
    country: str | None,
    organisation: str | None,
) -> Signer:
    """The [signer] from config.toml with command-line options applied, validated."""
    return config.signer.merged(
        name=name, email=email, city=city, country=country, organisation=organisation
    ).validated()


def read_note(note: str | None, note_file: str | None) -> str:
    from ..errors import InvalidValue

    if note and note_file:
        raise InvalidValue("give --note or --note-file, not both")
    if note_file:
        try:
            with open(note_file, encoding="utf-8") as fh:
                return fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidValue(f"cannot read note file {note_file}: {getattr(exc, 'strerror', None) or exc}") from None
    return (note or "").strip()


def read_cosigners(path: str | None) -> list[Any]:
    if not path:
        return []
    from ..cosigners import load_cosigners

    return load_cosigners(path)
