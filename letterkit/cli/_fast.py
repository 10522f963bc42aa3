"""Answer the most frequent read-only calls without importing Typer.

Typer and Click take most of a CLI's start-up time.  ``letterkit --version``,
``letterkit contacts [--json] [--group G] [--channel C]`` and
``letterkit templates [--json]`` (optionally after ``--campaign DIR``) are
recognised here and answered by the same functions the Typer commands call.
Anything else — ``--help``, another option, a typo — returns ``None`` and the
full Typer application handles it, so behaviour never differs.
"""

from __future__ import annotations

import os

from . import _output

_OPTIONS = {
    "contacts": {"--json": False, "--group": True, "--channel": True},
    "templates": {"--json": False},
}


def _parse(args: list[str]) -> tuple[str, dict[str, str | bool]] | None:
    rest = list(args)
    campaign: str | None = None
    if rest[:1] == ["--campaign"] and len(rest) >= 2:
        campaign, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--campaign="):
        campaign, rest = rest[0].partition("=")[2], rest[1:]
    if not rest or rest[0] not in _OPTIONS:
        return None
    command, rest = rest[0], rest[1:]
    allowed = _OPTIONS[command]
    opts: dict[str, str | bool] = {}
    while rest:
        name, _, inline = rest.pop(0).partition("=")
        if name not in allowed or name in opts:
            return None
        if allowed[name]:  # takes a value
            if inline:
                opts[name] = inline
            elif rest and not rest[0].startswith("-"):
                opts[name] = rest.pop(0)
            else:
                return None
        elif inline:
            return None
        else:
            opts[name] = True
    _output.STATE.campaign_dir = campaign or os.environ.get("LETTERKIT_CAMPAIGN") or None
    return command, opts


def run(args: list[str]) -> int | None:
    """Handle ``args`` if it is a fast call; return the exit code, or None to defer to Typer."""
    if args == ["--version"]:
        from .. import __version__

        print(f"letterkit {__version__}")
        return 0
    parsed = _parse(args)
    if parsed is None:
        return None
    command, opts = parsed
    from ..errors import LetterkitError
    from . import _listing

    try:
        if command == "contacts":
            group, channel = opts.get("--group"), opts.get("--channel")
            _listing.show_contacts(
                group=group if isinstance(group, str) else None,
                channel=channel if isinstance(channel, str) else None,
                as_json=bool(opts.get("--json")),
            )
        else:
            _listing.show_templates(as_json=bool(opts.get("--json")))
    except LetterkitError as exc:
        _output.error(str(exc))
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return 0
