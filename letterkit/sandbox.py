"""Templates run in a bounded sandbox: a campaign folder from someone else cannot hang or flood.

Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` already refuses unsafe
attribute access.  On top of it:

* ``*`` and ``**`` refuse results larger than :data:`MAX_OUTPUT` characters (or
  numbers of more than :data:`MAX_DIGITS` digits) before computing them;
* ``lipsum`` and ``range`` are capped;
* a letter's text may not exceed :data:`MAX_OUTPUT` characters (checked as it is
  produced) nor take more than :data:`TIME_LIMIT` seconds (a timer, on the main thread);
* ``{% include %}``, ``{% import %}`` and ``{% extends %}`` read only files inside the
  campaign's own ``templates/`` folder (shared paragraphs), never a path outside it.

Any of these, and any other exception raised while a template renders, becomes a
:class:`~letterkit.errors.TemplateError` naming the file and line (see
:mod:`letterkit.letters`).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.sandbox

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MAX_OUTPUT = 1_000_000  # characters in one rendered letter (a long letter is ~10,000)
MAX_DIGITS = 10_000  # digits of a number a template may compute
MAX_RANGE = 10_000  # items of range() in a template
TIME_LIMIT = 5.0  # seconds to render one letter


class RenderLimit(Exception):
    """A template went past one of the limits above."""


class _Confined(jinja2.FileSystemLoader):
    """Templates from one folder only: no ``..``, no absolute path, no link leading out."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder.resolve()

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.folder):
            raise jinja2.TemplateNotFound(
                template, f"{template!r} is outside the campaign's templates folder"
            )
        return source, filename, uptodate


class BoundedSandbox(jinja2.sandbox.SandboxedEnvironment):
    """The sandbox with bounded arithmetic, ranges and lorem ipsum."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        return super().call_binop(context, operator, left, right)


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT:
        raise RenderLimit(f"a repetition of {len(seq)} × {times} items is over the limit of {MAX_OUTPUT:,}")


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int | float) and isinstance(exponent, int | float)):
        return
    if abs(base) <= 1 or exponent <= 0:
        return
    digits = exponent * math.log10(abs(base)) if math.isfinite(exponent) else math.inf
    if digits > MAX_DIGITS:
        raise RenderLimit(f"{base} ** {exponent} has about {digits:,.0f} digits (limit {MAX_DIGITS:,})")


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise RenderLimit(f"range() of {len(r):,} items is over the limit of {MAX_RANGE:,}")
    return r


def _lipsum(n: int = 5, html: bool = False, min: int = 20, max: int = 100) -> str:
    if n > 100 or max > 1000:
        raise RenderLimit("lipsum() is limited to 100 paragraphs of 1,000 words")
    from jinja2.utils import generate_lorem_ipsum

    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def environment(templates: Path | None) -> BoundedSandbox:
    """The environment letters are rendered in (``templates``: the folder includes come from)."""
    env = BoundedSandbox(
        loader=_Confined(templates) if templates is not None and templates.is_dir() else None,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.globals["range"] = _range
    env.globals["lipsum"] = _lipsum
    return env


def render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render within the limits: output size checked as it is produced, time by a timer."""
    size = 0
    parts: list[str] = []
    with _time_limit(TIME_LIMIT):
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderLimit(f"the letter is longer than {MAX_OUTPUT:,} characters")
            parts.append(chunk)
    return "".join(parts)


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`RenderLimit` in this thread after ``seconds`` (main thread, POSIX only;
    elsewhere the size limits still hold)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    started = time.monotonic()

    def expired(_signum: int, _frame: Any) -> None:
        raise RenderLimit(
            f"rendering took more than {seconds:g} seconds ({time.monotonic() - started:.1f} s)"
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
