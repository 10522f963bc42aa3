"""Templates run bounded: no hang, no flood, no traceback; includes stay in templates/."""

from __future__ import annotations

import pytest
from conftest import REAL_SIGNER

FRONT = '+++\nsubject = "{subject}"\nto = ["osce-secretariat"]\nlanguage = "en"\n+++\n'


def _template(campaign_copy, body: str, *, subject: str = "A subject", name: str = "hostile") -> None:  # type: ignore[no-untyped-def]
    (campaign_copy / "templates" / f"{name}.en.txt.j2").write_text(
        FRONT.format(subject=subject) + body, encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{{ 'x' * 10**9 }}\n", "over the limit"),
        ("{{ 10 ** (10 ** 9) }}\n", "digits"),
        ("{{ lipsum(10**6) }}\n", "lipsum() is limited"),
        ("{% for i in range(10**9) %}x{% endfor %}\n", "range() of"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}\n", "recursion"),
        ("{% for x in 5 %}{{ x }}{% endfor %}\n", "TypeError"),
        ("line one\n{{ 1/0 }}\n", "ZeroDivisionError"),
        ('{{ "%d" % "x" }}\n', "TypeError"),
        ("{% include '../recipients.toml' %}\n", "is not in the campaign's templates folder"),
        ("{% include '/etc/passwd' %}\n", "not found in search path"),
        (
            "{% for i in range(9999) %}{% for j in range(9999) %}{{ 'y' * 100 }}{% endfor %}{% endfor %}\n",
            "longer than",
        ),
    ],
)
def test_a_hostile_template_is_a_one_line_error_naming_the_file(invoke, campaign_copy, body, says):
    _template(campaign_copy, body)
    for command in (["preview", "hostile", *REAL_SIGNER], ["check", str(campaign_copy)]):
        result = invoke("--campaign", str(campaign_copy), *command)
        assert result.exit_code == 2, (command, result.output)
        assert "hostile.en.txt.j2:" in result.stderr and says in result.stderr, result.stderr
        assert "Traceback" not in result.output


def test_the_error_names_the_line(invoke, campaign_copy):
    _template(campaign_copy, "Dear friend,\n\n{{ 1/0 }}\n")
    result = invoke("--campaign", str(campaign_copy), "preview", "hostile", *REAL_SIGNER)
    assert "hostile.en.txt.j2:8:" in result.stderr  # 5 lines of front matter, then the third line


def test_a_hostile_subject_fails_the_templates_list_too(invoke, campaign_copy):
    _template(campaign_copy, "Hello\n", subject="{{ 'x' * 10**9 }}")
    result = invoke("--campaign", str(campaign_copy), "templates")
    assert (
        result.exit_code == 2 and "hostile.en.txt.j2" in result.stderr and "over the limit" in result.stderr
    )


def test_a_loop_without_end_stops_at_the_time_limit(invoke, campaign_copy, monkeypatch):
    from letterkit import sandbox

    monkeypatch.setattr(sandbox, "TIME_LIMIT", 0.3)
    _template(campaign_copy, "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}\n")
    result = invoke("--campaign", str(campaign_copy), "preview", "hostile", *REAL_SIGNER)
    assert result.exit_code == 2 and "rendering took more than 0.3 seconds" in result.stderr


def test_shared_paragraphs_can_be_included_from_templates(invoke, campaign_copy):
    (campaign_copy / "templates" / "_closing.txt").write_text("With hope for justice,\n", encoding="utf-8")
    _template(campaign_copy, "Dear friend,\n{% include '_closing.txt' %}{{ signer.name }}\n")
    result = invoke("--campaign", str(campaign_copy), "preview", "hostile", *REAL_SIGNER)
    assert result.exit_code == 0, result.output
    assert "With hope for justice," in result.stdout


def test_a_link_out_of_templates_is_not_followed(invoke, campaign_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for letters\n", encoding="utf-8")
    (campaign_copy / "templates" / "link.txt").symlink_to(secret)
    _template(campaign_copy, "{% include 'link.txt' %}\n")
    result = invoke("--campaign", str(campaign_copy), "preview", "hostile", *REAL_SIGNER)
    assert result.exit_code == 2 and "outside the campaign's templates folder" in result.stderr
    assert "not for letters" not in result.output


@pytest.mark.parametrize("bad", ["../../../../elsewhere/x", "/tmp/x", "ok\\n", "Upper"])
def test_a_campaign_id_is_a_slug_never_a_path(invoke, campaign_copy, bad):
    case = campaign_copy / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8")
    case.write_text(text.replace('id = "dolinka-2010"', f'id = "{bad}"', 1), encoding="utf-8")
    result = invoke("--campaign", str(campaign_copy), "send", "protest", "--dry-run", *REAL_SIGNER)
    assert result.exit_code == 2 and "is not a valid id" in result.stderr


@pytest.mark.parametrize("option", ["--note-file", "--cosigners"])
def test_endless_files_are_read_no_further_than_a_limit(invoke, option):
    result = invoke("send", "protest", "--dry-run", option, "/dev/zero", *REAL_SIGNER)
    assert result.exit_code == 2, result.output
    assert "/dev/zero is longer than" in result.stderr or "cannot read" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "prisoners = [",
            'prisoners = "Luchkin"\nold_prisoners = [',
            "prisoners = 'Luchkin' must be a list of strings",
        ),
        ("prisoners = [", "prisoners = 5\nold_prisoners = [", "prisoners = 5 must be a list"),
        ("events = [", "events = 5\nold_events = [", "events = 5 must be a list"),
        ("require_note = false", 'require_note = "no"', "require_note = 'no' must be true or false"),
        ("require_note = false", "require_note = false\nact_before = 5", "act_before = 5 must be a date"),
        ('title = "Dolinka', 'title = ["Dolinka"]\nold_title = "Dolinka', "title = ['Dolinka'] must be text"),
        ("[translations.ru]\n", '[translations.ru]\nrequire_note = "x"\n', "[translations.ru]: require_note"),
    ],
)
def test_campaign_values_have_the_types_templates_rely_on(invoke, campaign_copy, old, new, says):
    case = campaign_copy / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8")
    assert old in text
    case.write_text(text.replace(old, new, 1), encoding="utf-8")
    for command in (["check", str(campaign_copy)], ["--campaign", str(campaign_copy), "preview", "protest",
                                                    *REAL_SIGNER]):  # fmt: skip
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "campaign.toml" in result.stderr and says in result.stderr and "Traceback" not in result.output


def test_a_binary_campaign_toml_is_a_one_line_error(invoke, campaign_copy):
    (campaign_copy / "templates" / "campaign.toml").write_bytes(b"\xff\xfe\x00\x01binary")
    result = invoke("check", str(campaign_copy))
    assert result.exit_code == 2 and "not a text file" in result.stderr


def test_a_campaign_error_names_the_line(invoke, campaign_copy):
    case = campaign_copy / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8")
    line = text.splitlines().index("require_note = false") + 1
    case.write_text(text.replace("require_note = false", 'require_note = "no"', 1), encoding="utf-8")
    result = invoke("check", str(campaign_copy))
    assert f"campaign.toml:{line}: require_note" in result.stderr
