"""Composing letters: the message format and the memoised rendering."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from letterkit.campaign import load_campaign
from letterkit.config import Signer
from letterkit.errors import InvalidValue
from letterkit.letters import Renderer, compose_all, message_bytes, set_sender, to_message

SIGNER = Signer(name="A. Person", email="a.person@example.org", city="Leeds", country="UK")


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_message_bytes_is_7bit_clean_folded_and_parses_back():
    campaign = load_campaign()
    letters = compose_all(campaign, "protest", SIGNER, language="ru")
    letter = next(lt for lt in letters if lt.channel == "email")
    data, msgid = message_bytes(letter, from_addr="sender@example.net")
    head = data.split(b"\n\n", 1)[0]
    assert data.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\n")), head.decode()
    msg = parse(data)
    assert msg["Message-ID"] == msgid and msgid.endswith("@example.net>")
    assert msg["Subject"] == letter.subject  # Cyrillic subject, RFC 2047 encoded
    assert msg["From"].addresses[0].addr_spec == "sender@example.net"
    assert msg["From"].addresses[0].display_name == "A. Person"
    assert msg["Reply-To"].addresses[0].addr_spec == "a.person@example.org"
    assert msg["To"].addresses[0].display_name == letter.contact.name
    assert msg["Content-Language"] == "ru"
    assert msg["Content-Transfer-Encoding"] == "base64"  # shorter than QP for Cyrillic
    assert msg.get_content() == letter.body


def test_english_body_is_quoted_printable_or_7bit():
    campaign = load_campaign()
    letter = compose_all(campaign, "protest", SIGNER, to=["kz-osce-delegation"], cc=[])[0]
    msg = parse(message_bytes(letter)[0])
    assert msg["Content-Transfer-Encoding"] in ("7bit", "quoted-printable")
    assert msg.get_content() == letter.body
    assert to_message(letter)["Subject"] == letter.subject


def test_set_sender_replaces_from_and_reply_to_only():
    campaign = load_campaign()
    letter = compose_all(campaign, "solidarity", Signer(name="Ана Пример", email="ana@example.org"))[0]
    data, _ = message_bytes(letter, from_addr="old@example.org")
    changed = parse(set_sender(data, "Ана Пример", "new@example.net", "ana@example.org"))
    assert changed["From"].addresses[0].addr_spec == "new@example.net"
    assert changed["From"].addresses[0].display_name == "Ана Пример"
    assert len(changed.get_all("From")) == 1 and len(changed.get_all("Reply-To")) == 1
    assert changed["Reply-To"].addresses[0].addr_spec == "ana@example.org"
    assert changed["Cc"] == "ainur1917@gmail.com" and changed.get_content() == letter.body
    same = parse(set_sender(data, "Ана Пример", "ana@example.org", "ana@example.org"))
    assert same.get_all("Reply-To") is None


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


def test_memo_renders_once_per_distinct_fields(tmp_path):
    campaign = load_campaign(
        write_campaign(tmp_path / "c", "{{ recipient.salutation }}\n"), with_user_contacts=False
    )
    renderer = Renderer(campaign)
    calls = 0
    original = renderer._compile

    def counting(t, part):  # type: ignore[no-untyped-def]
        template = original(t, part)

        class Counted:
            def render(self, *a, **k):  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                return template.render(*a, **k)

        return Counted()

    renderer._compile = counting  # type: ignore[method-assign]
    letters = compose_all(campaign, "t", SIGNER, renderer=renderer)
    assert [lt.body for lt in letters] == ["Dear B,\n", "Dear A,\n"] * 3
    assert calls == 2  # two distinct salutations
    other = compose_all(campaign, "t", Signer(name="Someone Else"), renderer=renderer)
    assert len(other) == 6 and calls == 4  # a new batch never reuses the old signer's letters


def test_empty_cc_means_no_copies():
    campaign = load_campaign()
    letters = compose_all(campaign, "protest", SIGNER, cc=[""])
    assert [lt.contact.id for lt in letters] == ["kz-osce-delegation"]
    default = compose_all(campaign, "protest", SIGNER)
    assert [lt.contact.id for lt in default] == ["kz-osce-delegation", "osce-secretariat"]
