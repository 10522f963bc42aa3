"""A campaign folder: the case (templates/campaign.toml), letter templates and recipients.

Layout::

    recipients.toml            [[contact]] tables
    templates/campaign.toml    the case: title, prisoners, demands, sources...
    templates/NAME.LANG.txt.j2 letter templates with TOML front matter

Lookup order: ``--campaign DIR``, ``$LETTERKIT_CAMPAIGN``, the current
directory if it has a recipients.toml, else the campaign bundled with letterkit.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import clock
from .contacts import iter_contacts, load_contacts, merge
from .errors import CampaignError, LetterkitError, TemplateError
from .tomlread import tomllib
from .validation import SLUG, check_language

if TYPE_CHECKING:
    from collections.abc import Iterator

    from . import schema
    from .contacts import Contact

_TEMPLATE_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*)(?:\.(?P<lang>[a-z]{2,3}))?\.txt\.j2$")
_FRONT_KEYS = {"subject", "to", "cc", "language", "description"}


def bundled_campaign_dir() -> Path:
    """The campaign shipped with letterkit (inside the wheel, or the source checkout)."""
    here = Path(__file__).resolve().parent
    inside = here / "bundled"
    if (inside / "recipients.toml").is_file():
        return inside
    return here.parent  # running from a source checkout: the repository root


def find_campaign_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Apply the lookup order and return the campaign folder to use."""
    chosen = explicit or os.environ.get("LETTERKIT_CAMPAIGN")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise CampaignError(
                f"campaign folder {path} does not exist",
                hint="pass an existing folder, or create one with: letterkit init DIR",
            )
        return path
    cwd = Path.cwd()
    if (cwd / "recipients.toml").is_file():
        return cwd
    return bundled_campaign_dir()


@dataclass(frozen=True)
class TemplateFile:
    """One letter template in one language."""

    name: str
    language: str
    path: Path
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    description: str
    body: str
    body_line: int  # line number (1-based) in the file where the body starts


def parse_template(path: Path) -> TemplateFile:
    """Read a template file and its TOML front matter between ``+++`` lines."""
    m = _TEMPLATE_RE.match(path.name)
    if not m:
        raise TemplateError(
            f"{path}: template file names look like NAME.LANG.txt.j2 (e.g. protest.en.txt.j2)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "+++":
        raise TemplateError(f"{path}:1: a template starts with TOML front matter between '+++' lines")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise TemplateError(f"{path}:1: front matter is not closed by a '+++' line") from None
    try:
        front = tomllib.loads("".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        lm = re.search(r"line (\d+)", msg)
        line = int(lm[1]) + 1 if lm else 1
        raise TemplateError(f"{path}:{line}: invalid front matter: {msg}") from None
    unknown = sorted(set(front) - _FRONT_KEYS)
    if unknown:
        raise TemplateError(
            f"{path}: unknown front-matter key(s): {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(_FRONT_KEYS))}",
        )
    subject = front.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise TemplateError(f"{path}: the front matter needs a non-empty 'subject'")

    def selectors(key: str) -> tuple[str, ...]:
        value = front.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TemplateError(f"{path}: '{key}' must be a list of selectors (ids or group:NAME)")
        return tuple(value)

    language = check_language(str(front.get("language") or m["lang"] or "en"), f"{path}: language")
    if m["lang"] and language != m["lang"]:
        raise TemplateError(f"{path}: front matter says language {language!r}, file name says {m['lang']!r}")
    return TemplateFile(
        name=m["name"],
        language=str(language),
        path=path,
        subject=subject.strip(),
        to=selectors("to"),
        cc=selectors("cc"),
        description=str(front.get("description", "")),
        body="".join(lines[end + 1 :]),
        body_line=end + 2,
    )


@dataclass
class Campaign:
    """A loaded campaign folder.

    Contacts are read lazily: :meth:`iter_contacts` streams them (flat memory
    for any number of recipients); :attr:`contacts` is the same as a list.
    """

    root: Path
    data: dict[str, Any]
    templates: dict[str, dict[str, TemplateFile]]  # name -> language -> template
    user_contacts: list[Contact] = field(default_factory=list)  # the user's, in this campaign
    other_user_contacts: list[Contact] = field(default_factory=list)  # the user's, not in it

    @property
    def id(self) -> str:
        return str(self.data.get("id") or self.root.name)

    @property
    def title(self) -> str:
        return str(self.data.get("title", self.id))

    @property
    def recipients_path(self) -> Path:
        return self.root / "recipients.toml"

    def iter_campaign_contacts(self) -> Iterator[Contact]:
        """The campaign's own contacts (recipients.toml), streamed."""
        return iter_contacts(self.recipients_path)

    def iter_contacts(self) -> Iterator[Contact]:
        """Campaign contacts then the user's own, streamed; a user contact replaces one with its id."""
        mine = {c.id: c for c in self.user_contacts}
        for contact in self.iter_campaign_contacts():
            yield mine.pop(contact.id, contact)
        yield from mine.values()

    @cached_property
    def campaign_contacts(self) -> list[Contact]:
        return list(self.iter_campaign_contacts())

    @cached_property
    def contacts(self) -> list[Contact]:
        """Campaign contacts merged with the user's own."""
        return merge(self.campaign_contacts, self.user_contacts)

    @property
    def act_before(self) -> dt.date | None:
        value = self.data.get("act_before")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and value:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                return None
        return None

    def deadline_passed(self, today: dt.date | None = None) -> bool:
        deadline = self.act_before
        return deadline is not None and (today or clock.today()) > deadline

    def deadline_warning(self, today: dt.date | None = None) -> str:
        """A sentence for people once ``act_before`` has passed ("" before then)."""
        if not self.deadline_passed(today):
            return ""
        return (
            f"this campaign asked for action before {self.act_before}; that date has passed — "
            "check that the appeal is still current"
        )

    def unscoped_warning(self) -> str:
        """A sentence about the user's contacts that belong to no campaign ("" if none).

        Before letterkit scoped a user's contacts, each one joined every campaign;
        those are left out now (a wrong letter to an embassy is worse than a missing
        one), and this says so and how to put them back.
        """
        ids = [c.id for c in self.other_user_contacts if not c.campaigns]
        if not ids:
            return ""
        from .config import user_contacts_path

        return (
            f"your contact(s) {', '.join(ids)} belong to no campaign and are left out; "
            f'in {user_contacts_path()} add campaigns = ["{self.id}"] to each (or ["*"] for '
            "all your campaigns)"
        )

    @property
    def require_note(self) -> bool:
        return bool(self.data.get("require_note", False))

    def for_language(self, language: str) -> dict[str, Any]:
        """campaign.toml with ``translations.LANG`` merged over it (what templates see)."""
        merged = {k: v for k, v in self.data.items() if k != "translations"}
        merged.update(self.data.get("translations", {}).get(language, {}))
        return merged

    def template(self, name: str, language: str | None = None) -> TemplateFile:
        """A template by name, in ``language`` if it exists, else English, else any."""
        versions = self.templates.get(name)
        if not versions:
            known = ", ".join(sorted(self.templates)) or "none"
            raise TemplateError(
                f"no template named {name!r} in {self.root} (templates: {known})",
                hint="list them with: letterkit templates",
            )
        if language and language in versions:
            return versions[language]
        return versions.get("en") or next(iter(versions.values()))

    def template_strict(self, name: str, language: str) -> TemplateFile:
        versions = self.templates.get(name) or {}
        if language not in versions:
            self.template(name)  # raises for an unknown name
            raise TemplateError(
                f"template {name!r} has no {language!r} version (has: {', '.join(sorted(versions))})",
                hint=f"add templates/{name}.{language}.txt.j2 or choose another --lang",
            )
        return versions[language]


def _load_case(path: Path) -> dict[str, Any]:
    from . import schema

    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise CampaignError(
            f"{path}: file not found", hint="a campaign needs templates/campaign.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise CampaignError(f"{path}: not a text file (TOML is UTF-8 text)") from None
    except OSError as exc:
        raise CampaignError(f"cannot read {path}: {exc.strerror}") from None
    source = schema.Source(path, CampaignError)
    specs = _case_specs()
    case = schema.check(source, data, specs, unknown="keep", defaults=False)
    translations = source.table(data, "translations") if "translations" in data else {}
    case["translations"] = {
        lang: schema.check(
            source, source.table(data, f"translations.{lang}"), specs, section=f"translations.{lang}",
            unknown="keep", defaults=False,
        )
        for lang in translations
    }  # fmt: skip
    return case


def _case_specs() -> dict[str, schema.Spec]:
    """campaign.toml's known keys, with the types templates rely on (a string where a list
    belongs would be read letter by letter; a number would be a traceback).  Other keys
    are free: they reach templates as they are."""
    from . import schema

    specs = {key: schema.text() for key in ("id", "title", "summary", "prison", "location", "authorities")}
    for key in ("prisoners", "events", "demands", "asks"):
        specs[key] = schema.lines(example=f'{key} = ["first", "second"]')
    specs["require_note"] = schema.flag()
    specs["date"] = schema.date(example="2010-09", partial=True)
    specs["act_before"] = schema.date()
    specs["sources"] = schema.tables()
    return specs


def load_campaign(
    root: str | os.PathLike[str] | None = None,
    *,
    with_user_contacts: bool = True,
    problems: list[LetterkitError] | None = None,
) -> Campaign:
    """Load a campaign folder (see :func:`find_campaign_dir` for ``root=None``).

    With ``problems`` given, every problem is collected there instead of raised
    at the first (what ``letterkit check`` uses).
    """
    folder = find_campaign_dir(root)

    def fail(error: LetterkitError) -> None:
        if problems is None:
            raise error
        problems.append(error)

    data: dict[str, Any] = {}
    try:
        data = _load_case(folder / "templates" / "campaign.toml")
        # the id names folders (prepared/ID/) and ledger keys: a slug, never a path
        if "id" in data and not (isinstance(data["id"], str) and SLUG.fullmatch(data["id"])):
            raise CampaignError(
                f"{folder / 'templates' / 'campaign.toml'}: id = {data['id']!r} is not a valid id",
                hint="use lowercase letters, digits, '.', '_' or '-' (at most 64), e.g. dolinka-2010",
            )
    except LetterkitError as exc:
        data.pop("id", None)
        fail(exc)
    templates: dict[str, dict[str, TemplateFile]] = {}
    tdir = folder / "templates"
    for path in sorted(tdir.glob("*.j2")) if tdir.is_dir() else []:
        try:
            t = parse_template(path)
        except LetterkitError as exc:
            fail(exc)
            continue
        templates.setdefault(t.name, {})[t.language] = t
    if not templates:
        fail(CampaignError(f"{tdir}: no templates (NAME.LANG.txt.j2) found"))
    campaign = Campaign(root=folder, data=data, templates=templates)
    if with_user_contacts:
        from .config import user_contacts_path

        mine = load_contacts(user_contacts_path(), user=True, problems=problems, missing_ok=True)
        campaign.user_contacts = [c for c in mine if c.applies_to(campaign.id)]
        campaign.other_user_contacts = [c for c in mine if not c.applies_to(campaign.id)]
    if problems is not None:  # checking: read every contact now and collect what is wrong
        campaign.__dict__["campaign_contacts"] = load_contacts(campaign.recipients_path, problems=problems)
    return campaign


def init_campaign(directory: str | os.PathLike[str]) -> Path:
    """Copy the bundled campaign into a new folder (``letterkit init``); never overwrites anything."""
    import shutil

    dest = Path(directory).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise CampaignError(
            f"{dest} exists already and is not empty",
            hint="choose a new folder name; letterkit init never overwrites",
        )
    source = bundled_campaign_dir()
    try:
        (dest / "templates").mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "recipients.toml", dest / "recipients.toml")
        for f in sorted((source / "templates").iterdir()):
            if f.is_file() and (f.suffix in (".j2", ".toml")):
                shutil.copy2(f, dest / "templates" / f.name)
    except OSError as exc:
        raise CampaignError(f"cannot create {dest}: {exc.strerror}") from None
    return dest
