"""Campaign authoring: ``letterkit check`` (report every problem at once) and ``init``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .campaign import bundled_campaign_dir, find_campaign_dir, load_campaign
from .config import Signer
from .contacts import checked_problem, number_problem, select
from .cosigners import Cosigner
from .errors import LetterkitError

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from .campaign import Campaign, TemplateFile
    from .contacts import Contact
    from .letters import Renderer

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
    campaign: str = ""  # the campaign's id
    user_contacts: list[dict[str, Any]] = field(default_factory=list)  # id, campaigns, applies

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str) -> None:
        """Record a problem once: the same broken contact is met while loading and again
        while rendering each template, and a user should read about it once."""
        if message not in self.problems:
            self.problems.append(message)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def user_summary(self) -> str:
        """Which of the user's own contacts this campaign uses, as a sentence ("" if none)."""
        if not self.user_contacts:
            return ""
        used = [f"{c['id']} ({c['scope']})" for c in self.user_contacts if c["applies"]]
        other = [f"{c['id']} ({c['scope']})" for c in self.user_contacts if not c["applies"]]
        text = f"your contacts in campaign {self.campaign}: {', '.join(used) or 'none'}"
        if other:
            text += f"; not in it: {', '.join(other)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "campaign": self.campaign,
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "contacts": self.contacts,
            "user_contacts": self.user_contacts,
            "templates": self.templates,
            "letters": self.letters,
        }


def _check_contact(report: CheckReport, c: Contact) -> None:
    """Numbers, dates and provenance of one contact (a campaign's or the user's)."""
    where = f"{c.origin} (contact {c.id})"
    for kind, number in [("fax", c.fax), *(("phone", p) for p in c.phone)]:
        problem = number_problem(number) if number else ""
        if problem:
            report.problem(f"{where}: {kind} {problem}")
    if c.checked:
        problem = checked_problem(c.checked)
        if problem:
            report.problem(f"{where}: {problem}")
    else:
        report.warn(f"{c.origin}: contact {c.id} has no 'checked' date")
    if not c.source:
        report.warn(f"{c.origin}: contact {c.id} has no 'source' (where the details come from)")


def _check_case(report: CheckReport, campaign: Campaign) -> None:
    """Warnings about the case itself: no demands, a passed deadline, an unedited copy."""
    case = campaign.root / "templates" / "campaign.toml"
    if not campaign.data.get("demands"):
        report.warn(f"{case}: no demands listed")
    if campaign.deadline_warning():
        report.warn(f"{case}: {campaign.deadline_warning()}")
    bundled = bundled_campaign_dir()
    if campaign.data and campaign.root.resolve() != bundled.resolve():
        original = load_campaign(bundled, with_user_contacts=False).data
        if all(campaign.data.get(k) == original.get(k) for k in ("id", "title", "summary")):
            report.warn(
                f"{case}: this is still the bundled campaign (id {campaign.id!r}, its title and "
                "summary); for a new case give it its own id, title and summary — the ledger "
                "counts letters under this id as the bundled campaign's"
            )


def check_campaign(directory: str | os.PathLike[str] | None = None) -> CheckReport:
    """Load, resolve and render everything in a campaign; collect every problem, once.

    Checks TOML syntax, unique ids, valid addresses, header values, fax and phone
    numbers and ``checked`` dates, that every selector resolves and that every
    template renders for every recipient it targets (with full and with minimal
    signer details).  The user's own contacts (contacts.toml) are checked too, and
    those in this campaign take part, as they would in ``send``.
    """
    from .letters import Renderer

    root = find_campaign_dir(directory)
    report = CheckReport(root=root)
    errors: list[LetterkitError] = []
    campaign = load_campaign(root, problems=errors)
    for e in errors:
        report.problem(str(e))
    report.campaign = campaign.id
    report.contacts = len(campaign.contacts)
    report.templates = sum(len(v) for v in campaign.templates.values())
    _check_case(report, campaign)
    mine = sorted(campaign.user_contacts + campaign.other_user_contacts, key=lambda c: c.id)
    report.user_contacts = [
        {"id": c.id, "campaigns": list(c.campaigns), "scope": c.scope, "applies": c.applies_to(campaign.id)}
        for c in mine
    ]
    if campaign.unscoped_warning():
        report.warn(campaign.unscoped_warning())
    for c in [*campaign.campaign_contacts, *mine]:
        _check_contact(report, c)
    from .mailbox import suspect_text, suspects

    for contact_id, item in suspects([*campaign.campaign_contacts, *mine]).items():
        report.warn(suspect_text(contact_id, item))
    renderer = Renderer(campaign)
    for name, versions in sorted(campaign.templates.items()):
        for lang, t in sorted(versions.items()):
            _check_template(report, campaign, renderer, name, lang, t)
    return report


def _check_template(
    report: CheckReport, campaign: Campaign, renderer: Renderer, name: str, lang: str, t: TemplateFile
) -> None:
    """Every selector of one template resolves, and it renders for each recipient it targets."""
    from .letters import compose

    valid: dict[str, list[str]] = {"to": [], "cc": []}
    for sel_kind, selectors in (("to", t.to), ("cc", t.cc)):
        for sel in selectors:
            try:
                select(campaign.contacts, [sel])
                valid[sel_kind].append(sel)
            except LetterkitError as exc:
                report.problem(f"{t.path}: {sel_kind} selector {sel!r}: {exc.message}")
    # render even when a selector is wrong: for the valid ones, else for every contact
    to = valid["to"] or [c.id for c in campaign.contacts]
    if not to:
        return
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
            report.problem(str(exc))
