"""SmtpTransport against a real aiosmtpd server on 127.0.0.1: TLS, AUTH, retries, refusals."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import pytest
from smtp_server import PASSWORD, USERNAME, make_smtp_server, smtp_server, test_ca  # noqa: F401

from letterkit.errors import CredentialError, TransportError
from letterkit.transport import (
    DeliveryResult,
    ServerUnreachable,
    SmtpTransport,
    is_loopback,
    to_crlf,
)

MESSAGE = b"From: A <activist@example.org>\nTo: B <b@example.org>\nSubject: Test\n\nHello\n.dotted line\n"
RCPT = ["b@example.org", "c@example.net"]


def transport(server, password: str = PASSWORD, **kwargs):  # type: ignore[no-untyped-def]
    return SmtpTransport(server.account(**kwargs), lambda: password, backoff=0.001)


@pytest.mark.parametrize("security", ["starttls", "tls", "none"])
def test_check_and_send_in_each_security_mode(make_smtp_server, security):
    server = make_smtp_server(security=security)
    t = transport(server)
    steps = t.check()
    assert steps[-2] == f"authenticated as {USERNAME}" and steps[-1].startswith("QUIT")
    if security != "none":
        assert any("certificate verified" in s for s in steps)
    assert server.count() == 0  # check() sends nothing
    with t:
        result = t.send(MESSAGE, USERNAME, RCPT)
    assert result == DeliveryResult("sent", "250 2.0.0 Ok: queued as TEST00001", {}, 1)
    (m,) = server.messages
    assert m.mail_from == USERNAME and m.rcpt_tos == RCPT and m.login == USERNAME
    assert m.tls is (security != "none")
    assert m.data.endswith(b"Hello\r\n.dotted line\r\n")  # CRLF, dot-stuffing undone by the server


def test_one_connection_for_the_whole_batch(smtp_server):
    with transport(smtp_server) as t:
        for _ in range(5):
            assert t.send(MESSAGE, USERNAME, RCPT).status == "sent"
    assert len({m.peer for m in smtp_server.messages}) == 1


def test_untrusted_certificate_is_refused_before_any_password(smtp_server):
    asked = []
    t = SmtpTransport(smtp_server.account(ca_file=""), lambda: asked.append(1) or PASSWORD)
    with pytest.raises(TransportError) as err:
        t.check()
    assert "untrusted certificate" in str(err.value) and "--ca-file" in str(err.value)
    assert f"{smtp_server.host}:{smtp_server.port}" in str(err.value)
    assert err.value.exit_code == 2 and not asked


def test_wrong_password_says_so_without_the_password(smtp_server):
    t = transport(smtp_server, password="hunter2-secret")
    with pytest.raises(TransportError) as err:
        t.check()
    message = str(err.value)
    assert "wrong username or password" in message and USERNAME in message
    assert "hunter2-secret" not in message and "hunter2-secret" not in repr(t)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_no_password_source_is_a_credential_error(smtp_server):
    def nothing() -> str:
        raise CredentialError("no password for account 'test'")

    with pytest.raises(CredentialError):
        SmtpTransport(smtp_server.account(), nothing).check()


def test_starttls_required_but_not_offered(make_smtp_server):
    server = make_smtp_server(security="none")
    t = transport(server, security="starttls")
    with pytest.raises(TransportError, match="does not offer STARTTLS"):
        t.check()


def test_no_password_over_plain_text_to_a_remote_host(make_smtp_server, monkeypatch):
    server = make_smtp_server(security="none")
    asked = []
    monkeypatch.setattr("letterkit.transport.is_loopback", lambda host: False)
    t = SmtpTransport(server.account(), lambda: asked.append(1) or PASSWORD)
    with pytest.raises(TransportError, match="refusing to send your password over an unencrypted"):
        t.check()
    assert not asked and server.handler.auth_failures == 0


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("127.5.6.7") and is_loopback("::1")
    assert is_loopback("localhost") and is_loopback("[::1]") and is_loopback("mail.localhost")
    assert not is_loopback("smtp.example.org") and not is_loopback("10.0.0.1")


def test_connection_refused_fails_fast_and_is_unreachable(make_smtp_server):
    server = make_smtp_server()
    server.stop()
    t = transport(server)
    with pytest.raises(ServerUnreachable) as err:
        t.open()
    assert "connection refused" in str(err.value) and err.value.exit_code == 1
    assert "letterkit outbox flush" in str(err.value)


def test_a_temporary_failure_is_returned_at_once_with_its_code(make_smtp_server):
    """No retrying in place (the delivery loop gives the letter its back-off); the connection
    stays open and the next letter goes through it."""
    server = make_smtp_server(tempfail_data=1)
    with transport(server) as t:
        deferred = t.send(MESSAGE, USERNAME, RCPT)
        sent = t.send(MESSAGE, USERNAME, RCPT)
    assert deferred.status == "deferred" and deferred.attempts == 1
    assert deferred.code == 451 and "451 4.3.0" in deferred.reply
    assert sent.status == "sent" and sent.attempts == 1
    assert server.count() == 1 and server.handler.data_commands == 2
    assert len({m.peer for m in server.messages}) == 1


def test_permanent_refusal_fails_that_message_only(make_smtp_server):
    server = make_smtp_server(reject_data={"b@example.org"})
    with transport(server) as t:
        failed = t.send(MESSAGE, USERNAME, ["b@example.org"])
        ok = t.send(MESSAGE, USERNAME, ["c@example.net"])
    assert failed.status == "failed" and "554 5.7.1 Message rejected as spam" in failed.reply
    assert failed.attempts == 1 and ok.status == "sent"


def test_some_recipients_refused_is_partial(make_smtp_server):
    server = make_smtp_server(reject_rcpt={"c@example.net"})
    with transport(server) as t:
        partial = t.send(MESSAGE, USERNAME, RCPT)
        none = t.send(MESSAGE, USERNAME, ["c@example.net"])
    assert partial.status == "partial" and partial.delivered
    assert list(partial.refused) == ["c@example.net"] and partial.refused["c@example.net"][0] == 550
    assert none.status == "failed" and not none.delivered and "User unknown" in none.reply
    assert server.messages[0].rcpt_tos == ["b@example.org"]


def test_a_dropped_connection_is_reopened(make_smtp_server):
    server = make_smtp_server(drop_after=2)
    with transport(server) as t:
        results = [t.send(MESSAGE, USERNAME, RCPT) for _ in range(4)]
    assert [r.status for r in results] == ["sent"] * 4
    assert results[2].attempts == 2
    assert server.count() == 4 and server.handler.dropped == 1
    assert len({m.peer for m in server.messages}) == 2  # one reconnection


def test_envelope_values_are_checked(smtp_server):
    from letterkit.errors import InvalidValue

    with transport(smtp_server) as t:
        with pytest.raises(InvalidValue, match="carriage return"):
            t.send(MESSAGE, "a@example.org\r\nRCPT TO:<x@example.org>", RCPT)
        refused = t.send(MESSAGE, USERNAME, ["b@example.org\nDATA"])  # this letter fails, the batch goes on
        assert refused.status == "failed" and "line break" in refused.reply
    assert smtp_server.count() == 0


def test_8bit_bodies_use_8bitmime(smtp_server):
    body = "From: a@example.org\nTo: b@example.org\nSubject: x\n\nДорогие друзья\n".encode()
    with transport(smtp_server) as t:
        assert t.send(body, USERNAME, ["b@example.org"]).status == "sent"
    assert "Дорогие друзья" in smtp_server.messages[0].data.decode()


def test_crlf():
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    assert to_crlf(b"a\rb\r\r\nc") == b"a\r\nb\r\n\r\nc"  # a bare CR is a line end too
    assert to_crlf(b"a\r\nb\r\n") == b"a\r\nb\r\n" and to_crlf(b"a\r\n\rb") == b"a\r\n\r\nb"
    assert to_crlf(b"a\r\n\nb\r") == b"a\r\n\r\nb\r\n"  # as many CR as LF, but not in pairs


@pytest.mark.parametrize("dots", [b".first line\r\nHello\r\n", b"Hello\r\n.\r\n..two\r\n"])
def test_a_crlf_message_has_its_dot_lines_stuffed(smtp_server, dots):
    """A message that is CRLF already (as letterkit makes them) is still dot-stuffed: a line
    that is a lone "." does not end it early."""
    message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n" + dots
    with transport(smtp_server) as t:
        assert t.send(message, USERNAME, ["b@example.org"]).status == "sent"
    (m,) = smtp_server.messages
    assert m.data.endswith(dots)


def test_no_bare_cr_or_lf_reaches_the_wire(smtp_server):
    """A body with bare CRs around a dot (the SMTP smuggling pattern) goes as one message,
    every line ending CRLF and the dot line stuffed."""
    smuggle = b"\r.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
    message = b"From: a@example.org\nTo: b@example.org\nSubject: x\n\nHello\r" + smuggle + b"bye\r.\rend\n"
    with transport(smtp_server) as t:
        assert t.send(message, USERNAME, ["b@example.org"]).status == "sent"
    (m,) = smtp_server.messages
    raw = m.data
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    assert m.rcpt_tos == ["b@example.org"]
    assert b"\r\n.\r\nMAIL FROM:<evil@example.org>\r\n" in raw  # text of this letter, not a second one


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_the_greeting_names_no_machine(make_smtp_server, security, monkeypatch):
    """EHLO is an address literal, never the computer's host name (providers copy it into
    a Received header the recipient reads)."""
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "alices-laptop.home")
    monkeypatch.setattr(socket, "getfqdn", lambda *a: "alices-laptop.home")
    server = make_smtp_server(security=security)
    with transport(server) as t:
        t.send(MESSAGE, USERNAME, RCPT)
    (m,) = server.messages
    assert m.helo == "[127.0.0.1]"
    assert b"alices-laptop" not in m.data


def test_a_password_beyond_ascii_logs_in_as_utf8(make_smtp_server):
    """SASL PLAIN is UTF-8 (RFC 4616); no error ever quotes a part of the secret."""
    secret = "Grüße-ä€-пароль"
    server = make_smtp_server(password=secret)
    with SmtpTransport(server.account(), lambda: secret, backoff=0.001) as t:
        assert t.authenticated and t.send(MESSAGE, USERNAME, RCPT).status == "sent"
    wrong = "Grüße-ä€-неверно"
    with pytest.raises(TransportError, match="wrong username or password") as caught:
        SmtpTransport(server.account(), lambda: wrong, backoff=0.001).open()
    text = str(caught.value)
    assert not any(part in text for part in ("Grüße", "ä", "€", "неверно"))


def test_tests_reach_no_machine_but_this_one():
    """The guard every test runs under (tests/_loopback.py): a real provider is never looked up
    or connected to, in this process or in a letterkit process a test starts."""
    import socket
    import subprocess
    import sys

    import _loopback

    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("smtp.gmail.com", 587)
    with pytest.raises(ConnectionRefusedError), socket.socket() as s:
        s.connect(("192.0.2.1", 25))  # TEST-NET-1 (RFC 5737)
    assert _loopback.VIOLATIONS == ["a name lookup of 'smtp.gmail.com'", "a connection to '192.0.2.1'"]
    _loopback.VIOLATIONS.clear()  # this test meant to try
    assert socket.getaddrinfo("127.0.0.1", 25) and socket.getaddrinfo("localhost", 25)
    child = subprocess.run(
        [sys.executable, "-c", "import socket; socket.getaddrinfo('smtp.gmail.com', 587)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert child.returncode != 0 and "tests talk to 127.0.0.1 only" in child.stderr
