"""The letterkit command line: a thin layer over the library.

``main()`` is the console script.  The Typer application (``app``, in
``_app.py``) is imported only when needed: the most frequent read-only calls
(``--version``, ``contacts``, ``templates`` with their plain options) are
answered by :mod:`letterkit.cli._fast` without importing Typer, Click or Rich,
calling the very same functions the Typer commands call.
"""

from __future__ import annotations

import sys

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    from . import _fast

    code = _fast.run(args)
    if code is not None:
        raise SystemExit(code)
    from ._app import app

    app(args=args, prog_name="letterkit")


def __getattr__(name: str) -> object:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module 'letterkit.cli' has no attribute {name!r}")
