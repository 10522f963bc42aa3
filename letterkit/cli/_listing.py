"""The read-only listings (`contacts`, `templates`).  Nothing here imports Typer; Rich is
imported only to draw a table on a terminal.

Output: ``--json`` gives a versioned document; on a terminal a Rich table;
when stdout is piped, tab-separated rows with a header line (like ``gh``).
"""

from __future__ import annotations

from . import _output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..campaign import TemplateFile
    from ..contacts import Contact

CHANNEL_LABELS = {"email": "e-mail", "fax": "fax", "post": "post", "web": "web form"}


def show_contacts(*, group: str | None = None, channel: str | None = None, as_json: bool = False) -> None:
    """List the campaign's contacts (and the user's own) with the channels that reach them."""
    from ..contacts import filter_contacts

    campaign = _output.load_campaign()
    chosen = filter_contacts(campaign.contacts, group=group, channel=channel)
    suspect = _suspects(chosen)

    if as_json:
        _output.emit_json(
            "contacts",
            {
                "campaign": campaign.id,
                "contacts": [
                    {**c.as_dict(), "stale": c.is_stale(), "suspect": suspect.get(c.id)} for c in chosen
                ],
            },
        )
        return
    stale = [c for c in chosen if c.is_stale()]
    if not _output.stdout_is_terminal():
        rows = [["id", "name", "groups", "channels", "checked", "stale", "yours", "campaigns"]]
        rows += [
            [c.id, c.name, ",".join(c.groups), ",".join(c.channels), c.checked,
             "yes" if c.is_stale() else "no", "yes" if c.user else "no", ",".join(c.campaigns)]
            for c in chosen
        ]  # fmt: skip
        _output.emit_tsv(rows)
    else:
        _contact_blocks(campaign.title, chosen)
    if campaign.other_user_contacts:
        others = ", ".join(f"{c.id} ({c.scope})" for c in campaign.other_user_contacts)
        _output.info(f"Not in this campaign ({campaign.id}), of your contacts: {others}.")
    if not chosen:
        _output.warn("no contact matches" if (group or channel) else "this campaign has no contacts")
    if stale:
        dates = ", ".join(sorted({c.checked or "never" for c in stale}))
        _output.warn(
            f"{len(stale)} contact(s) were last checked long ago ({dates}; marked * on a terminal): "
            "verify addresses before relying on them; add a current one with: letterkit contacts add ..."
        )


def _suspects(chosen: list[Contact]) -> dict[str, dict[str, str]]:
    """Contacts whose address a letter bounced from, each warned about on stderr.  The
    ledger is only read when there is one: ``contacts`` stays quick on a new machine."""
    from ..config import data_dir

    if not (data_dir() / "ledger.sqlite3").exists():  # maildir.Paths' ledger
        return {}
    from ..mailbox import suspect_text, suspects

    found = suspects(chosen)
    for contact_id, item in found.items():
        _output.warn(suspect_text(contact_id, item))
    return found


def _contact_blocks(title: str, chosen: list[Contact]) -> None:
    """One block per contact, made for 80 columns: the id whole on its own line (never
    squeezed by a long name), the name, then channels and groups, wrapped with their indent."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    console = _output.out()
    console.print(f"[bold]Contacts — {escape(title)}[/]")
    for c in chosen:
        head = Text(overflow="fold")
        head.append(c.id, style="bold")
        head.append(
            f"  checked {c.checked or 'never'}" + ("*" if c.is_stale() else ""),
            style="yellow" if c.is_stale() else "dim",
        )
        name = Text(c.name, overflow="fold")
        if c.user:
            name.append(f" (yours: {c.scope})", style="cyan")
        channels = ", ".join(CHANNEL_LABELS[ch] for ch in c.channels) or "no channel"
        how = Text(f"{channels} · groups: {', '.join(c.groups) or 'none'}", style="dim", overflow="fold")
        console.print(head)
        for line in (name, how):
            console.print(Padding(line, (0, 0, 0, 4), expand=False))


def show_templates(*, as_json: bool = False) -> None:
    """List the campaign's letter templates with their languages and default recipients."""
    campaign = _output.load_campaign(with_user_contacts=False)

    def subject_of(t: TemplateFile) -> str:
        if "{" not in t.subject:
            return t.subject  # plain text: no need to load the renderer
        from ..letters import Renderer

        return Renderer(campaign).subject(t)

    rows: list[dict[str, Any]] = []
    for name, versions in sorted(campaign.templates.items()):
        default = campaign.template(name)
        rows.append(
            {
                "name": name,
                "languages": sorted(versions),
                "description": default.description,
                "subjects": {lang: subject_of(t) for lang, t in sorted(versions.items())},
                "to": list(default.to),
                "cc": list(default.cc),
                "files": {lang: str(t.path) for lang, t in sorted(versions.items())},
            }
        )
    if as_json:
        _output.emit_json(
            "templates", {"campaign": campaign.id, "root": str(campaign.root), "templates": rows}
        )
        return
    if not _output.stdout_is_terminal():
        table_rows = [["name", "languages", "to", "cc", "subject", "description"]]
        table_rows += [
            [r["name"], ",".join(r["languages"]), ",".join(r["to"]), ",".join(r["cc"]),
             r["subjects"].get("en") or next(iter(r["subjects"].values())), r["description"]]
            for r in rows
        ]  # fmt: skip
        _output.emit_tsv(table_rows)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Templates — {escape(campaign.title)}", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("languages", no_wrap=True)
    table.add_column("to / cc")
    table.add_column("description / subject")
    for r in rows:
        who = ", ".join(r["to"]) + (f"\ncc: {', '.join(r['cc'])}" if r["cc"] else "")
        subject = r["subjects"].get("en") or next(iter(r["subjects"].values()))
        table.add_row(
            r["name"],
            ", ".join(r["languages"]),
            escape(who),
            f"{escape(r['description'])}\n[dim]{escape(subject)}[/]",
        )
    _output.out().print(table)
