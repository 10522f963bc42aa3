"""Checks for values that reach mail headers, the SMTP envelope or file names.

A name, subject or address containing CR, LF or NUL could inject headers or
SMTP commands; letterkit refuses such values before anything is queued.
"""

from __future__ import annotations

import re

from .errors import InvalidValue

_FORBIDDEN = {"\r": "a carriage return (CR)", "\n": "a line break (LF)", "\x00": "a NUL byte"}

# A practical, RFC 5321/5322-compatible check for one "addr-spec" as used in an
# envelope: dot-atom local part (or a plain quoted string) @ a domain with at
# least one dot, or a loopback/localhost name (useful for local servers).
_LOCAL_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LOCAL = rf"(?:{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*|\"[^\"\\\r\n]+\")"
_LABEL = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?)"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})+|localhost|\[[0-9.:a-fA-F]+\])"
_ADDRESS_RE = re.compile(rf"^{_LOCAL}@{_DOMAIN}$", re.ASCII)  # internationalised addresses: not yet


_UNSAFE_RE = re.compile("[\r\n\x00]")


def header_safe(value: str) -> bool:
    """True if ``value`` has no CR, LF or NUL (the cheap test before a :func:`check_header_value`)."""
    return _UNSAFE_RE.search(value) is None


def check_header_value(value: str, what: str) -> str:
    """Return ``value`` if it is safe in a header; raise :class:`InvalidValue` if not."""
    if _UNSAFE_RE.search(value) is None:
        return value
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise InvalidValue(
                f"{what} contains {name}: {value!r}",
                hint="remove it; header values must be on one line",
            )
    return value


def check_address(address: str, what: str) -> str:
    """Validate one e-mail address (``user@example.org``) and return it stripped."""
    address = check_header_value(address, what).strip()
    if len(address) > 254 or not _ADDRESS_RE.match(address):
        raise InvalidValue(
            f"{what} is not a valid e-mail address: {address!r}",
            hint="write it as name@example.org",
        )
    return address


_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_slug(value: str, what: str) -> str:
    """Ids and group names: lowercase letters, digits, '.', '_' and '-'."""
    if not _SLUG_RE.match(value):
        raise InvalidValue(
            f"{what} {value!r} is not a valid id",
            hint="use lowercase letters, digits, '.', '_' or '-' (at most 64)",
        )
    return value
