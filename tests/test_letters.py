"""Composing letters: the message format and the memoised rendering."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest

from letterkit.campaign import load_campaign
from letterkit.config import Signer
from letterkit.errors import InvalidValue
from letterkit.letters import Renderer, compose_all
from letterkit.message import message_bytes, to_message

SIGNER = Signer(name="A. Person", email="a.person@example.org", city="Leeds", country="UK")


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.SMTP)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_message_bytes_is_7bit_clean_folded_and_parses_back():
    campaign = load_campaign()
    letters = compose_all(campaign, "protest", SIGNER, language="ru")
    letter = next(lt for lt in letters if lt.channel == "email")
    data, msgid = message_bytes(letter, from_addr="sender@example.net")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert data.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head.decode()
    msg = parse(data)
    assert msg["Message-ID"] == msgid and msgid.endswith("@example.net>")
    assert msg["Subject"] == letter.subject  # Cyrillic subject, RFC 2047 encoded
    assert msg["From"].addresses[0].addr_spec == "sender@example.net"
    assert msg["From"].addresses[0].display_name == "A. Person"
    assert msg["Reply-To"].addresses[0].addr_spec == "a.person@example.org"
    assert msg["To"].addresses[0].display_name == letter.contact.name
    assert msg["Content-Language"] == "ru"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content() == letter.body.replace("\n", "\r\n")


def test_english_body_is_quoted_printable_or_7bit():
    campaign = load_campaign()
    letter = compose_all(campaign, "protest", SIGNER, to=["kz-osce-delegation"], cc=[])[0]
    msg = parse(message_bytes(letter)[0])
    assert msg["Content-Transfer-Encoding"] in ("7bit", "quoted-printable")
    assert msg.get_content() == letter.body.replace("\n", "\r\n")
    assert to_message(letter)["Subject"] == letter.subject


def test_readdressing_the_parsed_message_keeps_everything_else():
    """What delivery does for a letter queued for another account: edit the parsed message."""
    from email.headerregistry import Address

    campaign = load_campaign()
    letter = compose_all(campaign, "solidarity", Signer(name="Ана Пример", email="ana@example.org"))[0]
    data, _ = message_bytes(letter, from_addr="old@example.org")
    msg = parse(data)
    del msg["From"], msg["Reply-To"]
    msg["From"] = Address("Ана Пример", addr_spec="new@example.net")
    msg["Reply-To"] = Address("Ана Пример", addr_spec="ana@example.org")
    again = msg.as_bytes()
    assert b"\r\n" in again and not re.search(rb"\r(?!\n)|(?<!\r)\n", again)
    changed = parse(again)
    assert changed["From"].addresses[0].addr_spec == "new@example.net"
    assert changed["From"].addresses[0].display_name == "Ана Пример"
    assert len(changed.get_all("From")) == 1 and len(changed.get_all("Reply-To")) == 1
    assert changed["Cc"] == "ainur1917@gmail.com"
    assert changed.get_content() == letter.body.replace("\n", "\r\n")
    assert changed["To"] == parse(data)["To"] and changed["Subject"] == letter.subject


def test_non_ascii_addresses_are_refused():
    from letterkit.validation import check_address

    with pytest.raises(InvalidValue):
        check_address("пример@example.org", "address")


def write_campaign(root: Path, body: str) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "campaign.toml").write_text('id = "t"\ndemands = ["a"]\n', encoding="utf-8")
    (root / "templates" / "t.en.txt.j2").write_text(
        f'+++\nsubject = "S"\nto = ["group:g"]\n+++\n{body}', encoding="utf-8"
    )
    contacts = "".join(
        f'[[contact]]\nid = "c{i}"\nname = "Name {i}"\ngroups = ["g"]\nemail = "c{i}@example.org"\n'
        f'salutation = "{"Dear A," if i % 2 else "Dear B,"}"\nfax = "{i if i < 2 else ""}"\n\n'
        for i in range(6)
    )
    (root / "recipients.toml").write_text(contacts, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "body",
    [
        "{{ recipient.salutation }}\nText.\n",  # depends on one field
        "{{ recipient.salutation }} {{ recipient.name }}\n",  # different for everyone
        "{% if recipient.fax %}Fax {{ recipient.fax }}{% else %}{{ recipient.salutation }}{% endif %}\n",
        "{% for k, v in recipient.items() %}{{ k }}={{ v }};{% endfor %}\n",  # reads everything
        "{{ recipient.get('email') }}\n",
    ],
)
def test_memoised_rendering_equals_plain_rendering(tmp_path, body):
    campaign = load_campaign(write_campaign(tmp_path / "c", body), with_user_contacts=False)
    memo = [lt.body for lt in compose_all(campaign, "t", SIGNER)]

    class NoMemo(Renderer):
        def _no_memo(self, t):  # type: ignore[no-untyped-def]
            return True

    plain = [lt.body for lt in compose_all(campaign, "t", SIGNER, renderer=NoMemo(campaign))]
    assert memo == plain and len(memo) == 6


def count_renders(renderer: Renderer) -> list[int]:
    """Count the renders ``renderer`` does from now on: ``[n]``, updated in place."""
    calls = [0]
    original = renderer._compile

    def counting(t, part):  # type: ignore[no-untyped-def]
        template = original(t, part)

        class Counted:
            def generate(self, *a, **k):  # type: ignore[no-untyped-def]  (what the sandbox calls)
                calls[0] += 1
                return template.generate(*a, **k)

        return Counted()

    renderer._compile = counting  # type: ignore[method-assign]
    return calls


def test_memo_renders_once_per_distinct_fields(tmp_path):
    campaign = load_campaign(
        write_campaign(tmp_path / "c", "{{ recipient.salutation }}\n"), with_user_contacts=False
    )
    renderer = Renderer(campaign)
    calls = count_renders(renderer)
    letters = compose_all(campaign, "t", SIGNER, renderer=renderer)
    assert [lt.body for lt in letters] == ["Dear B,\n", "Dear A,\n"] * 3
    assert calls[0] == 2  # two distinct salutations
    other = compose_all(campaign, "t", Signer(name="Someone Else"), renderer=renderer)
    assert len(other) == 6 and calls[0] == 4  # a new batch never reuses the old signer's letters


def test_empty_cc_means_no_copies():
    campaign = load_campaign()
    letters = compose_all(campaign, "protest", SIGNER, cc=[""])
    assert [lt.contact.id for lt in letters] == ["kz-osce-delegation"]
    default = compose_all(campaign, "protest", SIGNER)
    assert [lt.contact.id for lt in default] == ["kz-osce-delegation", "osce-secretariat"]


def primary_campaign(root: Path, body: str) -> Path:
    """Three e-mail primaries and a copy by hand (a contact with a fax only)."""
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "campaign.toml").write_text('id = "t"\ndemands = ["a"]\n', encoding="utf-8")
    (root / "templates" / "t.en.txt.j2").write_text(
        f'+++\nsubject = "S"\nto = ["group:g"]\ncc = ["h"]\n+++\n{body}', encoding="utf-8"
    )
    contacts = "".join(
        f'[[contact]]\nid = "c{i}"\nname = "Name {i}"\ngroups = ["g"]\nemail = "c{i}@example.org"\n'
        f'salutation = "Dear all,"\n\n'
        for i in range(3)
    )
    contacts += '[[contact]]\nid = "h"\nname = "Hand"\nfax = "+1 555 0100"\nsalutation = "Dear all,"\n'
    (root / "recipients.toml").write_text(contacts, encoding="utf-8")
    return root


class NoMemo(Renderer):
    def _no_memo(self, t):  # type: ignore[no-untyped-def]
        return True


@pytest.mark.parametrize(
    "body",
    [
        "{{ recipient.salutation }} {{ primary | length }}: {{ primary | join(', ') }}\n",
        "{{ recipient.salutation }}{% if primary %} after {{ primary[-1] }}{% endif %}\n",
        "{{ recipient.salutation }} {{ primary }}\n",
    ],
)
def test_memo_sees_primary_change_while_primaries_are_rendered(tmp_path, body):
    """``primary`` grows as primaries are rendered: two letters whose text depends on it
    must not share a memoised result."""
    campaign = load_campaign(primary_campaign(tmp_path / "c", body), with_user_contacts=False)
    memo = [lt.body for lt in compose_all(campaign, "t", SIGNER)]
    plain = [lt.body for lt in compose_all(campaign, "t", SIGNER, renderer=NoMemo(campaign))]
    assert memo == plain and len(set(memo[:3])) == 3
    if "length" in body:
        assert memo[:2] == ["Dear all, 1: Name 0\n", "Dear all, 2: Name 0, Name 1\n"]


def test_memo_still_works_when_only_copies_read_primary(tmp_path):
    """The bundled templates read ``primary`` only in a copy: primaries stay memoised."""
    body = (
        "{{ recipient.salutation }}\n{% if copy and primary %}Copy of: {{ primary | join(', ') }}{% endif %}"
    )
    campaign = load_campaign(primary_campaign(tmp_path / "c", body), with_user_contacts=False)
    renderer = Renderer(campaign)
    calls = count_renders(renderer)
    letters = compose_all(campaign, "t", SIGNER, renderer=renderer)
    assert [lt.body for lt in letters] == ["Dear all,\n"] * 3 + ["Dear all,\nCopy of: Name 0, Name 1, Name 2"]
    assert calls[0] == 2  # once for the three primaries, once for the copy
