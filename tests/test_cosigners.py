"""Co-signers from CSV, personal notes, deadlines and stale-data warnings in preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SIGNER

from letterkit.cosigners import Cosigner, load_cosigners
from letterkit.errors import InvalidValue

GOOD = (
    "name,city,country,organisation,consent\n"
    "Maria Example,Vienna,Austria,,yes\n"
    "Ivan Example,Almaty,Kazakhstan,Example Union,2026-11-20\n"
    "Jo Example,Cork,Ireland,,y\n"
)


def write(tmp_path: Path, text: str, name: str = "cosigners.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_cosigners(tmp_path):
    people = load_cosigners(write(tmp_path, GOOD))
    assert [p.name for p in people] == ["Maria Example", "Ivan Example", "Jo Example"]
    assert people[1] == Cosigner("Ivan Example", "Almaty", "Kazakhstan", "Example Union")
    assert people[1].line() == "Ivan Example, Almaty, Kazakhstan (Example Union)"


def test_semicolons_and_organization_spelling(tmp_path):
    people = load_cosigners(write(tmp_path, "Name;Organization;Consent\nAna;Union;yes\n"))
    assert people == [Cosigner("Ana", organisation="Union")]


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    text = GOOD + "No Consent,Oslo,Norway,,no\nMaria Example,Graz,Austria,,yes\nShort,row\n,Nowhere,X,,yes\n"
    with pytest.raises(InvalidValue) as info:
        load_cosigners(write(tmp_path, text))
    message = str(info.value)
    assert "4 bad row(s)" in message
    assert "line 5: no recorded consent for 'No Consent'" in message
    assert "line 6: 'Maria Example' is a duplicate of line 2" in message
    assert "line 7: 2 fields, expected 5" in message
    assert "line 8: no name" in message
    assert "\n" not in message


def test_missing_columns_and_header_injection(tmp_path):
    with pytest.raises(InvalidValue, match="missing column"):
        load_cosigners(write(tmp_path, "name,city\nA,B\n"))
    with pytest.raises(InvalidValue, match="line 2"):
        load_cosigners(write(tmp_path, 'name,consent\n"Evil\rBcc: x@example.org",yes\n'))
    with pytest.raises(InvalidValue, match="not found"):
        load_cosigners(tmp_path / "missing.csv")


def test_preview_lists_cosigners_under_the_signature(invoke, tmp_path):
    csv = write(tmp_path, GOOD)
    result = invoke(
        "preview", "protest", "--to", "kz-osce-delegation", "--cosigners", str(csv), "--json", *SIGNER
    )
    assert result.exit_code == 0, result.output
    letters = json.loads(result.stdout)["letters"]
    assert [lt["channel"] for lt in letters] == ["email", "hand"]  # + the OSCE's copy
    letter = letters[0]
    body = letter["body"]
    assert body.index("A. Person") < body.index("Maria Example") < body.index("Ivan Example")
    assert letter["cosigners"] == [
        "Maria Example, Vienna, Austria",
        "Ivan Example, Almaty, Kazakhstan (Example Union)",
        "Jo Example, Cork, Ireland",
    ]
    assert letter["to"] == ["kzosce@kazakhstan.at"]  # still one letter, from the signer alone


def test_preview_refuses_bad_cosigners(invoke, tmp_path):
    csv = write(tmp_path, GOOD + "Nobody Asked,Oslo,Norway,,\n")
    result = invoke("preview", "protest", "--cosigners", str(csv), *SIGNER)
    assert result.exit_code == 2
    assert "line 5" in result.stderr and "consent" in result.stderr


def test_note_makes_a_letter_personal(invoke, tmp_path):
    plain = json.loads(invoke("preview", "solidarity", "--json", *SIGNER).stdout)["letters"][0]
    assert plain["verbatim"] is True
    note = write(tmp_path, "Мы с вами.\n", "note.txt")
    result = invoke("preview", "solidarity", "--note-file", str(note), "--json", *SIGNER)
    letter = json.loads(result.stdout)["letters"][0]
    assert letter["verbatim"] is False and "Мы с вами." in letter["body"]
    both = invoke("preview", "solidarity", "--note", "x", "--note-file", str(note), *SIGNER)
    assert both.exit_code == 2 and "not both" in both.stderr
    human = invoke("preview", "solidarity", *SIGNER)
    assert "verbatim" in human.stdout


def test_deadline_and_require_note_warnings(invoke, campaign_copy):
    case = campaign_copy / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8").replace("require_note = false", "require_note = true")
    case.write_text('act_before = "2010-12-31"\n' + text, encoding="utf-8")
    result = invoke("--campaign", str(campaign_copy), "preview", "protest", "--json", *SIGNER)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["deadline_passed"] is True
    text = " ".join(doc["warnings"])
    assert "2010-12-31" in text and "has passed" in text
    assert "requires a personal note" in text
    human = invoke("--campaign", str(campaign_copy), "preview", "protest", *SIGNER)
    assert "has passed" in human.stderr and "2010-09" in human.stderr
