"""Command-line habits: -h, bare letterkit, JSON errors, completion."""

from __future__ import annotations

import json

import typer.main

from letterkit.cli import app


def _paths(command=None, prefix=()):  # type: ignore[no-untyped-def]
    command = command or typer.main.get_command(app)
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*prefix, name))


def test_dash_h_works_everywhere(invoke) -> None:
    paths = list(_paths())
    assert ("outbox", "show") in paths and ("log", "show") in paths
    for path in paths:
        result = invoke(*path, "-h")
        assert result.exit_code == 0, (path, result.output)
        assert result.stdout.startswith("Usage: ") or "Usage: " in result.stdout[:200], path


def test_bare_letterkit_prints_help_and_exits_0(invoke) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "Usage: letterkit" in result.stdout and "send" in result.stdout


def test_with_json_a_usage_error_is_a_json_document(invoke) -> None:
    result = invoke("contacts", "--json", "--no-such-option")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc == {"version": 1, "kind": "error", "code": 2, "message": "No such option: --no-such-option"}


def test_with_json_a_letterkit_error_is_a_json_document(invoke) -> None:
    result = invoke("preview", "protest", "--to", "nobody", "--name", "A", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["kind"] == "error" and doc["code"] == 2 and "unknown contact id 'nobody'" in doc["message"]
    assert "unknown contact id" in result.stderr  # people still get their line


def test_shell_completion_is_offered(invoke) -> None:
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
