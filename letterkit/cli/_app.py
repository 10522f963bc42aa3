"""The Typer application: the root group, its options, and the run from argv to exit code.

Commands live in small modules by concern (``campaign`` for contacts,
templates, preview, check, init and signer; ``send``; ``outbox`` for outbox and
log; ``account``; ``export``).  A :class:`~letterkit.errors.LetterkitError`
becomes one line on stderr and its exit code in
:func:`letterkit.cli._common.mapping_errors`; Click's usage errors are
reported by :func:`run`.  With ``--json``, both are also a JSON document on stdout.
"""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
from typing import Annotated

import typer

from .. import __version__
from . import _output
from ._common import LetterkitTyper

app = LetterkitTyper(
    name="letterkit",
    help="Letter-writing campaigns in defence of prisoners' rights: compose, preview and send "
    "letters from your own mail account, or print them for fax, post and web forms.",
    epilog="Examples:\n\n\b\n  letterkit preview protest\n  letterkit send protest --to group:missions",
    invoke_without_command=True,  # bare `letterkit`: the help, exit 0
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    add_completion=True,  # Typer's own: letterkit --install-completion
    rich_markup_mode=None,  # plain help, the same in a terminal, a pipe and a test
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"letterkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
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
    _output.STATE.reset(campaign)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's own errors (an unknown option, a bad value, a missing argument).

    They are recognised by what Click documents them to offer — ``exit_code``,
    ``show()`` and ``format_message()`` — because Typer 0.26 exports only one of
    their classes (``typer.BadParameter``).
    """
    return all(hasattr(exc, name) for name in ("exit_code", "show", "format_message"))


def run(args: list[str]) -> int:
    """Run the command line ``args`` and return its exit code.

    Click is run with ``standalone_mode=False`` so that its usage errors come back
    here, where ``--json`` can turn them into a JSON document as well as the usual
    message on stderr: a batch script never has an empty document to parse.
    """
    _output.STATE.reset()
    try:
        result = app(args=args, prog_name="letterkit", standalone_mode=False)
    except typer.Abort:
        _output.error("aborted")
        return 1
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        exc.show()  # type: ignore[attr-defined]
        code: int = exc.exit_code  # type: ignore[attr-defined]
        if "--json" in args or _output.STATE.json:
            _output.emit_error_json(code, exc.format_message())  # type: ignore[attr-defined]
        return code
    return result if isinstance(result, int) else 0


from . import (  # noqa: E402  (the commands register on import, after app exists)
    account as _account_cmds,
    campaign as _campaign_cmds,
    export as _export_cmds,
    mailbox as _mailbox_cmds,
    outbox as _outbox_cmds,
    send as _send_cmds,
)

__all__ = ["app", "run"]
_ = (_campaign_cmds, _send_cmds, _outbox_cmds, _account_cmds, _export_cmds, _mailbox_cmds)
