"""User configuration: where files live, the signer, and SMTP accounts.

``config.toml`` lives in the platform config dir (``$XDG_CONFIG_HOME/letterkit``
on Linux); state (outbox, sent mail, ledger, prepared letters) lives in the
platform data dir (``$XDG_DATA_HOME/letterkit``).  No password is ever stored
here: see :mod:`letterkit.credentials`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InvalidValue
from .tomlread import tomllib
from .validation import check_address, check_header_value, check_slug

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from tomlkit import TOMLDocument

    from . import schema

APP = "letterkit"
SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_RATE = 20  # letters per minute: cautious enough for any personal account
AUTH_KEYS = ("token_command", "oauth_provider", "oauth_client_id", "oauth_authority", "oauth_auth_uri",
             "oauth_token_uri")  # fmt: skip


def config_dir() -> Path:
    """The directory holding config.toml and the user's own contacts.toml."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    """The directory holding the outbox, sent mail, the ledger and prepared letters."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def config_path() -> Path:
    return config_dir() / "config.toml"


def user_contacts_path() -> Path:
    return config_dir() / "contacts.toml"


@dataclass(frozen=True)
class Signer:
    """The person signing the letters."""

    name: str = ""
    email: str = ""
    city: str = ""
    country: str = ""
    organisation: str = ""
    address: tuple[str, ...] = ()
    given: frozenset[str] | None = None
    """The fields given on the command line, when the signer came from there (a whole person:
    nothing is borrowed from ``[signer]``); None for the stored signer."""

    SIGNER_FIELDS = ("name", "email", "city", "country", "organisation", "address")

    @classmethod
    def from_options(cls, **options: Any) -> Signer:
        """A signer made only of what was given (``--name``, ``--email``...), nothing stored."""
        values = {k: v for k, v in options.items() if k in cls.SIGNER_FIELDS and v not in (None, "", (), [])}
        if "address" in values:
            values["address"] = tuple(values["address"])
        return cls(**values, given=frozenset(values))

    def merged(self, **overrides: Any) -> Signer:
        """A copy with every non-empty override applied."""
        changes = {k: v for k, v in overrides.items() if v not in (None, "", (), [])}
        if "address" in changes:
            changes["address"] = tuple(changes["address"])
        return replace(self, **changes)

    def validated(self) -> Signer:
        """Check the signer can sign a letter: a one-line name and a valid e-mail."""
        if not self.name.strip():
            raise ConfigError(
                "no signer name is set",
                hint="pass --name 'Your Name' or run: letterkit signer set --name 'Your Name'",
            )
        for f in ("name", "city", "country", "organisation"):
            check_header_value(getattr(self, f), f"signer {f}")
        for i, line in enumerate(self.address, 1):
            check_header_value(line, f"signer address line {i}")
        if self.email:
            check_address(self.email, "signer e-mail")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in fields(self)
            if f.name != "given"
        }


@dataclass(frozen=True)
class Account:
    """An SMTP account of the user's own."""

    name: str
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    from_addr: str = ""
    ca_file: str = ""
    password_command: str = ""
    timeout: float = 30.0
    imap_host: str = ""
    imap_port: int = 0  # 0: 993 for tls, 143 for starttls
    imap_security: str = "tls"
    sent_folder: str = ""  # "" finds it: \\Sent (RFC 6154), then the usual names
    save_sent: bool = True  # False where the provider files a copy itself (Gmail, Outlook)
    auth: str = "password"  # or "oauth2": see letterkit.oauth
    token_command: str = ""  # oauth2: a program printing an access token
    oauth_provider: str = ""  # oauth2 sign-in: "microsoft" or "google"
    oauth_client_id: str = ""  # the user's own registered app
    oauth_authority: str = ""  # Microsoft: default https://login.microsoftonline.com/common
    oauth_auth_uri: str = ""  # Google: default https://accounts.google.com/o/oauth2/auth
    oauth_token_uri: str = ""  # Google: default https://oauth2.googleapis.com/token

    def validated(self) -> Account:
        check_slug(self.name, "account name")
        check_header_value(self.host, "account host")
        if not self.host.strip() or " " in self.host:
            raise ConfigError(f"account {self.name!r}: invalid host {self.host!r}")
        if self.security not in SECURITY_MODES:
            raise ConfigError(
                f"account {self.name!r}: unknown security {self.security!r}",
                hint="use starttls, tls or none",
            )
        if isinstance(self.port, bool) or not 0 < self.port < 65536:
            raise ConfigError(f"account {self.name!r}: port {self.port} is out of range (1 to 65535)")
        if isinstance(self.timeout, bool) or not 1 <= self.timeout <= 600:  # also refuses NaN
            raise ConfigError(f"account {self.name!r}: timeout {self.timeout} must be 1 to 600 seconds")
        check_header_value(self.username, "account username")
        if not self.from_addr:
            raise ConfigError(
                f"account {self.name!r} has no From address",
                hint=f"letterkit account add {self.name} --from you@example.org ...",
            )
        check_address(self.from_addr, f"account {self.name!r} From address")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ConfigError(f"account {self.name!r}: CA file {self.ca_file} does not exist")
        if self.imap_host:
            from .mailbox import check_imap

            check_imap(self)
        from .oauth import check_account

        return check_account(self)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
            "from": self.from_addr,
        }
        if self.ca_file:
            data["ca_file"] = self.ca_file
        if self.password_command:
            data["password_command"] = self.password_command
        if self.timeout != 30.0:
            data["timeout"] = self.timeout
        if self.imap_host:
            data.update(imap_host=self.imap_host, imap_security=self.imap_security)
            data.update({"imap_port": self.imap_port} if self.imap_port else {})
            data.update({"sent_folder": self.sent_folder} if self.sent_folder else {})
        if not self.save_sent:
            data["save_sent"] = False
        if self.auth != "password":
            data["auth"] = self.auth
        for key in AUTH_KEYS:
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class Config:
    """The parsed config.toml."""

    signer: Signer = field(default_factory=Signer)
    accounts: dict[str, Account] = field(default_factory=dict)
    default_account: str = ""
    rate: float = DEFAULT_RATE
    path: Path | None = None
    daily: int = 0  # [defaults] rate = "N/day": recipients in any 24 hours (0: the account's preset)
    window: str = ""  # [defaults] window = "09:00-17:00": send in the recipient's office hours

    @property
    def limits(self) -> Rate:
        """The pace and daily quota of ``[defaults] rate``."""
        return Rate(self.rate, self.daily)

    def account(self, name: str | None = None) -> Account | None:
        """The named account, else $LETTERKIT_ACCOUNT, else the default, else the only one.

        Returns None when no account is set up at all; raises ConfigError for an
        unknown name.
        """
        name = name or os.environ.get("LETTERKIT_ACCOUNT") or self.default_account
        if not name:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts:
                return None
            raise ConfigError(
                "several accounts are set up and none is the default",
                hint="pass --account NAME or run: letterkit account add NAME ... --default",
            )
        if name not in self.accounts:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ConfigError(
                f"no account named {name!r} (known: {known})",
                hint="list them with: letterkit account list",
            )
        return self.accounts[name]


def load_config(path: Path | None = None) -> Config:
    """Read config.toml; a missing file is an empty configuration."""
    path = path or config_path()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        return Config(path=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax or delete the file") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not a text file (TOML is UTF-8 text)", hint="fix or delete the file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return config_from_dict(raw, path)


def _signer_specs() -> dict[str, schema.Spec]:
    from . import schema

    specs = {key: schema.text() for key in Signer.SIGNER_FIELDS if key != "address"}
    specs["address"] = schema.lines(split_text=True, example='address = ["Street 1", "City"]')
    return specs


def _account_specs() -> dict[str, schema.Spec]:
    """An account's keys in config.toml: an unknown ``security`` or ``auth`` is an error,
    never a connection without TLS or a silent fallback to a password."""
    from . import schema

    specs = {
        "host": schema.text(),
        "port": schema.number(0, low=1, high=65535, whole=True),  # 0 (missing): the security's port
        "security": schema.choice(SECURITY_MODES, "starttls"),
        "username": schema.text(),
        "from": schema.text(),
        "ca_file": schema.text(),
        "password_command": schema.text(),
        "timeout": schema.number(30.0, low=1, high=600),
        "imap_host": schema.text(),
        "imap_port": schema.number(0, low=0, high=65535, whole=True),  # 0: 993 for tls, 143 for starttls
        "imap_security": schema.choice(SECURITY_MODES, "tls"),
        "sent_folder": schema.text(),
        "save_sent": schema.flag(True),
        "auth": schema.choice(("password", "oauth2"), "password"),
    }
    specs.update({key: schema.text() for key in AUTH_KEYS})
    return specs


def _defaults_specs() -> dict[str, schema.Spec]:
    from . import schema

    return {
        "account": schema.text(),
        "rate": schema.custom(
            _config_rate, Rate(), hint='write e.g. rate = "20/min", "600/hour", "450/day" or 0'
        ),
        "window": schema.custom(_config_window, "", hint='write e.g. window = "09:00-17:00"'),
    }


def _config_rate(value: Any) -> Rate:
    """``[defaults] rate``: a number (letters a minute) or a text :func:`parse_limits` reads
    (a pace such as ``20/min``, or a daily quota ``450/day``)."""
    from .schema import Invalid

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Invalid("is not a rate")
    try:
        limits = parse_limits(value, Rate()) if isinstance(value, str) else Rate(float(value))
    except InvalidValue:
        raise Invalid("is not a rate") from None
    if not 0 <= limits.per_minute < float("inf"):
        raise Invalid("is not a rate")
    return limits


def config_from_dict(raw: dict[str, Any], path: Path) -> Config:
    """The configuration a parsed config.toml describes, every value checked through one
    schema (:mod:`letterkit.schema`); errors name ``path``, the line, the table and the key."""
    from . import schema

    source = schema.Source(path, ConfigError)
    schema.check(
        source, raw, {name: schema.custom(lambda v: v, {}) for name in ("signer", "account", "defaults")}
    )
    signer = schema.check(source, source.table(raw, "signer"), _signer_specs(), section="signer")
    accounts = {}
    for name, table in source.table(raw, "account").items():
        section = f"account.{name}"
        values = schema.check(source, source.as_table(table, section), _account_specs(), section=section)
        values["from_addr"] = values.pop("from")
        values["port"] = values["port"] or DEFAULT_PORTS[values["security"]]
        accounts[name] = Account(name=name, **values)
    defaults = schema.check(source, source.table(raw, "defaults"), _defaults_specs(), section="defaults")
    limits: Rate = defaults["rate"]
    return Config(
        signer=Signer(**signer),
        accounts=accounts,
        default_account=defaults["account"],
        rate=limits.per_minute,
        path=path,
        daily=limits.per_day,
        window=defaults["window"],
    )


def _config_window(value: Any) -> str:
    """``[defaults] window``: "09:00-17:00" (see :class:`letterkit.schedule.Window`)."""
    from .schedule import Window
    from .schema import Invalid

    if value == "":
        return ""
    try:
        if not isinstance(value, str):
            raise InvalidValue("not a window")
        return str(Window.parse(value))
    except InvalidValue:
        raise Invalid("is not a send window") from None


def edit_toml(path: Path, *, header: str, mode: int = 0o600) -> AbstractContextManager[TOMLDocument]:
    """Open ``path`` as a style-preserving TOML document; on a clean exit, write it back atomically.

    The one way letterkit changes a TOML file of the user's (config.toml, contacts.toml):
    comments, key order and layout survive (tomlkit, see :mod:`letterkit.tomledit`).  A
    missing file starts as ``header`` (comment lines); the file keeps its permissions.
    """
    return _edit_toml(path, header, mode)


@contextmanager
def _edit_toml(path: Path, header: str, mode: int) -> Iterator[TOMLDocument]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from .fileutil import atomic_write

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = header
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    yield doc
    atomic_write(path, doc.as_string().encode("utf-8"), mode=mode)


CONFIG_HEADER = "# letterkit configuration. No password is ever stored here.\n"


def edit_config(path: Path | None = None) -> AbstractContextManager[TOMLDocument]:
    """``with edit_config() as doc:`` change config.toml in place (mode 0600 for a new file)."""
    return edit_toml(path or config_path(), header=CONFIG_HEADER, mode=0o600)


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write ``config`` to config.toml, changing only what differs from the file.

    Every comment, the order of keys and tables, and values written by hand (``rate =
    "30/min"``) stay as they are unless their meaning changed.  Never writes a password.
    """
    path = path or config.path or config_path()
    with edit_config(path) as doc:
        on_disk = config_from_dict(doc.unwrap(), path)
        _sync(doc, on_disk, config)
    config.path = path
    return path


def _empty(value: Any) -> bool:
    return value in (None, "", (), [])


def _sync_fields(table: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Set the keys whose value changed, delete those now empty, leave the rest as written."""
    from .tomledit import set_value

    for key in [*new, *(k for k in old if k not in new)]:
        if old.get(key) == new.get(key):
            continue
        if not _empty(new.get(key)):
            set_value(table, key, new[key])
        elif key in table:
            del table[key]


def _sync(doc: TOMLDocument, old: Config, new: Config) -> None:
    """Change ``doc`` (which reads as ``old``) so that it reads as ``new``."""
    from .tomledit import add_table, ensure_table, remove_table

    if old.signer.as_dict() != new.signer.as_dict():
        ensure_table(doc, "signer")
        _sync_fields(doc["signer"], old.signer.as_dict(), new.signer.as_dict())
    wanted: dict[str, Any] = {"account": new.default_account, "rate": _rate_value(new.rate)}
    had: dict[str, Any] = {"account": old.default_account, "rate": _rate_value(old.rate)}
    if wanted != had:
        ensure_table(doc, "defaults")
        _sync_fields(doc["defaults"], had, wanted)
    if old.accounts == new.accounts:
        return
    accounts = ensure_table(doc, "account", super_table=True)
    for name in old.accounts.keys() - new.accounts.keys():
        remove_table(doc, accounts, name)
    for name, acct in new.accounts.items():
        if name not in old.accounts:
            add_table(doc, accounts, name, acct.as_dict())
        elif acct != old.accounts[name]:
            _sync_fields(accounts[name], old.accounts[name].as_dict(), acct.as_dict())
    if not doc["account"]:
        del doc["account"]


def _rate_value(rate: float) -> float | int:
    return int(rate) if float(rate).is_integer() else rate


@dataclass(frozen=True)
class Rate:
    """How fast an account may send: a pace (letters a minute, 0: no limit) and a daily
    quota (recipients in any 24 hours, 0: none given)."""

    per_minute: float = DEFAULT_RATE
    per_day: int = 0


def parse_limits(text: str | None, default: Rate) -> Rate:
    """A rate as ``--rate`` and ``[defaults] rate`` take it: ``N/day`` sets the daily quota
    (the pace stays ``default``'s), anything else the pace (see :func:`parse_rate`)."""
    import re

    if text is None:
        return default
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(?:d|day)\s*", text, re.I)
    if m:
        return Rate(default.per_minute, int(m[1]))
    return Rate(parse_rate(text, default.per_minute), default.per_day)


def parse_rate(text: str | None, default: float) -> float:
    """``20/min``, ``20``, ``600/hour``, ``1/s`` -> letters per minute (0 = no limit).

    The one reading of a pace: ``--rate`` on the command line and ``[defaults] rate``
    in config.toml (text or a number) both come here (``N/day``, a daily quota, is
    read by :func:`parse_limits`).
    """
    import re

    if text is None:
        return max(0.0, default)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hr|hour))?\s*", text, re.I)
    if not m:
        raise InvalidValue(
            f"rate {text!r} is not a rate", hint="write N/min, N/hour, N/day, or 0 for no limit"
        )
    n = float(m[1])
    unit = (m[2] or "min").lower()
    if unit.startswith("s"):
        return n * 60
    if unit.startswith("h"):
        return n / 60
    return n
