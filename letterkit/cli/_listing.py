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

CHANNEL_LABELS = {"email": "e-mail", "fax": "fax", "post": "post", "web": "web form"}


def show_contacts(*, group: str | None = None, channel: str | None = None, as_json: bool = False) -> None:
    """List the campaign's contacts (and the user's own) with the channels that reach them."""
    from ..contacts import filter_contacts

    campaign = _output.load_campaign()
    chosen = filter_contacts(campaign.contacts, group=group, channel=channel)
    if as_json:
        _output.emit_json(
            "contacts",
            {
                "campaign": campaign.id,
                "contacts": [{**c.as_dict(), "stale": c.is_stale()} for c in chosen],
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
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"Contacts — {escape(campaign.title)}", title_justify="left")
        table.add_column("id", style="bold", no_wrap=True)
        table.add_column("name")
        table.add_column("groups")
        table.add_column("channels")
        table.add_column("checked", no_wrap=True)
        for c in chosen:
            checked = escape(c.checked or "never")
            if c.is_stale():
                checked = f"[yellow]{checked}*[/]"
            name = escape(c.name) + (f" [cyan](yours: {escape(c.scope)})[/]" if c.user else "")
            channels = ", ".join(CHANNEL_LABELS[ch] for ch in c.channels)
            table.add_row(escape(c.id), name, escape("\n".join(c.groups)), channels, checked)
        _output.out().print(table)
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
    table.add_column("name", style="bold")
    table.add_column("languages")
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
