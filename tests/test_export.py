"""export: PDFs for post and fax, .eml/.mbox for mail clients, text for web forms.

Every produced file is read back with a real parser: pypdf for PDFs, the
stdlib ``email`` and ``mailbox`` modules for messages.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import mailbox
import subprocess
import sys
import tomllib
from io import BytesIO
from pathlib import Path

import pytest
from conftest import REPO, SIGNER

from letterkit.campaign import load_campaign
from letterkit.config import Signer
from letterkit.errors import ExportError
from letterkit.export import (
    export_letters,
    file_stem,
    letter_text,
    plan_export,
    prepare_by_hand,
    render_pdf,
)
from letterkit.letters import compose_all

DAY = dt.date(2026, 11, 26)
PERSON = Signer(name="A. Person", email="a.person@example.org", city="Leeds", country="UK")

RECIPIENTS = """
[[contact]]
id = "embassy"
name = "Embassy of Somewhere"
groups = ["missions"]
salutation = "Your Excellency,"
email = "embassy@example.org"
cc = ["consul@example.org"]
fax = "+44 20 0000 0001"
address = ["1 Example Street", "London SW1 1AA", "United Kingdom"]

[[contact]]
id = "secretariat"
name = "Example Secretariat"
groups = ["osce"]
fax = "+43 1 514 36 6996"
address = ["Wallnerstrasse 6", "1010 Vienna", "Austria"]
web_form = ["https://example.org/contact"]

[[contact]]
id = "fax-desk"
name = "Fax Desk"
groups = ["faxonly"]
fax = "+7 7172 00 00 00"

[[contact]]
id = "friends"
name = "Друзья"
groups = ["support"]
language = "ru"
salutation = "Дорогие друзья,"
email = "friends@example.org"
"""

CASE = """
id = "mini-case"
title = "End the abuse at the example prison"
demands = [
    "An end to the beatings and humiliations of prisoners held at the example prison.",
    "Free access to lawyers.",
]
[translations.ru]
title = "Прекратить издевательства в тюрьме"
demands = [
    "Прекращение избиений и унижений заключённых, содержащихся в тюрьме под городом.",
    "Свободный доступ к адвокатам.",
]
"""

BODY = """{% macro item(prefix, text) -%}
{{ prefix }}{{ text | wordwrap(72 - (prefix | length), break_long_words=False,
                              wrapstring="\\n" ~ (" " * (prefix | length))) }}
{%- endmacro %}
{{ today.day }} {{ months[today.month - 1] }} {{ today.year }}

{{ recipient.salutation if recipient.language == language else default_salutation }}

{{ intro | wordwrap(72) }}

{% for d in campaign.demands %}
{{ item(loop.index ~ ". ", d) }}
{% endfor %}
{% if note %}

{{ note | wordwrap(72) }}
{% endif %}

{{ closing }}
{{ signer.name }}
{{ signer.city }}
"""

EN = (
    '+++\nsubject = "{{ campaign.title }}"\nto = ["group:missions"]\ncc = ["group:osce"]\n+++\n'
    '{% set months = ["January", "February", "March", "April", "May", "June", "July", "August",'
    ' "September", "October", "November", "December"] %}\n'
    '{% set default_salutation = "Dear Sir or Madam," %}{% set closing = "Yours faithfully," %}\n'
    "{% set intro = 'I am writing to express my grave concern about reports of beatings and abuse"
    " of prisoners, and I ask you to convey the prisoners\\' demands to the authorities:' %}\n" + BODY
)
RU = (
    '+++\nsubject = "{{ campaign.title }}"\nto = ["group:missions"]\ncc = ["group:osce"]\n+++\n'
    '{% set months = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",'
    ' "сентября", "октября", "ноября", "декабря"] %}\n'
    '{% set default_salutation = "Уважаемые дамы и господа!" %}{% set closing = "С уважением," %}\n'
    "{% set intro = 'Обращаюсь к Вам в связи с сообщениями об избиениях и жестоком обращении с"
    " заключёнными и прошу передать властям требования заключённых:' %}\n" + BODY
)


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """A tiny campaign: an embassy (e-mail, post, fax), a secretariat without e-mail, a fax-only
    desk and a Russian-speaking support contact."""
    root = tmp_path / "mini"
    (root / "templates").mkdir(parents=True)
    (root / "recipients.toml").write_text(RECIPIENTS, encoding="utf-8")
    (root / "templates" / "campaign.toml").write_text(CASE, encoding="utf-8")
    (root / "templates" / "protest.en.txt.j2").write_text(EN, encoding="utf-8")
    (root / "templates" / "protest.ru.txt.j2").write_text(RU, encoding="utf-8")
    return root


def demands(root: Path, lang: str = "en") -> list[str]:
    data = tomllib.loads((root / "templates" / "campaign.toml").read_text(encoding="utf-8"))
    return (data.get("translations", {}).get(lang) or data)["demands"]


def pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(BytesIO(data)).pages]


def flat(text: str) -> str:
    """Whitespace-insensitive form: the PDF wraps lines where it likes."""
    return " ".join(text.split())


def export(invoke, root: Path, *args: str, signer: bool = True):  # type: ignore[no-untyped-def]
    """Run ``letterkit --campaign ROOT export protest ARGS`` (with the test signer)."""
    return invoke("--campaign", str(root), "export", "protest", *args, *(SIGNER if signer else []))


def letters(root: Path, **kw):  # type: ignore[no-untyped-def]
    campaign = load_campaign(root, with_user_contacts=False)
    return compose_all(campaign, "protest", PERSON, today=DAY, **kw)


# --- PDF ---------------------------------------------------------------------------


def test_pdf_for_recipient_without_email_has_address_subject_demands(invoke, mini, tmp_path):
    out = tmp_path / "letters"
    result = export(invoke, mini, "--to", "group:osce", "--format", "pdf", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["protest-secretariat.en.pdf"]
    pages = pdf_pages((out / "protest-secretariat.en.pdf").read_bytes())
    text = flat("\n".join(pages))
    for line in ("Example Secretariat", "Wallnerstrasse 6", "1010 Vienna", "Austria"):
        assert line in text
    assert "End the abuse at the example prison" in text
    for demand in demands(mini):
        assert flat(demand) in text
    assert "A. Person" in text
    assert "Leeds, 26 November 2026" in text  # place and date, once: moved out of the body
    assert text.count("26 November 2026") == 1
    assert "By fax: +43 1 514 36 6996" in text
    assert "a.person@example.org" in text
    assert "Page 1/" not in text  # a one-page letter has no page numbers
    # The template's 72-column wrapping is undone: the PDF fills its own, wider lines.
    [intro] = [ln for ln in "\n".join(pages).splitlines() if ln.startswith("I am writing")]
    assert len(intro) > 72


def test_pdf_russian_text_is_intact(mini, tmp_path):
    [letter] = letters(mini, to=["friends"], cc=[])
    assert letter.language == "ru"
    text = flat("\n".join(pdf_pages(render_pdf([letter]))))
    assert "Прекратить издевательства в тюрьме" in text
    for demand in demands(mini, "ru"):
        assert flat(demand) in text
    assert "Дорогие друзья," in text
    assert "Leeds, 26 ноября 2026" in text


def test_pdf_wraps_paragraphs_and_numbers_pages(mini):
    note = "\n\n".join(f"Paragraph {i}: " + "solidarity " * 60 for i in range(1, 9))
    [letter] = letters(mini, to=["embassy"], cc=[], note=note)
    pages = pdf_pages(render_pdf([letter]))
    assert len(pages) >= 2
    assert f"Page 1/{len(pages)}" in pages[0] and f"Page {len(pages)}/{len(pages)}" in pages[-1]
    text = flat("\n".join(pages))
    for i in range(1, 6):  # the note's long lines are wrapped, not cut off
        assert flat(f"Paragraph {i}: " + "solidarity " * 50) in text
    # The signature's lines stay lines of their own.
    lines = [ln.strip() for ln in "\n".join(pages).splitlines()]
    last = len(lines) - 1 - lines[::-1].index("A. Person")  # (the first is in the letterhead)
    assert lines[last - 1] == "Yours faithfully,"


def test_fax_only_letter_has_fax_header_with_page_count(mini):
    [letter] = letters(mini, to=["fax-desk"], cc=[])
    assert letter.channel == "hand"
    pages = pdf_pages(render_pdf([letter]))
    assert flat(pages[0]).startswith("FAX to +7 7172 00 00 00 — 1 page")


def test_combined_pdf_holds_every_letter(invoke, mini, tmp_path):
    out = tmp_path / "print"
    result = export(
        invoke,
        mini,
        "--to",
        "embassy",
        "--to",
        "fax-desk",
        "--format",
        "pdf",
        "--combined",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    combined = out / "letters-protest.en.pdf"
    assert [p.name for p in out.iterdir()] == [combined.name]
    assert {f["recipient"] for f in doc["files"]} == {"embassy", "fax-desk", "secretariat"}
    assert {f["path"] for f in doc["files"]} == {str(combined)}
    pages = pdf_pages(combined.read_bytes())
    assert len(pages) >= 3
    for name in ("Embassy of Somewhere", "Fax Desk", "Example Secretariat"):
        assert sum(name in page for page in pages) >= 1


def test_pdf_is_deterministic(mini):
    batch = letters(mini, to=["embassy"], cc=[])
    assert render_pdf(batch) == render_pdf(batch)


def test_characters_the_font_lacks_are_an_error_not_a_blank(invoke, mini, tmp_path):
    chinese = letters(mini, to=["embassy"], cc=[], note="中文")
    with pytest.raises(ExportError, match=r"letter to embassy.*cannot print: '中' \(U\+4E2D\)"):
        render_pdf(chinese)
    render_pdf(letters(mini, to=["friends"], cc=[]))  # Cyrillic is fine
    out = tmp_path / "x"
    result = export(invoke, mini, "--to", "embassy", "--note", "中文", "--format", "pdf", "--out", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


# --- e-mail formats -----------------------------------------------------------------------


def test_eml_has_right_headers_and_utf8_body(invoke, mini, tmp_path):
    out = tmp_path / "eml"
    result = export(
        invoke,
        mini,
        "--to",
        "embassy",
        "--to",
        "friends",
        "--format",
        "eml",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["protest-embassy.en.eml", "protest-friends.ru.eml"]
    msg = email.message_from_bytes((out / names[0]).read_bytes(), policy=email.policy.default)
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("A. Person", "a.person@example.org")
    assert msg["To"] == "Embassy of Somewhere <embassy@example.org>"
    assert msg["Cc"] == "consul@example.org"
    assert msg["Subject"] == "End the abuse at the example prison"
    assert msg["Message-ID"] and msg["Date"]
    assert msg["X-Unsent"] == "1"  # Outlook opens it as a draft, ready to send
    raw = (out / names[0]).read_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends, as RFC 5322 has them
    ru = email.message_from_bytes((out / names[1]).read_bytes(), policy=email.policy.default)
    assert ru["Subject"] == "Прекратить издевательства в тюрьме"
    assert ru.get_content_charset() == "utf-8"
    body = ru.get_content()
    for demand in demands(mini, "ru"):
        assert flat(demand) in flat(body)
    # The secretariat (a copy, no e-mail address) is skipped, and said to be.
    doc = json.loads(result.stdout)
    assert doc["kind"] == "export" and doc["format"] == "eml" and doc["version"] == 1
    assert [s["recipient"] for s in doc["skipped"]] == ["secretariat"]
    assert "secretariat" in result.stderr and "--format pdf" in result.stderr


def test_mbox_has_one_message_per_email_letter(invoke, mini, tmp_path):
    out = tmp_path / "box"
    result = export(invoke, mini, "--to", "embassy", "--to", "friends", "--format", "mbox", "--out", str(out))
    assert result.exit_code == 0, result.output
    [path] = out.iterdir()
    assert path.name == "protest.mbox"  # two languages: no language in the name
    box = mailbox.mbox(path)
    try:
        msgs = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
    finally:
        box.close()
    assert sorted(m["To"] for m in msgs) == [
        "Embassy of Somewhere <embassy@example.org>",
        "Друзья <friends@example.org>",
    ]
    assert all(m["From"].addresses[0].addr_spec == "a.person@example.org" for m in msgs)


def test_email_formats_refuse_when_nobody_has_email(invoke, mini, tmp_path):
    result = export(invoke, mini, "--to", "group:osce", "--format", "eml", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "no e-mail address" in result.stderr and "--format pdf" in result.stderr
    assert not (tmp_path / "x").exists()


def test_eml_needs_the_signers_email(invoke, mini, tmp_path):
    result = export(
        invoke,
        mini,
        "--to",
        "embassy",
        "--format",
        "eml",
        "--out",
        str(tmp_path / "x"),
        "--name",
        "A. Person",
        signer=False,
    )
    assert result.exit_code == 2
    assert "--email" in result.stderr


# --- text for web forms ---------------------------------------------------------------


def test_txt_is_subject_blank_line_body(invoke, mini, tmp_path):
    out = tmp_path / "web"
    result = export(invoke, mini, "--to", "embassy", "--format", "txt", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "protest-embassy.en.txt",
        "protest-secretariat-copy.en.txt",
    ]
    text = (out / "protest-secretariat-copy.en.txt").read_text(encoding="utf-8")
    assert text.startswith("Subject: End the abuse at the example prison\n\n26 November 2026\n")
    assert text.endswith("A. Person\nLeeds\n")
    for demand in demands(mini):
        assert flat(demand) in flat(text)
    assert "https://example.org/contact" in result.stderr  # where to paste it


def test_letter_text_and_file_stem():
    from letterkit.contacts import Contact
    from letterkit.letters import Letter

    contact = Contact(id="osce-secretariat", name="OSCE")
    letter = Letter(
        campaign="c", template="protest", language="ru", contact=contact,
        signer=PERSON, subject="Тема", body="Текст\r\n", copy=True, date=DAY,
    )  # fmt: skip
    assert letter_text(letter) == "Subject: Тема\n\nТекст\n"
    assert file_stem(letter) == "protest-osce-secretariat-copy.ru"


# --- overwriting, bad input ------------------------------------------------------------


def test_refuses_to_overwrite_without_force(invoke, mini, tmp_path):
    out = tmp_path / "web"
    args = ["--to", "embassy", "--format", "txt", "--out", str(out)]
    assert export(invoke, mini, *args).exit_code == 0
    first = out / "protest-embassy.en.txt"
    first.write_text("my edits", encoding="utf-8")
    (out / "protest-secretariat-copy.en.txt").unlink()  # one target is free, one is taken
    result = export(invoke, mini, *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(first) in result.stderr and "--force" in result.stderr
    assert first.read_text(encoding="utf-8") == "my edits"  # nothing changed...
    assert not (out / "protest-secretariat-copy.en.txt").exists()  # ...and nothing was written
    result = export(invoke, mini, *args, "--force")
    assert result.exit_code == 0, result.output
    assert first.read_text(encoding="utf-8").startswith("Subject: ")
    assert (out / "protest-secretariat-copy.en.txt").exists()


def test_invalid_format_and_combined_misuse(invoke, mini, tmp_path):
    result = export(invoke, mini, "--out", str(tmp_path / "x"), "--format", "docx")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown --format 'docx' — use one of: pdf, eml, mbox, txt"
    result = export(invoke, mini, "--out", str(tmp_path / "x"), "--format", "txt", "--combined")
    assert result.exit_code == 2 and "--combined" in result.stderr
    assert not (tmp_path / "x").exists()


def test_export_letters_library_api(mini, tmp_path):
    batch = letters(mini, to=["embassy"])
    paths = export_letters(batch, "txt", tmp_path / "lib")
    assert [p.name for p in paths] == ["protest-embassy.en.txt", "protest-secretariat-copy.en.txt"]
    with pytest.raises(ExportError, match="exists already and 1 more"):
        export_letters(batch, "txt", tmp_path / "lib")
    assert export_letters(batch, "txt", tmp_path / "lib", force=True) == paths
    plan = plan_export(batch, "mbox", tmp_path / "lib")
    assert [lt.contact.id for lt in plan.skipped] == ["secretariat"]


def test_prepare_by_hand_writes_pdf_and_txt(mini, tmp_path):
    [letter] = letters(mini, to=["secretariat"], cc=[])
    files = prepare_by_hand(letter, tmp_path / "prepared")
    assert files == {
        "pdf": tmp_path / "prepared" / "protest-secretariat.en.pdf",
        "txt": tmp_path / "prepared" / "protest-secretariat.en.txt",
    }
    assert files["txt"].read_text(encoding="utf-8") == letter_text(letter)
    assert "Wallnerstrasse 6" in pdf_pages(files["pdf"].read_bytes())[0]
    with pytest.raises(ExportError, match="never overwrites"):
        prepare_by_hand(letter, tmp_path / "prepared")
    assert files["txt"].read_text(encoding="utf-8") == letter_text(letter)


# --- the bundled campaign, and start-up cost ------------------------------------------------


@pytest.mark.skipif(
    not (REPO / "templates" / "protest.en.txt.j2").is_file(), reason="bundled templates not present"
)
def test_bundled_protest_to_osce_is_ready_for_an_envelope(invoke, tmp_path):
    args = ["--to", "group:osce", "--format", "pdf", "--out", "letters/"]
    result = invoke("export", "protest", *args, *SIGNER)
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "letters").iterdir()
    assert path.name == "protest-osce-secretariat.en.pdf"
    campaign = load_campaign(REPO, with_user_contacts=False)
    secretariat = next(c for c in campaign.contacts if c.id == "osce-secretariat")
    text = flat("\n".join(pdf_pages(path.read_bytes())))
    for line in (secretariat.name, *secretariat.address, secretariat.fax):
        assert line in text
    for demand in campaign.data["demands"]:
        assert flat(demand) in text


def test_cli_start_does_not_import_fpdf():
    code = (
        "import sys; from letterkit.cli._app import app; "
        "assert 'fpdf' not in sys.modules and 'letterkit.export' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
