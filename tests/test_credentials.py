"""Password sources, in order: environment, password_command, keyring, prompt."""

from __future__ import annotations

import sys

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest

from letterkit import credentials
from letterkit.config import Account
from letterkit.errors import CredentialError

ACCOUNT = Account(name="mine", host="smtp.example.org", username="me@example.org", from_addr="me@example.org")


def command(code: str) -> str:
    """A password_command running a tiny Python program (no shell involved)."""
    return f"{sys.executable} -c {code!r}"


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """A headless machine: the keyring has no usable backend."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())


def test_environment_comes_first(monkeypatch):
    credentials.store_password("mine", "from-keyring")
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", "from-env")
    acct = Account(**{**ACCOUNT.__dict__, "password_command": command("print('from-command')")})
    assert credentials.get_password(acct, interactive=False) == "from-env"
    assert credentials.password_source(acct) == "env"


def test_password_command_comes_before_the_keyring():
    credentials.store_password("mine", "from-keyring")
    acct = Account(**{**ACCOUNT.__dict__, "password_command": command("print('line one'); print('two')")})
    assert credentials.get_password(acct, interactive=False) == "line one"
    assert credentials.password_source(acct) == "command"


def test_a_failing_command_is_named_but_its_output_is_not():
    acct = Account(
        **{**ACCOUNT.__dict__, "password_command": command("import sys; print('s3' + 'cret'); sys.exit(3)")}
    )
    with pytest.raises(CredentialError) as err:
        credentials.get_password(acct, interactive=False)
    assert "exit status 3" in str(err.value) and "password_command" in str(err.value)
    assert "s3cret" not in str(err.value)
    missing = Account(**{**ACCOUNT.__dict__, "password_command": "no-such-password-tool show mail"})
    with pytest.raises(CredentialError, match="no-such-password-tool not found"):
        credentials.get_password(missing, interactive=False)
    empty = Account(**{**ACCOUNT.__dict__, "password_command": command("pass")})
    with pytest.raises(CredentialError, match="printed nothing"):
        credentials.get_password(empty, interactive=False)


def test_keyring_store_get_delete():
    assert credentials.password_source(ACCOUNT) == "prompt"
    credentials.store_password("mine", "kept in the keyring")
    assert keyring.get_password("letterkit", "mine") == "kept in the keyring"
    assert credentials.get_password(ACCOUNT, interactive=False) == "kept in the keyring"
    assert credentials.password_source(ACCOUNT) == "keyring"
    assert credentials.delete_password("mine") is True
    assert credentials.delete_password("mine") is False
    with pytest.raises(CredentialError, match="no password for account 'mine'"):
        credentials.get_password(ACCOUNT, interactive=False)


def test_store_refuses_empty_or_multiline_passwords():
    with pytest.raises(CredentialError, match="empty"):
        credentials.store_password("mine", "")
    with pytest.raises(CredentialError, match="line break"):
        credentials.store_password("mine", "a\nb")


def test_no_keyring_backend_names_the_other_sources(no_keyring):
    with pytest.raises(CredentialError) as err:
        credentials.get_password(ACCOUNT, interactive=False)
    message = str(err.value)
    assert message.startswith("no usable keyring backend on this machine")
    assert "LETTERKIT_SMTP_PASSWORD" in message and "--password-command" in message
    assert "on a terminal" in message and "--password-stdin" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(CredentialError, match="no usable keyring backend"):
        credentials.store_password("mine", "x")
    assert credentials.delete_password("mine") is False  # nothing can have been stored: no error
    assert credentials.password_source(ACCOUNT) == "unavailable"


def test_no_keyring_but_environment_works(no_keyring, monkeypatch):
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", "from-env")
    assert credentials.get_password(ACCOUNT, interactive=False) == "from-env"


def test_interactive_prompt_is_the_last_resort(monkeypatch):
    import getpass

    prompts = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or "typed")
    assert credentials.get_password(ACCOUNT, interactive=True) == "typed"
    assert prompts == ["Password for me@example.org at smtp.example.org: "]
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "")
    with pytest.raises(CredentialError, match="no password given"):
        credentials.get_password(ACCOUNT, interactive=True)


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring, keyring.backends.null.Keyring])
def test_hints_without_a_keyring_name_only_sources_that_work(backend, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{backend.__module__}.Keyring")
    keyring.set_keyring(backend())
    assert not credentials.keyring_usable()
    with pytest.raises(CredentialError) as err:
        credentials.get_password(ACCOUNT, interactive=False)
    for hint in (
        str(err.value),
        credentials.no_password_hint("mine"),
        credentials.wrong_password_hint(ACCOUNT),
    ):
        assert "--password-stdin" not in hint
        assert "LETTERKIT_SMTP_PASSWORD" in hint and "password_command" in hint and "terminal" in hint
    with pytest.raises(CredentialError, match="no usable keyring backend"):
        credentials.store_password("mine", "x")  # null would keep nothing and say nothing


def test_wrong_password_hint_names_where_the_password_came_from(monkeypatch):
    assert credentials.keyring_usable()
    assert "--password-stdin --replace" in credentials.no_password_hint("mine")
    credentials.store_password("mine", "x")
    assert "store the right one" in credentials.wrong_password_hint(ACCOUNT)
    with_command = Account(**{**ACCOUNT.__dict__, "password_command": "pass show mail"})
    assert "'pass show mail' printed a wrong password" in credentials.wrong_password_hint(with_command)
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", "x")
    assert credentials.wrong_password_hint(ACCOUNT).startswith("LETTERKIT_SMTP_PASSWORD holds a wrong")


def test_a_command_password_ends_at_a_newline_only():
    """U+0085, U+2028 and a lone CR are part of a password; only "\\n" ends its line."""
    script = r"import sys; sys.stdout.buffer.write('pa\u0085ss\u2028wörd\rx\r\nsecond line\n'.encode())"
    acct = Account(**{**ACCOUNT.__dict__, "password_command": command(script)})
    assert credentials.get_password(acct, interactive=False) == "pa\u0085ss\u2028wörd\rx"


def test_a_command_printing_bytes_that_are_not_utf8_is_an_error():
    acct = Account(
        **{
            **ACCOUNT.__dict__,
            "password_command": command(r"import sys; sys.stdout.buffer.write(b'\xff\xfe')"),
        }
    )
    with pytest.raises(CredentialError, match="not UTF-8"):
        credentials.get_password(acct, interactive=False)
