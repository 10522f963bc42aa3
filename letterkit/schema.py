"""One typed schema for the TOML files letterkit reads: config.toml and campaign.toml.

tomllib gives values of any type; the code after it relies on types, enumerations
and ranges.  Each file declares its tables as ``{key: Spec}`` and :func:`check`
reads a table through them: missing keys get their defaults, a wrong value is a
:class:`~letterkit.errors.LetterkitError` naming the file, the line, the table and
the key (exit 2), never a traceback later and never a silent fallback (an unknown
``security`` is an error, not a connection without TLS).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LetterkitError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path


class Invalid(ValueError):
    """A value that does not fit its spec: the reason, e.g. "must be a whole number"."""


@dataclass(frozen=True)
class Spec:
    """What one key holds: ``convert`` turns the raw TOML value into the checked one or
    raises :class:`Invalid`; ``default`` is used when the key is missing."""

    convert: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    hint: str = ""


def _type_name(value: Any) -> str:
    return {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "a table" if isinstance(value, dict) else type(value).__name__
    )


def text() -> Spec:
    """Text, as it is (missing: empty)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be text in quotes, not {_type_name(value)}")
        return value

    return Spec(convert, "")


def choice(options: Iterable[str], default: str) -> Spec:
    words = tuple(options)

    def convert(value: Any) -> str:
        if not isinstance(value, str) or value not in words:
            raise Invalid(f"is not one of {', '.join(words)}")
        return value

    return Spec(convert, default, hint="check the spelling")


def flag(default: bool = False) -> Spec:
    def convert(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false (without quotes)")
        return value

    return Spec(convert, default)


def number(default: float, *, low: float, high: float, whole: bool = False) -> Spec:
    """A finite number in [low, high] (never a boolean; ``whole``: an integer)."""

    def convert(value: Any) -> float | int:
        kind = "whole number" if whole else "number"
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid(f"must be a {kind} from {low:g} to {high:g}")
        if whole and value != int(value):
            raise Invalid(f"must be a whole number from {low:g} to {high:g}")
        if not low <= value <= high:
            raise Invalid(f"must be a {kind} from {low:g} to {high:g}")
        return int(value) if whole else float(value)

    return Spec(convert, default)


def lines(*, split_text: bool = False, example: str = "") -> Spec:
    """A list of strings (``split_text``: a text is taken as its lines)."""

    def convert(value: Any) -> tuple[str, ...]:
        if split_text and isinstance(value, str):
            return tuple(value.splitlines())
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise Invalid("must be a list of strings")
        return tuple(value)

    return Spec(convert, (), hint=f"e.g. {example}" if example else "")


def date(*, example: str = "2026-12-31", partial: bool = False) -> Spec:
    """A TOML date or an ISO date text (``partial``: also ``2010-09`` or ``2010``)."""

    def convert(value: Any) -> dt.date | str:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            if partial and _partial_date(value):
                return value
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise Invalid(f"must be a date like {example}")

    return Spec(convert, None)


def _partial_date(value: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2]))?", value) is not None


def one_or_more() -> Spec:
    """A text or a list of texts, as a tuple (a missing or empty value: none)."""

    def convert(value: Any) -> tuple[str, ...]:
        if value == "":
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return tuple(value)
        raise Invalid("must be text or a list of texts")

    return Spec(convert, ())


def stripped(*, dates: bool = False, required: bool = False) -> Spec:
    """Text without surrounding blanks (``dates``: an unquoted TOML date is taken as its ISO
    text; ``required``: it must not be empty)."""

    def convert(value: Any) -> str:
        if dates and isinstance(value, dt.date):
            value = value.isoformat()
        if not isinstance(value, str):
            raise Invalid(f"must be text in quotes, not {_type_name(value)}")
        if required and not value.strip():
            raise Invalid("must not be empty")
        return value.strip()

    return Spec(convert, "", required)


def tables() -> Spec:
    """An array of tables (``[[name]]``), kept as they are."""

    def convert(value: Any) -> tuple[dict[str, Any], ...]:
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            raise Invalid("must be [[tables]]")
        return tuple(value)

    return Spec(convert, ())


def custom(convert: Callable[[Any], Any], default: Any, *, hint: str = "") -> Spec:
    """A spec with its own conversion (raising :class:`Invalid` or
    :class:`~letterkit.errors.LetterkitError` for a wrong value)."""
    return Spec(convert, default, hint=hint)


class Source:
    """A TOML file being checked: it makes the errors, with the line they are about."""

    def __init__(self, path: Path, error: type[LetterkitError]) -> None:
        self.path = path
        self.error = error
        self._text: str | None = None

    def line(self, section: str, key: str) -> int | None:
        from .fileutil import toml_line

        if self._text is None:
            try:
                self._text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                self._text = ""
        return toml_line(self._text, section, key)

    def fail(self, section: str, key: str, message: str, hint: str = "") -> LetterkitError:
        line = self.line(section, key) if key or section else None
        where = f"{self.path}:{line}" if line else str(self.path)
        table = f" [{section}]" if section else ""
        return self.error(f"{where}{table}: {message}", hint=hint or None)

    def table(self, raw: Mapping[str, Any], section: str) -> dict[str, Any]:
        """``raw[section]`` (a dotted name) as a table; missing is empty."""
        value: Any = raw
        for part in section.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else None
        return self.as_table(value, section)

    def as_table(self, value: Any, section: str) -> dict[str, Any]:
        """``value``, the table ``[section]``: it must be one."""
        if not isinstance(value, dict):
            raise self.fail("", section.rpartition(".")[2], f"[{section}] must be a table")
        return value


class Located(Source):
    """A table whose place is known already (``where``: "file:line", e.g. one ``[[contact]]``
    of a recipients file): errors start with it."""

    def __init__(self, where: str, error: type[LetterkitError]) -> None:
        self.where = where
        self.error = error

    def fail(self, section: str, key: str, message: str, hint: str = "") -> LetterkitError:
        return self.error(f"{self.where}: {message}", hint=hint or None)


def check(
    source: Source,
    table: Mapping[str, Any],
    specs: Mapping[str, Spec],
    *,
    section: str = "",
    unknown: str = "error",
    defaults: bool = True,
) -> dict[str, Any]:
    """The values of ``table`` read through ``specs`` (``defaults``: missing keys filled in).

    ``unknown``: ``"error"`` (a key the schema does not know is a mistake: a typo
    would otherwise be silently ignored) or ``"keep"`` (free-form keys, kept as
    they are: campaign.toml's data for templates).
    """
    if unknown == "error" and (extra := sorted(set(table) - set(specs))):
        raise source.fail(
            section, extra[0], f"unknown key {extra[0]!r}", hint=f"known keys: {', '.join(sorted(specs))}"
        )
    values: dict[str, Any] = {k: v for k, v in table.items() if k not in specs} if unknown == "keep" else {}
    for key, spec in specs.items():
        if key not in table:
            if spec.required:
                raise source.fail(section, "", f"{key} is missing", hint=spec.hint)
            if defaults:
                values[key] = spec.default
            continue
        try:
            values[key] = spec.convert(table[key])
        except Invalid as exc:
            raise source.fail(section, key, f"{key} = {_shown(table[key])} {exc}", hint=spec.hint) from None
        except LetterkitError as exc:
            message = f"{key} = {_shown(table[key])}: {exc.message}"
            raise source.fail(section, key, message, exc.hint or "") from None
    return values


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
