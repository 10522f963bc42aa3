"""PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write when the server offers it.

Refusals inside a pipelined transaction are still sorted per letter and per recipient,
and the connection stays usable for the next letter.
"""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import pytest
from smtp_server import PASSWORD, USERNAME, make_smtp_server, test_ca  # noqa: F401

from letterkit.transport import SmtpTransport

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.dot line\r\n"


def transport(server):  # type: ignore[no-untyped-def]
    return SmtpTransport(server.account(), lambda: PASSWORD, backoff=0.001)


@pytest.mark.parametrize("pipelining", [True, False])
def test_refusals_are_sorted_per_letter_on_one_connection(make_smtp_server, pipelining):
    server = make_smtp_server(reject_rcpt={"gone@example.net"}, pipelining=pipelining)
    with transport(server) as t:
        assert t.pipelining is pipelining
        partial = t.send(MESSAGE, USERNAME, ["b@example.org", "gone@example.net"])
        failed = t.send(MESSAGE, USERNAME, ["gone@example.net"])
        sent = t.send(MESSAGE, USERNAME, ["c@example.org"])
    assert partial.status == "partial" and list(partial.refused) == ["gone@example.net"]
    assert partial.refused["gone@example.net"][0] == 550
    assert failed.status == "failed" and failed.code == 550 and "User unknown" in failed.reply
    assert sent.status == "sent" and sent.attempts == 1
    assert [m.rcpt_tos for m in server.messages] == [["b@example.org"], ["c@example.org"]]
    assert len({m.peer for m in server.messages}) == 1  # the refusals left the connection in step
    assert server.messages[0].data.endswith(b"\r\n.dot line\r\n")  # dot-stuffed, arrived intact


def test_a_temporary_rcpt_refusal_in_a_pipelined_transaction_defers_the_letter(make_smtp_server):
    greylisted = "450 4.2.0 Greylisted, try again later"
    server = make_smtp_server(
        pipelining=True, rcpt_reply=lambda a: greylisted if a == "grey@example.org" else None
    )
    with transport(server) as t:
        deferred = t.send(MESSAGE, USERNAME, ["grey@example.org"])
        sent = t.send(MESSAGE, USERNAME, ["b@example.org"])
    assert deferred.status == "deferred" and deferred.code == 450 and "Greylisted" in deferred.reply
    assert sent.status == "sent" and server.count() == 1


def test_a_message_refused_after_pipelined_data_fails_that_letter(make_smtp_server):
    server = make_smtp_server(pipelining=True, reject_data={"spam@example.org"})
    with transport(server) as t:
        failed = t.send(MESSAGE, USERNAME, ["spam@example.org"])
        sent = t.send(MESSAGE, USERNAME, ["b@example.org"])
    assert failed.status == "failed" and "554 5.7.1" in failed.reply and failed.code == 554
    assert sent.status == "sent" and server.count() == 1


def test_a_whole_batch_goes_pipelined(make_smtp_server, tmp_path):
    """The delivery loop over a server with PIPELINING: every letter arrives once."""
    from smtp_server import write_campaign

    from letterkit.campaign import load_campaign
    from letterkit.config import Signer
    from letterkit.delivery import deliver
    from letterkit.letters import compose
    from letterkit.outbox import Outbox

    server = make_smtp_server(pipelining=True)
    campaign = load_campaign(str(write_campaign(tmp_path / "camp", missions=5, hand=False)))
    signer = Signer(name="A. Person", email="a.person@example.org", city="Leeds", country="UK")
    with Outbox() as box:
        box.queue(compose(campaign, "protest", signer))
        t = transport(server)
        try:
            report = deliver(box, t, rate=0)
            assert t.pipelining
        finally:
            t.close()
    assert report.ok and report.sent == 5
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [f"mission{i}@example.org" for i in range(1, 6)]
    assert all(m.rcpt_tos[1:] == ["osce@example.net"] for m in server.messages)
