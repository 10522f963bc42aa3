"""Crash safety: `kill -9` in the middle of a batch loses no letter; resuming sends the rest."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import SIGNER
from smtp_server import PASSWORD, make_smtp_server, test_ca, write_campaign  # noqa: F401

SPEEDS = {  # letters in the batch, the server's delay per message, delivered before the kill
    "slow server": (30, 0.05, 5),
    # no delay: the kill lands while letters are sent, filed and recorded in quick succession
    "full speed": (300, 0.0, 30),
}


@pytest.mark.slow
@pytest.mark.parametrize("speed", list(SPEEDS))
@pytest.mark.parametrize("resume", ["outbox flush", "the same send"])
def test_kill_9_mid_batch_then_resume(invoke, make_smtp_server, tmp_path, resume, speed):
    letters, delay, kill_at = SPEEDS[speed]
    server = make_smtp_server(delay=delay)
    camp = write_campaign(tmp_path / "camp", missions=letters, hand=False)
    added = invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    send = ["send", "protest", "--yes", "--rate", "0", *SIGNER]
    proc = subprocess.Popen(
        [sys.executable, "-m", "letterkit", "--campaign", str(camp), *send],
        env=dict(os.environ),  # the same isolated XDG dirs and test keyring
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while server.count() < kill_at:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the subprocess delivered nothing"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    before = server.count()
    assert kill_at <= before < letters

    server.handler.delay = 0
    if resume == "outbox flush":
        result = invoke("outbox", "flush", "--yes", "--rate", "0", "--json")
    else:
        result = invoke("--campaign", str(camp), *send, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["failed"] == [] and doc["queued"] == []

    delivered = [m.rcpt_tos[0] for m in server.messages]
    expected = {f"mission{i}@example.org" for i in range(1, letters + 1)}
    assert set(delivered) == expected  # none lost
    assert len(delivered) - len(expected) <= 1  # at most the one in flight repeated
    log = json.loads(invoke("log", "--json").stdout)["letters"]
    assert len(log) == letters and {r["status"] for r in log} == {"sent"}
    data = tmp_path / "data" / "letterkit"
    assert len(os.listdir(data / "sent" / "cur")) == letters  # a copy of each, even of the one in flight
    assert os.listdir(data / "sent" / "tmp") == []
    with sqlite3.connect(data / "ledger.sqlite3") as conn:  # the ledger keeps what was sent, once each
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (letters,)
    # and nothing more goes out on yet another run
    again = invoke("--campaign", str(camp), *send)
    assert again.exit_code == 0 and server.count() == len(delivered)


def test_interrupted_while_composing_queues_nothing(invoke, make_smtp_server, tmp_path):
    """Ctrl-C (or any error) before every letter is staged leaves nothing behind."""
    from letterkit.campaign import load_campaign
    from letterkit.config import Signer
    from letterkit.letters import compose
    from letterkit.outbox import Outbox

    camp = load_campaign(write_campaign(tmp_path / "camp", missions=5))

    def interrupted():  # type: ignore[no-untyped-def]
        for n, letter in enumerate(compose(camp, "protest", Signer(name="A. Person")), 1):
            if n == 4:
                raise KeyboardInterrupt
            yield letter

    box = Outbox(tmp_path / "state")
    with pytest.raises(KeyboardInterrupt):
        box.queue(interrupted())
    assert box.rows() == []  # and the outbox still works:
    assert box.queue(compose(camp, "protest", Signer(name="A. Person"))).queued == 5
    box.close()
