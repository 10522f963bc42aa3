"""A disk that fills up (simulated with a file-size limit on the process): one line, nothing lost."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REAL_SIGNER
from smtp_server import PASSWORD, make_smtp_server, smtp_server, test_ca, write_campaign  # noqa: F401

resource = pytest.importorskip("resource")


def _limited(max_bytes: int):  # type: ignore[no-untyped-def]
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


@pytest.mark.slow
@pytest.mark.parametrize("limit", [4096, 60_000, 120_000])
def test_a_full_disk_is_one_line_and_loses_nothing(invoke, tmp_path, smtp_server, monkeypatch, limit):
    camp = write_campaign(tmp_path / "camp", missions=40, hand=False)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(camp))
    assert invoke("send", "protest", "--yes", *REAL_SIGNER).exit_code == 0  # 40 queued, no account yet
    assert invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    env = {**os.environ, "LETTERKIT_SMTP_PASSWORD": PASSWORD}
    full = subprocess.run(
        [sys.executable, "-m", "letterkit", "outbox", "flush", "--yes", "--rate", "0"],
        preexec_fn=_limited(limit),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in full.stderr, full.stderr
    if full.returncode:
        assert full.returncode in (1, 2) and full.stderr.strip().splitlines()[-1].startswith("error:")
    again = invoke("outbox", "flush", "--yes", "--rate", "0", "--json")  # the disk has room again
    assert again.exit_code == 0, again.output
    delivered = [m.rcpt_tos[0] for m in smtp_server.messages]
    assert set(delivered) == {f"mission{i}@example.org" for i in range(1, 41)}  # none lost
    assert len(delivered) - 40 <= 1  # at most the one in flight repeated
    log = json.loads(invoke("log", "--json").stdout)["letters"]
    assert len(log) == 40 and {r["status"] for r in log} == {"sent"}
