"""A real IMAP server in the test process (pymap's in-memory backend on 127.0.0.1).

Import the fixtures into a test module::

    from imap_server import imap_server, make_imap_server  # noqa: F401

``make_imap_server(tls=True, special_use="Sent Mail", folders=("Gesendet",))`` starts
pymap (an asyncio IMAP4rev1 server from PyPI) in a thread: STARTTLS with a certificate of
the session's trustme CA (``tests/smtp_server.py``'s ``test_ca``), or plaintext login on
loopback with ``tls=False``.  ``special_use`` names a folder the server marks ``\\Sent``
(RFC 6154) in LIST responses; pymap itself knows no special-use attributes, so its
session class is extended here through its public backend classes.  ``folders`` are
created empty at start.  ``server.client()`` is a logged-in :class:`imaplib.IMAP4` for
tests to put mail into INBOX (APPEND) and to look at what letterkit did.
"""

from __future__ import annotations

import asyncio
import imaplib
import tempfile
import threading
from argparse import Namespace
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from smtp_server import PASSWORD, USERNAME, free_port

IMAP_USER = USERNAME  # the account's one password serves SMTP and IMAP, as at most providers
IMAP_PASSWORD = PASSWORD


def _backend_classes(special_use: str | None) -> Any:
    """pymap's dict backend whose sessions mark ``special_use`` as ``\\Sent``."""
    from pymap.backend import dict as pdict

    class Session(pdict.Session):
        async def list_mailboxes(self, ref_name, filter_, subscribed=False, selected=None):  # type: ignore[no-untyped-def]
            found, updates = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
            marked = [
                (name, delim, [*attrs, b"Sent"] if name == special_use else attrs)
                for name, delim, attrs in found
            ]
            return marked, updates

    class Identity(pdict.Identity):
        @asynccontextmanager
        async def new_session(self):  # type: ignore[no-untyped-def]
            async with super().new_session() as session:
                yield Session(session.owner, session.config, session.mailbox_set, session.filter_set)

    class Login(pdict.Login):
        async def authenticate(self, credentials):  # type: ignore[no-untyped-def]
            found = await super().authenticate(credentials)
            return Identity(found.name, self, None, found.roles)

        async def authorize(self, authenticated, authzid):  # type: ignore[no-untyped-def]
            found = await super().authorize(authenticated, authzid)
            return Identity(found.name, self, None, found.roles)

    class Backend(pdict.DictBackend):
        @classmethod
        async def init(cls, args, **overrides):  # type: ignore[no-untyped-def]
            config = pdict.Config.from_args(args, **overrides)
            login = Login(config)
            await cls._add_demo_user(config, login)
            return cls(login, config), config

    return Backend


@dataclass
class ImapServer:
    """A running pymap and what a letterkit account needs to reach it."""

    host: str
    port: int
    tls: bool
    ca_file: Path | None
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    thread: threading.Thread
    username: str = IMAP_USER
    password: str = IMAP_PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def security(self) -> str:
        return "starttls" if self.tls else "none"

    def imap_args(self, *, ca: bool = True) -> list[str]:
        """Options of `letterkit account add` for this server."""
        args = ["--imap-host", self.host, "--imap-port", str(self.port), "--imap-security", self.security]
        return args

    def client(self) -> imaplib.IMAP4:
        import ssl

        imap = imaplib.IMAP4(self.host, self.port, timeout=5)
        if self.tls:
            imap.starttls(ssl.create_default_context(cafile=str(self.ca_file)))
        imap.login(self.username, self.password)
        return imap

    def append(self, folder: str, message: bytes, flags: str = "") -> None:
        """Put ``message`` into ``folder`` (as a mail server delivering it would)."""
        with self.client() as imap:
            typ, data = imap.append(_quote(folder), flags or None, None, message)
            assert typ == "OK", data

    def append_many(self, folder: str, messages: list[bytes]) -> None:
        """Put each of ``messages`` into ``folder`` over one connection."""
        with self.client() as imap:
            for message in messages:
                typ, data = imap.append(_quote(folder), None, None, message)
                assert typ == "OK", data

    def messages(self, folder: str) -> list[tuple[bytes, bytes]]:
        """(flags, message) of every message in ``folder``, read without changing anything."""
        with self.client() as imap:
            typ, _ = imap.select(_quote(folder), readonly=True)
            assert typ == "OK", folder
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            found = []
            for item in data:
                if isinstance(item, tuple):
                    found.append((item[0], item[1]))
            return found if typ == "OK" else []

    def state(self, folder: str = "INBOX") -> list[tuple[bytes, bytes]]:
        return self.messages(folder)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(5)


def _quote(name: str) -> str:
    from letterkit.imap import encode_name, quote

    return quote(encode_name(name))


def start_imap(
    test_ca: tuple[Any, Path, Any] | None,
    *,
    special_use: str | None = "Sent Mail",
    folders: Sequence[str] = (),
    username: str = IMAP_USER,
    password: str = IMAP_PASSWORD,
) -> ImapServer:
    """pymap on 127.0.0.1 in a thread of its own; STARTTLS when ``test_ca`` is given."""
    import ssl

    from pymap.imap import IMAPService

    port = free_port()
    args = Namespace(
        host=["127.0.0.1"], port=str(port), cert=None, key=None, tls=test_ca is not None, debug=False,
        passlib_cfg=None, proxy_protocol=None, inherited_sockets=None,
        demo_data=False, demo_user=username, demo_password=password,
    )  # fmt: skip
    overrides: dict[str, Any] = {"invalid_user_sleep": 0.0, "reject_dnsbl": False}
    if test_ca is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        test_ca[2].configure_cert(ctx)
        overrides["ssl_context"] = ctx
    else:
        overrides["secure_auth"] = False  # plaintext login, on loopback only
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        backend, config = await _backend_classes(special_use).init(args, **overrides)
        config.apply_context()
        box["stop"] = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            await IMAPService(backend, config).start(stack)
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10), "pymap did not start"
    server = ImapServer(
        host="127.0.0.1", port=port, tls=test_ca is not None,
        ca_file=test_ca[1] if test_ca is not None else None,
        loop=box["loop"], stop_event=box["stop"], thread=thread, username=username, password=password,
    )  # fmt: skip
    with server.client() as imap:
        for name in (*folders, *([special_use] if special_use else [])):
            typ, data = imap.create(_quote(name))
            assert typ == "OK", data
    return server


@pytest.fixture
def make_imap_server(test_ca: tuple[Any, Path, Any]) -> Iterator[Callable[..., ImapServer]]:
    """Factory: make_imap_server(tls=True, special_use=..., folders=...) -> a running ImapServer."""
    started: list[ImapServer] = []

    def make(*, tls: bool = True, untrusted: bool = False, **options: Any) -> ImapServer:
        ca = test_ca
        if untrusted:  # a certificate from a CA nobody trusts
            import trustme

            other = trustme.CA()
            pem = Path(tempfile.mkdtemp()) / "other-ca.pem"  # for the test's own client only
            other.cert_pem.write_to_path(str(pem))
            ca = (other, pem, other.issue_cert("localhost", "127.0.0.1"))
        server = start_imap(ca if tls else None, **options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def imap_server(make_imap_server: Callable[..., ImapServer]) -> ImapServer:
    """STARTTLS with the test CA's certificate; a folder "Sent Mail" marked \\Sent."""
    return make_imap_server()
