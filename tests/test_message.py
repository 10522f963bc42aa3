"""The message on the wire: built by the stdlib ``email`` package, CRLF only, no line
longer than the RFC allows, and no value that could smuggle a header or a second message."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.header
import email.policy
import re
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest

from letterkit.campaign import load_campaign
from letterkit.config import Signer
from letterkit.errors import InvalidValue, LetterkitError
from letterkit.letters import Letter, compose_all
from letterkit.message import encode_message, message_bytes, to_message
from letterkit.validation import (
    check_address,
    check_header_value,
    check_language,
    check_slug,
    normalise_newlines,
)

BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")  # a CR not before LF, or an LF not after CR
WHEN = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
SIGNER = Signer(name="A. Person", email="a.person@example.org")
ARGS = ["--name", "A. Person", "--email", "a.person@example.org"]

RECIPIENTS = """
[[contact]]
id = "embassy"
name = "Embassy of Somewhere"
groups = ["g"]
email = "embassy@example.org"
cc = ["consul@example.org"]

[[contact]]
id = "quoted"
name = "Smith, John (Office)"
groups = ["g"]
email = '"x, y"@example.org'

[[contact]]
id = "ru"
name = "Посольство Примера"
groups = ["g"]
language = "ru"
email = "ru@example.org"
"""


def campaign_dir(root: Path, *, subject: str = "Free the prisoners", language: str = "") -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "recipients.toml").write_text(RECIPIENTS, encoding="utf-8")
    (root / "templates" / "campaign.toml").write_text('id = "m"\ndemands = ["a"]\n', encoding="utf-8")
    lang = f"language = {language!r}\n" if language else ""
    front = f'+++\nsubject = "{subject}"\nto = ["group:g"]\n{lang}+++\n'
    body = "Dear friends,\n\n{{ note }}\n\n{{ signer.name }}\n"
    (root / "templates" / "t.txt.j2").write_text(front + body, encoding="utf-8")
    return root


def one_letter(root: Path, contact: str = "embassy", signer: Signer = SIGNER, **kw) -> Letter:  # type: ignore[no-untyped-def]
    campaign = load_campaign(root, with_user_contacts=False)
    [letter] = compose_all(campaign, "t", signer, to=[contact], cc=[], **kw)
    return letter


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.SMTP)
    assert isinstance(msg, EmailMessage)
    return msg


def assert_wire_ready(data: bytes) -> None:
    """Every line ends in CRLF, no bare CR or LF, 7-bit, no line over 998 octets."""
    assert data.endswith(b"\r\n")
    assert BARE.search(data) is None, data[max(0, BARE.search(data).start() - 40) :][:80]  # type: ignore[union-attr]
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_every_header_parses_back_plain(tmp_path):
    root = campaign_dir(tmp_path / "c")
    letter = one_letter(root, note="Please act.")
    data, msgid = message_bytes(letter, from_addr="sender@example.net", date=WHEN)
    assert_wire_ready(data)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    msg = parse(data)
    assert [k for k in msg] == [
        "From",
        "Reply-To",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
        "Content-Language",
    ]  # nothing names the machine or the program: no X-Mailer, no User-Agent
    assert str(msg["From"]) == '"A. Person" <sender@example.net>'
    assert str(msg["Reply-To"]) == '"A. Person" <a.person@example.org>'
    assert str(msg["To"]) == "Embassy of Somewhere <embassy@example.org>"
    assert str(msg["Cc"]) == "consul@example.org"
    assert str(msg["Subject"]) == "Free the prisoners"
    assert msg["Date"].datetime == WHEN
    assert msg["Message-ID"] == msgid and re.fullmatch(r"<[^@<>\s]+@example\.net>", msgid)
    assert msg["Content-Language"] == "en" and msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    assert msg.get_content().replace("\r\n", "\n") == letter.body
    # to_message is the same message, as an object
    built = to_message(letter, from_addr="sender@example.net", date=WHEN, message_id=msgid)
    assert built.as_bytes() == data


def test_no_reply_to_when_the_signer_sends_and_quoted_local_parts_survive(tmp_path):
    root = campaign_dir(tmp_path / "c")
    msg = parse(message_bytes(one_letter(root, "quoted"))[0])
    assert msg.get_all("Reply-To") is None
    assert msg["From"].addresses[0].addr_spec == "a.person@example.org"
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Smith, John (Office)", '"x, y"@example.org')
    assert msg["Message-ID"].endswith("@example.org>")


def test_cyrillic_subject_and_names_round_trip(tmp_path):
    root = campaign_dir(tmp_path / "c", subject="Освободите узников")
    signer = Signer(name="Анна Пример", email="anna@example.org")
    letter = one_letter(root, "ru", signer, note="Прошу вас вмешаться.")
    data, _ = message_bytes(letter)
    assert_wire_ready(data)
    msg = parse(data)
    assert msg["Subject"] == "Освободите узников"
    assert msg["From"].addresses[0].display_name == "Анна Пример"
    assert msg["To"].addresses[0].display_name == "Посольство Примера"
    assert msg["Content-Language"] == letter.language == "en"  # the template has no ru version
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"  # 7-bit clean, never 8bit
    assert "Прошу вас вмешаться." in msg.get_content()


def test_long_lines_in_the_body_are_encoded(tmp_path):
    root = campaign_dir(tmp_path / "c")
    letter = one_letter(root, note="x" * 3000)
    data, _ = message_bytes(letter)
    assert_wire_ready(data)
    msg = parse(data)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert "x" * 3000 in msg.get_content()


@pytest.mark.parametrize(
    "note",
    [
        "one\rtwo",  # a bare CR
        "one\r.\r\ntwo",  # SMTP smuggling: <CR>.<CR><LF>
        "one\n.\ntwo\r\n.\r\n",
        "one\u2028two\u2029three\x85four\x0bfive\x0csix",
    ],
)
def test_line_breaks_in_the_note_become_plain_line_ends(tmp_path, note):
    root = campaign_dir(tmp_path / "c")
    letter = one_letter(root, note=note)
    assert "\r" not in letter.body and "\u2028" not in letter.body and "\x85" not in letter.body
    data, _ = message_bytes(letter)
    assert_wire_ready(data)
    body = parse(data).get_content()
    assert "one\r\n" in body and "\r\ntwo" in body


def test_a_body_set_by_hand_is_normalised_too(tmp_path):
    letter = one_letter(campaign_dir(tmp_path / "c"))
    edited = letter.with_body("Dear friends,\r.\r\nMAIL FROM:<x@example.org>\rend\u2028more")
    data, _ = message_bytes(edited)
    assert_wire_ready(data)
    assert parse(data).get_content() == "Dear friends,\r\n.\r\nMAIL FROM:<x@example.org>\r\nend\r\nmore\r\n"


def test_long_headers_are_folded_to_legal_lines(tmp_path):
    root = campaign_dir(tmp_path / "c", subject="Ж" * 2000)
    name = " ".join(["Verylongname"] * 250)  # 3,249 characters
    letter = one_letter(root, signer=Signer(name=name, email="a.person@example.org"))
    data, _ = message_bytes(letter, from_addr="sender@example.net")
    assert_wire_ready(data)
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    msg = parse(data)
    assert msg["Subject"] == "Ж" * 2000
    assert msg["From"].addresses[0].display_name == name
    cyrillic = " ".join(["Длинноеимя"] * 300)
    letter = one_letter(root, signer=Signer(name=cyrillic, email="a.person@example.org"))
    data, _ = message_bytes(letter)
    assert_wire_ready(data)
    assert max(len(line) for line in data.split(b"\r\n")) <= 79


@pytest.mark.xfail(
    strict=True,
    reason="the stdlib's folder drops the space at a fold between two encoded words of a "
    "display name (Python 3.11; cf. python/cpython#144156): names over ~38 Cyrillic letters",
)
def test_long_non_ascii_names_keep_their_spaces(tmp_path):
    root = campaign_dir(tmp_path / "c")
    name = "Петрова-Водкина Иванова Мария Александровна"
    letter = one_letter(root, signer=Signer(name=name, email="a.person@example.org"))
    raw_from = email.message_from_bytes(message_bytes(letter)[0], policy=email.policy.compat32)["From"]
    # decode_header joins adjacent encoded words as RFC 2047 6.2 says (the stdlib's address
    # parser adds a space between them instead, so it cannot be the judge here)
    decoded = str(email.header.make_header(email.header.decode_header(raw_from)))
    assert decoded == f"{name} <a.person@example.org>"


@pytest.mark.parametrize("what", ["name", "subject"])
def test_headers_no_folding_can_make_legal_are_refused(tmp_path, invoke, what):
    word = "x" * 3000 if what == "name" else "y" * 2000
    root = campaign_dir(tmp_path / "c", subject=word if what == "subject" else "S")
    args = ["--name", word, "--email", "a@example.org"] if what == "name" else ARGS
    result = invoke("--campaign", str(root), "preview", "t", *args)
    assert result.exit_code == 2, result.output
    assert "longer than 800 characters" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # and a Letter made by hand cannot get one past message_bytes either
    letter = one_letter(campaign_dir(tmp_path / "d"))
    changed = dataclasses.replace(letter, subject=word) if what == "subject" else letter
    if what == "name":
        changed = dataclasses.replace(letter, signer=Signer(name=word, email="a@example.org"))
    with pytest.raises(InvalidValue):
        message_bytes(changed)


def test_the_last_guard_names_the_header_too_long_to_send():
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = "z" * 1200  # an unstructured header: the stdlib encodes and folds it
    msg["To"] = Address("z" * 1200, addr_spec="a@example.org")  # a name it cannot fold
    msg.set_content("text\n")
    with pytest.raises(InvalidValue, match="the To header cannot be folded"):
        encode_message(msg)


SEPARATORS = ["\r", "\n", "\x00", "\x85", "\u2028", "\u2029", "\x0b", "\x1c"]


@pytest.mark.parametrize("char", SEPARATORS)
@pytest.mark.parametrize("where", ["name", "email", "email-trailing"])
def test_line_breaks_in_the_signer_are_refused_on_every_command(tmp_path, invoke, char, where):
    root = campaign_dir(tmp_path / "c")
    if where == "name":
        args = ["--name", f"A.{char}Bcc: x@example.org", "--email", "a@example.org"]
    elif where == "email":
        args = ["--name", "A", "--email", f"a@example.org{char}Bcc: x@example.org"]
    else:
        args = ["--name", "A", "--email", f"a@example.org{char}"]
    out = tmp_path / "out"
    for command in (["preview", "t"], ["export", "t", "--format", "mbox", "--out", str(out)]):
        result = invoke("--campaign", str(root), *command, *args)
        assert result.exit_code == 2, (command, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("char", ["\x00"])
def test_nul_in_subject_is_refused(tmp_path, char):
    root = campaign_dir(tmp_path / "c", subject=f"S{char}x".replace("\x00", "\\u0000"))
    with pytest.raises(LetterkitError) as info:
        one_letter(root)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("char", ["\\r", "\\n", "\\u0085", "\\u2028", "\\u2029"])
def test_line_breaks_in_a_subject_become_spaces(tmp_path, char):
    root = campaign_dir(tmp_path / "c", subject=f"Free{char}Bcc: x@example.org")
    letter = one_letter(root)
    assert letter.subject == "Free Bcc: x@example.org"
    assert parse(message_bytes(letter)[0])["Subject"] == letter.subject


@pytest.mark.parametrize(
    "language", ["en\\u2028Bcc: x", "en\\u0085", "en\\n", "en\\r", "en\\u0000", "e", "en_GB"]
)
def test_a_template_language_that_is_not_a_tag_is_refused_when_loaded(tmp_path, invoke, language):
    root = campaign_dir(tmp_path / "c", language=language)
    with pytest.raises(InvalidValue, match="is not a language tag"):
        load_campaign(root, with_user_contacts=False)
    for command in (["check"], ["preview", "t", *ARGS], ["send", "t", "--dry-run", *ARGS]):
        result = invoke("--campaign", str(root), *command)
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output


def test_a_letter_with_a_bad_language_made_by_hand_is_refused(tmp_path):
    letter = one_letter(campaign_dir(tmp_path / "c"))
    with pytest.raises(InvalidValue):
        message_bytes(dataclasses.replace(letter, language="en\u2028x"))


# --- the validators: one rule, full matches -------------------------------------------


@pytest.mark.parametrize("slug", ["e6\n", "main\n", "main\r", "Main", "-x", "", "a" * 65, "ü"])
def test_slugs_are_matched_in_full(slug):
    with pytest.raises(InvalidValue):
        check_slug(slug, "id")


def test_good_values_pass():
    assert check_slug("e6", "id") == "e6" and check_slug("a.b_c-d", "id") == "a.b_c-d"
    assert check_address(" a@example.org ", "e-mail") == "a@example.org"
    assert check_language("pt-BR", "language") == "pt-BR" and check_language("sr-Latn-RS", "l")
    assert check_header_value("Ана Пример", "name") == "Ана Пример"


@pytest.mark.parametrize(
    "address",
    [
        "a@example.org\n",
        "a@example.org\x85",
        "a@example.org\u2028",
        "a@example.org\u00a0",
        "пример@example.org",
    ],
)
def test_addresses_are_matched_in_full_and_ascii(address):
    with pytest.raises(InvalidValue):
        check_address(address, "e-mail")


@pytest.mark.parametrize("char", [*SEPARATORS, "\x1d", "\x1e", "\x0c"])
def test_header_values_refuse_every_line_break(char):
    with pytest.raises(InvalidValue, match="contains"):
        check_header_value(f"A{char}B", "name")


def test_one_message_bytes_in_the_package():
    import letterkit.export

    assert not hasattr(letterkit.export, "message_bytes")
    assert letterkit.message_bytes is message_bytes


def test_every_kind_of_line_break_becomes_one_lf() -> None:
    """CRLF, a bare CR, and every other break a reader might honour (VT, FF, the file/group/
    record separators, NEL, U+2028/2029) become one LF each; nothing else changes."""
    reference = re.compile("\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
    breaks = ["\r\n", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
    pieces = ["", "a", "Дорогой", " ", "\t", "\n\r", *breaks]
    samples = [a + b + c for a in pieces for b in pieces for c in pieces]
    samples += ["\r\r\n\n", "line\r\n" * 3, "x\u2028y\u2029", "\n\n", "end\r"]
    for text in samples:
        assert normalise_newlines(text) == reference.sub("\n", text), repr(text)
