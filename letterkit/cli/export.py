"""Command: export — letters as print/fax-ready PDFs, .eml/.mbox files or web-form text.

Only Typer and the shared option types are imported here: the library
(:mod:`letterkit.export`, and fpdf2 with it) is imported when the command runs.
"""

# Annotations are evaluated as the module loads (no `from __future__ import annotations`):
# Typer reads every command's parameters at each start, and strings would be eval'ed.
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    NameOpt,
    NoteFileOpt,
    NoteOpt,
    OrgOpt,
    ToOpt,
    examples,
)

if TYPE_CHECKING:
    from ..export import ExportFile, ExportPlan
    from ..letters import Letter


_HELP = """Write the letters to files: PDFs to print and post or fax, .eml/.mbox to open in a
mail client, or plain text to paste into web forms.

pdf: one A4 letter per recipient, the address placed for a windowed envelope
(DIN 5008), with the fax number for recipients reached by fax; --combined puts
all letters in one PDF to print at once.  eml: one message per e-mail letter;
mbox: all of them in one mailbox file (recipients without e-mail are skipped:
export them as pdf or txt).  txt: the subject and the text of each letter.

File names say whom each letter is for: TEMPLATE-CONTACT[-copy].LANG.EXT.
Existing files are never overwritten without --force.
"""


@app.command(
    help=_HELP,
    short_help="Write letters as PDF (post, fax), .eml/.mbox or text (web forms).",
    epilog=examples(
        "letterkit export protest --format pdf --out letters/",
        "letterkit export protest --format txt --to group:web --out forms/",
    ),
)
def export(
    template: Annotated[str, typer.Argument(metavar="TEMPLATE", help="Template name, e.g. protest.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="pdf|eml|mbox|txt",
            help="pdf (post, fax), eml, mbox or txt (web forms).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Folder for the files (created if missing).")
    ],
    to: ToOpt = None,
    cc: Annotated[
        list[str] | None,
        typer.Option(
            "--cc", metavar="SEL", help="Copies instead of the template's (repeatable); --cc '' for none."
        ),
    ] = None,
    combined: Annotated[
        bool,
        typer.Option("--combined", help="pdf only: one PDF with every letter, ready to print."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist already.")] = False,
    lang: LangOpt = None,
    name: NameOpt = None,
    email: EmailOpt = None,
    city: CityOpt = None,
    country: CountryOpt = None,
    organisation: OrgOpt = None,
    note: NoteOpt = None,
    note_file: NoteFileOpt = None,
    cosigners: CosignersOpt = None,
    as_json: JsonOpt = False,
    campaign_dir: CampaignOpt = None,
) -> None:
    from ..errors import ExportError
    from ..export import FORMATS, plan_export
    from .campaign import campaign_warnings

    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown --format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    _config, campaign, letters = _common.compose_from_options(
        template, to=to, cc=cc, lang=lang, name=name, email=email, city=city, country=country,
        organisation=organisation, note=note, note_file=note_file, cosigners=cosigners,
    )  # fmt: skip
    plan = plan_export(letters, fmt, out, combined=combined)
    replaced = len(plan.existing())
    written = plan.write(force=force, on_file=None if _output.stdout_is_terminal() else _file_line)
    for w in campaign_warnings(campaign, letters):
        _output.warn(w)
    if plan.skipped:
        _output.warn(_skipped_message(plan.skipped))
    _show(plan)
    _output.info(
        f"Wrote {len(written)} file(s) to {out}{'' if str(out).endswith('/') else '/'}"
        + (f" ({replaced} replaced)" if replaced else "")
        + "."
    )
    if as_json:
        _output.emit_json(
            "export",
            {
                "campaign": campaign.id,
                "template": template,
                "format": fmt,
                "combined": combined,
                "out": str(out),
                "files": plan.as_dicts(),
                "skipped": [
                    {
                        "recipient": lt.contact.id,
                        "name": lt.contact.name,
                        "language": lt.language,
                        "channels": list(lt.hand_channels),
                        "reason": "no e-mail address",
                    }
                    for lt in plan.skipped
                ],
            },
        )


def _file_line(done: int, total: int, f: "ExportFile") -> None:
    """Off a terminal (a script, cron): a line on stderr for each file as it is rendered."""
    import sys

    who = ", ".join(lt.contact.id + (" (copy)" if lt.copy else "") for lt in f.letters)
    sys.stderr.write(f"[{done}/{total}] rendered {f.path.name} for {who}\n")
    sys.stderr.flush()


def _skipped_message(skipped: "list[Letter]") -> str:
    who = ", ".join(f"{lt.contact.id} ({', '.join(lt.hand_channels) or 'no channel'})" for lt in skipped)
    return (
        f"skipped {len(skipped)} letter(s) to recipients without an e-mail address: {who}; "
        "export them with --format pdf (post, fax) or --format txt (web forms)"
    )


def _reach(letter: "Letter", fmt: str) -> str:
    """How the person sends this file on its way."""
    c = letter.contact
    if fmt in ("eml", "mbox"):
        return "e-mail " + ", ".join([*letter.to, *(f"cc {a}" for a in letter.cc)])
    how = []
    if fmt == "txt":
        how += [f"web form {url}" for url in c.web_form]
        if letter.to:
            how.append(f"e-mail {', '.join(letter.to)}")
    if fmt == "pdf" or not how:
        if c.fax:
            how.append(f"fax {c.fax}")
        if c.address:
            how.append("post")
        if letter.to and not how:
            how.append(f"e-mail {', '.join(letter.to)}")
    return "\n".join(how)


def _show(plan: "ExportPlan") -> None:
    """A table of the files written, for people (stderr)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Exported ({plan.fmt})", title_justify="left")
    table.add_column("recipient", style="bold", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("send by", overflow="fold")
    for f in plan.files:
        for letter in f.letters:
            who = letter.contact.id + (" (copy)" if letter.copy else "")
            table.add_row(escape(who), letter.language, escape(f.path.name), escape(_reach(letter, plan.fmt)))
    _output.err().print(table)
