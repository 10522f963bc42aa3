"""``outbox drop`` asks first and keeps a record; ``log done`` does not silently replace
an earlier ``--via`` (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REAL_SIGNER
from smtp_server import write_campaign

SEND = ["send", "protest", "--yes", "--rate", "0", *REAL_SIGNER]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_campaign(tmp_path / "camp")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(root))
    return root


def waiting(invoke) -> list[dict]:
    return json.loads(invoke("outbox", "--json").stdout)["letters"]


def logged(invoke, *args: str) -> dict[int, dict]:
    return {r["id"]: r for r in json.loads(invoke("log", *args, "--json").stdout)["letters"]}


@pytest.fixture
def queued(invoke, campaign) -> list[dict]:
    """Letters waiting in the outbox (no mail account yet)."""
    result = invoke(*SEND)
    assert result.exit_code == 0, result.output
    rows = waiting(invoke)
    assert len(rows) >= 2
    return rows


def test_drop_without_a_terminal_needs_yes(invoke, queued):
    first = queued[0]["id"]
    result = invoke("outbox", "drop", str(first))
    assert result.exit_code == 2
    assert "no terminal to ask on" in result.stderr and "--yes" in result.stderr
    assert [r["id"] for r in waiting(invoke)] == [r["id"] for r in queued]


def test_drop_asks_on_a_terminal(invoke, queued, monkeypatch):
    from letterkit.cli import _output

    monkeypatch.setattr(_output, "interactive", lambda: True)
    first = queued[0]
    no = invoke("outbox", "drop", str(first["id"]), input="n\n")
    assert no.exit_code == 2 and "you declined" in no.stderr
    assert f"#{first['id']} queued to {first['recipient']}" in no.stderr  # shown before asking
    assert len(waiting(invoke)) == len(queued)
    yes = invoke("outbox", "drop", str(first["id"]), input="y\n")
    assert yes.exit_code == 0, yes.output
    assert first["id"] not in [r["id"] for r in waiting(invoke)]


def test_a_dropped_letter_stays_in_the_log(invoke, queued):
    first = queued[0]
    result = invoke("outbox", "drop", str(first["id"]), "--yes")
    assert result.exit_code == 0, result.output
    assert "Dropped" in result.stderr
    assert first["id"] not in [r["id"] for r in waiting(invoke)]
    row = logged(invoke)[first["id"]]  # plain 'log' shows it: it is nowhere else now
    assert row["status"] == "dropped" and row["sent_at"].startswith("2026-11-26T10:00")
    assert row["reply"] == "dropped by you; it was queued"
    human = invoke("log")
    assert f"{first['id']}\tdropped\t{first['recipient']}" in human.stdout  # piped: TSV
    story = json.loads(invoke("log", "show", str(first["id"]), "--json").stdout)
    assert story["letter"]["status"] == "dropped"
    # dropping again, or dropping a letter not in the outbox, is refused
    again = invoke("outbox", "drop", str(first["id"]), "--yes")
    assert again.exit_code == 2 and "is dropped, not waiting in the outbox" in again.stderr


def test_a_dropped_letter_can_be_queued_again(invoke, queued):
    first = queued[0]
    assert invoke("outbox", "drop", str(first["id"]), "--yes").exit_code == 0
    result = invoke(*SEND, "--to", first["recipient"])
    assert result.exit_code == 0, result.output
    assert first["recipient"] in [r["recipient"] for r in waiting(invoke)]


def test_log_done_does_not_silently_replace_an_earlier_via(invoke, campaign):
    first = invoke(*SEND, "--to", "osce-hand", "--json")
    assert first.exit_code == 0, first.output
    (hand,) = json.loads(first.stdout)["by_hand"]
    letter = str(hand["id"])
    assert invoke("log", "done", letter, "--via", "fax").exit_code == 0
    was = logged(invoke)[hand["id"]]
    other = invoke("log", "done", letter, "--via", "post")
    assert other.exit_code == 2
    assert "already recorded first as delivered by fax on 2026-11-26" in other.stderr
    assert "--force" in other.stderr
    assert logged(invoke)[hand["id"]] == was  # unchanged
    same = invoke("log", "done", letter, "--via", "fax")
    assert same.exit_code == 0 and logged(invoke)[hand["id"]] == was
    forced = invoke("log", "done", letter, "--via", "post", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    row = json.loads(forced.stdout)["letter"]
    assert (row["status"], row["channel"]) == ("done", "post")
    assert "recorded first as delivered by fax on 2026-11-26" in row["reply"]
