"""OAuth2 sign-in for mail accounts whose providers take no passwords (Outlook.com, Microsoft 365,
Gmail): the SASL messages, where access tokens come from, and ``letterkit account login``.

An account with ``auth = "oauth2"`` gets its access tokens from one of two places:

* ``token_command``: any program that prints an access token (oama, mutt_oauth2.py, an
  organisation's own tool), run without a shell just before AUTH;
* the built-in sign-in with the user's own registered app (``oauth_client_id``):
  Microsoft's device-code flow (msal) or Google's installed-app flow with a loopback
  redirect on 127.0.0.1 and PKCE (google-auth-oauthlib).  The sign-in leaves a **refresh
  token** in the OS keyring (never a file); each run turns it into an access token that
  lives in memory only, and renews it when it expires or when the server says it has.

The SASL initial responses (XOAUTH2, and OAUTHBEARER from RFC 7628) are built here for
SMTP and IMAP alike; the exchange itself is :mod:`letterkit.transport`'s (smtplib stays
there).  msal and google-auth-oauthlib are imported only by the functions that use them.
No token is ever put in an exception, a log line, a repr or a file of ours.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, CredentialError, TransportError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Account

AUTH_METHODS = ("password", "oauth2")
PROVIDERS = ("microsoft", "google")
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/common"
MICROSOFT_SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
MICROSOFT_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPE = "https://mail.google.com/"
COMMAND_TIMEOUT = 60.0  # seconds a token_command may take (it may open a browser itself)
LOGIN_TIMEOUT = 300  # seconds the browser sign-in may take
RENEW_MARGIN = dt.timedelta(seconds=60)  # a token this close to its expiry counts as expired
REFRESH_KEY = "{}/oauth2-refresh-token"  # keyring user names ("/" is never in an account name)
SECRET_KEY = "{}/oauth2-client-secret"
_NAMES = {"microsoft": "Microsoft", "google": "Google"}


class SignInUnavailable(CredentialError):
    """The provider's sign-in service cannot be reached now: try again later (letters wait)."""

    exit_code = 1


# --- the account's settings ---------------------------------------------------------------------


def provider_of(account: Account) -> str:
    """``microsoft`` or ``google``: the account's ``oauth_provider``, else guessed from its host."""
    if account.oauth_provider:
        return account.oauth_provider
    labels = account.host.lower().rstrip(".").split(".")
    domain = ".".join(labels[-2:])  # smtp.gmail.com -> gmail.com
    if domain in ("gmail.com", "googlemail.com", "google.com"):
        return "google"
    return "microsoft" if domain in ("outlook.com", "office365.com", "hotmail.com", "live.com") else ""


def check_account(account: Account) -> Account:
    """The sign-in settings of ``account`` make sense (called by ``Account.validated``)."""
    from .validation import is_loopback

    where = f"account {account.name!r}"
    if account.auth not in AUTH_METHODS:
        raise ConfigError(f"{where}: unknown auth {account.auth!r}", hint="use password or oauth2")
    if account.auth == "password":
        if account.token_command:
            raise ConfigError(f"{where}: --token-command needs --auth oauth2")
        return account
    if not account.username:
        raise ConfigError(f"{where}: OAuth2 needs the login address", hint="pass --username you@example.org")
    if account.security == "none" and not is_loopback(account.host):
        raise ConfigError(
            f"{where}: OAuth2 tokens are never sent over a connection without TLS",
            hint="use --security starttls or tls",
        )
    if account.oauth_provider and account.oauth_provider not in PROVIDERS:
        raise ConfigError(
            f"{where}: unknown OAuth2 provider {account.oauth_provider!r}", hint="use microsoft or google"
        )
    for key in ("oauth_authority", "oauth_auth_uri", "oauth_token_uri"):
        if getattr(account, key) and not getattr(account, key).startswith("https://"):
            raise ConfigError(f"{where}: {key} must be an https:// address")
    return account


def auth_fields(preset: dict[str, Any], **given: str | None) -> dict[str, Any]:
    """The sign-in fields of a new account: what was given, else the preset's (``account add``).

    ``given``: auth, token_command, oauth_provider, oauth_client_id, oauth_authority,
    oauth_auth_uri, oauth_token_uri (None: not given).  A token command means OAuth2.
    """
    values = {key: value or preset.get(key) or "" for key, value in given.items() if key != "auth"}
    auth = given.get("auth") or ("oauth2" if values.get("token_command") else preset.get("auth", "password"))
    if auth == "password":  # the preset's provider only matters for OAuth2
        values["oauth_provider"] = given.get("oauth_provider") or ""
    return {"auth": str(auth), **values}


# --- SASL (RFC 7628 and Google's XOAUTH2) -----------------------------------------------------------


def xoauth2_response(user: str, token: str) -> str:
    """The XOAUTH2 initial client response, before base64: ``user=U^Aauth=Bearer T^A^A``."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer_response(user: str, token: str, host: str = "", port: int = 0) -> str:
    """The OAUTHBEARER initial client response (RFC 7628 3.1), before base64."""
    authzid = user.replace("=", "=3D").replace(",", "=2C")  # RFC 5801 saslname
    where = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
    return f"n,a={authzid},\x01{where}auth=Bearer {token}\x01\x01"


def sasl_text(mechanism: str, user: str, token: str, host: str = "", port: int = 0) -> str:
    """The initial response of ``mechanism`` (OAUTHBEARER or XOAUTH2), before base64: what
    smtplib's ``SMTP.auth`` and imaplib's ``IMAP4.authenticate`` objects return."""
    if mechanism.upper() == "OAUTHBEARER":
        return oauthbearer_response(user, token, host, port)
    return xoauth2_response(user, token)


def sasl_response(mechanism: str, user: str, token: str, host: str = "", port: int = 0) -> bytes:
    """The initial response of ``mechanism`` in base64, as it goes on the wire."""
    return base64.b64encode(sasl_text(mechanism, user, token, host, port).encode("utf-8"))


def choose_mechanism(offered: str) -> str:
    """OAUTHBEARER when the server offers it (the standard), else XOAUTH2, else ""."""
    names = offered.upper().split()
    return next((m for m in ("OAUTHBEARER", "XOAUTH2") if m in names), "")


def error_challenge(challenge: bytes) -> dict[str, Any]:
    """The JSON error a server sends as a challenge after a refused token ({} if none)."""
    try:
        data = json.loads(challenge.decode("utf-8", errors="replace") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class SaslClient:
    """The ``authobject`` for smtplib's ``SMTP.auth``: the initial response, then, if the
    server answers with an error challenge, the abort it expects (it remembers the error)."""

    def __init__(self, mechanism: str, user: str, token: str, host: str = "", port: int = 0) -> None:
        self.mechanism = mechanism
        self._initial = sasl_text(mechanism, user, token, host, port)
        self.error: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<SaslClient {self.mechanism}>"

    def __call__(self, challenge: bytes | None = None) -> str:
        if challenge is None:  # smtplib base64-encodes what we return
            return self._initial
        self.error = error_challenge(challenge)
        return "\x01" if self.mechanism == "OAUTHBEARER" else ""  # RFC 7628 3.2.3; Google: empty


def token_rejected(reply: str, error: dict[str, Any]) -> bool:
    """True when a refused AUTH says the token is expired or invalid (worth one renewal):
    Google's and RFC 7628's error challenge (status 401 / invalid_token), or Microsoft's
    ``535 5.7.3 Authentication unsuccessful``."""
    status = str(error.get("status", "")).lower()
    return status in ("401", "invalid_token") or " 5.7.3 " in f" {reply} "


def refused(account: Account, where: str, reply: str, mechanism: str) -> TransportError:
    """The error for a token the server still refuses after a fresh one."""
    if "5.7.139" in reply or "5.7.30" in reply:
        hint = (
            "SMTP sign-in is switched off for this mailbox: its administrator must allow Authenticated SMTP"
        )
    elif account.token_command:
        hint = f"check that token_command {account.token_command!r} prints a token for {account.username}"
    else:
        hint = (
            f"check the app may send mail (scope {scopes(account)[0]}), then run "
            f"`letterkit account login {account.name}` again; letters stay queued"
        )
    return TransportError(f"{where}: {mechanism} sign-in refused for {account.username} ({reply})", hint=hint)


# --- access tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    """An access token (never shown) and what may be shown of it."""

    value: str = field(repr=False)
    source: str  # "token_command", "Microsoft sign-in", "Google sign-in"
    account: str = ""
    expires: dt.datetime | None = None

    def expired(self) -> bool:
        from .clock import now

        return self.expires is not None and now() >= self.expires - RENEW_MARGIN

    def describe(self) -> str:
        """E.g. ``token from Microsoft sign-in for me@outlook.com, valid until 2026-11-26 11:00 UTC``."""
        text = f"token from {self.source}" + (f" for {self.account}" if self.account else "")
        if self.expires is not None:
            text += f", valid until {self.expires.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        return text


def token_from_command(command: str, account_name: str = "") -> str:
    """Run ``command`` (see :func:`letterkit.credentials.secret_command_output`) and return
    what it printed, less one trailing newline: one access token."""
    from .credentials import secret_command_output

    where = f"account {account_name!r}: token_command {command!r}"
    output = secret_command_output(command, "token_command", account_name, timeout=COMMAND_TIMEOUT)
    token = output.decode("ascii", errors="replace").removesuffix("\n").removesuffix("\r")
    if not token:
        raise CredentialError(f"{where}: printed nothing")
    if not token.isascii() or not token.isprintable() or " " in token or "\ufffd" in token:
        raise CredentialError(f"{where}: printed something that is not one access token (one line)")
    return token


# --- the keyring (through letterkit.credentials, the one module that imports keyring) -----------------


def _keyring_hint(name: str) -> str:
    return (
        f"letterkit needs the OS keyring to keep the sign-in; without one, set token_command "
        f"(letterkit account add {name} ... --token-command 'oama access you@example.org' --replace)"
    )


def _store(key: str, account_name: str, value: str) -> None:
    from .credentials import store_password

    try:
        store_password(key, value)
    except CredentialError as exc:
        raise CredentialError(exc.message, hint=_keyring_hint(account_name)) from None


def _stored(key: str, account_name: str) -> str:
    from .credentials import password_from_keyring

    try:
        return password_from_keyring(key) or ""
    except CredentialError as exc:
        raise CredentialError(exc.message, hint=_keyring_hint(account_name)) from None


def store_client_secret(account_name: str, secret: str) -> None:
    """Keep the app's client secret (Google gives one to installed apps) in the keyring."""
    _store(SECRET_KEY.format(account_name), account_name, secret)


def signed_in(account: Account) -> bool:
    """True when a refresh token for the account is in the keyring (False without a keyring)."""
    try:
        return bool(_stored(REFRESH_KEY.format(account.name), account.name))
    except CredentialError:
        return False


def forget(account_name: str) -> bool:
    """Take the account's refresh token and client secret out of the keyring; False if none."""
    from .credentials import delete_password

    had = [delete_password(key.format(account_name)) for key in (REFRESH_KEY, SECRET_KEY)]
    return had[0]


def token_status(account: Account) -> str:
    """Where the account's tokens come from, for ``account list`` (never runs anything)."""
    if account.token_command:
        return "token command"
    if signed_in(account):
        return "signed in (refresh token in the keyring)"
    return f"not signed in: letterkit account login {account.name}"


# --- token sources -------------------------------------------------------------------------------


def scopes(account: Account, *, imap: bool | None = None) -> list[str]:
    """The scopes the sign-in asks for: sending mail, and reading it when the account has IMAP."""
    if provider_of(account) == "google":
        return [GOOGLE_SCOPE]
    with_imap = bool(getattr(account, "imap_host", "")) if imap is None else imap
    return [MICROSOFT_SMTP_SCOPE, *([MICROSOFT_IMAP_SCOPE] if with_imap else [])]


class TokenSource:
    """An account's access tokens: from its token_command (run each time one is needed) or
    renewed from the refresh token in the keyring (kept in memory until it expires).

    ``imap=True``: tokens that may also read mail (Microsoft's IMAP scope).
    """

    def __init__(self, account: Account, *, imap: bool = False) -> None:
        self.account = account
        self.imap = imap
        self._token: AccessToken | None = None

    def __repr__(self) -> str:
        return f"<TokenSource {self.account.name}>"

    def get(self, *, renew: bool = False) -> AccessToken:
        """A usable access token; ``renew``: not the one in memory (the server refused it)."""
        a = self.account
        if a.token_command:
            return AccessToken(token_from_command(a.token_command, a.name), "token_command", a.username)
        if renew or self._token is None or self._token.expired():
            self._token = refresh(a, scopes(a, imap=self.imap))
        return self._token


def _relogin(account: Account, detail: str) -> CredentialError:
    name = _NAMES.get(provider_of(account), "the provider")
    return CredentialError(
        f"account {account.name!r}: the sign-in with {name} has expired or was revoked ({detail})",
        hint=f"run `letterkit account login {account.name}` again; your letters stay queued",
    )


def _need_provider(account: Account) -> str:
    provider = provider_of(account)
    if not provider:
        raise ConfigError(
            f"account {account.name!r}: letterkit cannot tell whose sign-in {account.host} uses",
            hint=f"letterkit account add {account.name} ... --oauth-provider microsoft|google --replace, "
            "or --token-command CMD",
        )
    if not account.oauth_client_id:
        raise ConfigError(
            f"account {account.name!r} has no OAuth2 client id (your registered app)",
            hint=f"letterkit account login {account.name} --client-id ID (the README says how to get one)",
        )
    return provider


def refresh(account: Account, wanted: list[str]) -> AccessToken:
    """A fresh access token from the refresh token in the keyring (stores a rotated one)."""
    provider = _need_provider(account)
    stored = _stored(REFRESH_KEY.format(account.name), account.name)
    if not stored:
        raise CredentialError(
            f"account {account.name!r} is not signed in",
            hint=f"run `letterkit account login {account.name}`; your letters stay queued",
        )
    if provider == "microsoft":
        result = _msal_result(account, lambda app: app.acquire_token_by_refresh_token(stored, wanted))
        token, new = _from_msal(account, result), result.get("refresh_token") or stored
    else:
        token, new = _google_refresh(account, stored, wanted)
    if new != stored:
        _store(REFRESH_KEY.format(account.name), account.name, new)
    return token


def _expires(seconds: Any) -> dt.datetime | None:
    from .clock import now

    try:
        return now() + dt.timedelta(seconds=float(seconds))
    except (TypeError, ValueError):
        return None


# --- Microsoft (msal) ----------------------------------------------------------------------------


def _msal_result(account: Account, call: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """``call(app)`` with the account's msal PublicClientApplication; errors mapped."""
    import msal

    authority = account.oauth_authority or MICROSOFT_AUTHORITY
    try:  # the authority is the user's choice: no instance discovery against Microsoft's list
        app = msal.PublicClientApplication(
            account.oauth_client_id, authority=authority, instance_discovery=False
        )
        result = call(app)
    except OSError as exc:  # requests' errors are OSErrors
        raise SignInUnavailable(
            f"account {account.name!r}: cannot reach {authority} ({type(exc).__name__})",
            hint="check your network; letters stay queued",
        ) from None
    except ValueError as exc:
        raise ConfigError(f"account {account.name!r}: sign-in authority {authority}: {exc}") from None
    if "error" in result and result.get("error") in ("temporarily_unavailable", "server_error"):
        raise SignInUnavailable(f"account {account.name!r}: Microsoft's sign-in is busy ({result['error']})")
    return result


def _first_line(result: dict[str, Any]) -> str:
    text = str(result.get("error_description") or "").strip().splitlines()
    return f"{result.get('error')}: {text[0]}" if text else str(result.get("error"))


def _from_msal(account: Account, result: dict[str, Any]) -> AccessToken:
    if "access_token" not in result:
        raise _relogin(account, _first_line(result))
    claims = result.get("id_token_claims") or {}
    who = str(claims.get("preferred_username") or claims.get("email") or account.username)
    return AccessToken(result["access_token"], "Microsoft sign-in", who, _expires(result.get("expires_in")))


def _microsoft_login(account: Account, show: Callable[[str], object]) -> tuple[AccessToken, str]:
    wanted = scopes(account)

    def device_flow(app: Any) -> dict[str, Any]:
        flow = app.initiate_device_flow(scopes=wanted)
        if "user_code" not in flow:
            raise CredentialError(f"account {account.name!r}: sign-in could not start ({_first_line(flow)})")
        show(str(flow.get("message") or f"Open {flow['verification_uri']} and enter {flow['user_code']}"))
        return dict(app.acquire_token_by_device_flow(flow))

    result = _msal_result(account, device_flow)
    if "access_token" not in result:
        raise CredentialError(f"account {account.name!r}: sign-in not completed ({_first_line(result)})")
    return _from_msal(account, result), str(result.get("refresh_token") or "")


# --- Google (google-auth-oauthlib) ----------------------------------------------------------------


def _google_config(account: Account) -> dict[str, Any]:
    secret = _stored(SECRET_KEY.format(account.name), account.name)
    if not secret:
        raise CredentialError(
            f"account {account.name!r}: no client secret for your Google app in the keyring",
            hint=f"letterkit account login {account.name} --client-secret-stdin (the README says where)",
        )
    return {
        "client_id": account.oauth_client_id,
        "client_secret": secret,
        "auth_uri": account.oauth_auth_uri or GOOGLE_AUTH_URI,
        "token_uri": account.oauth_token_uri or GOOGLE_TOKEN_URI,
        "redirect_uris": ["http://127.0.0.1"],
    }


def _google_token(account: Account, creds: Any) -> AccessToken:
    expires = None
    if creds.expiry is not None:  # google-auth's own (naive UTC) clock: keep only the time left
        left = creds.expiry - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        expires = _expires(left.total_seconds())
    return AccessToken(creds.token, "Google sign-in", account.username, expires)


def _google_refresh(account: Account, stored: str, wanted: list[str]) -> tuple[AccessToken, str]:
    from google.auth import exceptions
    from google.auth.transport.requests import Request
    from google.oauth2.credentials import Credentials

    config = _google_config(account)
    creds = Credentials(  # type: ignore[no-untyped-call]
        None,
        refresh_token=stored,
        token_uri=config["token_uri"],
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        scopes=wanted,
    )
    try:
        creds.refresh(Request())  # type: ignore[no-untyped-call]
    except exceptions.RefreshError as exc:
        raise _relogin(account, str(exc.args[0]).splitlines()[0] if exc.args else "refused") from None
    except exceptions.TransportError:
        raise SignInUnavailable(
            f"account {account.name!r}: cannot reach Google's sign-in at {config['token_uri']}",
            hint="check your network; letters stay queued",
        ) from None
    return _google_token(account, creds), str(creds.refresh_token or stored)


def _google_login(account: Account, open_url: Callable[[str], object]) -> tuple[AccessToken, str]:
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    class Flow(InstalledAppFlow):  # type: ignore[misc]
        """The installed-app flow, showing the sign-in address through ``open_url``."""

        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            open_url(url)
            return url, state

    where = f"account {account.name!r}"
    flow = Flow.from_client_config({"installed": _google_config(account)}, scopes=scopes(account))
    try:
        creds = flow.run_local_server(
            host="127.0.0.1",
            port=0,
            open_browser=False,  # open_url does it
            authorization_prompt_message=None,
            success_message="Signed in: you can close this window and go back to letterkit.",
            timeout_seconds=LOGIN_TIMEOUT,
            access_type="offline",  # a refresh token,
            prompt="consent",  # every time, even for an app signed in before
        )
    except WSGITimeoutError:
        raise CredentialError(
            f"{where}: no answer from the browser within {LOGIN_TIMEOUT // 60} minutes"
        ) from None
    except OAuth2Error as exc:
        raise CredentialError(
            f"{where}: Google refused the sign-in ({exc.error}: {exc.description})"
        ) from None
    except OSError as exc:  # requests' errors too
        raise SignInUnavailable(f"{where}: cannot reach Google's sign-in ({type(exc).__name__})") from None
    return _google_token(account, creds), str(creds.refresh_token or "")


# --- account login -----------------------------------------------------------------------------------


def login(
    account: Account,
    *,
    show: Callable[[str], object],
    open_url: Callable[[str], object] | None = None,
) -> AccessToken:
    """Sign in with the provider and keep the refresh token in the keyring.

    Microsoft: ``show`` gets the device-code message (a page to open, a code to type).
    Google: ``open_url`` gets the sign-in address (default: ``show`` it and open the
    system's browser); the answer comes back to a one-time server on 127.0.0.1.
    """
    if account.auth != "oauth2":
        raise ConfigError(
            f"account {account.name!r} signs in with a password",
            hint=f"letterkit account add {account.name} ... --auth oauth2 --replace",
        )
    if account.token_command:
        raise ConfigError(
            f"account {account.name!r} gets its tokens from token_command {account.token_command!r}",
            hint="nothing to sign in to: letterkit runs that command",
        )
    provider = _need_provider(account)
    if provider == "microsoft":
        token, refresh_token = _microsoft_login(account, show)
    else:
        token, refresh_token = _google_login(account, open_url or _browser(show))
    if not refresh_token:
        raise CredentialError(
            f"account {account.name!r}: the sign-in gave no refresh token; nothing was kept"
        )
    _store(REFRESH_KEY.format(account.name), account.name, refresh_token)
    return token


def _browser(show: Callable[[str], object]) -> Callable[[str], object]:
    def open_url(url: str) -> None:
        import webbrowser

        show(f"Sign in at: {url}")
        webbrowser.open(url)

    return open_url
