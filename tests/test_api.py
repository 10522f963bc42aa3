"""The Python API, used the way an organiser's script would use it, without the CLI.

``import letterkit`` gives load_campaign, select, load_cosigners, Signer, Account,
compose / compose_all, to_message, check_campaign and the LetterkitError family;
queueing, delivery and the ledger live in ``letterkit.outbox`` (Outbox,
send_letters) and ``letterkit.transport`` (SmtpTransport).  Mail goes only to the
aiosmtpd server on 127.0.0.1 (tests/smtp_server.py).
"""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TODAY
from smtp_server import (  # noqa: F401  (fixtures)
    PASSWORD,
    USERNAME,
    make_smtp_server,
    smtp_server,
    test_ca,
)

import letterkit
from letterkit.delivery import deliver
from letterkit.outbox import Outbox
from letterkit.service import send_letters
from letterkit.transport import SmtpTransport

CHECKED = TODAY.strftime("%Y-%m")
MAIL = {
    "minister": "minister@example.org",
    "ombudsman": "ombudsman@example.net",
    "governor": "governor@example.org",
}
SIGNER = letterkit.Signer(name="A. Organiser", email="organiser@example.org", city="Leeds", country="UK")
COSIGNERS_CSV = (
    "name,city,country,organisation,consent\n"
    "Ada Example,Leeds,United Kingdom,,yes\n"
    "Bruno Example,Lyon,France,Example Union,2026-11-20\n"
    "Chidi Example,Lagos,Nigeria,,y\n"
)
TEMPLATE = """\
+++
subject = "{{ campaign.title }}"
to = ["group:ministry"]
language = "en"
description = "A protest about Harbourside"
+++
{{ recipient.salutation }}

I write about {{ campaign.prison }}. The detainees ask for:
{% for d in campaign.demands %}
- {{ d }}
{% endfor %}
{% if note %}

{{ note }}
{% endif %}

Yours sincerely,
{{ signer.name }}
{% if cosigners %}

Co-signed by:
{% for c in cosigners %}
- {{ c.name }}{{ ", " ~ c.city if c.city else "" }}{{ " (" ~ c.organisation ~ ")" if c.organisation else "" }}
{% endfor %}
{% endif %}
"""


def write_campaign(root: Path) -> Path:
    """A campaign written from scratch: three contacts by e-mail, one by post only."""
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "campaign.toml").write_text(
        'id = "harbourside-api"\n'
        'title = "Harbourside Remand Centre: end solitary confinement"\n'
        'prison = "Harbourside Remand Centre"\n'
        'demands = ["An end to solitary confinement.", "Independent medical care."]\n',
        encoding="utf-8",
    )
    (root / "templates" / "protest.en.txt.j2").write_text(TEMPLATE, encoding="utf-8")
    salutations = {"minister": "Dear Minister,", "ombudsman": "Dear Ombudsman,", "governor": "Dear Governor,"}
    tables = [
        f'[[contact]]\nid = "{cid}"\nname = "{cid.title()}"\ngroups = ["ministry"]\n'
        f'salutation = "{salutations[cid]}"\nemail = "{address}"\nsource = "made up"\nchecked = "{CHECKED}"\n'
        for cid, address in MAIL.items()
    ]
    tables.append(
        '[[contact]]\nid = "inspectorate"\nname = "Inspectorate of Prisons"\ngroups = ["ministry"]\n'
        'address = ["1 Example Road", "Example City"]\nsource = "made up"\n'
        f'checked = "{CHECKED}"\n'
    )
    (root / "recipients.toml").write_text("\n".join(tables), encoding="utf-8")
    return root


@pytest.fixture
def campaign_dir(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "harbourside")


@pytest.fixture
def cosigners_csv(tmp_path: Path) -> Path:
    path = tmp_path / "cosigners.csv"
    path.write_text(COSIGNERS_CSV, encoding="utf-8")
    return path


def account_for(server, name: str = "main") -> letterkit.Account:  # type: ignore[no-untyped-def]
    """The account a script would describe: STARTTLS with the test CA, AUTH."""
    return letterkit.Account(
        name=name,
        host=server.host,
        port=server.port,
        security=server.security,
        username=server.username,
        from_addr=USERNAME,
        ca_file=str(server.ca_file),
        timeout=5.0,
    ).validated()


def body(received) -> str:  # type: ignore[no-untyped-def]
    return received.message.get_content().replace("\r\n", "\n")


# --- compose, queue, deliver, read the ledger ----------------------------------------------


def test_compose_and_send_letters_then_read_the_ledger(campaign_dir, cosigners_csv, smtp_server, monkeypatch):
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", PASSWORD)  # what get_password reads first
    campaign = letterkit.load_campaign(campaign_dir)
    assert campaign.id == "harbourside-api"
    chosen = letterkit.select(campaign.contacts, ["group:ministry"])
    assert [c.id for c in chosen] == [*MAIL, "inspectorate"]
    assert [c.channels for c in chosen] == [("email",)] * 3 + [("post",)]
    cosigners = letterkit.load_cosigners(cosigners_csv)
    assert [c.name for c in cosigners] == ["Ada Example", "Bruno Example", "Chidi Example"]

    letters = letterkit.compose_all(
        campaign,
        "protest",
        SIGNER,
        to=["group:ministry"],
        cosigners=cosigners,
        note="I have met the families.",
    )
    assert [(lt.contact.id, lt.channel) for lt in letters] == [
        ("minister", "email"), ("ombudsman", "email"), ("governor", "email"), ("inspectorate", "hand"),
    ]  # fmt: skip
    first = letters[0]
    assert first.verbatim is False and first.cosigners == tuple(cosigners)
    assert first.subject == "Harbourside Remand Centre: end solitary confinement"
    text = first.body
    assert text.index("A. Organiser") < text.index("Co-signed by:") < text.index("- Ada Example, Leeds")
    assert "- Bruno Example, Lyon (Example Union)" in text and "I have met the families." in text

    message = letterkit.to_message(first, from_addr=USERNAME)
    assert isinstance(message, email.message.EmailMessage)
    assert message["From"].addresses[0].addr_spec == USERNAME
    assert message["Reply-To"].addresses[0].addr_spec == SIGNER.email
    assert message["To"].addresses[0].addr_spec == MAIL["minister"]
    assert message["Message-ID"] and message.get_content() == first.body

    account = account_for(smtp_server)
    with Outbox() as box:  # the user's data dir, as the CLI uses (isolated in tmp_path by conftest)
        report = send_letters(letters, account=account, outbox=box, rate=0)
        assert report.ok
        assert report.queue.queued == 3 and [r.recipient for r in report.queue.prepared] == ["inspectorate"]
        assert report.delivery is not None
        assert (report.delivery.total, report.delivery.sent, report.delivery.failed) == (3, 3, 0)
        rows = box.rows()
    assert [(r.recipient, r.status) for r in rows] == [
        ("minister", "sent"), ("ombudsman", "sent"), ("governor", "sent"), ("inspectorate", "prepared"),
    ]  # fmt: skip
    received = smtp_server.messages
    assert len(received) == 3
    by_rcpt = {m.rcpt_tos[0]: m for m in received}
    for row in rows[:3]:
        m = by_rcpt[row.rcpt[0]]
        assert row.message_id == m.message["Message-ID"]
        assert row.reply.startswith("250 ") and row.account == "main" and row.sent_at
        assert row.signer == "A. Organiser <organiser@example.org>" and row.campaign == "harbourside-api"
        assert m.mail_from == USERNAME and m.login == USERNAME and m.tls
        assert "- Chidi Example, Lagos" in body(m)
    hand = rows[3]
    assert hand.channel == "hand" and hand.message_id == "" and hand.rcpt == ()
    assert Path(hand.files["pdf"]).is_file() and Path(hand.files["txt"]).is_file()

    # the same letters again: the ledger says they went; nothing is sent twice
    again = send_letters(
        letterkit.compose_all(campaign, "protest", SIGNER, cosigners=cosigners), account=account
    )
    assert again.queue.queued == 0 and again.delivery is not None and again.delivery.sent == 0
    assert {s.recipient for s in again.queue.skipped} == {*MAIL, "inspectorate"}
    assert smtp_server.count() == 3


def test_the_cli_reads_the_ledger_the_library_wrote(invoke, campaign_dir, smtp_server):
    campaign = letterkit.load_campaign(campaign_dir)
    letters = letterkit.compose_all(campaign, "protest", SIGNER, to=["minister"])
    report = send_letters(
        letters, account=account_for(smtp_server), password_provider=lambda: PASSWORD, rate=0
    )
    assert report.ok and report.delivery is not None and report.delivery.sent == 1
    log = invoke("log", "--json")
    assert log.exit_code == 0, log.output
    (row,) = json.loads(log.stdout)["letters"]
    assert (row["recipient"], row["status"]) == ("minister", "sent")
    assert row["message_id"] == smtp_server.messages[0].message["Message-ID"]


def test_queue_now_deliver_later_through_a_transport(tmp_path, campaign_dir, smtp_server):
    campaign = letterkit.load_campaign(campaign_dir)
    letters = letterkit.compose_all(campaign, "protest", SIGNER, to=["minister", "governor"])
    box = Outbox(tmp_path / "box")
    try:
        queued = box.queue(letters)  # no account yet: From is the signer, set again at delivery
        assert (queued.queued, queued.to_deliver) == (2, 2)
        waiting = box.pending()
        assert [(r.recipient, r.status) for r in waiting] == [("minister", "queued"), ("governor", "queued")]
        ids = [r.message_id for r in waiting]
        assert smtp_server.count() == 0
        transport = SmtpTransport(account_for(smtp_server), lambda: PASSWORD)
        try:
            report = deliver(box, transport, batch=queued.batch, rate=0)
        finally:
            transport.close()
        assert report.ok and (report.sent, report.failed, report.deferred) == (2, 0, 0)
        assert box.pending() == []
        rows = box.rows(("sent",))
    finally:
        box.close()
    assert [r.message_id for r in rows] == ids  # the Message-ID given at queueing is the one sent
    received = {m.message["Message-ID"]: m for m in smtp_server.messages}
    assert set(received) == set(ids)
    for m in received.values():
        (sender,) = m.message["From"].addresses
        assert (sender.display_name, sender.addr_spec) == ("A. Organiser", USERNAME)
        assert m.message["Reply-To"].addresses[0].addr_spec == SIGNER.email
        assert not [h for h in m.message if h.lower().startswith("x-letterkit")]
    sent = mailbox.Maildir(tmp_path / "box" / "sent", factory=None, create=False)
    assert sorted(m["Message-ID"] for m in sent) == sorted(ids)


def test_a_permanent_refusal_is_a_failed_row_with_the_servers_reason(
    tmp_path, campaign_dir, make_smtp_server
):
    server = make_smtp_server(reject_rcpt={MAIL["ombudsman"]})
    campaign = letterkit.load_campaign(campaign_dir)
    letters = letterkit.compose_all(campaign, "protest", SIGNER, to=list(MAIL))
    with Outbox(tmp_path / "box") as box:
        report = send_letters(
            letters, account=account_for(server), outbox=box, password_provider=lambda: PASSWORD, rate=0
        )
        assert not report.ok
        assert report.delivery is not None
        assert (report.delivery.sent, report.delivery.failed, report.delivery.error) == (2, 1, None)
        (failed,) = box.rows(("failed",))
        pending = box.pending()
    assert (
        failed.recipient == "ombudsman" and "550 5.1.1" in failed.reason and "User unknown" in failed.reason
    )
    assert [r.id for r in pending] == [failed.id]  # stays in the outbox, with the reason
    assert server.count() == 2


# --- authoring and errors as data ---------------------------------------------------------------


def test_check_campaign_returns_every_problem_as_data(tmp_path, campaign_dir):
    good = letterkit.check_campaign(campaign_dir)
    assert isinstance(good, letterkit.CheckReport)
    assert good.ok and good.problems == [] and good.warnings == []
    assert (good.contacts, good.templates) == (4, 1) and good.letters > 0

    broken = write_campaign(tmp_path / "broken")
    protest = broken / "templates" / "protest.en.txt.j2"
    protest.write_text(
        TEMPLATE.replace('to = ["group:ministry"]', 'to = ["group:ministry", "group:embassies"]'),
        encoding="utf-8",
    )
    template = broken / "templates" / "appeal.en.txt.j2"
    template.write_text(TEMPLATE.replace("{{ campaign.prison }}", "{{ campaign.prisno }}"), encoding="utf-8")
    with (broken / "recipients.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[contact]]\nid = "minister"\nname = "Again"\nemail = "again@example.org"\n')
    report = letterkit.check_campaign(broken)
    assert not report.ok
    assert all(isinstance(p, str) and "\n" not in p for p in report.problems)
    text = "\n".join(report.problems)
    assert f"{protest}: to selector 'group:embassies'" in text
    assert f"{template}:9:" in text and "prisno" in text  # file:line of the misspelt variable
    assert "minister" in text and "recipients.toml" in text  # the duplicate id
    doc = report.as_dict()
    assert doc["ok"] is False and doc["problems"] == report.problems
    json.dumps(doc)


def test_an_unknown_contact_id_is_a_letterkit_error(campaign_dir):
    campaign = letterkit.load_campaign(campaign_dir)
    with pytest.raises(letterkit.LetterkitError) as info:
        letterkit.select(campaign.contacts, ["nobody"])
    assert isinstance(info.value, letterkit.ContactError)
    assert "unknown contact id 'nobody'" in str(info.value) and info.value.hint
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    with pytest.raises(letterkit.ContactError, match="nobody"):
        letterkit.compose_all(campaign, "protest", SIGNER, to=["nobody"])
    with pytest.raises(letterkit.TemplateError, match="no template named 'appeal'"):
        letterkit.compose_all(campaign, "appeal", SIGNER)
    with pytest.raises(letterkit.CampaignError, match="does not exist"):
        letterkit.load_campaign(campaign_dir / "missing")


# --- as a separate script ---------------------------------------------------------------------------


def run_script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "organiser.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_python_example_runs_as_a_script(tmp_path):
    """README "Python API", with the bundled campaign; it composes and sends nothing."""
    result = run_script(
        tmp_path,
        """
        import letterkit

        campaign = letterkit.load_campaign()
        signer = letterkit.Signer(name="A. Person", email="a.person@example.org", city="Leeds")
        for letter in letterkit.compose(campaign, "protest", signer, note="My own words."):
            print(letter.contact.id, letter.channel, letter.subject)
            if letter.channel == "email":
                message = letterkit.to_message(letter)
                print("message", type(message).__name__, message["To"])
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "kz-osce-delegation email Dolinka prison: end the beatings and abuse of prisoners"
    assert lines[1].startswith("message EmailMessage ") and "kzosce@kazakhstan.at" in lines[1]
    assert lines[2].startswith("osce-secretariat hand ")


def test_letterkit_compose_is_the_function_whatever_was_used_first(tmp_path, campaign_dir):
    result = run_script(
        tmp_path,
        f"""
        import letterkit

        report = letterkit.check_campaign({str(campaign_dir)!r})   # validate first, then compose
        assert report.ok, report.problems
        campaign = letterkit.load_campaign({str(campaign_dir)!r})
        signer = letterkit.Signer(name="A. Organiser")
        print(len(list(letterkit.compose(campaign, "protest", signer))))
        """,
    )
    assert "TypeError: 'module' object is not callable" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
