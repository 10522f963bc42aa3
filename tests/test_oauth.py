"""OAuth2 sign-in (issue 15) against real servers on 127.0.0.1: an aiosmtpd server speaking
XOAUTH2/OAUTHBEARER with the providers' error formats, and an HTTPS token endpoint standing in
for Microsoft's authority and Google's token service (reached through configuration only)."""

from __future__ import annotations

import base64
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REAL_SIGNER
from oauth_servers import (
    BROWSER_SCRIPT,
    CLIENT_ID,
    CLIENT_SECRET,
    DEVICE_MESSAGE,
    browser_for,
    start_oauth_imap,
    start_oauth_smtp,
    start_token_endpoint,
)
from smtp_server import USERNAME, test_ca, write_campaign  # noqa: F401

from letterkit import oauth
from letterkit.errors import CredentialError, TransportError


@pytest.fixture
def endpoint(test_ca, monkeypatch):  # noqa: F811 (the fixture)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(test_ca[1]))  # the test CA, for requests (msal, google)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LETTERKIT_RETRY_DELAY", "0.01")
    ep = start_token_endpoint(test_ca)
    yield ep
    ep.server.shutdown()
    ep.server.server_close()


@pytest.fixture
def oauth_smtp(test_ca, endpoint):  # noqa: F811 (the fixture)
    started = []

    def make(style="microsoft", security="starttls", accept=None):
        server = start_oauth_smtp(
            test_ca, style=style, security=security, accept=accept or (lambda t: t in endpoint.live)
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def campaign(tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(write_campaign(tmp_path / "camp", hand=False)))


def add_outlook(invoke, server, endpoint, name="outlook", *, client_id=True):
    added = invoke(
        "account", "add", name, "--auth", "oauth2", "--oauth-provider", "microsoft", "--host", server.host,
        "--port", str(server.port),
        "--username", USERNAME, "--ca-file", str(server.ca_file), "--oauth-authority", endpoint.authority,
        *(["--client-id", CLIENT_ID] if client_id else []),
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return added


def add_gmail(invoke, server, endpoint, name="gmail"):
    added = invoke(
        "account", "add", name, "--oauth-provider", "google", "--auth", "oauth2", "--host", server.host,
        "--port", str(server.port), "--username", USERNAME, "--ca-file", str(server.ca_file),
        "--client-id", "123-test.apps.googleusercontent.com", "--oauth-token-uri", endpoint.token_uri,
        "--oauth-auth-uri", f"{endpoint.url}/auth",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return added


def keyring_entries(tmp_path: Path) -> dict[str, str]:
    return json.loads((tmp_path / "keyring.json").read_text())


def files_holding(root: Path, secrets: list[str], *, besides: Path) -> list[str]:
    """Every file under ``root`` (but ``besides``, the test keyring) holding one of ``secrets``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path != besides:
            data = path.read_bytes()
            found += [f"{path}: {s[:6]}…" for s in secrets if s.encode() in data]
    return found


def test_sasl_initial_responses_match_the_specifications():
    # Google's XOAUTH2 document, its example byte for byte
    xo = oauth.sasl_response(
        "XOAUTH2", "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    )
    assert xo == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    # RFC 7628 4.1, and the saslname escapes of RFC 5801 for "," and "="
    bearer = oauth.oauthbearer_response("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                                        "server.example.com", 143)  # fmt: skip
    assert bearer == (
        "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )
    assert oauth.oauthbearer_response("a=b,c@x", "T").startswith("n,a=a=3Db=2Cc@x,\x01auth=Bearer T")
    assert oauth.choose_mechanism("LOGIN PLAIN XOAUTH2 OAUTHBEARER") == "OAUTHBEARER"
    assert oauth.choose_mechanism("LOGIN XOAUTH2") == "XOAUTH2" and oauth.choose_mechanism("PLAIN") == ""
    google_error = base64.b64decode(
        "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
    )
    assert oauth.token_rejected(
        "535 5.7.8 Username and Password not accepted", oauth.error_challenge(google_error)
    )
    assert oauth.token_rejected("535 5.7.3 Authentication unsuccessful [X.PROD.OUTLOOK.COM]", {})
    assert not oauth.token_rejected("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication", {})
    from letterkit.config import Account

    guess = {
        h: oauth.provider_of(Account("a", h))
        for h in ("smtp.gmail.com", "smtp.office365.com", "notgmail.com")
    }
    assert guess == {"smtp.gmail.com": "google", "smtp.office365.com": "microsoft", "notgmail.com": ""}


def test_an_oauth2_account_takes_no_password_from_the_cli_or_a_script(invoke):
    from letterkit.config import Account, Config
    from letterkit.errors import InvalidValue
    from letterkit.service import add_account

    oauth2 = ["account", "add", "o", "--host", "127.0.0.1", "--auth", "oauth2"]
    oauth2 += ["--oauth-provider", "microsoft"]
    refused = invoke(*oauth2, "--username", USERNAME, "--password-stdin", input="pw\n")
    assert refused.exit_code == 2 and "an OAuth2 account has no password" in refused.stderr
    piped = invoke(*oauth2, "--username", USERNAME, "--password-command", "echo pw")
    assert piped.exit_code == 2 and "an OAuth2 account has no password" in piped.stderr
    account = Account("o", "127.0.0.1", username=USERNAME, from_addr=USERNAME, auth="oauth2")
    config = Config()
    with pytest.raises(InvalidValue, match="an OAuth2 account has no password"):
        add_account(config, account, password="pw")
    assert config.accounts == {} and invoke("account", "list", "--json").exit_code == 0


def test_presets_offer_oauth2_and_outlook_defaults_to_it(invoke):
    added = invoke("account", "add", "o", "--preset", "outlook", "--username", USERNAME)
    assert added.exit_code == 0 and "letterkit account login o" in added.stderr + added.stdout
    assert invoke("account", "add", "g", "--preset", "gmail", "--username", USERNAME).exit_code == 0
    g2 = invoke("account", "add", "g2", "--preset", "gmail", "--auth", "oauth2", "--username", USERNAME)
    assert g2.exit_code == 0 and "letterkit account login g2" in g2.stderr
    m = invoke("account", "add", "m", "--preset", "office365", "--auth", "oauth2", "--username", USERNAME)
    assert m.exit_code == 0
    accounts = {a["name"]: a for a in json.loads(invoke("account", "list", "--json").stdout)["accounts"]}
    assert accounts["o"]["auth"] == "oauth2" and accounts["o"]["oauth_provider"] == "microsoft"
    assert accounts["o"]["password"] == "not signed in: letterkit account login o"
    assert accounts["g"]["auth"] == "password" and "oauth_provider" not in accounts["g"]
    assert accounts["g2"]["oauth_provider"] == "google" and accounts["m"]["oauth_provider"] == "microsoft"
    table = invoke("account", "list").stdout  # not a terminal: TSV with the auth column
    assert "\tauth" in table.splitlines()[0] and "\toauth2" in table
    bad = invoke("account", "add", "x", "--preset", "outlook", "--username", USERNAME, "--auth", "kerberos")
    assert bad.exit_code == 2 and "unknown auth 'kerberos'" in bad.stderr
    both = invoke("account", "add", "y", "--preset", "outlook", "--username", USERNAME, "--password-stdin",
                  input="secret\n")  # fmt: skip
    assert both.exit_code == 2 and "no password" in both.stderr


def test_login_keeps_the_refresh_token_in_the_keyring_and_send_renews_the_access_token(
    invoke, oauth_smtp, endpoint, campaign, tmp_path
):
    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    login = invoke("account", "login", "outlook")
    assert login.exit_code == 0, login.output
    assert DEVICE_MESSAGE in login.stderr and f"for {USERNAME}" in login.stderr and login.stdout == ""
    stored = keyring_entries(tmp_path)["letterkit\0outlook/oauth2-refresh-token"]
    assert stored in endpoint.refresh_tokens and endpoint.grants(
        "urn:ietf:params:oauth:grant-type:device_code"
    )

    endpoint.live.clear()  # the access token of the sign-in has expired meanwhile
    sent = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert sent.exit_code == 0, sent.output
    assert server.count() == 3 and endpoint.grants("refresh_token") == 1
    assert server.handler.attempts == [("XOAUTH2", USERNAME, True)]  # Microsoft offers XOAUTH2 only
    assert all(m.login == USERNAME and m.tls for m in server.messages)
    rotated = keyring_entries(tmp_path)["letterkit\0outlook/oauth2-refresh-token"]
    assert rotated != stored and rotated in endpoint.refresh_tokens  # the new refresh token is kept

    tested = invoke("account", "test", "outlook")
    assert tested.exit_code == 0, tested.output
    assert (
        f"authenticated as {USERNAME} with XOAUTH2 (token from Microsoft sign-in for {USERNAME}, "
        "valid until 2026-11-26 11:00 UTC)"
    ) in " ".join(tested.stderr.split())
    listed = json.loads(invoke("account", "list", "--json").stdout)["accounts"][0]
    assert listed["auth"] == "oauth2" and listed["password"] == "signed in (refresh token in the keyring)"

    outputs = [r.stdout + r.stderr for r in (login, sent, tested)]
    secrets = [*endpoint.issued, *endpoint.refresh_tokens, stored]
    assert not any(s in out for s in secrets for out in outputs)
    assert files_holding(tmp_path, secrets, besides=tmp_path / "keyring.json") == []
    config = (tmp_path / "config" / "letterkit" / "config.toml").read_text()
    assert f'oauth_client_id = "{CLIENT_ID}"' in config and 'auth = "oauth2"' in config


def test_google_sign_in_with_pkce_and_a_token_the_server_calls_expired(
    invoke, oauth_smtp, endpoint, campaign, tmp_path
):
    from letterkit.config import load_config
    from letterkit.service import login_account

    server = oauth_smtp("google")
    add_gmail(invoke, server, endpoint)
    shown: list[str] = []
    _acct, token = login_account(
        load_config(), "gmail", client_secret=CLIENT_SECRET, show=shown.append, open_url=browser_for(endpoint)
    )
    assert (
        token.source == "Google sign-in"
        and endpoint.challenges
        and endpoint.grants("authorization_code") == 1
    )
    entries = keyring_entries(tmp_path)
    assert entries["letterkit\0gmail/oauth2-client-secret"] == CLIENT_SECRET
    assert entries["letterkit\0gmail/oauth2-refresh-token"] in endpoint.refresh_tokens

    endpoint.live.clear()
    endpoint.rotate = False  # Google keeps the refresh token
    endpoint.stale_next = 1  # the first renewed token is refused by the server as expired
    sent = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert sent.exit_code == 0, sent.output
    assert server.count() == 3
    # OAUTHBEARER preferred; refused with RFC 7628's error challenge; renewed once; accepted
    assert server.handler.attempts == [("OAUTHBEARER", USERNAME, False), ("OAUTHBEARER", USERNAME, True)]
    assert endpoint.grants("refresh_token") == 2
    config = (tmp_path / "config" / "letterkit" / "config.toml").read_text()
    assert CLIENT_SECRET not in config and "googleusercontent" in config
    secrets = [*endpoint.issued, *endpoint.refresh_tokens]
    assert files_holding(tmp_path, secrets, besides=tmp_path / "keyring.json") == []
    assert not any(s in sent.stdout + sent.stderr for s in secrets)


def test_google_login_from_the_command_line_through_the_browser(
    invoke, oauth_smtp, endpoint, tmp_path, monkeypatch
):
    import webbrowser

    browser = tmp_path / "browser.py"
    browser.write_text(BROWSER_SCRIPT)
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")  # the stdlib's way to pick a browser
    monkeypatch.setattr(webbrowser, "_tryorder", None, raising=False)
    monkeypatch.setattr(webbrowser, "_browsers", {}, raising=False)
    add_gmail(invoke, oauth_smtp("google"), endpoint)
    login = invoke("account", "login", "gmail", "--client-secret-stdin", input=CLIENT_SECRET + "\n")
    assert login.exit_code == 0, login.output
    assert f"Sign in at: {endpoint.url}/auth?" in login.stderr and "token from Google sign-in" in login.stderr
    assert endpoint.grants("authorization_code") == 1 and login.stdout == ""
    entries = keyring_entries(tmp_path)
    assert entries["letterkit\0gmail/oauth2-client-secret"] == CLIENT_SECRET
    assert entries["letterkit\0gmail/oauth2-refresh-token"] in endpoint.refresh_tokens
    assert not any(t in login.output for t in endpoint.issued)


def test_xoauth2_error_challenge_then_refused_twice_names_the_fix(invoke, oauth_smtp, endpoint, tmp_path):
    server = oauth_smtp("google", accept=lambda _t: False)
    add_gmail(invoke, server, endpoint)
    from letterkit.config import load_config
    from letterkit.service import login_account

    login_account(
        load_config(), "gmail", client_secret=CLIENT_SECRET, show=print, open_url=browser_for(endpoint)
    )
    tested = invoke("account", "test", "gmail")
    assert tested.exit_code == 2
    line = " ".join(tested.stderr.split())
    assert "OAUTHBEARER sign-in refused" in line and "535 5.7.8" in line and "account login gmail" in line
    assert len(server.handler.attempts) == 2 and "Traceback" not in tested.output


def test_revoked_sign_in_exits_2_with_the_fix_and_the_letters_wait(
    invoke, oauth_smtp, endpoint, campaign, tmp_path
):
    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    assert invoke("account", "login", "outlook").exit_code == 0
    endpoint.revoke()
    sent = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert sent.exit_code == 2, sent.output
    assert "run `letterkit account login outlook` again" in sent.stderr and "Traceback" not in sent.output
    assert server.count() == 0
    waiting = json.loads(invoke("outbox", "--json").stdout)
    assert sum(1 for i in waiting["letters"] if i["status"] == "queued") == 3

    assert invoke("account", "login", "outlook").exit_code == 0  # the fix it names
    flushed = invoke("outbox", "flush", "--yes", "--rate", "0")
    assert flushed.exit_code == 0, flushed.output
    assert server.count() == 3  # nothing was lost


def test_not_signed_in_and_no_client_id_say_what_to_run(invoke, oauth_smtp, endpoint):
    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    tested = invoke("account", "test", "outlook")
    assert (
        tested.exit_code == 2
        and "not signed in" in tested.stderr
        and "account login outlook" in tested.stderr
    )
    assert invoke("account", "add", "bare", "--preset", "outlook", "--username", USERNAME).exit_code == 0
    login = invoke("account", "login", "bare")
    assert login.exit_code == 2 and "--client-id" in login.stderr
    password = invoke("account", "add", "pw", "--host", "127.0.0.1", "--from", USERNAME)
    assert password.exit_code == 0
    login = invoke("account", "login", "pw")
    assert login.exit_code == 2 and "signs in with a password" in login.stderr


def test_remove_takes_the_refresh_token_out_of_the_keyring(invoke, oauth_smtp, endpoint, tmp_path):
    server = oauth_smtp("microsoft")
    added = add_outlook(invoke, server, endpoint, client_id=False)
    assert "password not needed: OAuth2 (not signed in: letterkit account login outlook)" in added.stderr
    assert invoke("account", "login", "outlook").exit_code == 2  # no client id yet
    assert (
        invoke("account", "login", "outlook", "--client-id", CLIENT_ID).exit_code == 0
    )  # kept for next time
    assert (
        f'oauth_client_id = "{CLIENT_ID}"' in (tmp_path / "config" / "letterkit" / "config.toml").read_text()
    )
    assert invoke("account", "login", "outlook").exit_code == 0
    removed = invoke("account", "remove", "outlook")
    assert removed.exit_code == 0 and "keyring" in removed.stderr
    assert not any(k.startswith("letterkit\0outlook") for k in keyring_entries(tmp_path))


def test_access_token_is_kept_in_memory_until_it_expires(invoke, oauth_smtp, endpoint, monkeypatch):
    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    assert invoke("account", "login", "outlook").exit_code == 0
    from letterkit.config import load_config

    source = oauth.TokenSource(load_config().accounts["outlook"])
    first = source.get()
    assert source.get() is first and endpoint.grants("refresh_token") == 1
    monkeypatch.setenv("LETTERKIT_NOW", "2026-11-26T10:59:30+00:00")  # within a minute of its expiry
    assert source.get().value != first.value and endpoint.grants("refresh_token") == 2
    assert first.value not in repr(first) and "Microsoft sign-in" in repr(first)


def test_oauth_is_refused_without_tls_before_connecting_unless_loopback(invoke, oauth_smtp, tmp_path):
    refused = invoke("account", "add", "far", "--auth", "oauth2", "--host", "smtp.invalid",
                     "--security", "none", "--username", USERNAME, "--token-command", "true")  # fmt: skip
    assert refused.exit_code == 2 and "without TLS" in refused.stderr
    from letterkit.config import Account
    from letterkit.transport import SmtpTransport

    far = Account("far", "smtp.invalid", 25, "none", USERNAME, USERNAME, auth="oauth2", token_command="true")
    with pytest.raises(TransportError, match="refusing to send an OAuth2 token") as caught:
        SmtpTransport(far, retries=0).check()  # an unknown host: connecting would have said so instead
    assert caught.value.exit_code == 2

    token = "LOOPBACK" + "x" * 30
    server = oauth_smtp("google", security="none", accept=lambda t: t == token)
    script = tmp_path / "token.py"
    script.write_text(f"print({token!r})\n")
    near = Account("near", server.host, server.port, "none", USERNAME, USERNAME, auth="oauth2",
                   token_command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")  # fmt: skip
    steps = SmtpTransport(near, retries=0).check()
    assert any("with OAUTHBEARER (token from token_command" in s for s in steps)


def test_token_command_end_to_end(invoke, oauth_smtp, campaign, tmp_path, monkeypatch):
    token = "CMDTOKEN" + "q" * 40
    monkeypatch.setenv("TEST_ACCESS_TOKEN", token)
    server = oauth_smtp("microsoft", accept=lambda t: t == token)
    script = tmp_path / "print_token.py"
    script.write_text("import os\nprint(os.environ['TEST_ACCESS_TOKEN'])\n")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    added = invoke("account", "add", "org", "--host", server.host, "--port", str(server.port), "--username",
                   USERNAME, "--ca-file", str(server.ca_file), "--token-command", command)  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = json.loads(invoke("account", "list", "--json").stdout)["accounts"][0]
    assert listed["auth"] == "oauth2" and listed["password"] == "token command"
    tested = invoke("account", "test", "org")
    assert tested.exit_code == 0, tested.output
    assert f"with XOAUTH2 (token from token_command for {USERNAME})" in " ".join(tested.stderr.split())
    sent = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert sent.exit_code == 0, sent.output
    assert server.count() == 3
    outputs = " ".join(r.stdout + r.stderr for r in (added, tested, sent))
    assert token not in outputs
    assert files_holding(tmp_path, [token], besides=tmp_path / "keyring.json") == []
    assert (
        token not in (tmp_path / "keyring.json").read_text() if (tmp_path / "keyring.json").exists() else True
    )

    monkeypatch.setenv("TEST_ACCESS_TOKEN", "WRONG" + "z" * 30)  # refused, run again, refused: the fix
    wrong = invoke("account", "test", "org")
    assert wrong.exit_code == 2 and "535 5.7.3" in wrong.stderr and "token_command" in wrong.stderr
    assert "WRONG" not in wrong.output


def test_token_command_failures_are_one_line_without_the_output(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("import sys\nprint('SECRETOUTPUT')\nsys.exit(3)\n")
    with pytest.raises(CredentialError, match="exit status 3") as caught:
        oauth.token_from_command(f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", "org")
    assert "SECRETOUTPUT" not in str(caught.value)
    two = tmp_path / "two.py"
    two.write_text("print('LINEONE')\nprint('LINETWO')\n")
    with pytest.raises(CredentialError, match="not one access token") as caught:
        oauth.token_from_command(f"{shlex.quote(sys.executable)} {shlex.quote(str(two))}", "org")
    assert "LINEONE" not in str(caught.value)
    with pytest.raises(CredentialError, match="not found"):
        oauth.token_from_command("no-such-program-here", "org")
    one = tmp_path / "one.py"
    one.write_text("import sys\nsys.stdout.write('TOKEN123\\r\\n')\n")
    assert oauth.token_from_command(f"{shlex.quote(sys.executable)} {shlex.quote(str(one))}") == "TOKEN123"


def test_without_a_keyring_login_names_the_token_command_route(invoke, oauth_smtp, endpoint, tmp_path):
    import keyring
    from keyring.backends import fail

    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    keyring.set_keyring(fail.Keyring())
    login = invoke("account", "login", "outlook")
    assert login.exit_code == 2 and "no usable keyring" in login.stderr and "--token-command" in login.stderr
    assert "Traceback" not in login.output and not any(t in login.output for t in endpoint.refresh_tokens)


def test_google_sign_in_refused_in_the_browser_is_one_line(invoke, oauth_smtp, endpoint):
    from letterkit.config import load_config
    from letterkit.service import login_account

    add_gmail(invoke, oauth_smtp("google"), endpoint)
    with pytest.raises(CredentialError, match="Google refused the sign-in \\(access_denied"):
        login_account(load_config(), "gmail", client_secret=CLIENT_SECRET, show=print,
                      open_url=browser_for(endpoint, deny=True))  # fmt: skip
    assert not oauth.signed_in(load_config().accounts["gmail"])


def test_sign_in_service_down_is_exit_1_and_the_letters_wait(invoke, oauth_smtp, endpoint, campaign):
    server = oauth_smtp("microsoft")
    add_outlook(invoke, server, endpoint)
    assert invoke("account", "login", "outlook").exit_code == 0
    endpoint.server.shutdown()
    endpoint.server.server_close()  # nothing listens there any more
    sent = invoke("send", "protest", "--yes", "--rate", "0", *REAL_SIGNER)
    assert sent.exit_code == 1, sent.output
    assert "cannot reach" in sent.stderr and "letters stay queued" in sent.stderr and server.count() == 0


def test_imap_signs_in_with_a_token_for_reading_mail(invoke, oauth_smtp, endpoint, tmp_path):
    from letterkit.config import load_config
    from letterkit.imap import ImapSession

    imap, attempts = start_oauth_imap(lambda t: t in endpoint.live)
    try:
        add_outlook(invoke, oauth_smtp("microsoft"), endpoint)
        from letterkit.config import save_config

        config = load_config()
        acct = config.accounts["outlook"]
        config.accounts["outlook"] = replace(
            acct, imap_host="127.0.0.1", imap_port=imap.server_address[1], imap_security="none"
        )
        save_config(config)
        assert invoke("account", "login", "outlook").exit_code == 0
        scopes = [r.get("scope", "") for r in endpoint.requests]  # the sign-in asks once, for both:
        assert any(
            "SMTP.Send" in s and "https://outlook.office.com/IMAP.AccessAsUser.All" in s for s in scopes
        )
        endpoint.stale_next = 1  # the first IMAP token is refused as expired: renewed once
        session = ImapSession(
            load_config().accounts["outlook"], lambda: pytest.fail("no password for OAuth2")
        )
        steps: list[str] = []
        session.open(steps)
        session.close()
        assert attempts == [("OAUTHBEARER", False), ("OAUTHBEARER", True)]
        refreshes = [r for r in endpoint.requests if r.get("grant_type") == "refresh_token"]
        assert refreshes and all("IMAP.AccessAsUser.All" in r["scope"] for r in refreshes)
        assert f"IMAP login as {USERNAME}" in steps
    finally:
        imap.shutdown()
        imap.server_close()
