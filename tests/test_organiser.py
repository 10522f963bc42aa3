"""An organiser's work, from the README alone: a new campaign, co-signers, notes, scripting.

The first test is the issue's "done when": ``letterkit init``, plain file edits for a
new (made-up) case, ``check``, a co-signers CSV, ``preview``, an account on the test
server, then a real ``/bin/sh`` batch script modelled on the README's "An organiser's
batch mailing" (env configuration, ``send --yes --json > result.json``, then parse).
The others check what the README promises around it: bad co-signer rows refused
before anything is queued, ``require_note``, ``--edit``, ``act_before``, stale
contacts, no TTY without ``--yes``, and exit code 1 with the server's reason.

Every letter goes to the aiosmtpd server on 127.0.0.1 (tests/smtp_server.py) only.
"""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
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

NEEDS_SH = pytest.mark.skipif(not Path("/bin/sh").is_file(), reason="needs /bin/sh")
CHECKED = TODAY.strftime("%Y-%m")
COMMITTEE = "Campaign Committee"
COMMITTEE_EMAIL = "committee@example.org"
SIGN = ["--name", COMMITTEE, "--email", COMMITTEE_EMAIL]
MAIL_CONTACTS = {
    "minister": "minister@example.org",
    "ombudsman": "ombudsman@example.net",
    "governor": "governor@example.org",
}
COSIGNERS_CSV = (
    "name,city,country,organisation,consent\n"
    "Ada Example,Leeds,United Kingdom,,yes\n"
    'Bruno Example,Lyon,France,"Example Union, Lyon branch",2026-11-20\n'
    "Chidi Example,Lagos,Nigeria,,y\n"
)
COSIGNER_LINES = [
    "Ada Example, Leeds, United Kingdom",
    "Bruno Example, Lyon, France (Example Union, Lyon branch)",
    "Chidi Example, Lagos, Nigeria",
]

# --- the organiser's edits ----------------------------------------------------------------

CASE_TOML = """\
# Harbourside Remand Centre (a made-up case for letterkit's tests)
id = "harbourside-2031"
title = "Harbourside Remand Centre: end solitary confinement of hunger strikers"
summary = "Detainees at Harbourside Remand Centre are on hunger strike; four were put in solitary."
prison = "Harbourside Remand Centre"
location = "in Example City, Exampleland"
date = "2031-03"
prisoners = ["A. Example", "B. Example"]
events = [
    "Twelve detainees at Harbourside Remand Centre began a hunger strike on 1 March.",
    "Four of them were moved to solitary confinement the next day.",
]
demands = [
    "An end to the solitary confinement of the hunger strikers.",
    "Independent medical care for every detainee on hunger strike.",
]
authorities = "the Ministry of Justice of Exampleland"
asks = ["Return the four detainees to ordinary cells at once."]
require_note = false

[[sources]]
title = "Made up for letterkit's tests"
publisher = "letterkit"
date = "2031-03"
url = ""
"""


def recipients_toml(checked: dict[str, str] | None = None) -> str:
    """Three contacts by e-mail and one with only a postal address, all in group 'ministry'."""
    checked = checked or {}
    salutations = {"minister": "Dear Minister,", "ombudsman": "Dear Ombudsman,", "governor": "Dear Governor,"}
    names = {
        "minister": "Minister of Justice",
        "ombudsman": "Prison Ombudsman",
        "governor": "Centre Governor",
    }
    tables = [
        "[[contact]]\n"
        f'id = "{cid}"\nname = "{names[cid]}"\ngroups = ["ministry"]\n'
        f'salutation = "{salutations[cid]}"\nlanguage = "en"\nemail = "{address}"\n'
        f'source = "made up for the tests"\nchecked = "{checked.get(cid, CHECKED)}"\n'
        for cid, address in MAIL_CONTACTS.items()
    ]
    tables.append(
        "[[contact]]\n"
        'id = "inspectorate"\nname = "Inspectorate of Prisons"\ngroups = ["ministry"]\n'
        'salutation = "Dear Chief Inspector,"\nlanguage = "en"\n'
        'address = ["1 Example Road", "Example City", "Exampleland"]\n'
        f'source = "made up for the tests"\nchecked = "{checked.get("inspectorate", CHECKED)}"\n'
    )
    return "\n".join(tables)


def edit_like_an_organiser(root: Path) -> Path:
    """What the README's "Write your own campaign" asks for, done with plain file edits."""
    templates = root / "templates"
    (templates / "campaign.toml").write_text(CASE_TOML, encoding="utf-8")
    (root / "recipients.toml").write_text(recipients_toml(), encoding="utf-8")
    # keep one template: the English protest; the others name groups this case has not
    extras = ("protest.ru.txt.j2", "solidarity.en.txt.j2", "solidarity.ru.txt.j2", "followup.en.txt.j2")
    for extra in (*extras, "followup.ru.txt.j2"):
        (templates / extra).unlink()
    protest = templates / "protest.en.txt.j2"
    lines = protest.read_text(encoding="utf-8").splitlines(keepends=True)
    front = {
        "subject": 'subject = "{{ campaign.title }}"\n',
        "to": 'to = ["group:ministry"]\n',
        "cc": "cc = []\n",
        "description": 'description = "Protest to the Ministry about Harbourside"\n',
    }
    end = lines.index("+++\n", 1)
    for i in range(1, end):
        key = lines[i].split("=", 1)[0].strip()
        if key in front:
            lines[i] = front[key]
    text = "".join(lines).replace("beatings and\nabuse of prisoners", "the treatment of detainees")
    protest.write_text(text, encoding="utf-8")
    return root


def new_case(tmp_path: Path, name: str = "mycase") -> Path:
    """`letterkit init` (through the library, for speed) followed by the organiser's edits."""
    return edit_like_an_organiser(letterkit.init_campaign(tmp_path / name))


def set_case(root: Path, old: str, new: str) -> None:
    case = root / "templates" / "campaign.toml"
    text = case.read_text(encoding="utf-8")
    assert old in text
    case.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- running letterkit as a separate program ----------------------------------------------


def program_dir(tmp_path: Path) -> Path:
    """A folder with `letterkit` (the installed console script) and `python3` to put on PATH."""
    script = Path(sys.executable).with_name("letterkit")
    if script.is_file() and os.access(script, os.X_OK):
        return script.parent
    bin_dir = tmp_path / "bin"  # not installed as a script: a wrapper around `python -m letterkit`
    bin_dir.mkdir(exist_ok=True)
    for name, argv in (("letterkit", f"{shlex.quote(sys.executable)} -m letterkit"),
                       ("python3", shlex.quote(sys.executable))):  # fmt: skip
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {argv} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    return bin_dir


def shell_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment (isolated XDG dirs and keyring), as a script would inherit it."""
    env = os.environ.copy()
    for var in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):  # colours must go because there is no TTY
        env.pop(var, None)
    env["PATH"] = os.pathsep.join([str(program_dir(tmp_path)), env.get("PATH", "/usr/bin:/bin")])
    env.update(extra)
    return env


def letterkit_cmd(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["letterkit", *args],
        cwd=tmp_path,
        env=shell_env(tmp_path, **extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


BATCH_SCRIPT = """\
#!/bin/sh
# Send the protest to one group, non-interactively, and report failures.
set -u
export LETTERKIT_CAMPAIGN={campaign}
export LETTERKIT_ACCOUNT=main
export LETTERKIT_SMTP_PASSWORD="$(cat "$HOME/.mail-password")"

letterkit send protest --to group:ministry --cosigners cosigners.csv \\
    --name "{name}" --email {email} --rate 0 --yes --json > result.json
status=$?
python3 - <<'EOF'
import json
doc = json.load(open("result.json"))
print(f"sent {{len(doc['sent'])}}, queued {{len(doc['queued'])}}, failed {{len(doc['failed'])}}")
for f in doc["failed"]:
    print(f"FAILED {{f['recipient']}}: {{f['reason']}}")
for h in doc["by_hand"]:
    print(f"BY HAND {{h['recipient']}}: {{h['files']}}")
EOF
exit $status
"""


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "letterkit"


def nothing_queued(tmp_path: Path) -> bool:
    """No ledger was even created, so no letter can be queued or recorded."""
    return (
        not (data_dir(tmp_path) / "ledger.sqlite3").exists() and not (data_dir(tmp_path) / "outbox").exists()
    )


def add_account(invoke, server, monkeypatch, name: str = "main") -> None:  # type: ignore[no-untyped-def]
    """The account, with its password in the environment (as on a server without a keyring)."""
    result = invoke(*server.account_args(name))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("LETTERKIT_SMTP_PASSWORD", server.password)


def body_of(received) -> str:  # type: ignore[no-untyped-def]
    return received.message.get_content().replace("\r\n", "\n")  # as received: CRLF lines


def assert_cosigned(body: str) -> None:
    """The three co-signers are listed under the signer's signature, in the CSV's order."""
    signature = body.index("Yours faithfully,\n" + COMMITTEE)
    heading = body.index("Co-signed by:")
    places = [body.index(f"- {line}") for line in COSIGNER_LINES]
    assert signature < heading < places[0] < places[1] < places[2]


# --- 1. the README walk ---------------------------------------------------------------------


@NEEDS_SH
def test_readme_walk_new_campaign_cosigners_and_a_batch_script(tmp_path, smtp_server):
    # letterkit init mycase, then the organiser's edits
    init = letterkit_cmd(tmp_path, "init", "mycase")
    assert init.returncode == 0, init.stderr
    assert "letterkit check mycase" in " ".join(init.stderr.split())
    case = edit_like_an_organiser(tmp_path / "mycase")

    check = letterkit_cmd(tmp_path, "check", "mycase")
    assert check.returncode == 0, check.stderr
    assert "4 contacts, 1 templates" in check.stderr and "warning" not in check.stderr

    (tmp_path / "cosigners.csv").write_text(COSIGNERS_CSV, encoding="utf-8")
    preview = letterkit_cmd(
        tmp_path,
        "--campaign",
        "mycase",
        "preview",
        "protest",
        "--cosigners",
        "cosigners.csv",
        *SIGN,
        "--json",
    )
    assert preview.returncode == 0, preview.stderr
    shown = json.loads(preview.stdout)
    assert shown["version"] == 1 and shown["campaign"] == "harbourside-2031" and shown["warnings"] == []
    letters = {lt["recipient"]: lt for lt in shown["letters"]}
    assert list(letters) == ["minister", "ombudsman", "governor", "inspectorate"]
    for cid, address in MAIL_CONTACTS.items():
        assert letters[cid]["channel"] == "email" and letters[cid]["to"] == [address]
        assert (
            letters[cid]["subject"]
            == "Harbourside Remand Centre: end solitary confinement of hunger strikers"
        )
        assert letters[cid]["cosigners"] == COSIGNER_LINES and letters[cid]["verbatim"] is True
        assert_cosigned(letters[cid]["body"])
    assert letters["inspectorate"]["channel"] == "hand" and letters["inspectorate"]["hand_channels"] == [
        "post"
    ]
    assert "Dolinka" not in letters["minister"]["body"]

    # the account: STARTTLS with the test CA, AUTH; its password only ever in the environment
    added = letterkit_cmd(tmp_path, *smtp_server.account_args("main"))
    assert added.returncode == 0, added.stderr
    works = letterkit_cmd(tmp_path, "account", "test", "main", LETTERKIT_SMTP_PASSWORD=PASSWORD)
    assert works.returncode == 0, works.stderr
    assert smtp_server.count() == 0  # `account test` sends nothing
    secret = tmp_path / "home" / ".mail-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)

    script = tmp_path / "batch.sh"
    script.write_text(
        BATCH_SCRIPT.format(campaign=shlex.quote(str(case)), name=COMMITTEE, email=COMMITTEE_EMAIL),
        encoding="utf-8",
    )

    def run_script() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(script)],
            cwd=tmp_path,
            env=shell_env(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = run_script()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines()[0] == "sent 3, queued 0, failed 0"
    assert first.stdout.splitlines()[1].startswith("BY HAND inspectorate: {'pdf': ")
    assert "\x1b[" not in first.stderr  # no colour without a terminal
    assert PASSWORD not in first.stdout + first.stderr
    doc = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert doc["version"] == 1 and doc["kind"] == "send" and doc["account"] == "main"
    assert doc["campaign"] == "harbourside-2031" and doc["deadline_passed"] is False
    assert len(doc["sent"]) == 3 and doc["failed"] == doc["queued"] == doc["partial"] == []
    assert [r["recipient"] for r in doc["sent"]] == list(MAIL_CONTACTS)
    assert doc["error"] is None
    (hand,) = doc["by_hand"]
    assert hand["recipient"] == "inspectorate" and hand["channels"] == ["post"]
    assert hand["address"] == ["1 Example Road", "Example City", "Exampleland"]
    assert Path(hand["files"]["pdf"]).is_file() and Path(hand["files"]["txt"]).is_file()
    assert_cosigned(Path(hand["files"]["txt"]).read_text(encoding="utf-8"))

    msgs = smtp_server.messages
    assert len(msgs) == 3
    assert sorted(a for m in msgs for a in m.rcpt_tos) == sorted(MAIL_CONTACTS.values())
    sent_ids = {r["message_id"] for r in doc["sent"]}
    for m in msgs:
        msg = m.message
        assert m.tls and m.login == USERNAME and m.mail_from == USERNAME
        (sender,) = msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (COMMITTEE, USERNAME)  # the account's address
        (reply_to,) = msg["Reply-To"].addresses
        assert reply_to.addr_spec == COMMITTEE_EMAIL
        # a subject this long is folded; compare the words, not how the fold was made
        assert (
            msg["Subject"].strip() == "Harbourside Remand Centre: end solitary confinement of hunger strikers"
        )
        assert msg["Message-ID"] in sent_ids
        assert_cosigned(body_of(m))

    # the same script again: nothing new is sent
    second = run_script()
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[0] == "sent 0, queued 0, failed 0"
    again = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    skipped = {s["recipient"]: s["reason"] for s in again["skipped"]}
    assert set(skipped) == {*MAIL_CONTACTS, "inspectorate"}
    assert all(skipped[cid].startswith("sent on ") for cid in MAIL_CONTACTS)
    assert [(h["recipient"], h["prepared_earlier"]) for h in again["by_hand"]] == [("inspectorate", True)]
    assert smtp_server.count() == 3

    # what went where, for a script
    log = letterkit_cmd(tmp_path, "log", "--json")
    assert log.returncode == 0, log.stderr
    rows = json.loads(log.stdout)
    assert rows["version"] == 1
    assert [(r["recipient"], r["status"]) for r in rows["letters"]] == [
        ("minister", "sent"), ("ombudsman", "sent"), ("governor", "sent"), ("inspectorate", "prepared"),
    ]  # fmt: skip


# --- 2. bad co-signer rows ------------------------------------------------------------------


def test_bad_cosigner_rows_are_refused_with_line_numbers_before_anything_is_queued(
    invoke, tmp_path, smtp_server, monkeypatch
):
    case = new_case(tmp_path)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, smtp_server, monkeypatch)
    bad = tmp_path / "cosigners.csv"
    bad.write_text(
        COSIGNERS_CSV  # lines 1-4 are fine
        + "Dana Example,Oslo,Norway,,\n"  # line 5: no consent recorded
        + "Ada Example,York,United Kingdom,,yes\n",  # line 6: a duplicate of line 2
        encoding="utf-8",
    )
    result = invoke("send", "protest", "--cosigners", str(bad), *SIGN, "--rate", "0", "--yes", "--json")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["kind"] == "error"  # the script gets a document, not an empty file
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "2 bad row(s)" in line
    assert "line 5: no recorded consent for 'Dana Example'" in line
    assert "line 6: 'Ada Example' is a duplicate of line 2" in line
    assert "nothing was queued" in line
    assert nothing_queued(tmp_path)
    box = invoke("outbox", "--json")
    assert box.exit_code == 0 and json.loads(box.stdout)["letters"] == []
    assert smtp_server.count() == 0


# --- 3. require_note --------------------------------------------------------------------------


def test_require_note_refuses_unpersonalised_letters(invoke, tmp_path, smtp_server, monkeypatch):
    case = new_case(tmp_path)
    set_case(case, "require_note = false", "require_note = true")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, smtp_server, monkeypatch)
    send = ["send", "protest", *SIGN, "--rate", "0", "--yes", "--json"]

    refused = invoke(*send)
    assert refused.exit_code == 2, refused.output
    assert json.loads(refused.stdout) == {
        "version": 1,
        "kind": "error",
        "code": 2,
        "message": refused.stderr[7:].strip(),
    }
    (line,) = refused.stderr.splitlines()
    assert "personal words" in line and "--note" in line and "nothing was queued" in line
    assert nothing_queued(tmp_path) and smtp_server.count() == 0

    note_file = tmp_path / "my-words.txt"
    note_file.write_text("I met the families of the hunger strikers in March.\n", encoding="utf-8")
    one = invoke(*send, "--to", "minister", "--note-file", str(note_file))
    assert one.exit_code == 0, one.output
    assert [r["recipient"] for r in json.loads(one.stdout)["sent"]] == ["minister"]

    rest = invoke(*send, "--note", "Solitary confinement of hunger strikers endangers their lives.")
    assert rest.exit_code == 0, rest.output
    doc = json.loads(rest.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["ombudsman", "governor"]
    assert [h["recipient"] for h in doc["by_hand"]] == ["inspectorate"]
    bodies = {m.rcpt_tos[0]: body_of(m) for m in smtp_server.messages}
    assert "I met the families of the hunger strikers in March." in bodies["minister@example.org"]
    for address in ("ombudsman@example.net", "governor@example.org"):
        assert "Solitary confinement of hunger strikers endangers their lives." in bodies[address]


# --- 4. --edit ---------------------------------------------------------------------------------


def test_edit_opens_each_letter_before_it_is_queued(invoke, tmp_path, smtp_server, monkeypatch):
    case = new_case(tmp_path)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, smtp_server, monkeypatch)
    seen = tmp_path / "edited.txt"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import pathlib, sys\n"
        "letter = pathlib.Path(sys.argv[1])\n"
        "text = letter.read_text(encoding='utf-8')\n"
        f"with open({str(seen)!r}, 'a', encoding='utf-8') as log:\n"
        "    log.write(text.splitlines()[2] + '\\n')  # the salutation says whose letter it is\n"
        "if 'Dear Ombudsman,' in text:\n"
        "    letter.write_text('', encoding='utf-8')  # emptied: that letter is left out\n"
        "else:\n"
        "    letter.write_text(text + '\\nP.S. I will follow this case closely.\\n', encoding='utf-8')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}")
    result = invoke("send", "protest", "--edit", *SIGN, "--rate", "0", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert seen.read_text(encoding="utf-8").splitlines() == [
        "Dear Minister,", "Dear Ombudsman,", "Dear Governor,", "Dear Chief Inspector,",
    ]  # fmt: skip
    doc = json.loads(result.stdout)
    assert [r["recipient"] for r in doc["sent"]] == ["minister", "governor"]
    emptied = next(s for s in doc["skipped"] if s["recipient"] == "ombudsman")
    assert emptied["reason"] == "emptied in the editor"
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "governor@example.org",
        "minister@example.org",
    ]
    for m in smtp_server.messages:
        assert body_of(m).rstrip().endswith("P.S. I will follow this case closely.")
    (hand,) = doc["by_hand"]  # the letter by post was edited too
    assert "P.S. I will follow this case closely." in Path(hand["files"]["txt"]).read_text(encoding="utf-8")


# --- 5. act_before ----------------------------------------------------------------------------


def test_act_before_warns_once_the_date_has_passed(invoke, tmp_path, smtp_server, monkeypatch):
    case = new_case(tmp_path)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, smtp_server, monkeypatch)
    send = ["send", "protest", *SIGN, "--rate", "0", "--yes", "--json"]
    future = TODAY + dt.timedelta(days=30)
    # as the README writes it: a bare TOML date, among the top-level keys
    set_case(case, "require_note = false", f"act_before = {future.isoformat()}\nrequire_note = false")
    early = invoke(*send, "--to", "minister")
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["deadline_passed"] is False
    assert "has passed" not in early.stderr

    past = TODAY - dt.timedelta(days=1)
    set_case(case, f"act_before = {future.isoformat()}", f"act_before = {past.isoformat()}")
    late = invoke(*send, "--to", "governor")
    assert late.exit_code == 0, late.output  # a warning, not a refusal
    assert late.stderr.count("has passed") == 1
    (warning,) = [w for w in late.stderr.splitlines() if "has passed" in w]
    assert warning.startswith("warning: ") and past.isoformat() in warning
    doc = json.loads(late.stdout)
    assert doc["deadline_passed"] is True
    assert any(past.isoformat() in w and "has passed" in w for w in doc["warnings"])
    assert [r["recipient"] for r in doc["sent"]] == ["governor"]
    shown = json.loads(invoke("preview", "protest", *SIGN, "--json").stdout)
    assert shown["deadline_passed"] is True


# --- stale contacts ------------------------------------------------------------------------------


def test_stale_contacts_are_flagged_in_contacts_preview_and_send(invoke, tmp_path, smtp_server, monkeypatch):
    case = new_case(tmp_path)
    (case / "recipients.toml").write_text(recipients_toml({"ombudsman": "2010-09"}), encoding="utf-8")
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, smtp_server, monkeypatch)
    listed = json.loads(invoke("contacts", "--json").stdout)
    assert {c["id"]: c["stale"] for c in listed["contacts"]} == {
        "minister": False, "ombudsman": True, "governor": False, "inspectorate": False,
    }  # fmt: skip
    shown = json.loads(invoke("preview", "protest", *SIGN, "--json").stdout)
    assert [lt["recipient"] for lt in shown["letters"] if lt["stale"]] == ["ombudsman"]
    assert any("ombudsman" in w and "2010-09" in w for w in shown["warnings"])
    sent = invoke("send", "protest", "--to", "ombudsman", *SIGN, "--rate", "0", "--yes", "--json")
    assert sent.exit_code == 0, sent.output
    doc = json.loads(sent.stdout)
    assert any("2010-09" in w and "ombudsman" in w for w in doc["warnings"])
    assert "2010-09" in sent.stderr and len(doc["sent"]) == 1


# --- 6. scripting: no TTY, exit codes ----------------------------------------------------------


def test_without_a_terminal_and_without_yes_nothing_is_queued(tmp_path, smtp_server):
    case = new_case(tmp_path)
    added = letterkit_cmd(tmp_path, *smtp_server.account_args("main"))
    assert added.returncode == 0, added.stderr
    result = letterkit_cmd(
        tmp_path,
        "send",
        "protest",
        *SIGN,
        "--json",
        LETTERKIT_CAMPAIGN=str(case),
        LETTERKIT_SMTP_PASSWORD=PASSWORD,
    )
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["code"] == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "--yes" in line and "nothing was queued" in line
    assert nothing_queued(tmp_path)
    assert smtp_server.count() == 0


def test_a_permanent_refusal_exits_1_and_the_json_keeps_the_servers_reason(
    invoke, tmp_path, make_smtp_server, monkeypatch
):
    server = make_smtp_server(reject_rcpt={"ombudsman@example.net"})
    case = new_case(tmp_path)
    monkeypatch.setenv("LETTERKIT_CAMPAIGN", str(case))
    add_account(invoke, server, monkeypatch)
    result = invoke("send", "protest", *SIGN, "--rate", "0", "--yes", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["error"] is None
    assert [r["recipient"] for r in doc["sent"]] == ["minister", "governor"]
    (failed,) = doc["failed"]
    assert failed["recipient"] == "ombudsman" and failed["status"] == "failed"
    assert "550 5.1.1" in failed["reason"] and "User unknown" in failed["reason"]
    assert "not (fully) delivered" in result.stderr
    assert server.count() == 2
    outbox = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert [(r["recipient"], r["status"]) for r in outbox] == [("ombudsman", "failed")]


@NEEDS_SH
def test_the_readme_batch_script_reports_failures_and_passes_the_exit_code_on(tmp_path, make_smtp_server):
    server = make_smtp_server(reject_data={"governor@example.org"})
    case = new_case(tmp_path)
    (tmp_path / "cosigners.csv").write_text(COSIGNERS_CSV, encoding="utf-8")
    added = letterkit_cmd(tmp_path, *server.account_args("main"))
    assert added.returncode == 0, added.stderr
    (tmp_path / "home" / ".mail-password").write_text(PASSWORD + "\n", encoding="utf-8")
    script = tmp_path / "batch.sh"
    script.write_text(
        BATCH_SCRIPT.format(campaign=shlex.quote(str(case)), name=COMMITTEE, email=COMMITTEE_EMAIL),
        encoding="utf-8",
    )
    run = subprocess.run(
        ["/bin/sh", str(script)],
        cwd=tmp_path,
        env=shell_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "sent 2, queued 0, failed 1"
    assert lines[1].startswith("FAILED governor: ") and "554 5.7.1 Message rejected as spam" in lines[1]
    assert server.count() == 2
