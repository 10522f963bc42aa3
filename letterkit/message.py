"""A letter as an e-mail message: built with the stdlib ``email`` package (``policy.SMTP``).

:func:`to_message` makes the :class:`~email.message.EmailMessage` (From is the
sending account's own address with the signer's name, Reply-To the signer when
different, To/Cc, Subject, Date, Message-ID, Content-Language, UTF-8 text);
:func:`message_bytes` is what the outbox stores and the transport sends: CRLF line
endings only, no line over 998 octets (RFC 5322), nothing naming the machine or
the program.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

from . import clock
from .errors import ContactError, InvalidValue
from .validation import check_address, check_header_value, check_language, normalise_newlines

if TYPE_CHECKING:
    import datetime as dt
    import email.charset
    import email.policy
    from collections.abc import Sequence
    from email.message import EmailMessage

    from .letters import Letter


MAX_LINE = 998  # octets per line, CRLF excluded (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6)


_SHARED = frozenset(  # headers most letters of a batch have in common: folded once
    ("from", "reply-to", "cc", "subject", "date", "content-language", "mime-version", "content-type",
     "content-transfer-encoding")
)  # fmt: skip


@functools.cache
def _policy(linesep: str = "\r\n") -> email.policy.EmailPolicy[EmailMessage]:
    """The policy messages are made and written with: ``policy.SMTP`` (CRLF line ends,
    headers folded at 78 characters, non-ASCII headers RFC 2047-encoded, 7-bit headers),
    remembering how it folded the headers that most letters of a batch share (folding is
    most of the cost of writing a message; the result for a name and value never changes)."""
    import email.policy
    from email.headerregistry import HeaderRegistry

    class Headers(HeaderRegistry):
        @functools.lru_cache(maxsize=64)  # noqa: B019 - one registry for the process
        def __getitem__(self, name: str) -> type:
            """The class for headers called ``name``, made once: the stdlib builds a new
            class for every header it makes, a tenth of the cost of a message."""
            return cast("type", super().__getitem__(name))

    class Policy(email.policy.EmailPolicy):
        def fold_binary(self, name: str, value: str) -> bytes:
            if name.lower() in _SHARED and hasattr(value, "name"):  # a parsed header object
                return _fold_once(self, name, str(value), value)
            return super().fold_binary(name, value)

        def fold_uncached(self, name: str, value: str) -> bytes:
            return super().fold_binary(name, value)

    return cast("email.policy.EmailPolicy[EmailMessage]", Policy(linesep=linesep, header_factory=Headers()))


_folded: dict[tuple[int, str, str], bytes] = {}


def _fold_once(policy: Any, name: str, text: str, value: str) -> bytes:
    key = (id(policy), name.lower(), text)
    found = _folded.get(key)
    if found is None:
        if len(_folded) > 4096:  # bounded: a batch has a few distinct values, not thousands
            _folded.clear()
        found = _folded[key] = policy.fold_uncached(name, value)
    return found


def _transfer_encoding(body: bytes) -> str:
    """The body's Content-Transfer-Encoding, chosen so the message stays 7-bit clean.

    ``7bit`` for ASCII text whose lines fit in 998 octets, else
    ``quoted-printable``: the ASCII parts stay readable as they are, it is what
    spam filters expect of text, and a Cyrillic letter of a few KiB grows by a
    few KiB more, which does not matter.  Never ``8bit``: not every server
    announces 8BITMIME, and a line over 998 octets must never go out unencoded.
    Never ``base64``: with CRLF line ends it would decode to CRLF text, unlike
    the other two.
    """
    if body.isascii() and max(map(len, body.split(b"\n"))) <= MAX_LINE:
        return "7bit"
    return "quoted-printable"


def _sender(letter: Letter, from_addr: str | None) -> str:
    chosen = from_addr or letter.signer.email
    return check_address(chosen, "From address") if chosen else ""


def _mailboxes(name: str, pairs: Sequence[tuple[str, str]], what: str) -> Any:
    """The ``name`` header for mailboxes ``(display name, address)``, each address checked
    with the envelope's rule."""
    from email.errors import HeaderParseError

    checked = tuple((check_header_value(n, f"{what} display name"), check_address(a, what)) for n, a in pairs)
    try:
        return _header(name, checked)
    except (HeaderParseError, ValueError, IndexError):
        raise InvalidValue(f"{what} is not a valid e-mail address: {pairs[0][1]!r}") from None


@functools.lru_cache(maxsize=64)  # a batch shares a few values; each To is new (parse trees are big)
def _header(name: str, value: str | tuple[tuple[str, str], ...]) -> Any:
    """A header object (immutable) made by the policy's header factory, once per distinct
    value: From, Reply-To, Date, Subject and Content-Language are the same for every letter
    of a batch, and parsing them is most of the cost of making a message."""
    if isinstance(value, str):
        return _policy().header_factory(name, value)
    return _policy().header_factory(name, [_address(n, a) for n, a in value])


def _address(name: str, addr_spec: str) -> Any:
    """An :class:`~email.headerregistry.Address`; a plain (dot-atom) local part is passed as
    it is rather than parsed again (the address was checked already)."""
    from email.headerregistry import Address

    local, _, domain = addr_spec.rpartition("@")
    if '"' in local or "\\" in local:  # a quoted local part: the parser unquotes it
        return Address(name, addr_spec=addr_spec)
    return Address(name, local, domain)


def to_message(
    letter: Letter,
    *,
    from_addr: str | None = None,
    date: dt.datetime | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """The letter as an :class:`email.message.EmailMessage` (policy ``SMTP``).

    From is ``from_addr`` (the sending account's own address) with the signer's
    name as display name; a different signer e-mail becomes Reply-To; without
    ``from_addr`` the signer's e-mail is From.  Then To, Cc, Subject, Date,
    Message-ID (on the sender's domain: never the host name), Content-Language
    and a UTF-8 text body.  No header names the machine or the program.
    :func:`message_bytes` is this message as bytes.
    """
    import email.utils
    from email.message import EmailMessage

    if not letter.to:
        raise ContactError(f"contact {letter.contact.id!r} has no e-mail address; export the letter instead")
    msg = EmailMessage(policy=_policy())
    sender = _sender(letter, from_addr)
    name = letter.signer.name
    if sender:
        msg["From"] = _mailboxes("From", [(name, sender)], "From address")
        signer_email = check_address(letter.signer.email, "signer e-mail") if letter.signer.email else ""
        if signer_email and signer_email.lower() != sender.lower():
            msg["Reply-To"] = _mailboxes("Reply-To", [(name, signer_email)], "signer e-mail")
    whose = f"contact {letter.contact.id!r}"
    msg["To"] = _mailboxes("To", [(letter.contact.name, a) for a in letter.to], f"e-mail of {whose}")
    if letter.cc:
        msg["Cc"] = _mailboxes("Cc", [("", a) for a in letter.cc], f"a copy address of {whose}")
    msg["Subject"] = _header("Subject", check_header_value(letter.subject, "subject"))
    msg["Date"] = _header("Date", email.utils.format_datetime(date or clock.now()))
    domain = sender.rpartition("@")[2] if sender else "invalid"  # RFC 2606: never the host name
    msg["Message-ID"] = check_header_value(message_id or email.utils.make_msgid(domain=domain), "Message-ID")
    if letter.in_reply_to:  # a follow-up, threaded to the letter it follows up
        msg["In-Reply-To"] = msg["References"] = check_header_value(letter.in_reply_to, "In-Reply-To")
    language = _header("Content-Language", check_language(letter.language, "language"))
    text = normalise_newlines(letter.body)
    if not text.endswith("\n"):
        text += "\n"
    _set_text(msg, text)
    msg["Content-Language"] = language
    return msg


def _set_text(msg: EmailMessage, text: str) -> None:
    """The body: UTF-8 text, 7-bit or quoted-printable (:func:`_transfer_encoding`), encoded
    by the stdlib's UTF-8 :class:`~email.charset.Charset`; the MIME headers are the ones
    ``set_content`` writes, as header objects made once per batch."""
    cte = _transfer_encoding(text.encode("utf-8"))
    msg["Content-Type"] = _header("Content-Type", 'text/plain; charset="utf-8"')
    msg["Content-Transfer-Encoding"] = _header("Content-Transfer-Encoding", cte)
    msg["MIME-Version"] = _header("MIME-Version", "1.0")
    msg.set_payload(text if cte == "7bit" else _utf8_qp().body_encode(text))


@functools.cache
def _utf8_qp() -> email.charset.Charset:
    import email.charset

    charset = email.charset.Charset("utf-8")
    charset.body_encoding = email.charset.QP
    return charset


def encode_message(msg: EmailMessage, *, linesep: str = "\r\n") -> bytes:
    """``msg`` as bytes with ``linesep`` line ends (CRLF: ready for the wire), every header
    folded and encoded by the stdlib; raises :class:`InvalidValue` naming the header if a
    line would still be longer than 998 octets (a server would refuse it)."""
    data = msg.as_bytes(policy=_policy(linesep))
    sep = linesep.encode("ascii")
    if max(map(len, data.split(sep))) > MAX_LINE:
        field = ""
        for line in data.split(sep):
            if line[:1] not in (b" ", b"\t"):
                field = line.partition(b":")[0].decode("ascii", "replace")
            if len(line) > MAX_LINE:
                break
        raise InvalidValue(
            f"the {field} header cannot be folded into lines of at most {MAX_LINE} characters",
            hint="shorten it or add spaces",
        )
    return data


def message_bytes(
    letter: Letter,
    *,
    from_addr: str | None = None,
    date: dt.datetime | None = None,
    message_id: str | None = None,
) -> tuple[bytes, str]:
    """The letter as wire-ready bytes (every line ended by CRLF, 7-bit) and its Message-ID.

    This is what the outbox stores and delivery sends: :func:`to_message`
    written with ``policy.SMTP``.  The body's line breaks are normalised first,
    so no bare CR or LF is ever in it; no line is longer than 998 octets.
    """
    msg = to_message(letter, from_addr=from_addr, date=date, message_id=message_id)
    return encode_message(msg), str(msg["Message-ID"])
