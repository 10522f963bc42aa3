"""A real SMTP server in the test process (aiosmtpd on 127.0.0.1), with TLS, AUTH and faults.

Import the fixtures into a test module::

    from smtp_server import make_smtp_server, smtp_server  # noqa: F401

``smtp_server`` is STARTTLS (a certificate for localhost/127.0.0.1 issued by a
test CA made with trustme; its PEM is ``server.ca_file``) plus AUTH for
``server.username``/``server.password``.  ``make_smtp_server(...)`` builds
others: ``security="tls"`` (implicit TLS, like port 465) or ``"none"``,
``auth=False``, and faults: ``tempfail_data=N`` (451 for the first N DATA
commands), ``reject_rcpt={"addr"}`` (550 for those RCPT TO),
``reject_data={"addr"}`` (554 after DATA for messages to them), ``drop_after=M``
(after M accepted messages, close the connection at the next DATA without
answering), ``delay=seconds`` (slow every DATA), ``maildir=path`` (also store
each message in a real Maildir, as a mail program would read it).

Injectable replies (tests/test_pacing.py): ``data_reply=f`` is called at each DATA
with the number of that DATA command (1, 2, ...) and the envelope recipients, and
returns a reply to give instead of accepting (None: accept); a reply starting
with ``421`` is sent and then the connection closed.  ``rcpt_reply=f`` is the same
for each RCPT TO (called with the address).  ``drop_every=N`` closes the connection
without a reply at every N-th DATA.  ``pipelining=True`` offers PIPELINING (RFC 2920)
in the EHLO reply.

Every address a test sends to only ever reaches this server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import mailbox
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# aiosmtpd 1.4 sets its own deprecated Session.login_data after every AUTH
warnings.filterwarnings("ignore", message="Session.login_data is deprecated", category=DeprecationWarning)
logging.getLogger("mail.log").setLevel(logging.ERROR)

USERNAME = "activist@example.org"
PASSWORD = "correct horse battery staple"


@dataclass
class Received:
    """One message as the server took it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any = None
    tls: bool = False
    login: str = ""
    helo: str = ""  # the name the client greeted with (EHLO/HELO)

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class RecordingHandler:
    """aiosmtpd handler: records messages (thread-safe) and injects faults."""

    def __init__(
        self,
        *,
        tempfail_data: int = 0,
        reject_rcpt: set[str] | None = None,
        reject_data: set[str] | None = None,
        drop_after: int | None = None,
        delay: float = 0.0,
        maildir: Path | None = None,
        data_reply: Callable[[int, list[str]], str | None] | None = None,
        rcpt_reply: Callable[[str], str | None] | None = None,
        drop_every: int = 0,
        pipelining: bool = False,
    ) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.tempfail_data = tempfail_data
        self.reject_rcpt = {a.lower() for a in (reject_rcpt or set())}
        self.reject_data = {a.lower() for a in (reject_data or set())}
        self.drop_after = drop_after
        self.delay = delay
        self.maildir = mailbox.Maildir(maildir, create=True) if maildir else None
        self.data_commands = 0
        self.dropped = 0
        self.auth_failures = 0
        self.implicit_tls = False
        self.reject_message = "554 5.7.1 Message rejected as spam"
        self.data_reply = data_reply
        self.rcpt_reply = rcpt_reply
        self.drop_every = drop_every
        self.pipelining = pipelining
        self.replies: list[str] = []  # every injected reply given, in order

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    def _injected(self, server, reply: str | None) -> str | None:
        if reply is not None:
            with self.lock:
                self.replies.append(reply)
            if reply.startswith("421"):  # said, then the connection goes
                asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply is not None and (reply := self._injected(server, self.rcpt_reply(address))):
            return reply
        if address.lower() in self.reject_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.data_commands += 1
            number = self.data_commands
        if self.drop_every and number % self.drop_every == 0:
            with self.lock:
                self.dropped += 1
            server.transport.close()
            return "421 4.3.2 dropping the connection"
        injected = self.data_reply(number, list(envelope.rcpt_tos)) if self.data_reply else None
        if reply := self._injected(server, injected):
            return reply
        with self.lock:
            if self.tempfail_data > 0:
                self.tempfail_data -= 1
                return "451 4.3.0 Temporary local problem, try again later"
            if self.reject_data & {a.lower() for a in envelope.rcpt_tos}:
                return self.reject_message
            if self.drop_after is not None and len(self.messages) >= self.drop_after:
                self.drop_after = None  # once
                self.dropped += 1
                server.transport.close()
                return "421 4.3.2 dropping the connection"
            received = Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                peer=session.peer,
                tls=self.implicit_tls or session.ssl is not None,
                login=(session.auth_data.login.decode() if getattr(session, "auth_data", None) else ""),
                helo=session.host_name or "",
            )
            self.messages.append(received)
            if self.maildir is not None:
                self.maildir.add(received.data)
            n = len(self.messages)
        return f"250 2.0.0 Ok: queued as TEST{n:05d}"


@dataclass
class SmtpServer:
    """A running test server and what a letterkit account needs to reach it."""

    host: str
    port: int
    security: str
    handler: RecordingHandler
    controller: Any
    ca_file: Path | None = None
    username: str = USERNAME
    password: str = PASSWORD
    auth: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def count(self) -> int:
        with self.handler.lock:
            return len(self.handler.messages)

    def account_args(self, name: str = "test", *, ca: bool = True) -> list[str]:
        """Arguments for `letterkit account add`."""
        args = [
            "account", "add", name, "--host", self.host, "--port", str(self.port),
            "--security", self.security, "--from", USERNAME,
        ]  # fmt: skip
        if self.auth:
            args += ["--username", self.username]
        else:
            args += ["--no-login"]
        if ca and self.ca_file:
            args += ["--ca-file", str(self.ca_file)]
        return args

    def account(self, name: str = "test", **changes: Any) -> Any:
        from letterkit.config import Account

        values: dict[str, Any] = {
            "name": name,
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username if self.auth else "",
            "from_addr": USERNAME,
            "ca_file": str(self.ca_file) if self.ca_file else "",
            "timeout": 5.0,
        }
        values.update(changes)
        return Account(**values)

    def stop(self) -> None:
        with _suppress():
            self.controller.stop()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (RuntimeError, AssertionError, OSError))  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Any]:
    """A trustme CA, its PEM file, and a server certificate for localhost and 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    cert = ca.issue_cert("localhost", "127.0.0.1")
    return ca, path, cert


def _server_context(cert: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def start_server(
    test_ca: tuple[Any, Path, Any],
    *,
    security: str = "starttls",
    auth: bool = True,
    username: str = USERNAME,
    password: str = PASSWORD,
    port: int | None = None,
    **faults: Any,
) -> SmtpServer:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    _ca, ca_path, cert = test_ca
    handler = RecordingHandler(**faults)
    handler.implicit_tls = security == "tls"

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        if not ok:
            with handler.lock:
                handler.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port or free_port(),
        "ready_timeout": 5.0,
        "server_hostname": "localhost",
    }
    if auth:
        kwargs["authenticator"] = authenticator
        # implicit TLS is invisible to aiosmtpd's STARTTLS bookkeeping: require TLS (and
        # AUTH before MAIL) only with STARTTLS; letterkit logs in whenever it has a username
        kwargs["auth_required"] = security == "starttls"
        kwargs["auth_require_tls"] = security == "starttls"
    if security == "starttls":
        kwargs["tls_context"] = _server_context(cert)
        kwargs["require_starttls"] = True
    elif security == "tls":
        kwargs["ssl_context"] = _server_context(cert)
    controller = Controller(handler, **kwargs)
    controller.start()
    return SmtpServer(
        host="127.0.0.1",
        port=controller.port,
        security=security,
        handler=handler,
        controller=controller,
        ca_file=ca_path if security != "none" else None,
        username=username,
        password=password,
        auth=auth,
    )


@pytest.fixture
def make_smtp_server(
    test_ca: tuple[Any, Path, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., SmtpServer]]:
    """Factory: make_smtp_server(security=..., auth=..., faults...) -> a running SmtpServer."""
    started: list[SmtpServer] = []
    monkeypatch.setenv("LETTERKIT_RETRY_DELAY", "0.01")

    def make(**options: Any) -> SmtpServer:
        server = start_server(test_ca, **options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """STARTTLS with a test-CA certificate, and AUTH required."""
    return make_smtp_server()


# --- a small campaign for delivery tests ------------------------------------------------

SIGNER_FROM = "a.person@example.org"  # tests/conftest.py SIGNER's e-mail


def write_campaign(
    root: Path,
    *,
    missions: int = 3,
    require_note: bool = False,
    checked: str | None = None,
    hand: bool = True,
) -> Path:
    """A campaign folder like the bundled one, with made-up contacts at example.org/.net.

    ``protest`` goes to group:kazakhstan (``kz-1`` ... ``kz-N``, e-mail) with copies
    to group:osce: ``osce-mail`` (e-mail, so a Cc) and, with ``hand``, ``osce-hand``
    (no e-mail: fax, post and a web form).  ``solidarity`` (en + ru) goes to
    ``support``, which has a cc of its own.
    """
    from conftest import TODAY

    checked = checked or TODAY.strftime("%Y-%m")
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "templates" / "campaign.toml").write_text(
        'id = "test-campaign"\n'
        'title = "Test campaign: end the abuse"\n'
        'demands = ["An end to the beatings."]\n'
        f"require_note = {'true' if require_note else 'false'}\n",
        encoding="utf-8",
    )
    (root / "templates" / "protest.en.txt.j2").write_text(
        "+++\n"
        'subject = "{{ campaign.title }}"\n'
        'to = ["group:kazakhstan"]\n'
        'cc = ["group:osce"]\n'
        'language = "en"\n'
        'description = "test protest"\n'
        "+++\n"
        "{{ recipient.salutation }}\n\n"
        "I am {{ signer.name }} of {{ signer.city }}.\n"
        "{% for d in campaign.demands %}- {{ d }}\n{% endfor %}"
        "{% if note %}\n{{ note }}\n{% endif %}"
        "{% if copy %}\n(This is a copy.)\n{% endif %}"
        "\n.A line starting with a dot.\n\nYours faithfully,\n{{ signer.name }}\n",
        encoding="utf-8",
    )
    for lang, hello in (("en", "Dear friends,"), ("ru", "Дорогие друзья,")):
        (root / "templates" / f"solidarity.{lang}.txt.j2").write_text(
            "+++\n"
            f'subject = "{"Solidarity" if lang == "en" else "Солидарность"}"\n'
            'to = ["group:support"]\n'
            f'language = "{lang}"\n'
            "+++\n"
            f"{hello}\n\n{{{{ signer.name }}}}\n",
            encoding="utf-8",
        )
    contacts = []
    for i in range(1, missions + 1):
        contacts.append(
            "[[contact]]\n"
            f'id = "kz-{i}"\nname = "Mission {i}"\ngroups = ["kazakhstan", "missions"]\n'
            f'salutation = "Your Excellency,"\nemail = "mission{i}@example.org"\n'
            f'checked = "{checked}"\n'
        )
    contacts.append(
        "[[contact]]\n"
        'id = "osce-mail"\nname = "OSCE Office"\ngroups = ["osce"]\n'
        f'email = "osce@example.net"\nchecked = "{checked}"\n'
    )
    if hand:
        contacts.append(
            "[[contact]]\n"
            'id = "osce-hand"\nname = "OSCE Secretariat"\ngroups = ["osce"]\n'
            'fax = "+43 1 000 0000"\naddress = ["Example Street 6", "1010 Vienna", "Austria"]\n'
            'web_form = ["https://forms.example.net/contact"]\n'
            f'checked = "{checked}"\n'
        )
    contacts.append(
        "[[contact]]\n"
        'id = "support"\nname = "Support contact"\ngroups = ["support"]\nlanguage = "ru"\n'
        'salutation = "Дорогие друзья,"\n'
        f'email = "support@example.org"\ncc = ["copy@example.net"]\nchecked = "{checked}"\n'
    )
    (root / "recipients.toml").write_text("\n".join(contacts), encoding="utf-8")
    return root
