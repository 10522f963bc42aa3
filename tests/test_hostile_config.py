"""config.toml is checked when it is read: a wrong value is exit 2 naming the file and key."""

from __future__ import annotations

import pytest
from conftest import REAL_SIGNER

ACCOUNT = '[account.main]\nhost = "127.0.0.1"\nfrom = "me@home.internal"\n'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (ACCOUNT + 'security = "startls"\n', "security = 'startls' is not one of starttls, tls, none"),
        (ACCOUNT + "port = true\n", "port = True must be a whole number"),
        (ACCOUNT + "port = 0\n", "port = 0 must be a whole number from 1 to 65535"),
        (ACCOUNT + "port = 587.5\n", "port = 587.5 must be a whole number"),
        (ACCOUNT + "timeout = nan\n", "timeout = nan must be a number"),
        (ACCOUNT + "timeout = -1\n", "timeout = -1 must be a number"),
        ("[signer]\naddress = 5\n", "address = 5 must be a list of strings"),
        ("[signer]\nname = 5\n", "name = 5 must be text in quotes, not a number"),
        (ACCOUNT + 'securty = "tls"\n', "[account.main]: unknown key 'securty'"),
        (ACCOUNT + 'imap_security = "startls"\n', "imap_security = 'startls' is not one of"),
        (ACCOUNT + 'auth = "oauth"\n', "auth = 'oauth' is not one of password, oauth2"),
        (ACCOUNT + 'save_sent = "yes"\n', "save_sent = 'yes' must be true or false"),
        (ACCOUNT + "imap_port = 1e9\n", "imap_port = 1000000000.0 must be a whole number from 0 to 65535"),
        ('[default]\naccount = "main"\n', "unknown key 'default'"),
        ("[defaults]\naccount = 5\n", "account = 5 must be text"),
        ('[defaults]\nwindow = "9 to 5"\n', "[defaults]: window = '9 to 5' is not a send window"),
        ('[defaults]\nrate = "5/week"\n', "[defaults]: rate = '5/week' is not a rate"),
        ("account = 5\n", "[account] must be a table"),
        ("defaults = 5\n", "[defaults] must be a table"),
        ("signer = 5\n", "[signer] must be a table"),
    ],
)
def test_a_wrong_config_value_is_exit_2_naming_file_and_key(invoke, tmp_path, text, says):
    config = tmp_path / "config" / "letterkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text, encoding="utf-8")
    result = invoke("send", "protest", "--dry-run", *REAL_SIGNER)
    assert result.exit_code == 2, result.output
    assert "config.toml" in result.stderr and says in result.stderr
    assert "Traceback" not in result.output


def test_a_config_error_names_the_line_of_an_account_key(invoke, tmp_path):
    config = tmp_path / "config" / "letterkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# mine\n\n" + ACCOUNT + "timeout = 0\n", encoding="utf-8")
    result = invoke("account", "list")
    assert result.exit_code == 2
    assert f"{config}:6 [account.main]: timeout = 0 must be a number from 1 to 600" in result.stderr


def test_a_binary_config_is_a_one_line_error(invoke, tmp_path):
    config = tmp_path / "config" / "letterkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_bytes(b"\xff\xfe\x00binary\x00")
    result = invoke("account", "list")
    assert result.exit_code == 2 and "not a text file" in result.stderr


@pytest.mark.parametrize(("option", "value"), [("--timeout", "nan"), ("--timeout", "-1"), ("--timeout", "0"),
                                               ("--port", "0"), ("--port", "70000")])  # fmt: skip
def test_account_add_refuses_numbers_out_of_range(invoke, option, value):
    result = invoke("account", "add", "main", "--host", "127.0.0.1", "--from", "me@home.internal",
                    "--no-login", option, value)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "out of range" in result.stderr or "must be 1 to 600" in result.stderr
    assert invoke("account", "list", "--json").stdout.count('"main"') == 0


def test_the_transport_never_falls_back_to_plain_text(tmp_path):
    from letterkit.config import Account
    from letterkit.errors import TransportError
    from letterkit.transport import SmtpTransport

    typo = Account(name="main", host="127.0.0.1", port=1, security="startls", from_addr="me@home.internal")
    with pytest.raises(TransportError, match="unknown security 'startls'"):
        SmtpTransport(typo).open()


def test_a_config_error_names_the_line(invoke, tmp_path):
    config = tmp_path / "config" / "letterkit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# my accounts\n" + ACCOUNT + 'security = "startls"\n', encoding="utf-8")
    result = invoke("account", "list")
    assert result.exit_code == 2 and "config.toml:5 [account.main]: security" in result.stderr


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('colour = "red"', "unknown key 'colour'"),
        ("groups = 5", "groups = 5 must be text or a list of texts"),
        ("name = 5", "name = 5 must be text in quotes, not a number"),
        ('name = ""', "name = '' must not be empty"),
    ],
)
def test_a_wrong_contact_value_names_file_line_and_key(invoke, tmp_path, line, says):
    contacts = tmp_path / "config" / "letterkit" / "contacts.toml"
    contacts.parent.mkdir(parents=True)
    body = '[[contact]]\nid = "emb"\nname = "Embassy"\nemail = "e@home.internal"\ncampaigns = ["*"]\n'
    text = body.replace('name = "Embassy"', line) if line.startswith("name") else body + line + "\n"
    contacts.write_text(text, encoding="utf-8")
    result = invoke("check")
    assert result.exit_code == 2, result.output
    assert f"{contacts}:1: {says}" in result.stderr
