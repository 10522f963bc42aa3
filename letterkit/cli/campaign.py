"""Commands about the campaign: contacts, templates, preview, check, init, signer."""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
from typing import TYPE_CHECKING, Annotated

import typer

from .. import clock
from . import _common, _output
from ._app import app
from ._common import (
    CampaignOpt,
    CityOpt,
    CosignersOpt,
    CountryOpt,
    EmailOpt,
    JsonOpt,
    LangOpt,
    LetterkitTyper,
    NameOpt,
    NoteFileOpt,
    NoteOpt,
    OrgOpt,
    ToOpt,
    examples,
)

if TYPE_CHECKING:
    from ..campaign import Campaign
    from ..letters import Letter

# --- contacts ------------------------------------------------------------------------

contacts_app = LetterkitTyper(
    help="List who to write to, and add or remove your own contacts (e.g. an embassy).",
    invoke_without_command=True,
    no_args_is_help=False,
    short_help="List who to write to; add or remove your own contacts.",
)
app.add_typer(contacts_app, name="contacts")


@contacts_app.callback(epilog=examples("letterkit contacts", "letterkit contacts --channel fax --json"))
def contacts(
    ctx: typer.Context,
    group: Annotated[
        str | None, typer.Option("--group", metavar="GROUP", help="Only contacts in this group.")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel", metavar="CHANNEL", help="Only contacts reachable by email, fax, post or web (form)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """List the campaign's contacts (and yours) with the channels that reach them."""
    if ctx.invoked_subcommand:
        return
    from ._listing import show_contacts

    show_contacts(group=group, channel=channel, as_json=as_json)


@contacts_app.command(
    "add",
    short_help="Add a contact of your own to this campaign.",
    epilog=examples(
        'letterkit contacts add --id uk --name "Embassy, London" --group missions --email uk@example.org',
        'letterkit contacts add --id embassy-de --name "Embassy, Berlin" --fax +49301234567 --all-campaigns',
    ),
)
def contacts_add(
    id: Annotated[str, typer.Option("--id", metavar="ID", help="Short id, e.g. embassy-uk.")],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Full name of the recipient.")],
    group: Annotated[
        list[str] | None,
        typer.Option("--group", metavar="GROUP", help="Group (repeatable), e.g. kazakhstan."),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="ADDR", help="E-mail address.")] = None,
    cc: Annotated[
        list[str] | None, typer.Option("--cc", metavar="ADDR", help="Address to copy on every e-mail to it.")
    ] = None,
    fax: Annotated[str | None, typer.Option("--fax", metavar="NUMBER", help="Fax number.")] = None,
    phone: Annotated[
        list[str] | None, typer.Option("--phone", metavar="NUMBER", help="Phone number (repeatable).")
    ] = None,
    address: Annotated[
        list[str] | None,
        typer.Option("--address", metavar="LINE", help="Postal address line (repeatable, in order)."),
    ] = None,
    web_form: Annotated[
        str | None, typer.Option("--web-form", metavar="URL", help="URL of a contact form.")
    ] = None,
    salutation: Annotated[
        str | None,
        typer.Option("--salutation", metavar="TEXT", help="Opening line, e.g. 'Your Excellency,'."),
    ] = None,
    language: Annotated[
        str, typer.Option("--language", metavar="LANG", help="Language letters to it are written in.")
    ] = "en",
    source: Annotated[
        str | None, typer.Option("--source", metavar="TEXT", help="Where the details come from.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            metavar="ZONE",
            help="Its time zone (IANA name, e.g. Europe/London): --window sends in its office hours.",
        ),
    ] = None,
    checked: Annotated[
        str | None,
        typer.Option(
            "--checked", metavar="DATE", help="When the details were checked (YYYY-MM-DD). Default: today."
        ),
    ] = None,
    all_campaigns: Annotated[
        bool,
        typer.Option(
            "--all-campaigns",
            help="Put it in every campaign you use, not only the current one (its groups then "
            "pick it in all of them).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Add a contact of your own (e.g. Kazakhstan's embassy in your country) to the current campaign.

    It is stored in contacts.toml with campaigns = ["ID"] (the current campaign's id), so a
    letter about another case never reaches it through a shared group; --all-campaigns
    stores campaigns = ["*"].
    """

    from ..config import user_contacts_path
    from ..contacts import ALL_CAMPAIGNS, add_user_contact, contact_from_table, validate_new_contact

    campaign = _output.load_campaign()
    table = {
        "id": id,
        "name": name,
        "groups": group or [],
        "email": email or "",
        "cc": cc or [],
        "fax": fax or "",
        "phone": phone or [],
        "address": address or [],
        "web_form": [web_form] if web_form else [],
        "salutation": salutation or "",
        "language": language,
        "source": source or "added by you",
        "timezone": timezone or "",
        "checked": checked or clock.today().isoformat(),
        "campaigns": [ALL_CAMPAIGNS if all_campaigns else campaign.id],
    }
    contact = validate_new_contact(contact_from_table(table, "--", user=True))
    path = user_contacts_path()
    add_user_contact(contact, path, existing_ids=[c.id for c in campaign.campaign_contacts])
    if as_json:
        _output.emit_json("contact-added", {"contact": contact.as_dict(), "path": str(path)})
        return
    where = "every campaign" if all_campaigns else f"campaign {campaign.id} only"
    groups = ", as group:" + ", group:".join(contact.groups) if contact.groups else ""
    _output.info(
        f"Added [bold]{contact.id}[/] ({', '.join(contact.channels)}) to {path}. It is in {where}{groups}."
    )


@contacts_app.command(
    "remove",
    short_help="Remove one of your own contacts.",
    epilog=examples("letterkit contacts remove embassy-uk"),
)
def contacts_remove(
    contact_id: Annotated[str, typer.Argument(metavar="ID", help="Id of a contact you added.")],
    campaign_dir: CampaignOpt = None,
) -> None:
    """Remove one of your own contacts."""
    from ..config import user_contacts_path
    from ..contacts import remove_user_contact

    removed = remove_user_contact(contact_id, user_contacts_path())
    _output.info(f"Removed {removed.id} ({removed.name}).")


# --- templates -----------------------------------------------------------------------


@app.command(
    short_help="List the letter templates and their languages.",
    epilog=examples("letterkit templates", "letterkit templates --json"),
)
def templates(as_json: JsonOpt = False, campaign_dir: CampaignOpt = None) -> None:
    """List the campaign's letter templates with their languages and default recipients."""
    from ._listing import show_templates

    show_templates(as_json=as_json)


# --- preview -------------------------------------------------------------------------


@app.command(
    short_help="Show each letter exactly as it would be sent.",
    epilog=examples(
        "letterkit preview protest", "letterkit preview solidarity --lang ru --to solidarity-support"
    ),
)
def preview(
    template: Annotated[str, typer.Argument(metavar="TEMPLATE", help="Template name, e.g. protest.")],
    to: ToOpt = None,
    cc: Annotated[
        list[str] | None,
        typer.Option(
            "--cc", metavar="SEL", help="Copies instead of the template's (repeatable); --cc '' for none."
        ),
    ] = None,
    lang: LangOpt = None,
    name: NameOpt = None,
    email: EmailOpt = None,
    city: CityOpt = None,
    country: CountryOpt = None,
    organisation: OrgOpt = None,
    note: NoteOpt = None,
    note_file: NoteFileOpt = None,
    cosigners: CosignersOpt = None,
    account: Annotated[
        str | None, typer.Option("--account", metavar="NAME", help="Show From as this account would send it.")
    ] = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Show each letter exactly as it would be sent: From, To, Cc, Subject and body."""
    config, campaign, letters = _common.compose_from_options(
        template, to=to, cc=cc, lang=lang, name=name, email=email, city=city, country=country,
        organisation=organisation, note=note, note_file=note_file, cosigners=cosigners,
    )  # fmt: skip
    acct = config.account(account) if (account or config.accounts) else None
    from_addr = acct.from_addr if acct else None
    warnings = campaign_warnings(campaign, letters)
    if as_json:
        from ._render import letter_headers

        _output.emit_json(
            "preview",
            {
                "campaign": campaign.id,
                "template": template,
                "warnings": warnings,
                "deadline_passed": campaign.deadline_passed(),
                "letters": [
                    {
                        **lt.as_dict(),
                        "headers": dict(letter_headers(lt, from_addr)),
                        "stale": lt.contact.is_stale(),
                    }
                    for lt in letters
                ],
            },
        )
        return
    from ._render import show_letters

    show_letters(letters, _output.out(), from_addr=from_addr)
    for w in warnings:
        _output.warn(w)
    _output.info(
        f"{len(letters)} letter(s). Send them with: letterkit send {template}"
        + (
            " (add a personal --note: identical form letters count for less)"
            if all(lt.verbatim for lt in letters)
            else ""
        )
    )


def campaign_warnings(campaign: "Campaign", letters: "list[Letter]") -> list[str]:
    """Deadline, stale contacts and missing personal notes, as sentences."""
    out = [w for w in (campaign.deadline_warning(),) if w]
    if campaign.require_note and any(lt.verbatim for lt in letters):
        out.append(
            "this campaign requires a personal note: send refuses letters without "
            "--note, --note-file or --edit"
        )
    stale = sorted({lt.contact.id for lt in letters if lt.contact.is_stale()})
    if stale:
        dates = sorted({lt.contact.checked or "never" for lt in letters if lt.contact.is_stale()})
        out.append(
            f"contact data for {', '.join(stale)} was last checked {', '.join(dates)}: "
            "addresses may have changed since; verify them before sending"
        )
    return out


# --- check & init --------------------------------------------------------------------


@app.command(
    short_help="Validate a campaign folder and your own contacts.",
    epilog=examples("letterkit check", "letterkit check my-campaign/ --json"),
)
def check(
    directory: Annotated[
        str | None, typer.Argument(metavar="[DIR]", help="Campaign folder (default: the current campaign).")
    ] = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Validate a campaign folder (and your own contacts) and report every problem once."""
    from ..checker import check_campaign

    report = check_campaign(directory or _output.STATE.campaign_dir)
    if as_json:
        _output.emit_json("check", report.as_dict())
    else:
        for p in report.problems:
            _output.error(p)
        for w in report.warnings:
            _output.warn(w)
        if report.user_summary():
            _output.info(report.user_summary())
        if report.ok:
            _output.info(
                f"[green]ok:[/] {report.root}: {report.contacts} contacts, {report.templates} templates, "
                f"{report.letters} letters render"
            )
        else:
            _output.info(f"{len(report.problems)} problem(s) in {report.root}")
    if not report.ok:
        raise typer.Exit(2)


@app.command(
    short_help="Start a new campaign folder from the bundled one.",
    epilog=examples("letterkit init my-campaign/", "letterkit check my-campaign/"),
)
def init(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="New folder for the campaign.")],
    campaign_dir: CampaignOpt = None,
) -> None:
    """Start a new campaign folder from a copy of the bundled one (never overwrites)."""
    from ..campaign import init_campaign

    path = init_campaign(directory)
    _output.info(
        f"Created campaign [bold]{path}[/]. Edit templates/campaign.toml (the case), recipients.toml "
        f"(who to write to) and templates/*.txt.j2, then run: letterkit check {directory}"
    )


# --- signer --------------------------------------------------------------------------

signer_app = LetterkitTyper(
    help="Your details as the signer of letters (stored in config.toml).",
    no_args_is_help=True,
    short_help="Your details as the signer of letters.",
    epilog=examples('letterkit signer set --name "A. Person"', "letterkit signer show"),
)
app.add_typer(signer_app, name="signer")


@signer_app.command(
    "set",
    epilog=examples(
        'letterkit signer set --name "A. Person" --email a.person@example.net --city Leeds --country UK'
    ),
)
def signer_set(
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Your name as it appears under the letter.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="ADDR", help="Your e-mail address.")] = None,
    city: Annotated[str | None, typer.Option("--city", metavar="CITY", help="Your city.")] = None,
    country: Annotated[str | None, typer.Option("--country", metavar="COUNTRY", help="Your country.")] = None,
    organisation: Annotated[
        str | None,
        typer.Option("--organisation", "--organization", metavar="ORG", help="Your organisation, if any."),
    ] = None,
    address: Annotated[
        list[str] | None,
        typer.Option(
            "--address", metavar="LINE", help="Postal address line (repeatable), for printed letters."
        ),
    ] = None,
    campaign_dir: CampaignOpt = None,
) -> None:
    """Store your signer details once; letters are signed with them."""
    from ..config import save_config

    config = _output.load_config()
    signer = config.signer.merged(
        name=name, email=email, city=city, country=country, organisation=organisation, address=address
    )
    config.signer = signer.validated()
    path = save_config(config)
    _output.info(f"Saved your signer details to {path}.")


@signer_app.command("show", epilog=examples("letterkit signer show", "letterkit signer show --json"))
def signer_show(as_json: JsonOpt = False, campaign_dir: CampaignOpt = None) -> None:
    """Show your stored signer details and where they are kept."""
    from ..config import config_path

    config = _output.load_config()
    if as_json:
        _output.emit_json("signer", {"signer": config.signer.as_dict(), "path": str(config_path())})
        return
    for key, value in config.signer.as_dict().items():
        shown = "; ".join(value) if isinstance(value, list) else value
        _output.out().print(f"{key:13} {shown or '—'}")
    _output.info(f"(from {config_path()})")
