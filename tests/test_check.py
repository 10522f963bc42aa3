"""``letterkit check`` (issue 10): each problem once; fax/phone numbers and ``checked``
dates validated; a passed ``act_before`` and an unedited ``init`` copy are pointed out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def check(invoke, folder: Path) -> tuple[int, dict]:
    result = invoke("check", str(folder), "--json")
    return result.exit_code, json.loads(result.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_broken_contact_is_reported_once(invoke, campaign_copy):
    # kz-osce-delegation is a protest recipient: it was reported when loading and again
    # while rendering each template that reads the contacts
    edit(campaign_copy / "recipients.toml", 'email = "kzosce@kazakhstan.at"', 'email = "not-an-address"')
    code, report = check(invoke, campaign_copy)
    assert code == 2
    broken = [p for p in report["problems"] if "not-an-address" in p]
    assert len(broken) == 1, report["problems"]
    assert len(report["problems"]) == len(set(report["problems"]))
    human = invoke("check", str(campaign_copy))
    assert human.stderr.count("not-an-address") == 1


@pytest.mark.parametrize(
    "number, message",
    [
        ("+43 1 890", "has 6 digits"),
        ("+43 1 890 80 08 20 30 40 50", "has 18 digits"),
        ("+43 1 890 80 08 ext. 20", "is not a phone number"),
        ("43 + 1 890 80 08", "is not a phone number"),
    ],
)
def test_fax_numbers_are_checked(invoke, campaign_copy, number, message):
    edit(campaign_copy / "recipients.toml", 'fax = "+43 1 890 80 08-20"', f'fax = "{number}"')
    code, report = check(invoke, campaign_copy)
    assert code == 2
    (problem,) = report["problems"]
    assert "(contact kz-osce-delegation): fax" in problem and message in problem


def test_phone_numbers_are_checked_and_good_ones_pass(invoke, campaign_copy):
    edit(campaign_copy / "recipients.toml", '"+43 1 890 80 08 10-38"', '"(0043) 1 890-80-08", "123"')
    code, report = check(invoke, campaign_copy)
    assert code == 2
    (problem,) = report["problems"]
    assert "phone '123' has 3 digits" in problem


@pytest.mark.parametrize(
    "checked, message",
    [
        ("2010-13", "is not a real date"),
        ("2026-02-30", "is not a real date"),
        ("Sept 2010", "is not a date like 2026-11 or 2026-11-26"),
        ("2026-12", "is in the future (today is 2026-11-26)"),
        ("2026-11-27", "is in the future"),
    ],
)
def test_checked_dates_are_checked(invoke, campaign_copy, checked, message):
    edit(campaign_copy / "recipients.toml", '\nchecked = "2010-09"', f'\nchecked = "{checked}"')
    code, report = check(invoke, campaign_copy)
    assert code == 2
    (problem,) = report["problems"]
    assert f"checked {checked!r}" in problem and message in problem


def test_today_and_this_month_are_not_the_future(invoke, campaign_copy):
    edit(campaign_copy / "recipients.toml", '\nchecked = "2010-09"', '\nchecked = "2026-11"')
    edit(campaign_copy / "recipients.toml", '\nchecked = "2010-09"', '\nchecked = "2026-11-26"')
    code, report = check(invoke, campaign_copy)
    assert code == 0, report["problems"]


def test_a_passed_deadline_is_a_warning(invoke, campaign_copy):
    case = campaign_copy / "templates" / "campaign.toml"
    edit(case, '# act_before = "2010-12-31"', 'act_before = "2026-11-25"')
    code, report = check(invoke, campaign_copy)
    assert code == 0
    assert any(str(case) in w and "that date has passed" in w for w in report["warnings"])
    edit(case, 'act_before = "2026-11-25"', 'act_before = "2026-11-26"')  # today: not passed yet
    assert not any("has passed" in w for w in check(invoke, campaign_copy)[1]["warnings"])


def test_an_unedited_init_copy_is_pointed_out(invoke, tmp_path):
    folder = tmp_path / "newcase"
    assert invoke("init", str(folder)).exit_code == 0
    code, report = check(invoke, folder)
    assert code == 0
    (still,) = [w for w in report["warnings"] if "still the bundled campaign" in w]
    assert "'dolinka-2010'" in still
    human = invoke("check", str(folder))
    assert "still the bundled campaign" in human.stderr
    case = folder / "templates" / "campaign.toml"
    edit(case, 'id = "dolinka-2010"', 'id = "my-case"')
    assert not any("still the bundled" in w for w in check(invoke, folder)[1]["warnings"])


def test_the_bundled_campaign_itself_is_not_called_a_copy(invoke):
    report = json.loads(invoke("check", "--json").stdout)
    assert report["ok"] and not any("still the bundled" in w for w in report["warnings"])
