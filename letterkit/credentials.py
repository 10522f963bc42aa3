"""Passwords for SMTP accounts, from the sources the user chose, never from a file of ours.

Sources, in order (:func:`get_password`):

1. ``$LETTERKIT_SMTP_PASSWORD`` (scripts, CI);
2. the account's ``password_command`` (e.g. ``pass show mail``), run without a
   shell; the first line of its output is the password;
3. the OS keyring, service ``letterkit``, user name = the account's name
   (``letterkit account add NAME --password-stdin`` stores it there);
4. a hidden prompt, only when a person is at the terminal.

This is the only module that imports :mod:`keyring`.  A machine without a usable
keyring backend (a headless server) gets a :class:`CredentialError` naming the
other sources, never a keyring traceback.  A password lives in local variables
only: it is never logged, written to a file, put in an exception or a repr.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import CredentialError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Account

SERVICE = "letterkit"
ENV_PASSWORD = "LETTERKIT_SMTP_PASSWORD"
COMMAND_TIMEOUT = 60.0  # seconds a password_command may take (it may ask for a passphrase)

NO_KEYRING_HINT = (
    f"set {ENV_PASSWORD}, or password_command in the account "
    "(letterkit account add NAME ... --password-command 'pass show mail' --replace), "
    "or run the command on a terminal to be asked for the password"
)


def _no_keyring() -> CredentialError:
    return CredentialError("no usable keyring backend on this machine", hint=NO_KEYRING_HINT)


def keyring_usable() -> bool:
    """True when the OS keyring can keep a password: not the ``fail`` or ``null`` backend.

    ``null`` accepts a password and silently keeps nothing, so it counts as no keyring:
    letterkit never says "stored in the keyring" or recommends ``--password-stdin`` then.
    """
    import keyring
    from keyring.backends import chainer, fail, null

    try:
        backend = keyring.get_keyring()
    except _keyring_errors():
        return False
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)


def no_password_hint(account_name: str) -> str:
    """How to give an account a password, naming only the sources that work on this machine."""
    if keyring_usable():
        return (
            f"store one with: letterkit account add {account_name} ... --password-stdin --replace, "
            f"or set {ENV_PASSWORD}, or a password_command"
        )
    return NO_KEYRING_HINT.replace("account add NAME", f"account add {account_name}")


def wrong_password_hint(account: Account) -> str:
    """How to fix a password the server refused, for the source it came from."""
    source = password_source(account)
    if source == "env":
        fix = f"{ENV_PASSWORD} holds a wrong password: set the right one"
    elif source == "command":
        fix = f"password_command {account.password_command!r} printed a wrong password: fix what it reads"
    elif source == "keyring":
        fix = f"store the right one: letterkit account add {account.name} ... --password-stdin --replace"
    else:
        fix = f"type the right one when asked, or {no_password_hint(account.name)}"
    return fix + " (some providers need an app password)"


def _keyring_errors() -> tuple[type[BaseException], ...]:
    from keyring.errors import KeyringError

    # The "fail" backend raises NoKeyringError (a RuntimeError); some platform
    # backends raise a bare RuntimeError or OSError when their service is absent.
    return (KeyringError, RuntimeError, OSError)


def secret_command_output(
    command: str, what: str, account_name: str = "", *, timeout: float = COMMAND_TIMEOUT
) -> bytes:
    """Run ``command`` (no shell, no input, a time limit) and return what it printed: the one
    way letterkit runs a program that prints a secret (``password_command``,
    ``token_command``).  A failure names the command, never its output."""
    import shlex
    import subprocess

    where = (f"account {account_name!r}: " if account_name else "") + f"{what} {command!r}"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CredentialError(f"{where}: cannot parse it ({exc})") from None
    if not argv:
        raise CredentialError(f"{where}: it is empty")
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CredentialError(f"{where}: {argv[0]} not found", hint="install it or fix config.toml") from None
    except subprocess.TimeoutExpired:
        raise CredentialError(f"{where}: did not finish within {COMMAND_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise CredentialError(f"{where}: cannot run it ({exc.strerror})") from None
    if proc.returncode != 0:
        raise CredentialError(
            f"{where}: failed (exit status {proc.returncode})", hint="run it yourself to see why"
        )
    return proc.stdout


def password_from_command(command: str, account_name: str = "") -> str:
    """Run ``command`` (see :func:`secret_command_output`) and return the first line of its
    output: ended by "\\n" only (``pass show`` prints more lines after it); any other
    character, U+0085 or U+2028 included, belongs to the password."""
    where = (f"account {account_name!r}: " if account_name else "") + f"password_command {command!r}"
    try:
        text = secret_command_output(command, "password_command", account_name).decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{where}: printed something that is not UTF-8") from None
    password = text.split("\n", 1)[0].removesuffix("\r")
    if not password:
        raise CredentialError(f"{where}: printed nothing")
    return password


def password_from_keyring(account_name: str) -> str | None:
    """The keyring's password for the account, or None; CredentialError if no keyring works."""
    import keyring

    try:
        return keyring.get_password(SERVICE, account_name)
    except _keyring_errors():
        raise _no_keyring() from None


def remembered_password(account: Account, *, interactive: bool) -> Callable[[], str]:
    """The account's password, fetched (or asked for) the first time it is needed and then
    kept in memory for this run only: SMTP and the copy to Sent over IMAP share it, so a
    typed password is asked for once."""
    found: list[str] = []

    def password() -> str:
        if not found:
            found.append(get_password(account, interactive=interactive))
        return found[0]

    return password


def get_password(account: Account, *, interactive: bool) -> str:
    """The account's password from the first source that has one (see the module doc).

    ``interactive`` allows a hidden prompt on the terminal as the last resort.
    """
    env = os.environ.get(ENV_PASSWORD)
    if env:
        return env
    if account.password_command:
        return password_from_command(account.password_command, account.name)
    keyring_problem: CredentialError | None = None
    try:
        stored = password_from_keyring(account.name)
    except CredentialError as exc:
        stored, keyring_problem = None, exc
    if stored:
        return stored
    if interactive:
        import getpass

        who = account.username or account.name
        try:
            typed = getpass.getpass(f"Password for {who} at {account.host}: ")
        except (EOFError, KeyboardInterrupt):
            typed = ""
        if typed:
            return typed
        raise CredentialError(f"no password given for account {account.name!r}")
    if keyring_problem is not None:
        raise keyring_problem
    raise CredentialError(f"no password for account {account.name!r}", hint=no_password_hint(account.name))


def password_source(account: Account) -> str:
    """Where :func:`get_password` would look first: env, command, keyring, prompt or none.

    Never reveals or runs anything; a keyring without the password counts as "prompt".
    """
    if os.environ.get(ENV_PASSWORD):
        return "env"
    if account.password_command:
        return "command"
    if not keyring_usable():
        return "unavailable"
    try:
        if password_from_keyring(account.name):
            return "keyring"
    except CredentialError:
        return "unavailable"
    return "prompt"


def store_password(account_name: str, password: str) -> None:
    """Keep ``password`` in the OS keyring (service ``letterkit``, user ``account_name``)."""
    import keyring

    if not password:
        raise CredentialError("the password is empty; nothing was stored")
    if any(c in password for c in "\r\n\x00"):
        raise CredentialError("the password contains a line break or NUL byte; nothing was stored")
    if not keyring_usable():
        raise _no_keyring()
    try:
        keyring.set_password(SERVICE, account_name, password)
    except _keyring_errors():
        raise _no_keyring() from None


def delete_password(account_name: str) -> bool:
    """Remove the account's password from the keyring; False if there was none.

    Without a usable keyring no password can have been stored there: False, no error.
    """
    import keyring
    from keyring.errors import PasswordDeleteError

    if not keyring_usable():
        return False
    try:
        keyring.delete_password(SERVICE, account_name)
    except PasswordDeleteError:
        return False
    except _keyring_errors():
        raise _no_keyring() from None
    return True
