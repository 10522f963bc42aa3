"""The letterkit command line: a thin layer over the library.

``console()`` is the installed script (and ``python -m letterkit``); ``main()`` runs
one command line.  The Typer application (``app``, in ``_app.py``) is imported when
first needed, and each command imports only what it uses, so ``letterkit --version``
loads Typer and little else.
"""

from __future__ import annotations

import os
import sys

__all__ = ["app", "console", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run one command line (default: the process's arguments) and exit with its code."""
    from ._app import run

    raise SystemExit(run(sys.argv[1:] if argv is None else list(argv)))


def console() -> None:
    """The installed ``letterkit`` script: :func:`main`, with a quiet end on a closed pipe.

    A reader that stops early (``letterkit contacts | head -1``) is not worth a
    traceback: stdout is pointed at /dev/null, as the Python documentation advises for
    SIGPIPE, so the interpreter's last flush has nowhere to fail, and the exit code is 1.
    """
    try:
        try:
            main()
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None


def __getattr__(name: str) -> object:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module 'letterkit.cli' has no attribute {name!r}")
