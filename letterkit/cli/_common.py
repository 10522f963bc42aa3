"""Shared CLI plumbing: the options several commands take, and turning them into letters.

Output (consoles, JSON, messages) lives in :mod:`letterkit.cli._output`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from ..errors import LetterkitError
from . import _output

if TYPE_CHECKING:
    from ..campaign import Campaign
    from ..config import Config, Signer
    from ..letters import Letter

from ._output import load_campaign, load_config

F = TypeVar("F", bound=Callable[..., Any])

# --- the one place a library error becomes a message and an exit code -----------------


def mapping_errors(command: F) -> F:
    """Run ``command``; a :class:`LetterkitError` becomes one line on stderr and its exit code.

    With ``--json`` the same failure is also a JSON document on stdout (unless the command
    already wrote one), so a script always has something to parse.  Other exceptions are
    bugs and keep their traceback.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LetterkitError as exc:
            _output.error(str(exc))
            if _output.STATE.json and not _output.STATE.json_written:
                _output.emit_error_json(exc.exit_code, str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _output.error("interrupted; queued letters are safe in the outbox (letterkit outbox)")
            raise typer.Exit(130) from None

    return cast("F", run)


class LetterkitTyper(typer.Typer):
    """A Typer app whose commands and group callbacks all go through :func:`mapping_errors`."""

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(name, **kwargs)

        def decorator(command: F) -> F:
            register(mapping_errors(command))
            return command

        return decorator

    def callback(self, **kwargs: Any) -> Callable[[F], F]:
        register = super().callback(**kwargs)

        def decorator(callback: F) -> F:
            register(mapping_errors(callback))
            return callback

        return decorator


def examples(*lines: str) -> str:
    """The "Examples:" epilog of a command's help, one command line per line, kept as written."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


# --- options shared by several commands --------------------------------------------


def _use_campaign(value: str | None) -> str | None:
    if value is not None:  # after the command: wins over `letterkit --campaign DIR` before it
        _output.STATE.campaign_dir = value
    return value


def _want_json(value: bool) -> bool:
    if value:
        _output.STATE.json = True
    return value


CampaignOpt = Annotated[
    str | None,
    typer.Option(
        "--campaign",
        metavar="DIR",
        callback=_use_campaign,
        expose_value=False,
        show_default=False,
        help="Campaign folder (recipients.toml + templates/); may also come before the command.",
    ),
]
"""Every command takes ``--campaign`` after its name too; the option sets the shared state."""

JsonOpt = Annotated[
    bool, typer.Option("--json", callback=_want_json, help="Print machine-readable JSON on stdout.")
]
ToOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--to",
        metavar="SEL",
        help="Recipients: a contact id or group:NAME (repeatable). Default: the template's.",
    ),
]
LangOpt = Annotated[
    str | None,
    typer.Option(
        "--lang", metavar="LANG", help="Write every letter in this language (default: each recipient's)."
    ),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", envvar="LETTERKIT_SIGNER_NAME", metavar="NAME", help="Signer's name.")
]
EmailOpt = Annotated[
    str | None,
    typer.Option("--email", envvar="LETTERKIT_SIGNER_EMAIL", metavar="ADDR", help="Signer's e-mail address."),
]
CityOpt = Annotated[str | None, typer.Option("--city", metavar="CITY", help="Signer's city.")]
CountryOpt = Annotated[str | None, typer.Option("--country", metavar="COUNTRY", help="Signer's country.")]
OrgOpt = Annotated[
    str | None, typer.Option("--organisation", "--organization", metavar="ORG", help="Signer's organisation.")
]
CosignersOpt = Annotated[
    str | None,
    typer.Option(
        "--cosigners", metavar="FILE.csv", help="CSV of co-signers (name,city,country,organisation,consent)."
    ),
]
NoteOpt = Annotated[
    str | None, typer.Option("--note", metavar="TEXT", help="Your personal words, added to every letter.")
]
NoteFileOpt = Annotated[
    str | None, typer.Option("--note-file", metavar="FILE", help="Read the personal note from a file.")
]


def resolve_signer(
    config: Config,
    name: str | None,
    email: str | None,
    city: str | None,
    country: str | None,
    organisation: str | None,
) -> Signer:
    """The signer for this command, validated.

    ``--name`` or ``--email`` (or their environment variables) make a whole person: the
    details given, and nothing borrowed from ``[signer]`` in config.toml (a template that
    needs a detail that was not given stops with an error naming it).  Without them, the
    stored signer signs, with any of ``--city --country --organisation`` applied.
    """
    from ..config import Signer

    options = {"name": name, "email": email, "city": city, "country": country, "organisation": organisation}
    if name or email:
        return Signer.from_options(**options).validated()
    return config.signer.merged(**options).validated()


def read_note(note: str | None, note_file: str | None) -> str:
    from ..errors import InvalidValue

    if note and note_file:
        raise InvalidValue("give --note or --note-file, not both")
    if note_file:
        from ..fileutil import read_text_limited
        from ..letters import MAX_NOTE

        return read_text_limited(note_file, MAX_NOTE, "note file").strip()
    return (note or "").strip()


def read_cosigners(path: str | None) -> list[Any]:
    if not path:
        return []
    from ..cosigners import load_cosigners

    return load_cosigners(path)


def compose_from_options(
    template: str,
    *,
    to: list[str] | None,
    cc: list[str] | None,
    lang: str | None,
    name: str | None,
    email: str | None,
    city: str | None,
    country: str | None,
    organisation: str | None,
    note: str | None,
    note_file: str | None,
    cosigners: str | None,
) -> tuple[Config, Campaign, list[Letter]]:
    """What preview and export share: config, signer, campaign, then every letter rendered."""
    from ..letters import compose_all

    config = load_config()
    signer = resolve_signer(config, name, email, city, country, organisation)
    campaign = load_campaign()
    letters = compose_all(
        campaign,
        template,
        signer,
        to=to or (),
        cc=cc,
        language=lang,
        note=read_note(note, note_file),
        cosigners=read_cosigners(cosigners),
    )
    return config, campaign, letters
