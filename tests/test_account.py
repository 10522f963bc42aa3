"""`letterkit account add|list|test|remove`: the account in config.toml, the password never."""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import json
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from conftest import REAL_SIGNER
from smtp_server import (  # noqa: F401
    PASSWORD,
    USERNAME,
    free_port,
    make_smtp_server,
    smtp_server,
    test_ca,
    write_campaign,
)

from letterkit.presets import PRESETS


def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "letterkit" / "config.toml"


def test_add_stores_the_password_in_the_keyring_only(invoke, smtp_server, tmp_path):
    result = invoke(*smtp_server.account_args("mine"), "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "password in the OS keyring" in result.stderr
    assert "letterkit account test mine" in result.stderr
    assert PASSWORD not in result.output
    text = config_file(tmp_path).read_text()
    assert PASSWORD not in text and "[account.mine]" in text and 'account = "mine"' in text
    assert f'ca_file = "{smtp_server.ca_file}"' in text
    assert keyring.get_password("letterkit", "mine") == PASSWORD
    assert config_file(tmp_path).stat().st_mode & 0o777 == 0o600


def test_list_test_and_remove(invoke, smtp_server):
    invoke(*smtp_server.account_args("mine"), "--password-stdin", input=PASSWORD + "\n")
    listed = invoke("account", "list", "--json")
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert doc["kind"] == "accounts" and doc["default"] == "mine"
    (acct,) = doc["accounts"]
    assert acct["name"] == "mine" and acct["host"] == "127.0.0.1" and acct["port"] == smtp_server.port
    assert acct["security"] == "starttls" and acct["from"] == USERNAME and acct["password"] == "keyring"
    assert PASSWORD not in listed.output
    plain = invoke("account", "list")
    assert plain.stdout.splitlines()[0].split("\t")[:3] == ["name", "host", "port"]

    tested = invoke("account", "test", "mine")
    assert tested.exit_code == 0, tested.output
    assert "certificate verified" in tested.stderr and f"authenticated as {USERNAME}" in tested.stderr
    assert "Account mine works." in tested.stderr
    assert smtp_server.count() == 0
    as_json = json.loads(invoke("account", "test", "--json").stdout)
    assert as_json["ok"] is True and as_json["error"] is None and len(as_json["steps"]) == 4

    removed = invoke("account", "remove", "mine")
    assert removed.exit_code == 0, removed.output
    assert "with its password from the keyring" in removed.stderr
    assert keyring.get_password("letterkit", "mine") is None
    assert json.loads(invoke("account", "list", "--json").stdout)["accounts"] == []
    again = invoke("account", "remove", "mine")
    assert again.exit_code == 2 and "no account named 'mine'" in again.stderr


def test_account_test_says_what_failed(invoke, smtp_server):
    invoke(*smtp_server.account_args("bad"), "--password-stdin", input="wrong\n")
    result = invoke("account", "test", "bad")
    assert result.exit_code == 2
    assert "✓ TLS" in result.stderr  # what worked before the failure
    assert "wrong username or password" in result.stderr and "wrong\n" not in result.stderr
    doc = json.loads(invoke("account", "test", "bad", "--json").stdout)
    assert doc["ok"] is False and "wrong username or password" in doc["error"]

    invoke(*smtp_server.account_args("noca", ca=False), "--password-stdin", input=PASSWORD + "\n")
    untrusted = invoke("account", "test", "noca")
    assert untrusted.exit_code == 2 and "untrusted certificate" in untrusted.stderr

    port = free_port()  # nothing listens there
    down = invoke("account", "add", "down", "--host", "127.0.0.1", "--port", str(port), "--security", "none",
                  "--from", USERNAME, "--no-login")  # fmt: skip
    assert down.exit_code == 0, down.output
    refused = invoke("account", "test", "down")
    assert refused.exit_code == 1 and f"127.0.0.1:{port}: connection refused" in refused.stderr
    unknown = invoke("account", "test", "nobody")
    assert unknown.exit_code == 2 and "no account named 'nobody'" in unknown.stderr


def test_account_test_exit_codes_are_in_its_help(invoke):
    text = " ".join(invoke("account", "test", "--help").stdout.split())
    assert "Exit status: 0 the account works; 2 something to fix" in text
    assert "1 the server cannot be reached now" in text


def test_account_test_without_a_password_is_a_setup_problem(invoke, smtp_server):
    assert invoke(*smtp_server.account_args("mine")).exit_code == 0
    result = invoke("account", "test", "mine")  # no terminal: nobody to ask
    assert result.exit_code == 2 and "no password for account 'mine'" in result.stderr


NO_BACKENDS = [keyring.backends.fail.Keyring, keyring.backends.null.Keyring]


@pytest.mark.parametrize("backend", NO_BACKENDS, ids=["fail", "null"])
def test_without_a_keyring_no_hint_recommends_password_stdin(invoke, smtp_server, tmp_path, monkeypatch,
                                                            backend):  # fmt: skip
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{backend.__module__}.Keyring")
    keyring.set_keyring(backend())
    outputs = []
    added = invoke(*smtp_server.account_args("mine"))
    assert added.exit_code == 0, added.output
    assert "LETTERKIT_SMTP_PASSWORD" in added.stderr and "--password-command" in added.stderr
    assert "on a terminal" in added.stderr
    outputs.append(added.output)
    untested = invoke("account", "test", "mine")
    assert untested.exit_code == 2 and "LETTERKIT_SMTP_PASSWORD" in untested.stderr
    outputs.append(untested.output)
    stored = invoke(*smtp_server.account_args("mine"), "--replace", "--password-stdin", input=PASSWORD + "\n")
    assert stored.exit_code == 2 and "no usable keyring backend" in stored.stderr  # null keeps nothing
    outputs.append(stored.output)
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", "wrong")
    wrong = invoke("account", "test", "mine")
    assert wrong.exit_code == 2 and "wrong username or password" in wrong.stderr
    assert "LETTERKIT_SMTP_PASSWORD holds a wrong password" in wrong.stderr
    outputs.append(wrong.output)
    monkeypatch.delenv("LETTERKIT_SMTP_PASSWORD")
    outputs.append(invoke("account", "list").output)
    config_file(tmp_path).unlink()
    outputs.append(invoke("outbox", "flush").output)
    outputs.append(invoke("account", "list").output)
    for text in outputs:
        assert "--password-stdin" not in text, text


def test_with_a_keyring_the_hint_offers_it(invoke, smtp_server):
    added = invoke(*smtp_server.account_args("mine"))
    assert "--password-stdin --replace" in added.stderr
    invoke(*smtp_server.account_args("mine"), "--replace", "--password-stdin", input="wrong\n")
    wrong = invoke("account", "test", "mine")
    assert wrong.exit_code == 2 and "store the right one" in wrong.stderr


@pytest.mark.parametrize("backend", [None, *NO_BACKENDS], ids=["keyring", "fail", "null"])
def test_remove_without_a_stored_password_does_not_warn(invoke, monkeypatch, backend):
    if backend is not None:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{backend.__module__}.Keyring")
        keyring.set_keyring(backend())
    added = invoke("account", "add", "relay", "--host", "127.0.0.1", "--port", "2525", "--security", "none",
                   "--from", USERNAME, "--username", USERNAME)  # fmt: skip
    assert added.exit_code == 0, added.output
    removed = invoke("account", "remove", "relay")
    assert removed.exit_code == 0, removed.output
    assert removed.stderr.strip() == "Account relay removed."


def test_no_keyring_backend_saves_nothing(invoke, smtp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())
    result = invoke(*smtp_server.account_args("mine"), "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 2
    assert "no usable keyring backend on this machine" in result.stderr
    assert "LETTERKIT_SMTP_PASSWORD" in result.stderr and "Traceback" not in result.output
    assert not config_file(tmp_path).exists()
    # a password_command needs no keyring
    ok = invoke(*smtp_server.account_args("mine"), "--password-command", "pass show mail")
    assert ok.exit_code == 0, ok.output
    assert 'password_command = "pass show mail"' in config_file(tmp_path).read_text()
    listed = json.loads(invoke("account", "list", "--json").stdout)
    assert listed["accounts"][0]["password"] == "command"


def test_add_checks_its_input(invoke, smtp_server):
    no_host = invoke("account", "add", "x", "--from", USERNAME)
    assert no_host.exit_code == 2 and "--host is required" in no_host.stderr
    bad_from = invoke("account", "add", "x", "--host", "smtp.example.org", "--from", "not an address")
    assert bad_from.exit_code == 2 and "not a valid e-mail address" in bad_from.stderr
    bad_sec = invoke("account", "add", "x", "--host", "smtp.example.org", "--from", USERNAME,
                     "--security", "ssl")  # fmt: skip
    assert bad_sec.exit_code == 2 and "unknown security" in bad_sec.stderr
    empty = invoke(*smtp_server.account_args("x"), "--password-stdin", input="\n")
    assert empty.exit_code == 2 and "no password on standard input" in empty.stderr
    both = invoke(*smtp_server.account_args("x"), "--password-stdin", "--password-command", "pass x")
    assert both.exit_code == 2
    assert invoke(*smtp_server.account_args("x")).exit_code == 0
    twice = invoke(*smtp_server.account_args("x"))
    assert twice.exit_code == 2 and "--replace" in twice.stderr
    assert invoke(*smtp_server.account_args("x"), "--replace").exit_code == 0


def test_presets_and_defaults(invoke, tmp_path):
    gmail = invoke("account", "add", "g", "--preset", "gmail", "--username", "me@example.org")
    assert gmail.exit_code == 0, gmail.output
    assert "app password" in gmail.stderr
    doc = json.loads(invoke("account", "list", "--json").stdout)
    (acct,) = doc["accounts"]
    # stored only: no test ever connects anywhere but 127.0.0.1
    preset = PRESETS["gmail"]
    assert (acct["host"], acct["port"], acct["security"]) == (preset["host"], 587, "starttls")
    assert acct["username"] == acct["from"] == "me@example.org"
    fm = invoke("account", "add", "f", "--preset", "fastmail", "--from", "me@example.net", "--default")
    assert fm.exit_code == 0, fm.output
    doc = json.loads(invoke("account", "list", "--json").stdout)
    by_name = {a["name"]: a for a in doc["accounts"]}
    assert (by_name["f"]["port"], by_name["f"]["security"]) == (465, "tls")
    assert doc["default"] == "f" and by_name["f"]["default"] and not by_name["g"]["default"]
    unknown = invoke("account", "add", "u", "--preset", "nope", "--from", "me@example.org")
    assert unknown.exit_code == 2 and "unknown preset" in unknown.stderr


def test_add_hints_at_letters_waiting(invoke, smtp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", hand=False)))
    queued = invoke("send", "protest", "--yes", *REAL_SIGNER)
    assert queued.exit_code == 0, queued.output
    added = invoke(*smtp_server.account_args(), "--password-stdin", input=PASSWORD + "\n")
    assert "3 letter(s) wait in the outbox" in added.stderr and "letterkit outbox flush" in added.stderr


@pytest.mark.parametrize("command", [["account", "--help"], ["outbox", "--help"], ["send", "--help"]])
def test_help_says_where_files_are(invoke, command):
    result = invoke(*command)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "keyring" in text if command[0] == "account" else "ledger.sqlite3" in text


def test_numbers_in_options_are_numbers_and_bad_ones_are_usage_errors(invoke):
    """Numbers in options are converted by Typer: ints, floats, and refusals (usage errors, exit 2)."""
    added = invoke("account", "add", "relay", "--host", "127.0.0.1", "--port", "2525", "--timeout", "7.5",
                   "--security", "none", "--from", "me@example.org", "--no-login")  # fmt: skip
    assert added.exit_code == 0, added.output
    (acct,) = json.loads(invoke("account", "list", "--json").stdout)["accounts"]
    assert acct["port"] == 2525 and acct["timeout"] == 7.5
    for option, value in (("--port", "25x"), ("--timeout", "soon")):
        bad = invoke("account", "add", "other", "--host", "127.0.0.1", option, value)
        assert bad.exit_code == 2 and f"'{value}' is not a valid" in bad.stderr
