"""The letterkit command line: a thin layer over the library.

``main()`` is the console script.  The Typer application (``app``, in
``_app.py``) is imported only when needed: the most frequent read-only calls
(``--version``, ``contacts``, ``templates`` with their plain options) are
answered by :mod:`letterkit.cli._fast` without importing Typer, Click or Rich,
calling the very same functions the Typer commands call.
"""

from __future__ import annotations

import sys

__all__ = ["app", "console", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    from . import _fast

    code = _fast.run(args)
    if code is not None:
        raise SystemExit(code)
    from ._app import app

    app(args=args, prog_name="letterkit")


def console() -> None:
    """The installed ``letterkit`` script (and ``python -m letterkit``): :func:`main`, then a quick exit.

    By the time ``main`` returns, everything letterkit wrote is closed (the
    outbox, the ledger, its threads).  Flushing stdout and stderr and leaving
    with ``os._exit`` skips the interpreter's teardown of every imported
    module, which takes ~50 ms after a ``send``.  Unexpected errors still end
    the normal way, with their traceback.
    """
    import os

    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # what the interpreter does with SystemExit("message")
            print(exc.code, file=sys.stderr)
            code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(code)  # under a profiler or coverage: let them write their results
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (letterkit ... | head): nothing more to say
            code = code or 1
    os._exit(code)


def __getattr__(name: str) -> object:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module 'letterkit.cli' has no attribute {name!r}")
