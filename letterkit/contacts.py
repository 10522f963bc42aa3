"""Contacts: who letters go to, and by which channels.

A campaign's ``recipients.toml`` holds ``[[contact]]`` tables; the user's own
contacts (``letterkit contacts add``, e.g. the Kazakhstan embassy in their
country) live in ``contacts.toml`` in the config dir.  Each one says which
campaigns it belongs to (``campaigns = ["dolinka-2010"]``, or ``["*"]`` for all):
an embassy added for one case must not receive letters about another country
because both campaigns happen to use ``group:missions``.  A user contact without
the key (written before letterkit scoped them) belongs to no campaign until the
user says which.  Selectors pick contacts: a contact ``id`` or ``group:NAME``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import CampaignError, ContactError, LetterkitError
from .tomlread import tomllib
from .validation import check_address, check_header_value, check_slug, header_safe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from . import schema

CHANNELS = ("email", "fax", "post", "web")
CHUNK_CONTACTS = 64  # contacts parsed at a time from a recipients file (memory stays flat)
STALE_AFTER_DAYS = 365  # contact data older than this is flagged for re-checking
ALL_CAMPAIGNS = "*"  # in a user contact's ``campaigns``: every campaign
_NUMBER_RE = re.compile(r"\+?[0-9 ()-]+")


@dataclass(frozen=True, slots=True)
class Contact:
    """One recipient of letters, with every channel that reaches it."""

    id: str
    name: str
    groups: tuple[str, ...] = ()
    salutation: str = "Dear Sir or Madam,"
    language: str = "en"
    email: str = ""
    cc: tuple[str, ...] = ()
    fax: str = ""
    phone: tuple[str, ...] = ()
    address: tuple[str, ...] = ()
    web_form: tuple[str, ...] = ()
    source: str = ""
    checked: str = ""
    notes: str = ""
    user: bool = False  # added by the user (contacts.toml in the config dir)
    campaigns: tuple[str, ...] = ()  # a user contact's campaign ids ("*": all; none: no campaign)
    origin: str = field(default="", compare=False)  # "file:line" where it was defined
    timezone: str = ""  # IANA name, e.g. "Europe/Vienna": its office hours for --window

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels a letter can take: email, fax, post, web (in that order)."""
        have = {"email": self.email, "fax": self.fax, "post": self.address, "web": self.web_form}
        return tuple(c for c in CHANNELS if have[c])

    def checked_date(self) -> dt.date | None:
        """``checked`` as a date (a bare year-month counts as the month's first day)."""
        m = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", self.checked)
        if not m:
            return None
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3] or 1))
        except ValueError:
            return None

    def is_stale(self, today: dt.date | None = None) -> bool:
        """True when the contact data was last checked long ago (or never)."""
        when = self.checked_date()
        today = today or clock.today()
        return when is None or (today - when).days > STALE_AFTER_DAYS

    def applies_to(self, campaign_id: str) -> bool:
        """True if this contact belongs to the campaign (every campaign contact does)."""
        if not self.user:
            return True
        return ALL_CAMPAIGNS in self.campaigns or campaign_id in self.campaigns

    @property
    def scope(self) -> str:
        """Which campaigns a user contact is in, for people ("" for a campaign's own)."""
        if not self.user:
            return ""
        if ALL_CAMPAIGNS in self.campaigns:
            return "all campaigns"
        if not self.campaigns:
            return "no campaign"
        return ", ".join(self.campaigns)

    def template_view(self) -> dict[str, Any]:
        """What a template sees as ``recipient``."""
        return {
            "id": self.id,
            "name": self.name,
            "groups": list(self.groups),
            "salutation": self.salutation,
            "language": self.language,
            "email": self.email,
            "cc": list(self.cc),
            "fax": self.fax,
            "phone": list(self.phone),
            "address": list(self.address),
            "web_form": list(self.web_form),
            "source": self.source,
            "checked": self.checked,
        }

    def as_dict(self) -> dict[str, Any]:
        """The contact as plain data (for --json and contacts.toml)."""
        data = self.template_view()
        data["notes"] = self.notes
        data["timezone"] = self.timezone
        data["user"] = self.user
        if self.user:
            data["campaigns"] = list(self.campaigns)
        data["channels"] = list(self.channels)
        return data


def number_problem(number: str) -> str:
    """Why a fax or phone number is not E.164-ish ("" if it is): an optional +, then
    digits, spaces, dashes and parentheses, with 7 to 15 digits in all."""
    if not _NUMBER_RE.fullmatch(number):
        return (
            f"{number!r} is not a phone number: use digits, spaces, dashes and "
            "parentheses, with an optional + in front"
        )
    digits = sum(ch.isdigit() for ch in number)
    if not 7 <= digits <= 15:
        return f"{number!r} has {digits} digits; a phone number with its country code has 7 to 15"
    return ""


def checked_problem(checked: str, today: dt.date | None = None) -> str:
    """Why a ``checked`` value is wrong ("" if it is a real, past YYYY-MM or YYYY-MM-DD)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", checked)
    if not m:
        return f"checked {checked!r} is not a date like 2026-11 or 2026-11-26"
    try:
        when = dt.date(int(m[1]), int(m[2]), int(m[3] or 1))
    except ValueError:
        return f"checked {checked!r} is not a real date"
    today = today or clock.today()
    if when > today:
        return f"checked {checked!r} is in the future (today is {today.isoformat()})"
    return ""


@functools.cache
def _specs() -> dict[str, schema.Spec]:
    """The keys of a ``[[contact]]`` table and their types (:mod:`letterkit.schema`); what each
    value may say is checked after."""
    from . import schema

    specs = {key: schema.stripped() for key in ("salutation", "language", "email", "fax", "source", "notes")}
    specs.update(id=schema.stripped(required=True), name=schema.stripped(required=True))
    specs.update(checked=schema.stripped(dates=True), timezone=schema.stripped())
    specs.update(
        {key: schema.one_or_more() for key in ("groups", "cc", "phone", "address", "web_form", "campaigns")}
    )
    return specs


def _lists(
    values: dict[str, Any], where: str, *, user: bool
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """A contact's groups, address lines, web forms and campaigns, each checked."""
    groups = values["groups"]
    for g in groups:
        check_slug(g, f"{where}: group")
    address = values["address"]
    for line in address:
        if not header_safe(line):
            check_header_value(line, f"{where}: address line")
    web_form = values["web_form"]
    for url in web_form:
        if not re.fullmatch(r"https?://\S+", url):
            raise ContactError(f"{where}: web_form {url!r} is not an http(s) URL")
    campaigns = values["campaigns"]
    if campaigns and not user:
        raise ContactError(
            f"{where}: 'campaigns' is only for your own contacts (contacts.toml)",
            hint="a campaign's recipients.toml belongs to that campaign already; remove the key",
        )
    for cid in campaigns:
        if cid != ALL_CAMPAIGNS:
            check_slug(cid, f"{where}: campaigns")
    return groups, address, web_form, campaigns


def contact_from_table(table: dict[str, Any], where: str, *, user: bool = False) -> Contact:
    """Build and validate a Contact from one ``[[contact]]`` table: the types through the one
    schema (:mod:`letterkit.schema`), then what each value may say."""
    from . import schema

    strings = schema.check(schema.Located(where, ContactError), table, _specs())
    cid = check_slug(strings["id"], f"{where}: contact id")
    where = f"{where} (contact {cid})"
    for key in ("name", "salutation", "fax"):
        if not header_safe(strings[key]):
            check_header_value(strings[key], f"{where}: {key}")
    email = check_address(strings["email"], f"{where}: email") if strings["email"] else ""
    cc = tuple(check_address(a, f"{where}: cc") for a in strings["cc"])
    groups, address, web_form, campaigns = _lists(strings, where, user=user)
    language = strings["language"] or "en"
    if not re.fullmatch(r"[a-z]{2,3}(?:-[A-Za-z0-9]+)?", language):
        raise ContactError(f"{where}: language {language!r} is not a language code like 'en' or 'ru'")
    return Contact(
        id=cid,
        name=strings["name"],
        groups=groups,
        salutation=strings["salutation"] or "Dear Sir or Madam,",
        language=language,
        email=email,
        cc=cc,
        fax=strings["fax"],
        phone=strings["phone"],
        address=address,
        web_form=web_form,
        source=strings["source"],
        checked=strings["checked"],
        notes=strings["notes"],
        user=user,
        campaigns=campaigns,
        origin=where.split(" (contact")[0],
        timezone=_timezone(strings["timezone"], where),
    )


def _timezone(name: str, where: str) -> str:
    """A contact's ``timezone``: an IANA name zoneinfo knows (checked only when given)."""
    if not name:
        return ""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*", name):
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContactError(
            f"{where}: timezone {name!r} is not a time zone", hint="use an IANA name such as Europe/Vienna"
        ) from None
    return name


def _chunks(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | tomllib.TOMLDecodeError]]:
    """The file cut before every ``CHUNK_CONTACTS``-th ``[[contact]]`` header and parsed:
    (first line, text, tables or error).

    Each piece is parsed on its own, so a large recipients file is never held
    in memory whole.  A header inside a multi-line string is not a cut: a
    piece that ends inside an open string simply grows.
    """

    def parse(text: str) -> dict[str, Any] | tomllib.TOMLDecodeError:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return exc

    with path.open(encoding="utf-8") as fh:
        start, lines, headers = 1, list[str](), 0
        for number, line in enumerate(fh, 1):
            if line.startswith("[[contact]]"):
                if lines and (headers >= CHUNK_CONTACTS or headers == 0):
                    text = "".join(lines)
                    parsed = parse(text)
                    if not (isinstance(parsed, tomllib.TOMLDecodeError) and "end of document" in str(parsed)):
                        yield start, text, parsed
                        start, lines, headers = number, [], 0
                headers += 1
            lines.append(line)
        if lines:
            text = "".join(lines)
            yield start, text, parse(text)


def _shift_line(message: str, offset: int) -> str:
    """Make tomllib's "(at line N, column M)" count from the start of the file."""
    return re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + offset}", message)


def iter_contacts(
    path: Path,
    *,
    user: bool = False,
    problems: list[LetterkitError] | None = None,
    missing_ok: bool = False,
) -> Iterator[Contact]:
    """Stream the contacts of a recipients.toml (or the user's contacts.toml), validated.

    Memory stays flat however long the file is.  With ``problems`` given,
    every problem is appended there and the valid contacts are still yielded;
    otherwise the first problem is raised.
    """

    def fail(error: LetterkitError) -> None:
        if problems is None:
            raise error
        problems.append(error)

    seen: dict[str, int] = {}  # id -> line: a number each, not a "path:line" text (memory flat)
    try:
        for start, text, raw in _chunks(path):
            if isinstance(raw, tomllib.TOMLDecodeError):
                message = _shift_line(str(raw), start - 1)
                fail(CampaignError(f"{path}: invalid TOML: {message}", hint="fix the syntax at that line"))
                return
            tables = raw.get("contact", [])
            if not isinstance(tables, list):
                fail(CampaignError(f"{path}: 'contact' must be an array of tables: write [[contact]]"))
                return
            yield from _chunk_contacts(path, start, text, tables, seen, fail, user=user)
    except FileNotFoundError:
        if not missing_ok:
            fail(CampaignError(f"{path}: file not found", hint="a campaign folder needs a recipients.toml"))
    except (OSError, UnicodeDecodeError) as exc:
        fail(CampaignError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"))


def _chunk_contacts(
    path: Path,
    start: int,
    text: str,
    tables: list[Any],
    seen: dict[str, int],
    fail: Callable[[LetterkitError], None],
    *,
    user: bool,
) -> Iterator[Contact]:
    """The valid contacts of one chunk of a recipients file (``seen``: ids so far)."""
    lines = [start + n for n in _lines_of_chunk(text)] if tables else []
    for i, table in enumerate(tables):
        line = lines[i] if i < len(lines) else start
        where = f"{path}:{line}"
        try:
            if not isinstance(table, dict):
                raise ContactError(f"{where}: a contact must be a table: write [[contact]]")
            contact = contact_from_table(table, where, user=user)
        except LetterkitError as exc:
            fail(exc)
            continue
        if contact.id in seen:
            first = f"{path}:{seen[contact.id]}"
            fail(ContactError(f"{where}: duplicate contact id {contact.id!r} (first at {first})"))
            continue
        seen[contact.id] = line
        yield contact


def _lines_of_chunk(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if line.strip().startswith("[[contact]]")]


def load_contacts(
    path: Path,
    *,
    user: bool = False,
    problems: list[LetterkitError] | None = None,
    missing_ok: bool = False,
) -> list[Contact]:
    """Read a recipients.toml (or the user's contacts.toml) into a list (see :func:`iter_contacts`)."""
    return list(iter_contacts(path, user=user, problems=problems, missing_ok=missing_ok))


def merge(campaign: Iterable[Contact], user: Iterable[Contact]) -> list[Contact]:
    """The campaign's contacts followed by the user's; a user contact replaces one with its id."""
    mine = {c.id: c for c in user}
    merged = [mine.pop(c.id, c) for c in campaign]
    return merged + list(mine.values())


def matches(contact: Contact, selectors: Iterable[str]) -> bool:
    """True if a selector (``id`` or ``group:NAME``) picks this contact."""
    for sel in selectors:
        sel = sel.strip()
        if sel.startswith("group:"):
            if sel.removeprefix("group:") in contact.groups:
                return True
        elif sel == contact.id:
            return True
    return False


def iter_select(contacts: Iterable[Contact], selectors: Iterable[str]) -> Iterator[Contact]:
    """Stream the contacts that selectors (``id`` or ``group:NAME``) pick, in file order, once each.

    A selector that picks nobody (an unknown id, an empty group) raises
    :class:`ContactError` once the contacts have been read.
    """
    wanted = [sel.strip() for sel in selectors]
    ids = {sel for sel in wanted if not sel.startswith("group:")}
    groups = {sel.removeprefix("group:") for sel in wanted if sel.startswith("group:")}
    found_ids: set[str] = set()
    found_groups: set[str] = set()
    known_groups: set[str] = set()
    some_ids: list[str] = []
    for contact in contacts:
        known_groups.update(contact.groups)
        if len(some_ids) < 12:
            some_ids.append(contact.id)
        hit_groups = groups.intersection(contact.groups)
        if contact.id in ids or hit_groups:
            found_groups |= hit_groups
            if contact.id in ids:
                found_ids.add(contact.id)
            yield contact
    for sel in wanted:
        if sel.startswith("group:"):
            group = sel.removeprefix("group:")
            if group not in found_groups:
                raise ContactError(
                    f"no contact is in group {group!r} (groups: {', '.join(sorted(known_groups)) or 'none'})",
                    hint="see them with: letterkit contacts",
                )
        elif sel not in found_ids:
            known = ", ".join(sorted(some_ids)) + (", ..." if len(some_ids) == 12 else "")
            raise ContactError(
                f"unknown contact id {sel!r} (known: {known or 'none'})",
                hint="use an id from 'letterkit contacts' or group:NAME",
            )


def select(contacts: Iterable[Contact], selectors: Iterable[str]) -> list[Contact]:
    """The contacts that selectors pick, in file order, without repeats (see :func:`iter_select`)."""
    return list(iter_select(contacts, selectors))


def filter_contacts(
    contacts: Iterable[Contact], *, group: str | None = None, channel: str | None = None
) -> list[Contact]:
    if channel and channel not in CHANNELS:
        raise ContactError(f"unknown channel {channel!r}", hint=f"use one of: {', '.join(CHANNELS)}")
    return [
        c for c in contacts if (not group or group in c.groups) and (not channel or channel in c.channels)
    ]


# --- the user's own contacts file ------------------------------------------------


def _table_for_file(contact: Contact) -> dict[str, Any]:
    data: dict[str, Any] = {"id": contact.id, "name": contact.name}
    optional: dict[str, Any] = {
        "groups": list(contact.groups),
        "salutation": contact.salutation,
        "language": contact.language,
        "email": contact.email,
        "cc": list(contact.cc),
        "fax": contact.fax,
        "phone": list(contact.phone),
        "address": list(contact.address),
        "web_form": list(contact.web_form),
        "source": contact.source,
        "checked": contact.checked,
        "notes": contact.notes,
        "campaigns": list(contact.campaigns),
        "timezone": contact.timezone,
    }
    data.update({k: v for k, v in optional.items() if v})
    return data


def save_user_contacts(contacts: Sequence[Contact], path: Path) -> None:
    """Make the user's contacts file list ``contacts``, keeping its comments and layout.

    A contact whose table already says the same is left untouched; new ones are
    appended, dropped ones removed (see :func:`letterkit.config.edit_toml`).
    """
    import tomlkit

    from .config import edit_toml
    from .tomledit import add_table, remove_table

    header = (
        "# Your own contacts for letterkit, merged into every campaign.\n"
        "# Managed by 'letterkit contacts add/remove'; same format as recipients.toml.\n"
    )
    wanted = {c.id: c for c in contacts}
    with edit_toml(path, header=header, mode=0o644) as doc:
        if "contact" not in doc:
            doc.append("contact", tomlkit.aot())
        tables = doc["contact"]
        for i in reversed(range(len(tables))):
            table = tables[i]
            try:
                same = contact_from_table(table.unwrap(), str(path), user=True) == wanted.get(table.get("id"))
            except LetterkitError:
                same = False
            if same:
                del wanted[table["id"]]
            else:
                remove_table(doc, tables, i)
        for contact in contacts:
            if contact.id in wanted:
                add_table(doc, tables, len(tables), _table_for_file(contact))
        if not tables:
            del doc["contact"]


def validate_new_contact(contact: Contact, today: dt.date | None = None) -> Contact:
    """The stricter checks for a contact being added now: a channel, E.164-ish numbers,
    a real ``checked`` date that is not in the future.  (Files already written are
    loaded leniently and reported by ``letterkit check``.)"""
    if not contact.channels:
        raise ContactError(
            f"contact {contact.id!r} needs at least one of --email, --fax, --address or --web-form",
        )
    for kind, number in [("--fax", contact.fax), *(("--phone", p) for p in contact.phone)]:
        problem = number_problem(number) if number else ""
        if problem:
            raise ContactError(f"{kind}: {problem}", hint="e.g. +43 1 890 80 08-20")
    problem = checked_problem(contact.checked, today)
    if problem:
        raise ContactError(f"--checked: {problem}", hint="e.g. --checked 2026-11-26")
    return contact


def add_user_contact(contact: Contact, path: Path, existing_ids: Iterable[str] = ()) -> None:
    """Append a validated contact to the user's contacts file; ids must be new."""
    mine = load_contacts(path, user=True, missing_ok=True)
    taken = {c.id for c in mine} | set(existing_ids)
    if contact.id in taken:
        raise ContactError(
            f"a contact with id {contact.id!r} exists already",
            hint=f"choose another --id, or remove yours first: letterkit contacts remove {contact.id}",
        )
    save_user_contacts([*mine, contact], path)


def remove_user_contact(contact_id: str, path: Path) -> Contact:
    """Remove one of the user's own contacts; campaign contacts cannot be removed here."""
    mine = load_contacts(path, user=True, missing_ok=True)
    keep = [c for c in mine if c.id != contact_id]
    if len(keep) == len(mine):
        raise ContactError(
            f"you have no contact with id {contact_id!r}",
            hint="only contacts you added (marked 'yours' in 'letterkit contacts') can be removed",
        )
    save_user_contacts(keep, path)
    return next(c for c in mine if c.id == contact_id)
