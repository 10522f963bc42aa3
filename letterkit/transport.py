"""SMTP delivery through the user's own account (with :mod:`letterkit.smtp_login`, the only
modules that use smtplib).

:class:`SmtpTransport` keeps **one** connection for a whole batch and
reconnects when the server drops it.  Security follows the account:

* ``starttls`` (port 587): plain connect, then STARTTLS (required: a server
  that does not offer it is refused), certificate and host name verified;
* ``tls`` (port 465): TLS from the first byte, verified the same way;
* ``none``: no encryption; AUTH is refused unless the host is loopback
  (127.0.0.0/8, ::1, localhost), so a password never crosses a network in clear.

``account.ca_file`` adds a private CA to the trusted ones.

Failures are sorted into three kinds:

* per letter, permanent (5xx): :meth:`SmtpTransport.send` returns a
  :class:`DeliveryResult` with status ``failed`` and the server's reason; some
  recipients refused but others accepted: ``partial``;
* temporary (4xx, a dropped connection, a timeout): ``deferred`` at once, with
  the reply code, so that :mod:`letterkit.delivery` can give that letter its own
  back-off while the batch goes on (a connection dropped under a letter is
  reopened at once and the letter tried once more first);
* the account or the server itself: :class:`TransportError` (TLS, certificate,
  authentication: exit code 2) or :class:`ServerUnreachable` (cannot connect:
  exit code 1).  :meth:`SmtpTransport.open` retries a busy server with back-off
  (base delay ``$LETTERKIT_RETRY_DELAY`` seconds, default 2).

Each letter is one MAIL/RCPT/DATA exchange through smtplib's public pieces,
each reply awaited in a blocking read (the process sleeps while the server
works; the caller's ``while_waiting`` runs once the message is written, before its
reply is read).  When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and
DATA go in one write and their replies are read after it: two round trips a
letter (the envelope, then the message) instead of three plus one a recipient.
Every line ending of the message becomes CRLF before it is sent and
dot-stuffed after that: no bare CR or LF ever reaches the wire (RFC 5321 2.3.8;
a lenient server could otherwise be made to see a second, smuggled message).

No password is ever put in an exception, a log line or a repr: it is fetched
from the ``password_provider`` just before AUTH and kept in a local variable.
smtplib's debug output (which would print AUTH lines) is never switched on.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import LetterkitError, TransportError
from .validation import check_address, is_loopback

if TYPE_CHECKING:
    import smtplib
    from collections.abc import Callable, Sequence

    from .config import Account
    from .oauth import TokenSource

    Waiting = Callable[[], object] | None  # work to do while the server takes a message

Status = Literal["sent", "partial", "failed", "deferred"]
RETRY_DELAY_ENV = "LETTERKIT_RETRY_DELAY"
DEFAULT_RETRY_DELAY = 2.0
DEFAULT_RETRIES = 3


EHLO_NAME = "[127.0.0.1]"
"""What letterkit greets a server with (EHLO): an address literal that names no machine.

smtplib would send the computer's host name, and providers copy the greeting into a
``Received`` header that the recipient (here, a government's embassy) can read.  RFC 5321
allows an address literal; many mail programs send this one for the same reason.
"""


class ServerUnreachable(TransportError):
    """The server cannot be reached now (refused, timed out, dropped): try again later.

    ``transient`` is False when retrying at once is pointless (connection
    refused, unknown host): :meth:`SmtpTransport.open` then gives up at the
    first attempt; a reconnection in the middle of a batch still retries.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, transient: bool = True) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message.

    ``status``: ``sent`` (every recipient accepted), ``partial`` (some refused:
    see ``refused``), ``failed`` (permanently refused: ``reply`` says why) or
    ``deferred`` (temporary failure after all retries: try again later).
    ``reply`` is the server's final answer, e.g. ``250 2.0.0 Ok: queued as 4F2A``.
    """

    status: Status
    reply: str = ""
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    attempts: int = 1
    code: int = 0  # the server's reply code for a refused or deferred letter (0: no reply)

    @property
    def delivered(self) -> bool:
        """True when the server took the message for at least one recipient."""
        return self.status in ("sent", "partial")


class Transport(Protocol):
    """What :func:`letterkit.delivery.deliver` needs from a transport."""

    account: Account

    def open(self) -> None: ...

    def send(
        self, message: bytes, mail_from: str, rcpt_to: Sequence[str], *, while_waiting: Waiting = None
    ) -> DeliveryResult: ...

    def close(self) -> None: ...


def retry_delay() -> float:
    """The base back-off delay in seconds ($LETTERKIT_RETRY_DELAY, default 2)."""
    raw = os.environ.get(RETRY_DELAY_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_RETRY_DELAY
    except ValueError:
        return DEFAULT_RETRY_DELAY


_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")  # RFC 5321 4.5.2: a line starting with "." gets another


def to_crlf(data: bytes) -> bytes:
    """Every line ending (CRLF, a bare CR, a bare LF) as CRLF: what SMTP allows on the wire."""
    if data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"):  # CRLF only already
        return data
    return _LINE_END.sub(b"\r\n", data)


class _Temporary(Exception):
    """Internal: a temporary failure of one attempt (the letter is tried again later).

    ``reconnect``: this connection is no use any more; ``dropped``: it went without a
    reply (``code`` 0), so the letter may be tried again at once on a new one.
    """

    def __init__(self, reason: str, *, reconnect: bool = False, dropped: bool = False, code: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reconnect = reconnect
        self.dropped = dropped
        self.code = code


def reply_text(code: int, message: bytes | str) -> str:
    """A server reply as one line: "CODE words"."""
    text = message.decode("utf-8", errors="replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


class SmtpTransport:
    """One SMTP connection of the user's own account, reused for a batch of messages.

    ``password_provider`` is called (once per connection, at AUTH time) only when
    the account has a user name; e.g.
    ``lambda: credentials.get_password(account, interactive=False)``.
    """

    def __init__(
        self,
        account: Account,
        password_provider: Callable[[], str] | None = None,
        *,
        retries: int = DEFAULT_RETRIES,
        backoff: float | None = None,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self._password_provider = password_provider
        self.retries = max(0, retries)
        self.backoff = retry_delay() if backoff is None else max(0.0, backoff)
        self.timeout = timeout or account.timeout
        self._sleep = sleep
        self._smtp: smtplib.SMTP | None = None
        self.tls_version = ""
        self.authenticated = False
        self._tokens: TokenSource | None = None  # OAuth2 accounts: made at the first AUTH

    def __repr__(self) -> str:
        a = self.account
        state = "open" if self._smtp is not None else "closed"
        return f"<SmtpTransport {a.name} {a.host}:{a.port} {a.security} {state}>"

    @property
    def where(self) -> str:
        return f"{self.account.host}:{self.account.port}"

    # --- connection ------------------------------------------------------------------

    def _context(self) -> Any:
        from .fileutil import tls_context

        return tls_context(self.account.ca_file, self.account.name, TransportError)

    def _map_os_error(self, exc: BaseException, step: str) -> TransportError:
        """Turn a socket/TLS exception into a TransportError with host:port and a fix."""
        import smtplib
        import socket
        import ssl

        where = self.where
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = exc.verify_message or str(exc)
            return TransportError(
                f"{where}: untrusted certificate ({detail})",
                hint="if the server uses a private CA, add it with --ca-file CA.pem "
                "(letterkit account add ... --replace); check the host name matches the certificate",
            )
        if isinstance(exc, ssl.SSLError):
            return TransportError(
                f"{where}: TLS failed during {step} ({exc.reason or exc})",
                hint="check --security: port 465 uses tls, port 587 uses starttls",
            )
        if isinstance(exc, socket.gaierror):
            return ServerUnreachable(
                f"cannot connect to {where}: unknown host {self.account.host!r}",
                hint="check the host name and your network; letters stay queued: letterkit outbox flush",
                transient=False,
            )
        if isinstance(exc, ConnectionRefusedError):
            return ServerUnreachable(
                f"cannot connect to {where}: connection refused",
                hint="is the server running and the port right? Letters stay queued: letterkit outbox flush",
                transient=False,
            )
        if isinstance(exc, TimeoutError):
            return ServerUnreachable(
                f"{where}: timed out after {self.timeout:g}s during {step}",
                hint="check the host, port and your network; letters stay queued: letterkit outbox flush",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
            return ServerUnreachable(
                f"{where}: the server dropped the connection during {step}",
                hint="try again later: letterkit outbox flush",
            )
        if isinstance(exc, OSError):
            return ServerUnreachable(
                f"cannot connect to {where}: {exc.strerror or exc}",
                hint="check the host, port and your network; letters stay queued: letterkit outbox flush",
            )
        return TransportError(f"{where}: {exc}")

    def _connect(self, steps: list[str] | None = None) -> smtplib.SMTP:
        """Connect, secure and authenticate one connection (no retries)."""
        import smtplib

        note = steps.append if steps is not None else (lambda _s: None)
        a = self.account
        if a.auth == "oauth2" and a.security == "none" and not is_loopback(a.host):  # before connecting
            raise TransportError(
                f"{self.where}: refusing to send an OAuth2 token over a connection without TLS",
                hint="use --security starttls or tls; only a loopback host may go without",
            )
        stage = ["connect"]  # the step under way, for the error message
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._open_socket(stage, note)
            self._secure(smtp, stage, note)
            self._authenticate(smtp, stage, note)
        except (smtplib.SMTPException, OSError) as exc:
            self._discard(smtp)
            raise self._connect_error(exc, stage[0]) from None
        except BaseException:  # TransportError, no password (CredentialError), Ctrl-C
            self._discard(smtp)
            raise
        return smtp

    def _open_socket(self, stage: list[str], note: Callable[[str], object]) -> smtplib.SMTP:
        import smtplib

        a = self.account
        smtp: smtplib.SMTP
        if a.security not in ("starttls", "tls", "none"):  # never plain text by mistake
            raise TransportError(
                f"account {a.name!r}: unknown security {a.security!r}", hint="use starttls, tls or none"
            )
        if a.security == "tls":
            stage[0] = "TLS handshake"
            smtp = smtplib.SMTP_SSL(
                a.host, a.port, local_hostname=EHLO_NAME, timeout=self.timeout, context=self._context()
            )
            note(f"connected to {self.where} with TLS")
        else:
            smtp = smtplib.SMTP(a.host, a.port, local_hostname=EHLO_NAME, timeout=self.timeout)
            note(f"connected to {self.where}")
        stage[0] = "EHLO"
        code, _msg = smtp.ehlo()
        if code != 250:
            smtp.helo()
        return smtp

    def _secure(self, smtp: smtplib.SMTP, stage: list[str], note: Callable[[str], object]) -> None:
        """STARTTLS when the account asks for it (required, verified); note the TLS version."""
        a = self.account
        if a.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise TransportError(
                    f"{self.where}: the server does not offer STARTTLS",
                    hint="use --security tls (usually port 465), or check host and port",
                )
            stage[0] = "STARTTLS"
            code, msg = smtp.starttls(context=self._context())
            if code != 220:
                raise TransportError(f"{self.where}: STARTTLS refused ({reply_text(code, msg)})")
            stage[0] = "EHLO after STARTTLS"
            smtp.ehlo()
        sock = smtp.sock
        self.tls_version = sock.version() if hasattr(sock, "version") and sock is not None else ""
        if self.tls_version:
            note(f"TLS {self.tls_version}, certificate verified for {a.host}")
        elif a.security == "none":
            note("no encryption (security = none)")

    def _authenticate(self, smtp: smtplib.SMTP, stage: list[str], note: Callable[[str], object]) -> None:
        a = self.account
        self.authenticated = False
        if not a.username:
            return
        if not self.tls_version and not is_loopback(a.host):
            raise TransportError(
                f"{self.where}: refusing to send your password over an unencrypted connection",
                hint="use --security starttls or tls; only a loopback host may go without",
            )
        stage[0] = "AUTH"
        if not smtp.has_extn("auth"):
            raise TransportError(
                f"{self.where}: the server does not offer AUTH",
                hint="check host and port (submission is usually 587 or 465), "
                "or remove --username if the server needs no login",
            )
        from . import smtp_login

        if a.auth == "oauth2":
            self._tokens = self._tokens or smtp_login.token_source(a)
            how = smtp_login.oauth_login(smtp, a, self.where, self._tokens)
        else:
            how = smtp_login.password_login(smtp, a, self.where, self._password_provider)
        self.authenticated = True
        note(f"authenticated as {a.username}{how}")

    def _connect_error(self, exc: BaseException, step: str) -> TransportError:
        """The error for a failed connection: busy or temporary (4xx) is unreachable."""
        import smtplib

        if isinstance(exc, smtplib.SMTPResponseException):
            reply = reply_text(exc.smtp_code, exc.smtp_error)
            temporary = 400 <= exc.smtp_code < 500
            if isinstance(exc, smtplib.SMTPConnectError):
                if temporary:
                    return ServerUnreachable(f"{self.where}: the server is busy ({reply})")
                return TransportError(f"{self.where}: the server refused the connection ({reply})")
            if temporary:
                return ServerUnreachable(f"{self.where}: temporary failure during {step} ({reply})")
            return TransportError(f"{self.where}: {step} refused ({reply})")
        if isinstance(exc, OSError | smtplib.SMTPServerDisconnected):
            return self._map_os_error(exc, step)
        return TransportError(f"{self.where}: {step} failed ({exc})")

    @staticmethod
    def _discard(smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        with suppress(OSError):
            smtp.close()

    def _pause(self, attempt: int) -> None:
        """Exponential back-off before retry number ``attempt`` (1, 2, ...)."""
        delay = self.backoff * (2 ** (attempt - 1))
        if delay > 0:
            self._sleep(delay)

    def open(self) -> None:
        """Connect (retrying temporary failures) unless already connected.

        Raises :class:`ServerUnreachable` after the retries (at once when the
        connection is refused or the host unknown), or :class:`TransportError`
        for TLS, certificate and AUTH problems.
        """
        if self._smtp is not None:
            return
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)
            try:
                self._smtp = self._connect()
                return
            except ServerUnreachable as exc:
                if attempt == self.retries or not exc.transient:
                    raise

    def close(self) -> None:
        """Say QUIT (politely, ignoring a dead connection) and forget the connection."""
        import smtplib

        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._discard(smtp)

    def __enter__(self) -> SmtpTransport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, steps: list[str] | None = None) -> list[str]:
        """Connect, secure, authenticate and QUIT without sending (``letterkit account test``).

        Returns the steps that succeeded (also appended to ``steps`` as they
        happen); raises a :class:`TransportError` naming the one that failed.
        No retries: the user wants to know now.
        """
        import smtplib

        steps = [] if steps is None else steps
        smtp = self._connect(steps)
        try:
            smtp.quit()
            steps.append("QUIT: nothing was sent")
        except (smtplib.SMTPException, OSError):
            self._discard(smtp)
        return steps

    # --- sending ------------------------------------------------------------------------

    def send(
        self, message: bytes, mail_from: str, rcpt_to: Sequence[str], *, while_waiting: Waiting = None
    ) -> DeliveryResult:
        """Deliver one message (line endings become CRLF, then dot-stuffed): one attempt.

        ``while_waiting`` is called once the whole message is written and before its
        reply is read: work the caller does while the server takes the message (it may
        be called again if the letter is tried again on a new connection).

        A temporary failure is returned at once as ``deferred`` with the server's
        code (the delivery loop decides when to try again, and the batch goes on);
        only a connection dropped under the letter is reopened at once, and the
        letter tried once more on the new one.  Raises :class:`ServerUnreachable`
        when no connection can be made, :class:`TransportError` when the account
        itself is refused (TLS, certificate, AUTH).
        """
        mail_from = check_address(mail_from, "envelope sender (MAIL FROM)")  # the account's: stops all
        try:  # a recipient's: fails this letter only, never the batch
            rcpt = [check_address(r, "envelope recipient (RCPT TO)") for r in rcpt_to]
        except LetterkitError as exc:
            return DeliveryResult("failed", str(exc), {}, 0)
        if not rcpt:
            return DeliveryResult("failed", "no recipients")
        data = to_crlf(message)
        if data.startswith(b".") or b"\n." in data:
            data = _LEADING_DOT.sub(b"..", data)
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                result = self._transaction(self._smtp, data, mail_from, rcpt, while_waiting)
            except _Temporary as temp:
                if temp.reconnect:
                    self._discard(self._smtp)
                    self._smtp = None
                if temp.dropped and attempt == 1:  # the connection went: a new one, at once
                    continue
                return DeliveryResult("deferred", temp.reason, {}, attempt, code=temp.code)
            return replace(result, attempts=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def pipelining(self) -> bool:
        """Whether the open connection's server offers PIPELINING (RFC 2920)."""
        return self._smtp is not None and self._smtp.has_extn("pipelining")

    def _transaction(
        self, smtp: smtplib.SMTP, data: bytes, mail_from: str, rcpt: list[str], while_waiting: Waiting
    ) -> DeliveryResult:
        """One MAIL/RCPT/DATA exchange (``data`` CRLF and dot-stuffed); raises _Temporary
        for a temporary failure."""
        import smtplib

        try:
            options = ["BODY=8BITMIME"] if not data.isascii() and smtp.has_extn("8bitmime") else []
            (code, msg), answers, data_reply = self._envelope(smtp, mail_from, options, rcpt)
            if code != 250:
                self._abort(smtp, data_reply)
                return self._refusal(code, msg, "sender refused")
            pairs = zip(rcpt, answers, strict=True)
            refused = {r: (c, reply_text(c, m)) for r, (c, m) in pairs if c not in (250, 251)}
            if len(refused) == len(rcpt):
                self._abort(smtp, data_reply)
                return self._all_refused(refused)
            code, msg = data_reply or (0, b"")
            if code != 354:
                self._rset(smtp)
                return self._refusal(code, msg, "DATA refused")
            smtp.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
            if while_waiting is not None:
                while_waiting()
            code, msg = smtp.getreply()
            if code != 250:
                self._rset(smtp)
                return self._refusal(code, msg, "message refused")
            reply = reply_text(code, msg)
            return DeliveryResult("partial", reply, refused) if refused else DeliveryResult("sent", reply)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            reason = str(self._map_os_error(exc, "sending"))
            raise _Temporary(reason, reconnect=True, dropped=True) from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                reply = reply_text(exc.smtp_code, exc.smtp_error)
                raise _Temporary(reply, reconnect=True, code=exc.smtp_code) from None
            return DeliveryResult("failed", reply_text(exc.smtp_code, exc.smtp_error), code=exc.smtp_code)

    @staticmethod
    def _envelope(
        smtp: smtplib.SMTP, mail_from: str, options: list[str], rcpt: list[str]
    ) -> tuple[tuple[int, bytes], list[tuple[int, bytes]], tuple[int, bytes] | None]:
        """Send MAIL, RCPT and DATA; return their replies (DATA's: None if it was not sent).

        With PIPELINING (RFC 2920) the three go in one write and the replies are read
        after it: one round trip instead of two plus one per recipient.  Without it,
        each command waits for its reply, and nothing more is sent after a refusal.
        """
        import smtplib

        envelope = [mail_from, *rcpt]
        if smtp.has_extn("pipelining") and all(a.isascii() for a in envelope):
            lines = [f"MAIL FROM:{smtplib.quoteaddr(mail_from)}{''.join(' ' + o for o in options)}"]
            lines += [f"RCPT TO:{smtplib.quoteaddr(r)}" for r in rcpt]
            smtp.send("".join(f"{line}\r\n" for line in [*lines, "DATA"]).encode("ascii"))
            mail = smtp.getreply()
            return mail, [smtp.getreply() for _ in rcpt], smtp.getreply()
        mail = smtp.mail(mail_from, options)
        if mail[0] != 250:
            return mail, [], None
        answers = [smtp.rcpt(r) for r in rcpt]
        if all(c not in (250, 251) for c, _m in answers):
            return mail, answers, None
        return mail, answers, smtp.docmd("DATA")

    def _abort(self, smtp: smtplib.SMTP, data_reply: tuple[int, bytes] | None) -> None:
        """End a transaction that will not be sent: an accepted DATA (a pipelined one, by a
        server that took it without a recipient) gets an empty message, then RSET."""
        if data_reply is not None and data_reply[0] == 354:
            smtp.send(b".\r\n")
            smtp.getreply()
        self._rset(smtp)

    @staticmethod
    def _all_refused(refused: dict[str, tuple[int, str]]) -> DeliveryResult:
        reasons = "; ".join(f"{a}: {m}" for a, (_c, m) in refused.items())
        temporary = [c for c, _m in refused.values() if 400 <= c < 500]
        if temporary:
            raise _Temporary(f"recipients refused ({reasons})", reconnect=421 in temporary, code=temporary[0])
        return DeliveryResult(
            "failed", f"recipients refused ({reasons})", refused, code=next(iter(refused.values()))[0]
        )

    def _refusal(self, code: int, msg: bytes | str, what: str) -> DeliveryResult:
        reply = reply_text(code, msg)
        if code == 421 or code <= 0:
            raise _Temporary(f"{what}: {reply}", reconnect=True, dropped=code <= 0, code=max(code, 0))
        if 400 <= code < 500:
            raise _Temporary(f"{what}: {reply}", code=code)
        return DeliveryResult("failed", f"{what}: {reply}", code=code)

    def _rset(self, smtp: smtplib.SMTP) -> None:
        import smtplib

        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            raise _Temporary("the server dropped the connection", reconnect=True) from None
