"""letterkit as a separate process: `python -m letterkit` and the installed script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, exe: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = (exe or [sys.executable, "-m", "letterkit"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=os.environ.copy())


def test_python_m_letterkit_contacts_json():
    result = run("contacts", "--json")
    assert result.returncode == 0, result.stderr
    ids = {c["id"] for c in json.loads(result.stdout)["contacts"]}
    assert {"kz-osce-delegation", "osce-secretariat", "solidarity-support"} <= ids


def test_python_m_letterkit_bad_input_is_one_line_exit_2():
    result = run("preview", "protest", "--name", "Line\nBreak", "--email", "a@example.org")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


SCRIPT = Path(sys.executable).with_name("letterkit")
SCRIPT_PATH = str(SCRIPT) if SCRIPT.exists() else shutil.which("letterkit")


@pytest.mark.skipif(SCRIPT_PATH is None, reason="the console script is not installed")
def test_installed_console_script():
    exe = [str(SCRIPT_PATH)]
    version = run("--version", exe=exe)
    assert version.returncode == 0 and version.stdout.startswith("letterkit ")
    templates = run("templates", "--json", exe=exe)
    assert templates.returncode == 0, templates.stderr
    assert {t["name"] for t in json.loads(templates.stdout)["templates"]} >= {"protest", "solidarity"}
    help_ = run("--help", exe=exe)
    assert help_.returncode == 0 and "send" in help_.stdout


def test_version_and_help_load_only_what_they_need():
    """Start-up stays cheap by lazy imports: --version and --help need no Rich, Jinja2 or SQLite."""
    for args in (["--version"], ["--help"], ["send", "--help"]):
        code = (
            f"import sys; sys.argv = ['letterkit', *{args!r}]\n"
            "from letterkit.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "loaded = [m for m in ('rich', 'jinja2', 'sqlite3', 'keyring') if m in sys.modules]\n"
            "print(loaded, file=sys.stderr)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ.copy()
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().splitlines()[-1] == "[]", (args, result.stderr)


def test_a_bad_number_is_a_usage_error():
    result = run("log", "--limit", "many")
    assert result.returncode == 2 and "'many' is not a valid integer" in result.stderr
