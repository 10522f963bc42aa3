"""The Typer application: the root group, global options and error mapping.

Commands live in small modules by concern (``campaign`` for contacts,
templates, preview, check, init and signer; ``delivery`` for send, outbox,
log and account; ``export``).  Every :class:`~letterkit.errors.LetterkitError`
is turned into one line on stderr and its exit code here, in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import LetterkitError
from . import _output


def _plain_parameters() -> None:
    """Coerce plain ``str``/``int``/``float``/``bool`` parameters (and lists of them) without pydantic.

    Typer 0.29 builds a pydantic ``TypeAdapter`` for every parameter, and
    importing pydantic alone takes about 90 ms — most of the start-up of every
    letterkit command.  letterkit's parameters are all plain values that click
    has already parsed, so they are converted here directly.  Anything else
    (and any Typer whose internals differ) keeps Typer's own coercion: this is
    a shortcut, never a change of behaviour.  ``tests/test_subprocess.py``
    checks that ``send`` still does not import pydantic.
    """
    try:
        from dataclasses import dataclass

        from typer import core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - another Typer
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None:  # pragma: no cover
        return
    plain = (str, int, float, bool)

    @dataclass(frozen=True)
    class _Plain(RuntimeParam):
        kind: type

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return [self._one(v, param, ctx) for v in value]
            return self._one(value, param, ctx)

        def _one(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool)):
                return value
            if self.kind is bool or not isinstance(value, str):
                raise BadParameter(f"{value!r} is not a valid {self.kind.__name__}.", ctx=ctx, param=param)
            try:
                return self.kind(value)
            except ValueError:
                word = {int: "whole number", float: "number", str: "text"}[self.kind]
                raise BadParameter(f"{value!r} is not a valid {word}.", ctx=ctx, param=param) from None

    def build(descriptor: Any) -> Any:
        try:
            info = descriptor.parameter_info
            annotation = descriptor.annotation
            kind = annotation
            if getattr(annotation, "__origin__", None) is list and len(annotation.__args__) == 1:
                kind = annotation.__args__[0]
            simple = (
                kind in plain
                and descriptor.file_annotation is None
                and not (descriptor.is_choice or descriptor.is_ranged or descriptor.is_path)
                and getattr(info, "parser", None) is None
                and getattr(info, "click_type", None) is None
            )
            if simple:
                return _Plain(parameter_info=info, annotation=annotation, kind=kind)
        except Exception:  # pragma: no cover - Typer changed: its own way
            pass
        return original(descriptor)

    setattr(core, "build_runtime_param", build)  # noqa: B010  (not a public name)


_plain_parameters()


class LetterkitGroup(TyperGroup):
    """Maps the library's errors to a one-line message and exit code 2 (or the error's own).

    With ``--json`` anywhere on the command line, every failure is also a JSON document
    on stdout (``{"version", "kind": "error", "code", "message"}``), usage errors
    included, so a script never has an empty document to parse.
    """

    json_errors = False

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        LetterkitGroup.json_errors = "--json" in argv
        _output.STATE.json_written = False
        _output.STATE.warned_unscoped = False
        if not (LetterkitGroup.json_errors and standalone_mode):
            return super().main(argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # a usage error (Click's exceptions derive from it)
            code = getattr(exc, "exit_code", 2)
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            _json_error(code, message)
        except typer.Abort:
            _output.error("aborted")
            code = 1
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LetterkitError as exc:
            _output.error(str(exc))
            if LetterkitGroup.json_errors and not _output.STATE.json_written:
                _json_error(exc.exit_code, str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _output.error("interrupted; queued letters are safe in the outbox (letterkit outbox)")
            raise typer.Exit(130) from None


def _json_error(code: int, message: str) -> None:
    _output.emit_json("error", {"code": code, "message": " ".join(message.split())})


app = typer.Typer(
    cls=LetterkitGroup,
    name="letterkit",
    help="Letter-writing campaigns in defence of prisoners' rights: compose, preview and send "
    "letters from your own mail account, or print them for fax, post and web forms.",
    invoke_without_command=True,  # bare `letterkit`: the help, exit 0
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    add_completion=True,  # Typer's own: letterkit --install-completion
    rich_markup_mode=None,  # plain help: Typer 0.29 prints <bool> beside every flag in Rich mode
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
    _output.STATE.campaign_dir = campaign
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


from . import campaign as _campaign_cmds  # noqa: E402  (commands register on import)
from . import delivery as _delivery_cmds  # noqa: E402
from . import export as _export_cmds  # noqa: E402

__all__ = ["app"]
_ = (_campaign_cmds, _delivery_cmds, _export_cmds)
