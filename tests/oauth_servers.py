"""Real OAuth2 counterparts on 127.0.0.1 for tests/test_oauth.py.

* :func:`start_oauth_smtp` — aiosmtpd with SASL XOAUTH2 and OAUTHBEARER (``auth_MECHANISM``
  methods of the handler) that accepts only the tokens ``accept(token)`` allows, and
  answers a refused token the way the providers do: ``style="google"`` (both mechanisms;
  a base64 JSON error challenge, then ``535 5.7.8``) or ``style="microsoft"`` (XOAUTH2
  only; ``535 5.7.3 Authentication unsuccessful``).
* :class:`TokenEndpoint` — an HTTPS server (test CA) playing Microsoft's authority (OpenID
  configuration, device code, token) and Google's token endpoint (authorization code with
  PKCE, refresh).  msal and google-auth-oauthlib reach it through configuration alone: the
  account's ``oauth_authority`` / ``oauth_token_uri``, and ``REQUESTS_CA_BUNDLE`` for the CA.

Tokens are random and long, so a test can grep every file for them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from smtp_server import USERNAME, RecordingHandler, SmtpServer, _server_context, free_port

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "GOCSPX-test-client-secret"
DEVICE_MESSAGE = "To sign in, open https://microsoft.example/devicelogin and enter the code ABCD-EFGH."


class OAuthHandler(RecordingHandler):
    """Records messages like RecordingHandler; signs in with OAuth2 tokens only."""

    def __init__(self, style: str, accept: Callable[[str], bool], **faults: Any) -> None:
        super().__init__(**faults)
        self.style = style
        self.accept = accept
        self.attempts: list[tuple[str, str, bool]] = []  # (mechanism, user, accepted)

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        return await self._sign_in(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: Any, args: list[str]) -> Any:
        return await self._sign_in(server, args, "OAUTHBEARER")

    async def _sign_in(self, server: Any, args: list[str], mechanism: str) -> Any:
        from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

        blob = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        if blob is MISSING:
            return AuthResult(success=False, handled=False)
        user, token = parse_initial_response(mechanism, blob.decode())
        ok = user == USERNAME and self.accept(token)
        with self.lock:
            self.attempts.append((mechanism, user, ok))
        if ok:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        if self.style == "microsoft":
            return AuthResult(
                success=False, handled=False, message="535 5.7.3 Authentication unsuccessful [TEST.PROD]"
            )
        status = "invalid_token" if mechanism == "OAUTHBEARER" else "401"
        error = {"status": status, "schemes": "bearer", "scope": "https://mail.google.com/"}
        await server.challenge_auth(json.dumps(error))  # the client answers: empty line, or ^A
        return AuthResult(
            success=False,
            handled=False,
            message="535 5.7.8 Username and Password not accepted. Learn more at TEST",
        )


def parse_initial_response(mechanism: str, text: str) -> tuple[str, str]:
    """(user, token) from an XOAUTH2 or OAUTHBEARER initial response."""
    fields = text.split("\x01")
    token = next(f.removeprefix("auth=Bearer ") for f in fields if f.startswith("auth=Bearer "))
    if mechanism == "OAUTHBEARER":
        gs2 = fields[0].split(",")
        assert gs2[0] == "n" and gs2[1].startswith("a="), fields[0]
        user = gs2[1][2:].replace("=2C", ",").replace("=3D", "=")
    else:
        user = fields[0].removeprefix("user=")
    return user, token


def start_oauth_smtp(
    test_ca: Any, *, style: str, accept: Callable[[str], bool], security: str = "starttls"
) -> SmtpServer:
    from aiosmtpd.controller import Controller

    _ca, ca_path, cert = test_ca
    handler = OAuthHandler(style, accept)
    exclude = ["PLAIN", "LOGIN", "failures", *(["OAUTHBEARER"] if style == "microsoft" else [])]
    kwargs: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": free_port(),
        "ready_timeout": 5.0,
        "server_hostname": "localhost",
        "auth_exclude_mechanism": exclude,
        "auth_required": security == "starttls",
        "auth_require_tls": security == "starttls",
    }
    if security == "starttls":
        kwargs["tls_context"] = _server_context(cert)
        kwargs["require_starttls"] = True
    controller = Controller(handler, **kwargs)
    controller.start()
    return SmtpServer(
        host="127.0.0.1",
        port=controller.port,
        security=security,
        handler=handler,
        controller=controller,
        ca_file=ca_path if security != "none" else None,
    )


# --- the token endpoint ------------------------------------------------------------------------


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class TokenEndpoint:
    """The provider's side of the sign-in; ``live`` holds the access tokens still valid."""

    url: str = ""
    live: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    refresh_tokens: set[str] = field(default_factory=set)
    stale_next: int = 0  # so many of the next access tokens are issued already expired
    requests: list[dict[str, str]] = field(default_factory=list)
    challenges: list[str] = field(default_factory=list)  # PKCE code challenges seen by the "browser"
    rotate: bool = True  # Microsoft gives a new refresh token with each refresh
    server: Any = None

    @property
    def authority(self) -> str:
        return f"{self.url}/tenant"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/tenant/oauth2/v2.0/token"

    def revoke(self) -> None:
        self.refresh_tokens.clear()

    def grants(self, kind: str) -> int:
        return sum(1 for r in self.requests if r.get("grant_type") == kind)

    def _new_tokens(self) -> dict[str, Any]:
        access = "AT" + secrets.token_hex(24)
        self.issued.append(access)
        if self.stale_next > 0:
            self.stale_next -= 1
        else:
            self.live.add(access)
        refresh = "RT" + secrets.token_hex(24)
        self.refresh_tokens.add(refresh)
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh, "expires_in": 3600}

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON) for one request."""
        self.requests.append(form)
        if path.endswith("/.well-known/openid-configuration"):
            base = self.authority
            return 200, {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": self.token_uri,
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            }
        if path.endswith("/devicecode"):
            return 200, {
                "device_code": "DEVICE-CODE", "user_code": "ABCD-EFGH", "expires_in": 900, "interval": 1,
                "verification_uri": "https://microsoft.example/devicelogin", "message": DEVICE_MESSAGE,
            }  # fmt: skip
        grant = form.get("grant_type", "")
        if grant.endswith("device_code") and form.get("device_code") == "DEVICE-CODE":
            claims = {"iss": f"{self.authority}/v2.0", "aud": CLIENT_ID, "exp": 4102444800,
                      "preferred_username": USERNAME, "sub": "x", "iat": 1}  # fmt: skip
            return 200, {**self._new_tokens(), "id_token": _jwt(claims), "scope": form.get("scope", "")}
        if grant == "authorization_code":
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode().rstrip("=")
            if form.get("code") != "AUTH-CODE" or digest not in self.challenges:
                return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
            return 200, {**self._new_tokens(), "scope": "https://mail.google.com/"}
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            tokens = self._new_tokens()
            if not self.rotate:
                self.refresh_tokens.discard(tokens.pop("refresh_token"))
            return 200, tokens
        return 400, {"error": "unsupported_grant_type"}


def start_token_endpoint(test_ca: Any) -> TokenEndpoint:
    _ca, _ca_path, cert = test_ca
    endpoint = TokenEndpoint()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, form: dict[str, str]) -> None:
            status, data = endpoint.answer(urllib.parse.urlsplit(self.path).path, form)
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path.endswith("/auth"):  # Google's consent page, consenting at once
                query = dict(urllib.parse.parse_qsl(parts.query))
                endpoint.challenges.append(query["code_challenge"])
                answer = {"state": query["state"], "code": "AUTH-CODE", "scope": query["scope"]}
                self.send_response(302)
                self.send_header("Location", query["redirect_uri"] + "?" + urllib.parse.urlencode(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._reply({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            self._reply(form)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    endpoint.url = f"https://127.0.0.1:{server.server_address[1]}"
    endpoint.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return endpoint


def browser_for(endpoint: TokenEndpoint, *, deny: bool = False) -> Callable[[str], None]:
    """A stand-in for the person at the browser: reads the sign-in address letterkit opens,
    notes its PKCE challenge, and sends the browser back to letterkit's loopback redirect."""
    import http.client

    def follow(redirect: str) -> None:  # plain http.client: no proxy setting can intervene
        parts = urllib.parse.urlsplit(redirect)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        conn.request("GET", f"{parts.path}?{parts.query}")
        conn.getresponse().read()
        conn.close()

    def open_url(url: str) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert query["code_challenge_method"] == "S256" and query["redirect_uri"].startswith(
            "http://127.0.0.1:"
        )
        endpoint.challenges.append(query["code_challenge"])
        answer = {"error": "access_denied"} if deny else {"code": "AUTH-CODE", "scope": query["scope"]}
        back = query["redirect_uri"] + "?" + urllib.parse.urlencode({"state": query["state"], **answer})
        threading.Thread(target=follow, args=(back,), daemon=True).start()

    return open_url


BROWSER_SCRIPT = """\
import os, ssl, subprocess, sys, urllib.request
if len(sys.argv) == 2:  # like a real browser: return at once, go on in the background
    subprocess.Popen([sys.executable, __file__, sys.argv[1], "go"], start_new_session=True)
    sys.exit(0)
context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
urllib.request.urlopen(sys.argv[1], context=context, timeout=10).read()  # follows the redirect home
"""


def start_oauth_imap(accept: Callable[[str], bool]) -> tuple[Any, list[tuple[str, bool]]]:
    """A small IMAP server on 127.0.0.1 (no TLS: loopback) that knows just enough for a login:
    CAPABILITY, AUTHENTICATE OAUTHBEARER/XOAUTH2 with Google's error challenge, LOGOUT."""
    import socketserver

    attempts: list[tuple[str, bool]] = []
    caps = b"IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER"

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"* OK [CAPABILITY " + caps + b"] test server ready\r\n")
            for line in self.rfile:
                tag, _, rest = line.decode().strip().partition(" ")
                command = rest.split()
                if command[0].upper() == "CAPABILITY":
                    self.wfile.write(b"* CAPABILITY " + caps + b"\r\n" + f"{tag} OK done\r\n".encode())
                elif command[0].upper() == "AUTHENTICATE":
                    self.wfile.write(b"+ \r\n")
                    text = base64.b64decode(self.rfile.readline().strip()).decode()
                    user, token = parse_initial_response(command[1].upper(), text)
                    ok = user == USERNAME and accept(token)
                    attempts.append((command[1].upper(), ok))
                    if not ok:
                        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "x"}).encode()
                        self.wfile.write(b"+ " + base64.b64encode(error) + b"\r\n")
                        self.rfile.readline()  # the client's abort
                    word = "OK authenticated" if ok else "NO [AUTHENTICATIONFAILED] Invalid credentials"
                    self.wfile.write(f"{tag} {word}\r\n".encode())
                elif command[0].upper() == "LOGOUT":
                    self.wfile.write(f"* BYE\r\n{tag} OK bye\r\n".encode())
                    return
                else:
                    self.wfile.write(f"{tag} BAD unknown\r\n".encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, attempts
