"""Campaign authoring: ``letterkit check`` (report every problem at once) and ``init``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .campaign import bundled_campaign_dir, find_campaign_dir, load_campaign
from .config import Signer
from .contacts import select
from .cosigners import Cosigner
from .errors import CampaignError, LetterkitError

SAMPLE_SIGNERS = (
    Signer(
        name="Sample Signer",
        email="signer@example.org",
        city="Sample City",
        country="Sample Country",
        organisation="Sample Organisation",
        address=("1 Sample Street", "Sample City"),
    ),
    Signer(name="Sample Signer"),  # only the required field: optional branches must render too
)
SAMPLE_COSIGNERS = (Cosigner("First Cosigner", "City", "Country", "Org"), Cosigner("Second Cosigner"))


@dataclass
class CheckReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    contacts: int = 0
    templates: int = 0
    letters: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "contacts": self.contacts,
            "templates": self.templates,
            "letters": self.letters,
        }


def check_campaign(directory: str | os.PathLike[str] | None = None) -> CheckReport:
    """Load, resolve and render everything in a campaign; collect every problem.

    Checks TOML syntax, unique ids, valid addresses and header values, that
    every selector resolves and that every template renders for every
    recipient it targets (with full and with minimal signer details).
    """
    from .letters import Renderer, compose

    root = find_campaign_dir(directory)
    report = CheckReport(root=root)
    errors: list[LetterkitError] = []
    campaign = load_campaign(root, with_user_contacts=False, problems=errors)
    report.problems.extend(str(e) for e in errors)
    report.contacts = len(campaign.contacts)
    report.templates = sum(len(v) for v in campaign.templates.values())
    if not campaign.data.get("demands"):
        report.warnings.append(f"{root / 'templates' / 'campaign.toml'}: no demands listed")
    for c in campaign.contacts:
        if not c.source:
            report.warnings.append(
                f"{c.origin}: contact {c.id} has no 'source' (where the details come from)"
            )
        if not c.checked:
            report.warnings.append(f"{c.origin}: contact {c.id} has no 'checked' date")
    seen: set[str] = set()
    renderer = Renderer(campaign)
    for name, versions in sorted(campaign.templates.items()):
        for lang, t in sorted(versions.items()):
            valid: dict[str, list[str]] = {"to": [], "cc": []}
            for sel_kind, selectors in (("to", t.to), ("cc", t.cc)):
                for sel in selectors:
                    try:
                        select(campaign.contacts, [sel])
                        valid[sel_kind].append(sel)
                    except LetterkitError as exc:
                        report.problems.append(f"{t.path}: {sel_kind} selector {sel!r}: {exc.message}")
            # render even when a selector is wrong: for the valid ones, else for every contact
            to = valid["to"] or [c.id for c in campaign.contacts]
            if not to:
                continue
            for i, signer in enumerate(SAMPLE_SIGNERS):
                try:
                    for _letter in compose(
                        campaign,
                        name,
                        signer,
                        to=to,
                        cc=valid["cc"],
                        language=lang,
                        note="A personal note." if i == 0 else "",
                        cosigners=SAMPLE_COSIGNERS if i == 0 else (),
                        renderer=renderer,
                    ):
                        report.letters += 1
                except LetterkitError as exc:
                    msg = str(exc)
                    if msg not in seen:
                        seen.add(msg)
                        report.problems.append(msg)
    return report


def init_campaign(directory: str | os.PathLike[str]) -> Path:
    """Copy the bundled campaign into a new folder; never overwrites anything."""
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
