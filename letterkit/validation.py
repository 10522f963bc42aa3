"""Checks for values that reach mail headers, the SMTP envelope or file names.

A name, subject or address containing a line break or NUL could inject headers
or SMTP commands; letterkit refuses such values where they enter (a config
file, a template, the command line), and every later step relies on the same
rules.  "Line break" is meant as Python's :meth:`str.splitlines` means it: CR,
LF and also VT, FF, the separators U+001C-U+001E, NEL (U+0085) and the Unicode
line and paragraph separators (U+2028, U+2029), which other tools turn into
real line breaks.  Every pattern here is applied with :func:`re.fullmatch`
(``$`` would let a trailing newline through).
"""

from __future__ import annotations

import re

from .errors import InvalidValue

_FORBIDDEN = {
    "\r": "a carriage return (CR)",
    "\n": "a line break (LF)",
    "\x00": "a NUL byte",
    "\x0b": "a vertical tab",
    "\x0c": "a form feed",
    "\x1c": "a file separator (U+001C)",
    "\x1d": "a group separator (U+001D)",
    "\x1e": "a record separator (U+001E)",
    "\x85": "a next-line character (U+0085)",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
}
_UNSAFE_RE = re.compile("[" + "".join(_FORBIDDEN) + "]")
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits at

# A header line can hold at most 998 octets (RFC 5322 2.1.1).  The stdlib folds at spaces
# and splits non-ASCII text into encoded words, but it keeps a run of ASCII characters
# without a space whole in a name (a structured header), so such a run must stay well
# below that.  One rule for every header value: subjects too, though they could be encoded.
MAX_HEADER_WORD = 800
_LONG_WORD_RE = re.compile(rf"[!-~]{{{MAX_HEADER_WORD + 1},}}")

# A practical, RFC 5321/5322-compatible check for one "addr-spec" as used in an
# envelope: dot-atom local part (or a plain quoted string) @ a domain with at
# least one dot, or a loopback/localhost name (useful for local servers).
# Internationalised (SMTPUTF8) addresses are not supported: ASCII only.
_LOCAL_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LOCAL = rf"(?:{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*|\"[^\"\\\r\n]+\")"
_LABEL = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?)"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})+|localhost|\[[0-9.:a-fA-F]+\])"
_ADDRESS_RE = re.compile(rf"{_LOCAL}@{_DOMAIN}", re.ASCII)

# BCP 47-ish: a primary language subtag and optional subtags ("en", "ru", "pt-BR", "sr-Latn").
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*", re.ASCII)


def header_safe(value: str) -> bool:
    """True if ``value`` has no line break or NUL (the cheap test before :func:`check_header_value`)."""
    return _UNSAFE_RE.search(value) is None


def check_header_value(value: str, what: str) -> str:
    """Return ``value`` if it is safe in a header; raise :class:`InvalidValue` if not.

    Refused: any line break (see the module docstring), NUL, and a word of
    ASCII characters longer than :data:`MAX_HEADER_WORD`, which no folding can
    fit on a legal header line.
    """
    bad = _UNSAFE_RE.search(value)
    if bad is not None:
        raise InvalidValue(
            f"{what} contains {_FORBIDDEN[bad.group()]}: {value[:80]!r}",
            hint="remove it; header values must be on one line",
        )
    if len(value) > MAX_HEADER_WORD and _LONG_WORD_RE.search(value):
        raise InvalidValue(
            f"{what} has a word longer than {MAX_HEADER_WORD} characters: {value[:40]!r}...",
            hint="mail servers refuse header lines over 998 characters; add spaces or shorten it",
        )
    return value


def normalise_newlines(text: str) -> str:
    """``text`` with every line break (CRLF, a bare CR, NEL, U+2028...) as a plain LF.

    Bodies are normalised with this before a message is made, so that no bare CR
    or LF can reach the wire and no line is broken differently by another reader.
    """
    lines = text.splitlines()  # splits at exactly these breaks (str.splitlines), without a regex
    if text and text[-1] in _LINE_BREAKS:
        lines.append("")
    return "\n".join(lines)


def check_address(address: str, what: str) -> str:
    """Validate one e-mail address (``user@example.org``) and return it without surrounding spaces."""
    address = check_header_value(address, what).strip(" \t")
    if len(address) > 254 or not _ADDRESS_RE.fullmatch(address):
        raise InvalidValue(
            f"{what} is not a valid e-mail address: {address!r}",
            hint="write it as name@example.org (ASCII only)",
        )
    return address


def check_language(value: str, what: str) -> str:
    """A language tag like ``en``, ``ru`` or ``pt-BR`` (it becomes Content-Language and file names)."""
    if not _LANGUAGE_RE.fullmatch(value):
        raise InvalidValue(
            f"{what} {value[:40]!r} is not a language tag",
            hint="write a code like 'en', 'ru' or 'pt-BR'",
        )
    return value


SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}", re.ASCII)  # ids: match with fullmatch only
_SLUG_RE = SLUG


def check_slug(value: str, what: str) -> str:
    """Ids and group names: lowercase letters, digits, '.', '_' and '-'."""
    if not _SLUG_RE.fullmatch(value):
        raise InvalidValue(
            f"{what} {value!r} is not a valid id",
            hint="use lowercase letters, digits, '.', '_' or '-' (at most 64)",
        )
    return value


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost names."""
    import ipaddress

    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
