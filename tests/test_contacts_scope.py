"""A user's own contact belongs to the campaign it was added for (issue 10): an embassy
added for one case never gets a letter about another through a shared group."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from conftest import SIGNER

EMBASSY = ["--name", "Embassy of Kazakhstan in Exampleland", "--group", "missions", "--group", "kazakhstan",
           "--email", "embassy@example.org"]  # fmt: skip
CONTACTS = Path("config") / "letterkit" / "contacts.toml"


@pytest.fixture
def other_case(campaign_copy: Path) -> Path:
    """A second campaign that also writes to group:missions, under its own id."""
    case = campaign_copy / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8")
    assert 'id = "dolinka-2010"' in text
    case.write_text(text.replace('id = "dolinka-2010"', 'id = "other-case"', 1), encoding="utf-8")
    return campaign_copy


def stored(home: Path) -> dict[str, list[str]]:
    """Each contact in contacts.toml with its campaigns key (whatever library wrote it)."""
    doc = tomllib.loads((home / CONTACTS).read_text(encoding="utf-8"))
    return {c["id"]: c.get("campaigns") for c in doc["contact"]}


def ids(invoke, *args: str) -> set[str]:
    result = invoke(*args, "contacts", "--json")
    assert result.exit_code == 0, result.output
    return {c["id"] for c in json.loads(result.stdout)["contacts"]}


def recipients(invoke, *args: str) -> set[str]:
    result = invoke(*args, "preview", "protest", "--to", "group:missions", "--json", *SIGNER)
    assert result.exit_code == 0, result.output
    return {lt["recipient"] for lt in json.loads(result.stdout)["letters"]}


def test_a_contact_joins_only_the_campaign_it_was_added_for(invoke, isolated, other_case):
    added = invoke("contacts", "add", "--id", "embassy-xx", *EMBASSY)
    assert added.exit_code == 0, added.output
    assert "campaign dolinka-2010 only" in added.stderr
    assert stored(isolated) == {"embassy-xx": ["dolinka-2010"]}
    assert "embassy-xx" in ids(invoke) and "embassy-xx" in recipients(invoke)
    other = ("--campaign", str(other_case))
    assert "embassy-xx" not in ids(invoke, *other)
    assert "embassy-xx" not in recipients(invoke, *other)  # the bug: a letter about another case
    listing = invoke(*other, "contacts")
    assert "Not in this campaign (other-case), of your contacts: embassy-xx (dolinka-2010)" in listing.stderr
    # added from inside the other campaign, it belongs there
    mine = invoke(*other, "contacts", "add", "--id", "embassy-yy", *EMBASSY, "--json")
    assert json.loads(mine.stdout)["contact"]["campaigns"] == ["other-case"]
    assert "embassy-yy" in recipients(invoke, *other) and "embassy-yy" not in recipients(invoke)


def test_all_campaigns_is_explicit(invoke, isolated, other_case):
    added = invoke("contacts", "add", "--id", "embassy-all", *EMBASSY, "--all-campaigns")
    assert added.exit_code == 0, added.output
    assert "every campaign" in added.stderr
    assert stored(isolated) == {"embassy-all": ["*"]}
    assert "embassy-all" in recipients(invoke)
    assert "embassy-all" in recipients(invoke, "--campaign", str(other_case))
    rows = [line.split("\t") for line in invoke("contacts").stdout.splitlines()]
    assert rows[-1][0] == "embassy-all" and rows[-1][-1] == "*"


def test_contacts_table_names_the_campaign_of_yours(invoke, monkeypatch):
    assert invoke("contacts", "add", "--id", "embassy-xx", *EMBASSY).exit_code == 0
    from letterkit.cli import _output

    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)
    result = invoke("contacts")
    assert "(yours: dolinka-2010)" in result.stdout


def test_old_contacts_without_a_campaign_are_left_out_with_one_warning(invoke, isolated):
    path = isolated / CONTACTS
    path.parent.mkdir(parents=True)
    path.write_text(
        '[[contact]]\nid = "old-embassy"\nname = "Old"\ngroups = ["missions"]\n'
        'email = "old@example.org"\nchecked = "2026-01"\nsource = "me"\n',
        encoding="utf-8",
    )
    result = invoke("preview", "protest", "--to", "group:missions", *SIGNER)
    assert result.exit_code == 0, result.output
    assert "old@example.org" not in result.stdout
    assert result.stderr.count("old-embassy belong to no campaign") == 1
    assert 'add campaigns = ["dolinka-2010"]' in result.stderr
    with pytest.raises(AssertionError):  # not listed among this campaign's contacts
        assert "old-embassy" in ids(invoke)
    report = json.loads(invoke("check", "--json").stdout)
    assert {"id": "old-embassy", "campaigns": [], "scope": "no campaign", "applies": False} in report[
        "user_contacts"
    ]
    assert any("old-embassy belong to no campaign" in w for w in report["warnings"])
    # the user puts it back: in this campaign now
    path.write_text(path.read_text(encoding="utf-8") + 'campaigns = ["dolinka-2010"]\n', encoding="utf-8")
    again = invoke("preview", "protest", "--to", "group:missions", *SIGNER)
    assert "old@example.org" in again.stdout and "belong to no campaign" not in again.stderr


def test_check_validates_your_contacts_and_says_which_apply(invoke, isolated, other_case):
    assert invoke("contacts", "add", "--id", "embassy-xx", *EMBASSY).exit_code == 0
    assert invoke("contacts", "add", "--id", "embassy-all", *EMBASSY, "--all-campaigns").exit_code == 0
    human = invoke("check")
    assert human.exit_code == 0, human.output
    assert "your contacts in campaign dolinka-2010: embassy-all (all campaigns), embassy-xx" in human.stderr
    other = json.loads(invoke("check", str(other_case), "--json").stdout)
    assert {c["id"]: c["applies"] for c in other["user_contacts"]} == {
        "embassy-all": True,
        "embassy-xx": False,
    }
    path = isolated / CONTACTS
    path.write_text(path.read_text(encoding="utf-8").replace(
        'email = "embassy@example.org"', 'email = "embassy@example.org"\nfax = "call me"', 1
    ), encoding="utf-8")  # fmt: skip
    bad = invoke("check", "--json")
    assert bad.exit_code == 2
    (problem,) = json.loads(bad.stdout)["problems"]
    assert str(path) in problem and "'call me' is not a phone number" in problem


def test_a_campaign_file_cannot_claim_campaigns(invoke, campaign_copy):
    rec = campaign_copy / "recipients.toml"
    rec.write_text(
        rec.read_text(encoding="utf-8")
        + '\n[[contact]]\nid = "x"\nname = "X"\nemail = "x@example.org"\ncampaigns = ["*"]\n',
        encoding="utf-8",
    )
    result = invoke("check", str(campaign_copy))
    assert result.exit_code == 2 and "'campaigns' is only for your own contacts" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fax", "fax me"], "--fax: 'fax me' is not a phone number"),
        (["--phone", "+44 20"], "--phone: '+44 20' has 4 digits"),
        (["--checked", "2026-02-30"], "is not a real date"),
        (["--checked", "2026-12-01"], "is in the future (today is 2026-11-26)"),
        (["--checked", "last week"], "is not a date like"),
    ],
)
def test_contacts_add_checks_numbers_and_dates(invoke, args, message):
    result = invoke("contacts", "add", "--id", "emb", "--name", "Embassy", "--email", "e@example.org", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_contacts_add_help_explains_the_scope(invoke):
    text = invoke("contacts", "add", "--help").stdout
    assert "--all-campaigns" in text and 'campaigns = ["*"]' in text
