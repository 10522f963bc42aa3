"""Every test runs with its own config dir, data dir, keyring and campaign lookup."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests talk to 127.0.0.1 only: any other name lookup or connection, here or in a
    letterkit process a test starts, is refused and fails the test (tests/_loopback.py)."""
    import _loopback

    monkeypatch.setenv("LETTERKIT_TEST_LOOPBACK", "1")
    _loopback.VIOLATIONS.clear()
    _loopback.install()
    yield
    _loopback.uninstall()
    assert not _loopback.VIOLATIONS, f"a test tried to reach another machine: {_loopback.VIOLATIONS}"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Move every user dir and the keyring backend into tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("LETTERKIT_TEST_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "_keyring.FileKeyring")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    for var in (
        "LETTERKIT_CAMPAIGN",
        "LETTERKIT_ACCOUNT",
        "LETTERKIT_SMTP_PASSWORD",
        "LETTERKIT_SIGNER_NAME",
        "LETTERKIT_SIGNER_EMAIL",
        "EDITOR",
        "VISUAL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LETTERKIT_NOW", NOW)  # no test depends on the day it runs
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # not the repo: the bundled campaign is found through the package
    import _keyring
    import keyring

    keyring.set_keyring(_keyring.FileKeyring())
    from letterkit.cli import _output

    _output.reset_consoles()
    _output.STATE.campaign_dir = None
    yield tmp_path
    _output.reset_consoles()


@pytest.fixture
def runner():
    """A CliRunner whose result.stdout and result.stderr are separate."""
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def invoke(runner):
    """invoke(*args, input=None) -> Result; runs the real Typer app in-process."""
    from letterkit.cli import _output, app

    def _invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        _output.reset_consoles()
        _output.STATE.campaign_dir = None
        return runner.invoke(app, list(args), input=input, env=env)

    return _invoke


@pytest.fixture
def campaign_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled campaign."""
    import shutil

    dest = tmp_path / "campaign"
    (dest / "templates").mkdir(parents=True)
    shutil.copy(REPO / "recipients.toml", dest / "recipients.toml")
    for f in (REPO / "templates").iterdir():
        shutil.copy(f, dest / "templates" / f.name)
    return dest


NOW = "2026-11-26T10:00:00+00:00"
TODAY = dt.date(2026, 11, 26)

# A signer whose letters may be queued for any server: ".internal" is a private-use top-level
# name (ICANN, 2024) that never reaches the public internet.  SIGNER's example.org is a
# placeholder domain: letterkit queues its letters only for a server on 127.0.0.1.
REAL_SIGNER = [
    "--name",
    "A. Person",
    "--email",
    "a.person@home.internal",
    "--city",
    "Leeds",
    "--country",
    "UK",
]
SIGNER = ["--name", "A. Person", "--email", "a.person@example.org", "--city", "Leeds", "--country", "UK"]
