"""Signing in to the SMTP server: a password (AUTH PLAIN/LOGIN) or an OAuth2 token
(OAUTHBEARER, else XOAUTH2), for :class:`letterkit.transport.SmtpTransport`.

The secret is fetched just before AUTH, kept in a local variable and deleted after
it; no error message or log line ever quotes it (only the server's words).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TransportError
from .transport import ServerUnreachable, reply_text

if TYPE_CHECKING:
    import smtplib
    from collections.abc import Callable

    from .config import Account
    from .oauth import TokenSource


def _auth_plain_utf8(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN with a UTF-8 user name or password; raises SMTPAuthenticationError when
    refused (the reply never contains the secret: only the server's words)."""
    import base64
    import smtplib

    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError(
            "this server does not offer AUTH PLAIN, needed for a non-ASCII password"
        )
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    del token
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def password_login(
    smtp: smtplib.SMTP, a: Account, where: str, password_provider: Callable[[], str] | None
) -> str:
    """Log in with the account's password (UTF-8 AUTH PLAIN for a non-ASCII one, RFC 4616)."""
    import smtplib

    if password_provider is None:
        raise TransportError(
            f"account {a.name!r} needs a password but none was provided",
            hint="pass a password_provider to SmtpTransport",
        )
    password = password_provider()
    try:
        if (a.username + password).isascii():
            smtp.login(a.username, password)
        else:  # smtplib encodes AUTH as ASCII; SASL PLAIN is UTF-8 (RFC 4616)
            _auth_plain_utf8(smtp, a.username, password)
    except smtplib.SMTPAuthenticationError as exc:
        reply = reply_text(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            raise ServerUnreachable(
                f"{where}: temporary authentication failure for {a.username} ({reply})"
            ) from None
        from .credentials import wrong_password_hint

        raise TransportError(
            f"{where}: wrong username or password for {a.username} ({reply})", hint=wrong_password_hint(a)
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        detail = str(exc) if "PLAIN" in str(exc) else "the server offers no AUTH method letterkit knows"
        raise TransportError(f"{where}: {detail}") from None
    except smtplib.SMTPException as exc:
        raise TransportError(f"{where}: AUTH failed ({type(exc).__name__})") from None
    finally:
        del password
    return ""


def token_source(a: Account) -> TokenSource:
    from . import oauth

    return oauth.TokenSource(a)


def oauth_login(smtp: smtplib.SMTP, a: Account, where: str, tokens: TokenSource) -> str:
    """SASL OAUTHBEARER (else XOAUTH2) with a token from ``tokens``; a token the server
    calls expired or invalid is renewed once.  Returns how, for ``account test``."""
    import smtplib

    from . import oauth

    mechanism = oauth.choose_mechanism(smtp.esmtp_features.get("auth", ""))
    if not mechanism:
        raise TransportError(f"{where}: the server offers no OAuth2 sign-in (XOAUTH2, OAUTHBEARER)")
    if not a.username.isascii():
        raise TransportError(f"{where}: an OAuth2 login must be an ASCII address ({a.username!r})")
    for renewed in (False, True):
        token = tokens.get(renew=renewed)
        client = oauth.SaslClient(mechanism, a.username, token.value, a.host, a.port)
        try:
            smtp.auth(mechanism, client)
            return f" with {mechanism} ({token.describe()})"
        except smtplib.SMTPAuthenticationError as exc:
            reply = reply_text(exc.smtp_code, exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                raise ServerUnreachable(f"{where}: temporary authentication failure ({reply})") from None
            if renewed or not oauth.token_rejected(reply, client.error):
                raise oauth.refused(a, where, reply, mechanism) from None
    raise AssertionError("unreachable: the second attempt returns or raises")
