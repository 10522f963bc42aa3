"""The Typer application: the root group, global options and error mapping.

Commands live in small modules by concern (``campaign`` for contacts,
templates, preview, check, init and signer; ``delivery`` for send, outbox,
log and account; ``export``).  Every :class:`~letterkit.errors.LetterkitError`
is turned into one line on stderr and its exit code here, in one place.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import LetterkitError
from . import _output


class LetterkitGroup(TyperGroup):
    """Maps the library's errors to a one-line message and exit code 2 (or the error's own)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LetterkitError as exc:
            _output.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _output.error("interrupted; queued letters are safe in the outbox (letterkit outbox)")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=LetterkitGroup,
    name="letterkit",
    help="Letter-writing campaigns in defence of prisoners' rights: compose, preview and send "
    "letters from your own mail account, or print them for fax, post and web forms.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: Typer 0.29 prints <bool> beside every flag in Rich mode
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"letterkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    campaign: Annotated[
        str | None,
        typer.Option(
            "--campaign",
            envvar="LETTERKIT_CAMPAIGN",
            metavar="DIR",
            help="Campaign folder (recipients.toml + templates/). Default: the current "
            "directory if it has a recipients.toml, else the bundled Dolinka campaign.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    _output.STATE.campaign_dir = campaign


from . import campaign as _campaign_cmds  # noqa: E402  (commands register on import)
from . import delivery as _delivery_cmds  # noqa: E402
from . import export as _export_cmds  # noqa: E402

__all__ = ["app"]
_ = (_campaign_cmds, _delivery_cmds, _export_cmds)
