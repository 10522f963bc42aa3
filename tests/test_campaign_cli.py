"""The core commands, used as a person or a script would: contacts, templates, preview,
signer, check, init, contacts add/remove — and their errors."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import REAL_SIGNER, REPO, SIGNER

CASE = tomllib.loads((REPO / "templates" / "campaign.toml").read_text(encoding="utf-8"))


def test_contacts_lists_every_contact_of_the_appeal(invoke):
    result = invoke("contacts")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]  # piped: tab-separated
    assert rows[0] == ["id", "name", "groups", "channels", "checked", "stale", "yours", "campaigns"]
    channels = {r[0]: r[3] for r in rows[1:]}
    assert channels == {
        "kz-osce-delegation": "email,fax,post,web",
        "osce-secretariat": "fax,post,web",
        "solidarity-support": "email",
    }
    assert "last checked long ago" in result.stderr  # the 2010 data is flagged


def test_contacts_table_on_a_terminal(monkeypatch, capsys):
    """On a terminal the same listing is a Rich table with the stale dates marked."""
    from letterkit.cli import _listing, _output

    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)
    _listing.show_contacts()
    out = capsys.readouterr().out
    assert "kz-osce-delegation" in out and "2010-09*" in out and "web form" in out


def test_contacts_json_has_the_right_channels(invoke):
    result = invoke("contacts", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["kind"] == "contacts"
    by_id = {c["id"]: c for c in doc["contacts"]}
    delegation = by_id["kz-osce-delegation"]
    assert delegation["email"] == "kzosce@kazakhstan.at"
    assert delegation["channels"] == ["email", "fax", "post", "web"]
    assert len(delegation["web_form"]) == 2 and len(delegation["phone"]) == 2
    secretariat = by_id["osce-secretariat"]
    assert secretariat["email"] == "" and secretariat["channels"] == ["fax", "post", "web"]
    assert secretariat["fax"] == "+43 1 514 36 6996"
    assert "Wallnerstrasse 6" in secretariat["address"][0]
    support = by_id["solidarity-support"]
    assert support["email"] == "andrey-akm@mail.ru" and support["cc"] == ["ainur1917@gmail.com"]
    for c in doc["contacts"]:
        assert c["checked"] == "2010-09" and c["source"] and c["stale"] is True


def test_contacts_filters(invoke):
    doc = json.loads(invoke("contacts", "--channel", "post", "--json").stdout)
    assert {c["id"] for c in doc["contacts"]} == {"kz-osce-delegation", "osce-secretariat"}
    doc = json.loads(invoke("contacts", "--group", "support", "--json").stdout)
    assert [c["id"] for c in doc["contacts"]] == ["solidarity-support"]
    bad = invoke("contacts", "--channel", "pigeon")
    assert bad.exit_code == 2 and "unknown channel" in bad.stderr


def test_templates_lists_languages_and_recipients(invoke):
    result = invoke("templates", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    by_name = {t["name"]: t for t in doc["templates"]}
    assert by_name["protest"]["languages"] == ["en", "ru"]
    assert by_name["protest"]["to"] == ["group:kazakhstan"] and by_name["protest"]["cc"] == ["group:osce"]
    assert by_name["solidarity"]["languages"] == ["en", "ru"]
    assert "{{" not in by_name["protest"]["subjects"]["en"]
    human = invoke("templates")
    assert "protest" in human.stdout and "solidarity" in human.stdout


def test_preview_protest_in_english_has_every_demand(invoke):
    result = invoke("preview", "protest", "--name", "A. Person", "--email", "a@example.org")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.replace("│", " ").split())
    assert "A. Person" in out and "kzosce@kazakhstan.at" in out and "Subject:" in out
    for demand in CASE["demands"]:
        assert " ".join(demand.split()) in out or _words_in(demand, out)
    assert "OSCE Secretariat" in out  # the copy for the OSCE, delivered by hand


def _words_in(text: str, haystack: str) -> bool:
    """Every word of text appears, in order, in haystack (panel borders split long lines)."""
    pos = 0
    for word in text.split():
        pos = haystack.find(word.strip(".;,"), pos)
        if pos < 0:
            return False
    return True


def test_preview_json_in_russian(invoke):
    result = invoke("preview", "protest", "--lang", "ru", "--json", *SIGNER)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    letters = doc["letters"]
    assert {lt["recipient"] for lt in letters} == {"kz-osce-delegation", "osce-secretariat"}
    ru_demands = CASE["translations"]["ru"]["demands"]
    for lt in letters:
        assert lt["language"] == "ru"
        assert "A. Person" in lt["body"]
        for demand in ru_demands:
            assert " ".join(demand.split()) in " ".join(lt["body"].split())
    email_letter = next(lt for lt in letters if lt["channel"] == "email")
    assert email_letter["headers"]["To"].endswith("<kzosce@kazakhstan.at>")
    assert email_letter["headers"]["From"] == '"A. Person" <a.person@example.org>'
    assert doc["warnings"], "the 2010 contact data must be flagged"


def test_preview_uses_stored_signer(invoke):
    assert (
        invoke(
            "signer", "set", "--name", "Stored Name", "--email", "s@example.org", "--city", "Oslo"
        ).exit_code
        == 0
    )
    result = invoke("preview", "solidarity", "--json")
    assert result.exit_code == 0, result.output
    letter = json.loads(result.stdout)["letters"][0]
    assert "Stored Name" in letter["body"] and letter["cc"] == ["ainur1917@gmail.com"]
    shown = json.loads(invoke("signer", "show", "--json").stdout)
    assert shown["signer"]["city"] == "Oslo"


def test_preview_without_signer_name_says_how(invoke):
    result = invoke("preview", "protest")
    assert result.exit_code == 2
    assert "no signer name" in result.stderr and "letterkit signer set" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "A. Person\nBcc: victim@example.org"],
        ["--name", "A. Person\r"],
        ["--name", "A\x00Person"],
    ],
)
def test_line_breaks_in_signer_name_are_refused(invoke, args):
    result = invoke("preview", "protest", *args, "--email", "a@example.org")
    assert result.exit_code == 2
    assert "signer name" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_signer_email_is_refused(invoke):
    result = invoke("signer", "set", "--name", "A", "--email", "not-an-address")
    assert result.exit_code == 2 and "not a valid e-mail address" in result.stderr


def test_unknown_contact_id(invoke):
    result = invoke("preview", "protest", "--to", "nobody", *SIGNER)
    assert result.exit_code == 2
    assert "unknown contact id 'nobody'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_template_and_language(invoke):
    assert "no template named 'nope'" in invoke("preview", "nope", *SIGNER).stderr
    result = invoke("preview", "protest", "--lang", "de", *SIGNER)
    assert result.exit_code == 2 and "no 'de' version" in result.stderr


def test_malformed_recipients_toml(invoke, campaign_copy):
    (campaign_copy / "recipients.toml").write_text('[[contact]]\nid = "x"\nname = \n', encoding="utf-8")
    result = invoke("--campaign", str(campaign_copy), "contacts")
    assert result.exit_code == 2
    assert "recipients.toml" in result.stderr and "line 3" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_undefined_template_variable_names_file_and_line(invoke, campaign_copy):
    path = campaign_copy / "templates" / "protest.en.txt.j2"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "Hello {{ signer.nickname }}\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    result = invoke("--campaign", str(campaign_copy), "preview", "protest", *SIGNER)
    assert result.exit_code == 2
    assert f"protest.en.txt.j2:{line}:" in result.stderr
    assert "nickname" in result.stderr and "Traceback" not in result.output


def test_check_passes_on_the_bundled_campaign(invoke):
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert "ok:" in result.stderr
    doc = json.loads(invoke("check", "--json").stdout)
    assert doc["ok"] and doc["letters"] >= 8 and not doc["problems"]


def test_check_lists_every_problem(invoke, campaign_copy):
    rec = campaign_copy / "recipients.toml"
    rec.write_text(
        rec.read_text(encoding="utf-8")
        + '\n[[contact]]\nid = "kz-osce-delegation"\nname = "Duplicate"\nemail = "d@example.org"\n'
        + '\n[[contact]]\nid = "bad-mail"\nname = "Bad"\nemail = "not an address"\n',
        encoding="utf-8",
    )
    t = campaign_copy / "templates" / "solidarity.en.txt.j2"
    t.write_text(
        t.read_text(encoding="utf-8").replace("{{ signer.name }}", "{{ signer.nam }}", 1), encoding="utf-8"
    )
    (campaign_copy / "templates" / "broken.en.txt.j2").write_text(
        '+++\nsubject = "x"\nto = ["group:nowhere"]\n+++\nHi\n', encoding="utf-8"
    )
    result = invoke("check", str(campaign_copy), "--json")
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    text = "\n".join(problems)
    assert "duplicate contact id 'kz-osce-delegation'" in text
    assert "not a valid e-mail address" in text
    assert "signer.nam" in text or "'nam'" in text or "nam" in text
    assert "group:nowhere" in text
    assert len(problems) >= 4
    human = invoke("check", str(campaign_copy))
    assert human.exit_code == 2 and "problem(s)" in human.stderr


def test_init_copies_and_refuses_to_overwrite(invoke, tmp_path):
    target = tmp_path / "newcase"
    result = invoke("init", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "recipients.toml").is_file() and (target / "templates" / "campaign.toml").is_file()
    assert invoke("check", str(target)).exit_code == 0
    again = invoke("init", str(target))
    assert again.exit_code == 2 and "not empty" in again.stderr


def test_campaign_lookup_current_directory_and_env(invoke, campaign_copy, monkeypatch):
    rec = campaign_copy / "recipients.toml"
    rec.write_text(
        rec.read_text(encoding="utf-8").replace("OSCE Secretariat", "OSCE Secretariat (here)"),
        encoding="utf-8",
    )
    monkeypatch.chdir(campaign_copy)
    names = [c["name"] for c in json.loads(invoke("contacts", "--json").stdout)["contacts"]]
    assert "OSCE Secretariat (here)" in names
    monkeypatch.chdir(campaign_copy.parent)
    env_names = [
        c["name"]
        for c in json.loads(
            invoke("contacts", "--json", env={"LETTERKIT_CAMPAIGN": str(campaign_copy)}).stdout
        )["contacts"]
    ]
    assert "OSCE Secretariat (here)" in env_names
    missing = invoke("--campaign", str(campaign_copy / "nope"), "contacts")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_contacts_add_embassy_and_remove(invoke, isolated):
    result = invoke(
        "contacts", "add", "--id", "embassy-xx",
        "--name", "Embassy of the Republic of Kazakhstan in Exampleland",
        "--group", "kazakhstan", "--email", "embassy@example.org", "--address", "1 Example Road",
        "--address", "Example City", "--salutation", "Your Excellency,", "--timezone", "Europe/London",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = isolated / "config" / "letterkit" / "contacts.toml"
    assert stored.is_file() and "embassy-xx" in stored.read_text(encoding="utf-8")
    doc = json.loads(invoke("contacts", "--json").stdout)
    mine = next(c for c in doc["contacts"] if c["id"] == "embassy-xx")
    assert mine["user"] is True and mine["stale"] is False and mine["timezone"] == "Europe/London"
    rows = [line.split("\t") for line in invoke("contacts").stdout.splitlines()]  # piped: TSV
    assert rows[0][-2:] == ["yours", "campaigns"]
    assert [rows[-1][0], *rows[-1][-2:]] == ["embassy-xx", "yes", "dolinka-2010"]
    # the new embassy is one of the protest's recipients now
    letters = json.loads(invoke("preview", "protest", "--json", *SIGNER).stdout)["letters"]
    assert "embassy-xx" in {lt["recipient"] for lt in letters}
    dup = invoke("contacts", "add", "--id", "embassy-xx", "--name", "Again", "--email", "x@example.org")
    assert dup.exit_code == 2 and "exists already" in dup.stderr
    clash = invoke("contacts", "add", "--id", "osce-secretariat", "--name", "X", "--email", "x@example.org")
    assert clash.exit_code == 2
    assert invoke("contacts", "remove", "embassy-xx").exit_code == 0
    assert "embassy-xx" not in invoke("contacts", "--json").stdout
    gone = invoke("contacts", "remove", "osce-secretariat")
    assert gone.exit_code == 2 and "only contacts you added" in gone.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--email", "bad address"], "not a valid e-mail address"),
        (["--email", "ok@example.org\r\nBcc: x@example.org"], "carriage return"),
        ([], "needs at least one of"),
        (["--web-form", "javascript:alert(1)"], "not an http(s) URL"),
        (["--email", "e@example.org", "--timezone", "Mars/Olympus"], "is not a time zone"),
    ],
)
def test_contacts_add_validates(invoke, args, message):
    result = invoke("contacts", "add", "--id", "emb", "--name", "Embassy", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_every_command_has_help_and_is_in_the_readme(invoke):
    import typer.main

    from letterkit.cli import app

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)

    def walk(group, prefix: str):
        for name, cmd in group.commands.items():
            yield f"{prefix}{name}", cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, f"{prefix}{name} ")

    commands = list(walk(root, ""))
    assert len(commands) >= 10
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"letterkit {path} has no help text"
        assert f"letterkit {path}" in readme, f"letterkit {path} is not documented in README.md"
        assert invoke(*path.split(), "--help").exit_code == 0


def test_version(invoke):
    from letterkit import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_letter_becomes_a_standard_email():
    import email
    import email.policy

    from letterkit.campaign import load_campaign
    from letterkit.config import Signer
    from letterkit.letters import compose_all
    from letterkit.message import to_message

    campaign = load_campaign()
    signer = Signer(name="Ана Пример", email="ana@example.org", city="Алматы")
    letters = compose_all(campaign, "solidarity", signer)
    msg = to_message(letters[0])
    raw = msg.as_bytes()
    assert b"=?utf-8?" in raw  # the Cyrillic display name is encoded
    assert all(ord(c) < 128 for c in raw.split(b"\n\n", 1)[0].decode("ascii"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == "Ана Пример"
    assert parsed["Message-ID"] and parsed["Date"]
    assert parsed["Cc"] == "ainur1917@gmail.com"
    assert parsed.get_content_charset() == "utf-8"
    assert "Ана Пример" in parsed.get_content()


QUICK_START = [
    "--name",
    "Your Name",
    "--email",
    "you@example.org",
    "--city",
    "Your City",
    "--country",
    "Your Country",
]


def test_quick_start_shows_the_letters_and_queues_nothing(invoke, isolated):
    """The README's quick start, pasted as written: the letters are shown in full, nothing
    signed "Your Name <you@example.org>" is queued or prepared, and it says how to go on."""
    result = invoke("send", "protest", "--yes", *QUICK_START)
    assert result.exit_code == 0, result.output
    assert "kz-osce-delegation" in result.stdout and CASE["demands"][0].split()[0] in result.stdout
    err = " ".join(result.stderr.split())
    assert "Nothing was queued" in err and "you@example.org is at a reserved example domain" in err
    assert "letterkit signer set" in err
    data = isolated / "data" / "letterkit"
    assert not (data / "outbox" / "new").exists() or not list((data / "outbox" / "new").iterdir())
    assert not (data / "prepared").exists()
    log = invoke("log", "--json")
    assert json.loads(log.stdout)["letters"] == []


def test_send_without_account_with_own_details_shows_and_queues(invoke, isolated):
    """No account yet, --yes, no terminal, real details: letters shown, queued, nothing sent."""
    result = invoke("send", "protest", "--yes", *REAL_SIGNER)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "protest → kz-osce-delegation" in err and CASE["demands"][0].split()[0] in err
    assert "No mail account is set up yet" in err and "letterkit outbox flush" in err
    assert "Needs your hand" in err and "+43 1 514 36 6996" in err
    outbox = isolated / "data" / "letterkit" / "outbox" / "new"
    assert len(list(outbox.iterdir())) == 1
