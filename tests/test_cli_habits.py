"""Command-line habits: shared options after the command, -h, examples, clean usage lines,
bare letterkit, JSON errors, completion, and letterkit as a process (--version, a closed pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from conftest import REAL_SIGNER

from letterkit.cli import app, main


def _commands(command=None, prefix=()):  # type: ignore[no-untyped-def]
    command = command or typer.main.get_command(app)
    yield prefix, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*prefix, name))


COMMANDS = list(_commands())


def test_the_walk_sees_every_command() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {("send",), ("outbox", "show"), ("log", "done"), ("account", "add"), ("signer", "set")} <= paths
    assert len(paths) >= 25


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=" ".join)
def test_every_command_has_dash_h_an_example_and_a_clean_usage_line(invoke, path) -> None:
    result = invoke(*path, "-h")
    assert result.exit_code == 0, result.output
    assert result.stdout == invoke(*path, "--help").stdout
    usage = result.stdout.split("\n\n")[0]
    assert usage.startswith(" ".join(("Usage: letterkit", *path)))
    assert not any(junk in usage for junk in "{}<>"), usage
    arguments = result.stdout.partition("Arguments:")[2].partition("Options:")[0]
    assert "<" not in arguments and "{" not in arguments, arguments
    examples = result.stdout.partition("Examples:")[2]
    assert examples.strip().startswith("letterkit"), result.stdout
    assert all(line.strip().startswith("letterkit") for line in examples.strip().splitlines()), examples


@pytest.mark.parametrize("path", [path for path, cmd in COMMANDS if hasattr(cmd, "commands")], ids=" ".join)
def test_command_lists_show_whole_summaries(invoke, path) -> None:
    listing = invoke(*path, "-h").stdout.partition("Commands:")[2].partition("Examples:")[0]
    rows = [line.strip() for line in listing.splitlines() if line.strip()]
    assert rows
    for row in rows:
        assert row.endswith(".") and not row.endswith("..."), row  # not cut by the column width
        assert "e.g" not in row, row


def test_bare_letterkit_prints_help_and_exits_0(invoke) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: letterkit") and "send" in result.stdout


def test_shell_completion_is_offered(invoke) -> None:
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


# --- options every command shares, after the command ------------------------------------------


@pytest.fixture
def other_campaign(campaign_copy: Path) -> Path:
    """A campaign told apart from the bundled one: an extra contact, and no solidarity template."""
    with (campaign_copy / "recipients.toml").open("a", encoding="utf-8") as fh:
        fh.write(
            '\n[[contact]]\nid = "only-here"\nname = "Only Here"\ngroups = ["osce"]\n'
            'salutation = "Dear colleagues,"\nlanguage = "en"\nemail = "only-here@example.org"\n'
            'source = "a test"\nchecked = "2026-11"\n'
        )
    templates = campaign_copy / "templates"
    for template in [*templates.glob("solidarity.*"), *templates.glob("followup.*")]:
        template.unlink()
    return campaign_copy


def test_campaign_after_the_command(invoke, other_campaign) -> None:
    where = ["--campaign", str(other_campaign)]
    contacts = invoke("contacts", "--json", *where)
    assert contacts.exit_code == 0, contacts.output
    assert "only-here" in {c["id"] for c in json.loads(contacts.stdout)["contacts"]}
    templates = invoke("templates", *where, "--json")
    assert {t["name"] for t in json.loads(templates.stdout)["templates"]} == {"protest"}
    preview = invoke("preview", "protest", "--to", "only-here", *REAL_SIGNER, "--json", *where)
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.stdout)["letters"][0]["to"] == ["only-here@example.org"]
    send = invoke("send", "protest", "--to", "only-here", "--dry-run", *REAL_SIGNER, *where)
    assert send.exit_code == 0, send.output
    assert "only-here@example.org" in send.stdout
    check = invoke("check", *where)
    assert check.exit_code in (0, 1) and "No such option" not in check.output
    for path in (("outbox",), ("log",), ("account", "list"), ("signer", "show")):
        result = invoke(*path, *where)
        assert result.exit_code == 0, (path, result.output)


def test_campaign_after_the_command_wins_over_the_one_before(invoke, other_campaign) -> None:
    result = invoke("--campaign", "/nonexistent", "contacts", "--campaign", str(other_campaign), "--json")
    assert result.exit_code == 0, result.output
    assert "only-here" in result.stdout
    before = invoke("--campaign", str(other_campaign), "contacts", "--json")  # still works before it
    assert before.exit_code == 0 and "only-here" in before.stdout
    bundled = invoke("contacts", "--json")  # and is forgotten by the next run
    assert "only-here" not in bundled.stdout


def test_json_after_the_command_everywhere(invoke) -> None:
    for path in (
        ("contacts",),
        ("templates",),
        ("outbox",),
        ("log",),
        ("account", "list"),
        ("signer", "show"),
    ):
        result = invoke(*path, "--json")
        assert result.exit_code == 0, (path, result.output)
        assert json.loads(result.stdout)["version"] == 1, path


def test_contacts_filters_and_a_missing_campaign(invoke) -> None:
    result = invoke("contacts", "--json", "--group", "osce")
    ids = {c["id"] for c in json.loads(result.stdout)["contacts"]}
    assert "osce-secretariat" in ids and "kz-osce-delegation" not in ids
    missing = invoke("contacts", "--campaign", "/nonexistent")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.output


# --- with --json, every outcome is JSON on stdout ---------------------------------------------


def test_with_json_a_letterkit_error_is_a_json_document(invoke) -> None:
    result = invoke("templates", "--campaign", "/nonexistent", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["kind"] == "error" and doc["code"] == 2
    assert "does not exist" in doc["message"]
    assert "does not exist" in result.stderr  # people still get their line


def test_with_json_an_unknown_contact_is_a_json_document(invoke) -> None:
    result = invoke("preview", "protest", "--to", "nobody", *REAL_SIGNER, "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["kind"] == "error" and doc["code"] == 2 and "unknown contact id 'nobody'" in doc["message"]
    assert "unknown contact id" in result.stderr


def test_without_json_an_error_is_only_a_line_on_stderr(invoke) -> None:
    result = invoke("preview", "protest", "--to", "nobody", *REAL_SIGNER)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().startswith("error:") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["contacts", "--json", "--no-such-option"], "No such option: --no-such-option"),
        (["--json", "templates"], "No such option: --json"),
        (["preview", "--json"], "Missing argument 'TEMPLATE'."),
        (["log", "--limit", "many", "--json"], "Invalid value for '--limit': 'many' is not a valid integer."),
    ],
)
def test_with_json_a_usage_error_is_a_json_document(capsys, args, message) -> None:
    """Usage errors come from Click, before any command runs: the console entry reports them."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc.keys() == {"version", "kind", "code", "message"}
    assert (doc["version"], doc["kind"], doc["code"]) == (1, "error", 2)
    assert doc["message"].startswith(message)
    assert message in err and "Usage: letterkit" in err


def test_without_json_a_usage_error_is_the_usual_message(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["contacts", "--no-such-option"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "No such option: --no-such-option" in err


# --- letterkit as a process ------------------------------------------------------------------


def test_python_m_letterkit_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "letterkit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("letterkit ") and result.stdout.count("\n") == 1


def test_a_closed_pipe_ends_quietly() -> None:
    """`letterkit contacts | head -0`: the reader is gone before letterkit writes a byte."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "letterkit", "contacts"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == b"", proc.stderr.decode()
