"""``letterkit account``: add, list, test and remove the user's own SMTP accounts."""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
import sys
from typing import Annotated

import typer

from ..presets import ADD_ACCOUNT_HINT, PRESETS
from . import _output
from ._app import app
from ._common import (
    CampaignOpt,
    JsonOpt,
    LetterkitTyper,
    examples,
)
from ._report import _esc, _outbox

# --- account ------------------------------------------------------------------------------------

account_app = LetterkitTyper(
    help="Your SMTP mail accounts (in config.toml; passwords never are: they stay in the OS "
    "keyring, $LETTERKIT_SMTP_PASSWORD or a password_command).",
    no_args_is_help=True,
    short_help="Your SMTP mail accounts.",
    epilog=examples("letterkit account add mine --preset gmail", "letterkit account list"),
)
app.add_typer(account_app, name="account")


def _read_password_stdin(
    prompt: str = "Password (stored in the OS keyring): ", option: str = "--password-stdin"
) -> str:
    """One line from standard input (typed hidden when stdin is a terminal)."""
    from ..errors import CredentialError

    if sys.stdin.isatty():
        import getpass

        line = getpass.getpass(prompt)
    else:
        line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CredentialError(f"{option}: no {option[2:-6]} on standard input; nothing was saved")
    return password


@account_app.command(
    "add",
    short_help="Add your SMTP account.",
    epilog=examples(
        "letterkit account add mine --preset gmail --username me@gmail.com",
        "letterkit account add work --host smtp.example.org --from me@example.org --password-stdin",
    ),
)
def account_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A short name for the account, e.g. personal.")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", metavar="PROVIDER", help=f"Fill host, port and security for: {', '.join(PRESETS)}."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", metavar="HOST", help="SMTP server, e.g. smtp.example.org.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", metavar="PORT", help="Port (default: 587 starttls, 465 tls, 25 none)."),
    ] = None,
    security: Annotated[
        str | None,
        typer.Option("--security", metavar="starttls|tls|none", help="Encryption (default starttls)."),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option("--username", metavar="LOGIN", help="Login name (default: the --from address)."),
    ] = None,
    from_addr: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="ADDR", help="Your own address: letters go From it (default: --username)."
        ),
    ] = None,
    ca_file: Annotated[
        str | None, typer.Option("--ca-file", metavar="FILE", help="PEM file of a private CA to trust.")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input into the OS keyring."),
    ] = False,
    password_command: Annotated[
        str | None,
        typer.Option(
            "--password-command", metavar="CMD", help="Command printing the password, e.g. 'pass show mail'."
        ),
    ] = None,
    no_login: Annotated[
        bool, typer.Option("--no-login", help="The server needs no login (no AUTH).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for the server.")
    ] = 30.0,
    imap_host: Annotated[
        str | None,
        typer.Option("--imap-host", metavar="HOST", help="IMAP server for the copy in Sent and replies."),
    ] = None,
    imap_port: Annotated[
        int | None,
        typer.Option("--imap-port", metavar="PORT", help="IMAP port (default: 993 tls, 143 starttls)."),
    ] = None,
    imap_security: Annotated[
        str | None,
        typer.Option("--imap-security", metavar="tls|starttls", help="IMAP encryption (default tls)."),
    ] = None,
    sent_folder: Annotated[
        str | None,
        typer.Option("--sent-folder", metavar="FOLDER", help="Sent folder (default: found on the server)."),
    ] = None,
    save_sent: Annotated[
        bool | None,
        typer.Option(
            "--save-sent/--no-save-sent",
            help="Put a copy of each letter in Sent (default: yes, unless the provider does it itself).",
        ),
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default account.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an account of that name (e.g. a new password).")
    ] = False,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth", metavar="password|oauth2", help="Sign in with a password or OAuth2 (outlook: oauth2)."
        ),
    ] = None,
    token_command: Annotated[
        str | None,
        typer.Option("--token-command", metavar="CMD", help="OAuth2: command printing an access token."),
    ] = None,
    oauth_provider: Annotated[
        str | None,
        typer.Option("--oauth-provider", metavar="microsoft|google", help="OAuth2: whose sign-in."),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", metavar="ID", help="OAuth2: the client id of your registered app."),
    ] = None,
    oauth_authority: Annotated[
        str | None,
        typer.Option(
            "--oauth-authority", metavar="URL", help="Microsoft sign-in authority (default common)."
        ),
    ] = None,
    oauth_auth_uri: Annotated[
        str | None, typer.Option("--oauth-auth-uri", metavar="URL", help="Google sign-in page address.")
    ] = None,
    oauth_token_uri: Annotated[
        str | None, typer.Option("--oauth-token-uri", metavar="URL", help="Google token address.")
    ] = None,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Add your SMTP account (the password goes to the OS keyring, never to a file).

    Outlook.com, Microsoft 365 and Gmail accounts can sign in with OAuth2 instead
    (--auth oauth2): then run letterkit account login NAME, or give --token-command.
    """
    from ..errors import InvalidValue
    from ..service import AccountOptions, account_from_options, add_account, check_password_for

    if password_stdin and password_command:
        raise InvalidValue("give --password-stdin or --password-command, not both")
    acct, note = account_from_options(
        AccountOptions(
            name=name,
            preset=preset,
            host=host,
            port=port,
            security=security,
            username=username,
            from_addr=from_addr,
            ca_file=ca_file,
            password_command=password_command,
            no_login=no_login,
            timeout=timeout,
            imap={
                "imap_host": imap_host,
                "imap_port": imap_port,
                "imap_security": imap_security,
                "sent_folder": sent_folder,
                "save_sent": save_sent,
            },
            auth=auth,
            token_command=token_command,
            oauth_provider=oauth_provider,
            oauth_client_id=client_id,
            oauth_authority=oauth_authority,
            oauth_auth_uri=oauth_auth_uri,
            oauth_token_uri=oauth_token_uri,
        )
    )
    config = _output.load_config()
    check_password_for(acct, given=password_stdin)  # before the password is read
    password = _read_password_stdin() if password_stdin else None
    path, stored = add_account(config, acct, password=password, default=default, replace=replace)
    _output.info(
        f"Account {_esc(name)} saved in {_esc(path)}: {_esc(acct.host)}:{acct.port} ({acct.security}), "
        f"From {_esc(acct.from_addr)}; password {_esc(stored)}."
    )
    if note:
        _output.info(_esc(note) + ".")
    if acct.imap_host:
        copy = "a copy of each letter goes to Sent" if acct.save_sent else "the provider files copies in Sent"
        _output.info(
            f"IMAP {_esc(acct.imap_host)} ({acct.imap_security}): {copy}; replies: letterkit mailbox sync"
        )
    _output.info(f"Check it with: letterkit account test {_esc(name)}")
    _hint_waiting()


def _hint_waiting() -> None:
    from ..config import data_dir
    from ..outbox import Paths

    if not Paths.under(data_dir()).ledger.exists():
        return
    box = _outbox(readonly=True)
    try:
        waiting = box.count(("queued",))
    finally:
        box.close()
    if waiting:
        _output.info(f"{waiting} letter(s) wait in the outbox: send them with: letterkit outbox flush")


@account_app.command("list", epilog=examples("letterkit account list", "letterkit account list --json"))
def account_list(as_json: JsonOpt = False, campaign_dir: CampaignOpt = None) -> None:
    """List your mail accounts and where each password comes from."""
    from ..config import config_path
    from ..credentials import password_source
    from ..errors import ConfigError
    from ..oauth import token_status

    config = _output.load_config()
    try:
        chosen = config.account()
    except ConfigError:  # several accounts, none the default (or $LETTERKIT_ACCOUNT unknown)
        chosen = None
    default = chosen.name if chosen else ""
    items = []
    for acct in sorted(config.accounts.values(), key=lambda a: a.name):
        items.append(
            {
                "name": acct.name,
                **acct.as_dict(),
                "default": acct.name == default,
                "password": password_source(acct) if acct.username else "none",
                "auth": acct.auth,
                **({"password": token_status(acct)} if acct.auth == "oauth2" else {}),
            }
        )
    if as_json:
        _output.emit_json(
            "accounts",
            {"config": str(config.path or config_path()), "default": default or None, "accounts": items},
        )
        return
    if not items:
        _output.info(f"No mail account yet. Add yours with: {ADD_ACCOUNT_HINT}")
        return
    headers = ["name", "host", "port", "security", "username", "from", "password", "default", "auth"]
    cells = [
        [i["name"], i["host"], str(i["port"]), i["security"], i["username"], i["from"], i["password"],
         "yes" if i["default"] else "", i["auth"]]
        for i in items
    ]  # fmt: skip
    if not _output.stdout_is_terminal():
        _output.emit_tsv([headers, *cells])
        return
    from ._views import print_accounts

    print_accounts(items)


@account_app.command(
    "test",
    short_help="Check the connection, TLS and password.",
    epilog=examples("letterkit account test", "letterkit account test work"),
)
def account_test(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="Account name (default: the default account).")
    ] = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Connect, check TLS and the password, then quit without sending anything.

    Exit status: 0 the account works; 2 something to fix in your setup (no password,
    wrong password or login refused, untrusted certificate, TLS mode, unknown
    account); 1 the server cannot be reached now (down, refused, timed out, unknown
    host): try again later.

    Example: letterkit account test personal
    """
    from ..errors import ConfigError, LetterkitError
    from ..service import smtp_transport

    config = _output.load_config()
    acct = config.account(name)
    if acct is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    transport = smtp_transport(acct, interactive=_output.interactive())
    steps: list[str] = []
    try:
        transport.check(steps)
        if acct.imap_host:
            from ..mailbox import check_account

            check_account(acct, steps, interactive=_output.interactive())
    except LetterkitError as exc:
        if as_json:
            _output.emit_json(
                "account-test", {"account": acct.name, "ok": False, "steps": steps, "error": str(exc)}
            )
        else:
            for step in steps:
                _output.info(f"[green]✓[/] {_esc(step)}")
        raise
    if as_json:
        _output.emit_json("account-test", {"account": acct.name, "ok": True, "steps": steps, "error": None})
        return
    for step in steps:
        _output.info(f"[green]✓[/] {_esc(step)}")
    _output.info(f"Account {_esc(acct.name)} works.")


@account_app.command(
    "remove",
    short_help="Remove an account and its stored password.",
    epilog=examples("letterkit account remove work"),
)
def account_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    campaign_dir: CampaignOpt = None,
) -> None:
    """Remove an account from config.toml and its password from the OS keyring."""
    from ..config import save_config
    from ..credentials import delete_password
    from ..errors import ConfigError, CredentialError
    from ..oauth import forget

    config = _output.load_config()
    if name not in config.accounts:
        known = ", ".join(sorted(config.accounts)) or "none"
        raise ConfigError(f"no account named {name!r} (known: {known})")
    del config.accounts[name]
    if config.default_account == name:
        config.default_account = ""
    save_config(config)
    try:
        had = delete_password(name) | forget(name)
    except CredentialError as exc:
        _output.warn(f"could not reach the keyring to delete the password: {exc}")
        had = False
    _output.info(f"Account {_esc(name)} removed" + (" with its password from the keyring." if had else "."))


@account_app.command(
    "login",
    short_help="Sign in with Microsoft or Google (OAuth2).",
    epilog=examples(
        "letterkit account login outlook --client-id 00000000-0000-0000-0000-000000000000",
        "letterkit account login gmail --client-id ID.apps.googleusercontent.com --client-secret-stdin",
    ),
)
def account_login(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", metavar="ID", help="The client id of your registered app (kept)."),
    ] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="Read the app's client secret (Google) into the keyring."),
    ] = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Sign in to an OAuth2 account with your own registered app; the refresh token goes to
    the OS keyring, never to a file.

    Microsoft: open the page shown and type the code.  Google: a browser opens (or open
    the address shown); the answer comes back to letterkit on 127.0.0.1.  Run it again
    whenever letterkit says the sign-in has expired.
    """
    from ..service import login_account

    secret = None
    if client_secret_stdin:
        secret = _read_password_stdin("Client secret (kept in the OS keyring): ", "--client-secret-stdin")
    acct, token = login_account(
        _output.load_config(),
        name,
        client_id=client_id,
        client_secret=secret,
        show=lambda t: _output.info(_esc(t)),
    )
    _output.info(f"Signed in: {_esc(token.describe())}; the refresh token is in the OS keyring.")
    _output.info(f"Check it with: letterkit account test {_esc(acct.name)}")
    _hint_waiting()
