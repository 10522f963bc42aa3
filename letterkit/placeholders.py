"""Placeholder details: letters signed with them must never reach a real address.

The README's quick start signs with ``you@example.org`` so that it can be pasted
as written; a letter signed so is a demonstration, not a protest.  Such a letter
is never queued for a real server and never delivered except to a server on
this machine (where tests and rehearsals run).

Reserved domains (RFC 2606 and RFC 6761): ``example.org``, ``example.com``,
``example.net`` and everything under them, and the top-level names ``.test``,
``.example``, ``.invalid`` and ``.localhost``.
"""

from __future__ import annotations

RESERVED_DOMAINS = ("example.org", "example.com", "example.net")
RESERVED_TLDS = ("test", "example", "invalid", "localhost")
PLACEHOLDER_WORDS = frozenset({"your name", "your city", "your country", "your organisation"})


def is_reserved_address(address: str) -> bool:
    """True for an address at a domain reserved for documentation and testing."""
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    if not domain:
        return False
    if any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS):
        return True
    return domain.rpartition(".")[2] in RESERVED_TLDS


def placeholder_reason(*, name: str = "", email: str = "", reply_to: str = "", **others: str) -> str:
    """Why these signer details look like placeholders ("" if they do not)."""
    for what, address in (("signer e-mail", email), ("Reply-To", reply_to)):
        if address and is_reserved_address(address):
            return f"the {what} {address} is at a reserved example domain"
    for what, value in (("name", name), *others.items()):
        if value and value.strip().lower() in PLACEHOLDER_WORDS:
            return f"the signer {what} is the placeholder {value!r}"
    return ""
