"""IMAP to the user's own mailbox (the only module that imports imaplib).

letterkit reads and writes the user's mailbox for two things only: a copy of each
letter sent goes into the Sent folder (APPEND), and new messages in INBOX are read
to find replies and bounces.  It never deletes, moves or flags anything: INBOX is
opened with EXAMINE (read-only) and messages are read with ``BODY.PEEK``, which
leaves ``\\Seen`` alone.

Security follows the account, like SMTP in :mod:`letterkit.transport`:
``starttls`` (port 143) or ``tls`` (port 993), certificates and host names verified
against the system CAs or the account's ``ca_file``; ``none`` is refused unless the
host is loopback, so a password never crosses a network in clear.  The password
comes from the account's own sources (:mod:`letterkit.credentials`) and lives in a
local variable of :func:`_login` only.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import TransportError

if TYPE_CHECKING:
    import datetime as dt
    import imaplib
    from collections.abc import Callable, Iterator

    from .config import Account
    from .oauth import SaslClient

IMAP_PORTS = {"starttls": 143, "tls": 993, "none": 143}
FETCH_LIMIT = 512 * 1024  # bytes of a message read to classify it (a DSN's report comes first)
SENT_NAMES = (
    "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent Mails", "Sent-Mail",
    "Gesendet", "Gesendete Elemente", "Gesendete Objekte",
    "Envoyés", "Éléments envoyés", "Messages envoyés",
    "Отправленные", "Надіслані", "Enviados", "Elementos enviados", "Inviata", "Posta inviata",
    "Verzonden", "Verzonden items", "Wysłane", "Skickat", "Odeslané", "Sendt",
)  # fmt: skip
"""Sent folders as mail programs name them, tried (also under ``INBOX.``/``INBOX/``)
when the server marks none ``\\Sent`` (RFC 6154)."""


class ImapError(TransportError):
    """The IMAP server refused TLS, the login, a folder or a command (exit code 2)."""


class ImapUnreachable(ImapError):
    """The IMAP server cannot be reached now: try again later (exit code 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Fetched:
    """One message of INBOX as read: its UID, full size and (the start of) its bytes."""

    uid: int
    size: int
    data: bytes

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


def imap_where(account: Account) -> str:
    return f"{account.imap_host}:{account.imap_port or IMAP_PORTS.get(account.imap_security, 993)}"


# --- modified UTF-7 (RFC 3501 5.1.3): folder names on the wire ------------------------------


def encode_name(name: str) -> str:
    """A folder name as IMAP writes it (``Отправленные`` -> ``&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-``)."""
    import base64

    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode_name(name: str) -> str:
    import base64

    def one(m: re.Match[str]) -> str:
        if m.group(1) == "":
            return "&"
        text = m.group(1).replace(",", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4)).decode("utf-16-be", "replace")

    return re.sub(r"&([^-]*)-", one, name)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LIST = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"(?:\\.|[^"])*"|NIL) ?(?P<name>.*)$')


def parse_list(data: list[Any]) -> list[tuple[frozenset[str], str]]:
    """(attributes, decoded name) of each LIST response line (names may come as literals)."""
    found = []
    for item in data:
        head, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        if not isinstance(head, bytes):
            continue
        m = _LIST.match(head)
        if not m:
            continue
        raw = literal if literal is not None else m.group("name")
        name = raw.decode("utf-8", "replace").strip()
        if literal is None and name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        attrs = frozenset(a.lower() for a in m.group("attrs").decode("ascii", "replace").split())
        found.append((attrs, decode_name(name)))
    return found


def pick_sent(folders: list[tuple[frozenset[str], str]], override: str = "") -> str | None:
    """The Sent folder: ``override`` if it exists, else the one marked ``\\Sent``, else a usual name."""
    names = [n for attrs, n in folders if "\\noselect" not in attrs and "\\nonexistent" not in attrs]
    if override:
        return next((n for n in names if n == override), None)
    for attrs, name in folders:
        if "\\sent" in attrs:
            return name
    lowered = {n.casefold(): n for n in names}
    for usual in SENT_NAMES:
        for prefix in ("", "INBOX.", "INBOX/"):
            if (prefix + usual).casefold() in lowered:
                return lowered[(prefix + usual).casefold()]
    return None


# --- the connection -----------------------------------------------------------------------------


class ImapSession:
    """One connection to the account's IMAP server, opened by :meth:`open` (or ``with``)."""

    def __init__(self, account: Account, password_provider: Callable[[], str]) -> None:
        self.account = account
        self._password_provider = password_provider
        self._imap: imaplib.IMAP4 | None = None
        self.capabilities: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<ImapSession {self.account.name} {self.where}>"

    @property
    def where(self) -> str:
        return imap_where(self.account)

    @property
    def imap(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise ImapError(f"{self.where}: not connected")
        return self._imap

    def __enter__(self) -> ImapSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, steps: list[str] | None = None) -> None:
        """Connect, secure, check IMAP4rev1 and log in (``steps`` collects what worked)."""
        import imaplib

        note = steps.append if steps is not None else (lambda _s: None)
        stage = ["connect"]
        try:
            self._connect(stage, note)
            stage[0] = "login"
            _login(self.imap, self.account, self._password_provider)
            typ, data = self.imap.capability()
            if typ == "OK" and data and isinstance(data[0], bytes):
                self.capabilities = frozenset(data[0].decode("ascii", "replace").upper().split())
            note(f"IMAP login as {self.account.username or self.account.from_addr}")
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:
            self.close()
            raise self._error(exc, stage[0]) from None
        except BaseException:
            self.close()
            raise

    def _connect(self, stage: list[str], note: Callable[[str], object]) -> None:
        import imaplib

        from .validation import is_loopback

        a = self.account
        host, port = a.imap_host, a.imap_port or IMAP_PORTS[a.imap_security]
        if a.imap_security == "none" and not is_loopback(host):
            raise ImapError(
                f"{self.where}: IMAP without TLS would send the password in clear",
                hint="use --imap-security tls (port 993) or starttls (port 143)",
            )
        timeout = a.timeout
        if a.imap_security == "tls":
            stage[0] = "TLS handshake"
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=self._context(), timeout=timeout)
            self._imap = imap
            note(f"connected to {self.where} over TLS (certificate verified)")
        else:
            imap = self._imap = imaplib.IMAP4(host, port, timeout=timeout)
            if a.imap_security == "starttls":
                stage[0] = "STARTTLS"
                if "STARTTLS" not in imap.capabilities:
                    raise ImapError(
                        f"{self.where}: the server does not offer STARTTLS", hint="try --imap-security tls"
                    )
                imap.starttls(self._context())
                note(f"connected to {self.where}, STARTTLS (certificate verified)")
            else:
                note(f"connected to {self.where} (loopback, no TLS)")
        if "IMAP4REV1" not in imap.capabilities:
            raise ImapError(f"{self.where}: the server does not speak IMAP4rev1 (it offers IMAP4 only)")
        note("capability IMAP4rev1")

    def _context(self) -> Any:
        from .fileutil import tls_context

        return tls_context(self.account.ca_file, self.account.name, ImapError)

    def _error(self, exc: BaseException, step: str) -> ImapError:
        """A one-line error with host:port and a fix for a socket, TLS or protocol failure."""
        import imaplib
        import socket
        import ssl

        where = self.where
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ImapError(
                f"{where}: untrusted certificate ({exc.verify_message or exc})",
                hint="if the server uses a private CA, add it with --ca-file CA.pem; "
                "check the host name matches the certificate",
            )
        if isinstance(exc, ssl.SSLError):
            return ImapError(f"{where}: TLS failed during {step} ({exc.reason or exc})",
                             hint="check --imap-security: port 993 uses tls, port 143 starttls")  # fmt: skip
        if isinstance(exc, socket.gaierror):
            return ImapUnreachable(f"cannot connect to {where}: unknown host {self.account.imap_host!r}")
        if isinstance(exc, ConnectionRefusedError):
            return ImapUnreachable(f"cannot connect to {where}: connection refused")
        if isinstance(exc, TimeoutError):
            return ImapUnreachable(f"{where}: timed out during {step}")
        if isinstance(exc, OSError | EOFError | imaplib.IMAP4.abort):
            return ImapUnreachable(f"{where}: the server dropped the connection during {step}")
        text = " ".join(str(exc).split())[:200]
        if "not IMAP4 compliant" in text:
            return ImapError(f"{where}: the server does not speak IMAP4rev1")
        return ImapError(f"{where}: {step} failed ({text})")

    def close(self) -> None:
        """LOGOUT (ignoring a dead connection) and forget the connection."""
        import imaplib

        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):
            with suppress(OSError):
                imap.shutdown()

    def _ok(self, step: str, result: tuple[str, list[Any]]) -> list[Any]:
        typ, data = result
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ImapError(f"{self.where}: {step} refused ({' '.join(detail.split())[:200]})")
        return data

    def run(self, step: str, call: Callable[[], tuple[str, list[Any]]]) -> list[Any]:
        """One command; its protocol and socket errors as :class:`ImapError` naming ``step``."""
        import imaplib

        try:
            return self._ok(step, call())
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:
            raise self._error(exc, step) from None

    # --- folders ---------------------------------------------------------------------------

    def folders(self) -> list[tuple[frozenset[str], str]]:
        """Every folder with its attributes (``RETURN (SPECIAL-USE)`` where the server has it)."""
        imap = self.imap
        if {"SPECIAL-USE", "LIST-EXTENDED"} <= self.capabilities:
            data = self.run(
                "LIST", lambda: imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
            )
            data = imap._untagged_response("OK", data, "LIST")[1]
        else:
            data = self.run("LIST", lambda: imap.list('""', '"*"'))
        return parse_list(data)

    def find_sent(self, override: str = "") -> str:
        """The Sent folder (see :func:`pick_sent`); ImapError naming the folders if none is."""
        found = self.folders()
        name = pick_sent(found, override)
        if name is None:
            listed = ", ".join(n for _a, n in found)[:200] or "none"
            what = f"no folder named {override!r}" if override else "no Sent folder"
            raise ImapError(
                f"{self.where}: {what} (folders: {listed})",
                hint="name it with: letterkit account add NAME ... --sent-folder FOLDER --replace",
            )
        return name

    def append(self, folder: str, data: bytes, when: dt.datetime) -> None:
        """Put ``data`` into ``folder`` as read (``\\Seen``), dated ``when`` (INTERNALDATE)."""
        import imaplib

        stamp = imaplib.Time2Internaldate(when)
        self.run(
            f"APPEND to {folder}",
            lambda: self.imap.append(quote(encode_name(folder)), r"(\Seen)", stamp, data),
        )

    def examine(self, folder: str) -> tuple[int, int]:
        """Open ``folder`` read-only (EXAMINE): its UIDVALIDITY and message count."""
        imap = self.imap
        data = self.run(f"EXAMINE {folder}", lambda: imap.select(quote(encode_name(folder)), readonly=True))
        _typ, validity = imap.response("UIDVALIDITY")
        value = validity[0] if validity and isinstance(validity[0], bytes) else b"0"
        return int(value), int(data[0] or 0) if data and isinstance(data[0], bytes) else 0

    def has_message_id(self, folder: str, message_id: str) -> bool:
        """Whether ``folder`` holds a message with this Message-ID (UID SEARCH HEADER)."""
        self.examine(folder)
        data = self.run("SEARCH", lambda: self.imap.uid("SEARCH", "HEADER", "Message-ID", quote(message_id)))
        return bool(data and isinstance(data[0], bytes) and data[0].split())

    def uids_after(self, last: int) -> list[int]:
        """UIDs above ``last`` in the examined folder, lowest first."""
        data = self.run("SEARCH", lambda: self.imap.uid("SEARCH", "UID", f"{last + 1}:*"))
        raw = data[0] if data and isinstance(data[0], bytes) else b""
        return sorted(u for u in (int(x) for x in raw.split()) if u > last)

    def headers(self, uids: list[int]) -> dict[int, bytes]:
        """The header of each of ``uids`` (one FETCH for them all), read with BODY.PEEK."""
        spec = ",".join(str(u) for u in uids)
        data = self.run("FETCH", partial(self.imap.uid, "FETCH", spec, "(UID BODY.PEEK[HEADER])"))
        found: dict[int, bytes] = {}
        for i, item in enumerate(data):
            if not (isinstance(item, tuple) and isinstance(item[0], bytes) and isinstance(item[1], bytes)):
                continue
            after = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
            uid = re.search(rb"UID (\d+)", item[0]) or re.search(rb"UID (\d+)", after)  # before or after it
            if uid:
                found[int(uid.group(1))] = item[1]
        return found

    def fetch(self, uids: list[int]) -> Iterator[Fetched]:
        """Each message's size and first :data:`FETCH_LIMIT` bytes, read with BODY.PEEK."""
        for uid in uids:
            what = f"(RFC822.SIZE BODY.PEEK[]<0.{FETCH_LIMIT}>)"
            data = self.run("FETCH", partial(self.imap.uid, "FETCH", str(uid), what))
            for item in data:
                if isinstance(item, tuple) and isinstance(item[0], bytes):
                    size = re.search(rb"RFC822\.SIZE (\d+)", item[0])
                    body = item[1] if isinstance(item[1], bytes) else b""
                    yield Fetched(uid, int(size.group(1)) if size else len(body), body)
                    break


def _login(imap: imaplib.IMAP4, account: Account, password_provider: Callable[[], str]) -> None:
    """Log in with the account's password (LOGIN, or AUTHENTICATE PLAIN for a UTF-8 one).

    The one place IMAP authenticates: OAuth2 accounts go to :func:`_login_oauth`.
    """
    import imaplib

    if account.auth == "oauth2":
        return _login_oauth(imap, account)
    user = account.username or account.from_addr
    if "LOGINDISABLED" in imap.capabilities:
        raise ImapError(f"{imap_where(account)}: the server does not allow login on this connection")
    password = password_provider()
    try:
        if (user + password).isascii():
            imap.login(user, password)  # imaplib quotes the password
        else:  # LOGIN arguments are ASCII; SASL PLAIN is UTF-8 (RFC 4616)
            blob = b"\0" + user.encode() + b"\0" + password.encode()
            imap.authenticate("PLAIN", lambda _challenge: blob)
    except imaplib.IMAP4.abort:
        raise ImapUnreachable(
            f"{imap_where(account)}: the server dropped the connection during login"
        ) from None
    except imaplib.IMAP4.error as exc:
        from .credentials import wrong_password_hint

        if "[UNAVAILABLE]" in str(exc):
            raise ImapUnreachable(f"{imap_where(account)}: login temporarily unavailable") from None
        raise ImapError(
            f"{imap_where(account)}: wrong username or password for {user} (IMAP)",
            hint=wrong_password_hint(account),
        ) from None
    finally:
        del password


def _login_oauth(imap: imaplib.IMAP4, account: Account) -> None:
    """AUTHENTICATE OAUTHBEARER (else XOAUTH2) with a token for IMAP (see :mod:`letterkit.oauth`);
    a token the server's error challenge calls expired or invalid is renewed once."""
    import imaplib

    from . import oauth

    where = imap_where(account)
    offered = " ".join(c.removeprefix("AUTH=") for c in imap.capabilities if c.startswith("AUTH="))
    mechanism = oauth.choose_mechanism(offered)
    if not mechanism:
        raise ImapError(f"{where}: the server offers no OAuth2 sign-in (AUTH=OAUTHBEARER, AUTH=XOAUTH2)")
    tokens = oauth.TokenSource(account, imap=True)
    for renewed in (False, True):
        token = tokens.get(renew=renewed)
        client = oauth.SaslClient(
            mechanism, account.username, token.value, account.imap_host, account.imap_port
        )
        try:
            imap.authenticate(mechanism, _answers(client))
            return
        except imaplib.IMAP4.abort:
            raise ImapUnreachable(f"{where}: the server dropped the connection during login") from None
        except imaplib.IMAP4.error as exc:
            if renewed or not oauth.token_rejected(str(exc), client.error):
                raise ImapError(
                    f"{where}: {mechanism} sign-in refused for {account.username} (IMAP: {exc})",
                    hint=f"check the app may read mail (scope {oauth.scopes(account, imap=True)[-1]}), then "
                    f"run `letterkit account login {account.name}` again",
                ) from None


def _answers(client: SaslClient) -> Callable[[bytes], bytes]:
    """imaplib's authobject: the first "+" asks for the initial response, a second is an error."""
    asked: list[bytes] = []

    def answer(challenge: bytes) -> bytes:
        asked.append(challenge)
        return client(None if len(asked) == 1 else challenge).encode("ascii")

    return answer
