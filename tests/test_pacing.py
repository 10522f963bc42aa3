"""Deferral, adaptive pace, daily quotas and send windows, on a fake clock.

The server is the real aiosmtpd one on 127.0.0.1 (tests/smtp_server.py) with injected
replies; time comes from :class:`FakeClock` (``deliver(now=..., sleep=...)``): no test
sleeps for real.
"""

# ruff: noqa: F811  (pytest fixtures imported from smtp_server are parameters here)

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import SIGNER
from smtp_server import PASSWORD, make_smtp_server, test_ca, write_campaign  # noqa: F401

from letterkit.campaign import load_campaign
from letterkit.config import Config, Signer
from letterkit.delivery import deliver
from letterkit.letters import compose
from letterkit.outbox import Outbox
from letterkit.pacing import SendingBlocked, classify
from letterkit.schedule import Quota, Schedule, Window, backoff
from letterkit.service import flush, schedule_for
from letterkit.transport import SmtpTransport

START = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)  # a Thursday, as LETTERKIT_NOW in conftest
PERSON = Signer(name="A. Person", email="a.person@example.org", city="Leeds", country="UK")


class FakeClock:
    """``now()`` and ``sleep(seconds)`` of a clock that moves only when slept on."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def queue(tmp_path: Path, n: int, *, timezones: dict[int, str] | None = None) -> Outbox:
    """``n`` letters (one recipient each: no copies) in a new outbox."""
    root = write_campaign(tmp_path / "camp", missions=n, hand=False)
    if timezones:
        text = (root / "recipients.toml").read_text(encoding="utf-8")
        for i, zone in timezones.items():
            text = text.replace(f'id = "kz-{i}"\n', f'id = "kz-{i}"\ntimezone = "{zone}"\n')
        (root / "recipients.toml").write_text(text, encoding="utf-8")
    box = Outbox()
    box.queue(compose(load_campaign(str(root)), "protest", PERSON, cc=()))
    return box


def run(box: Outbox, server: Any, clock: FakeClock, **kw: Any) -> Any:
    transport = SmtpTransport(server.account(), lambda: PASSWORD)
    try:
        return deliver(box, transport, now=clock.now, sleep=clock.sleep, **kw)
    finally:
        transport.close()


def rows(box: Outbox) -> dict[int, Any]:
    return {r.id: r for r in box.iter_rows()}


# --- the reply table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (250, "2.0.0 Ok", "ok"),
        (451, "4.3.0 Temporary local problem, try again later", "temporary"),
        (421, "4.7.0 Try again later, closing connection", "slow"),
        (451, "4.7.1 Please slow down", "slow"),
        (450, "Too many messages, try later", "slow"),
        (452, "4.5.3 Too many recipients", "slow"),
        (450, "4.2.0 Greylisted, see https://postgrey.example", "temporary"),
        (451, "4.7.1 Greylisting in action, come back later", "temporary"),
        (550, "5.4.5 Daily user sending quota exceeded.", "blocked"),
        (554, "5.7.0 Sending limit exceeded for this account", "blocked"),
        (550, "5.1.1 User unknown", "permanent"),
        (554, "5.7.1 Message rejected as spam", "permanent"),
        (0, "the server dropped the connection", "temporary"),
    ],
)
def test_replies_are_classified(code: int, text: str, kind: str) -> None:
    assert classify(code, text) == kind


def test_backoff_grows_exponentially_with_jitter() -> None:
    assert backoff(1, 2.0, rng=lambda: 0.0) == 2.0
    assert backoff(4, 2.0, rng=lambda: 0.0) == 16.0
    assert backoff(4, 2.0, rng=lambda: 1.0) == 20.0  # at most a quarter more
    assert backoff(40, 2.0, rng=lambda: 0.0) == 4 * 3600  # capped


# --- deferral --------------------------------------------------------------------------------


def test_a_451_defers_that_letter_and_the_batch_goes_on(tmp_path, make_smtp_server, clock):
    tempfail = "451 4.3.0 Temporary local problem, try again later"
    server = make_smtp_server(data_reply=lambda n, rcpt: tempfail if n in (2, 5) else None)
    box = queue(tmp_path, 6)
    report = run(box, server, clock, schedule=Schedule(backoff_base=30))
    assert report.ok and report.sent == 6 and report.deferred == 0
    order = [m.rcpt_tos[0] for m in server.messages]
    assert order[:4] == [f"mission{i}@example.org" for i in (1, 3, 4, 6)]  # none waited for 2 and 5
    assert set(order[4:]) == {"mission2@example.org", "mission5@example.org"}  # in their back-off's order
    assert 30 <= sum(clock.slept) <= 37.5  # one back-off (with jitter), not one per failure in place
    by_id = rows(box)
    assert by_id[2].attempts == 2 and by_id[2].status == "sent" and by_id[2].next_attempt_at == ""
    assert by_id[1].attempts == 1


def test_a_long_backoff_ends_the_run_and_the_next_flush_sends_when_due(tmp_path, make_smtp_server, clock):
    server = make_smtp_server(data_reply=lambda n, rcpt: "451 4.3.0 busy" if n == 1 else None)
    box = queue(tmp_path, 3)
    report = run(box, server, clock, schedule=Schedule(backoff_base=600))  # over IN_RUN_WAIT
    assert (report.sent, report.deferred) == (2, 1) and not report.ok
    assert report.next_due is not None and report.next_due.why == "back-off"
    assert dt.timedelta(seconds=600) <= report.next_due.at - START <= dt.timedelta(seconds=750)
    assert clock.slept == []
    first = rows(box)[1]
    assert first.status == "queued" and first.wait_reason == "back-off" and "451" in first.reply
    again = run(box, server, clock, schedule=Schedule(backoff_base=600))  # too early: nothing goes
    assert again.sent == 0 and server.count() == 2
    clock.sleep(800)
    later = run(box, server, clock, schedule=Schedule(backoff_base=600))
    assert later.ok and later.sent == 1 and server.count() == 3


def test_421_then_disconnect_reconnects_and_halves_the_pace(tmp_path, make_smtp_server, clock):
    slow = "421 4.7.0 Try again later, closing connection"
    server = make_smtp_server(data_reply=lambda n, rcpt: slow if n == 2 else None)
    box = queue(tmp_path, 4)
    notes: list[str] = []
    report = run(box, server, clock, rate=60, on_note=notes.append, schedule=Schedule(backoff_base=1))
    assert report.ok and report.sent == 4
    assert server.handler.replies == [slow]
    assert len({m.peer for m in server.messages}) == 2  # a new connection after the 421
    assert len(notes) == 1 and "slow down" in notes[0] and "30 letters a minute" in notes[0]
    assert 2.0 in clock.slept  # one letter a second became one every two


def test_a_slow_down_burst_halves_the_pace_each_time_and_success_raises_it(tmp_path, make_smtp_server, clock):
    burst = "451 4.7.0 Try again later"
    server = make_smtp_server(data_reply=lambda n, rcpt: burst if n <= 3 else None)
    box = queue(tmp_path, 30)
    notes: list[str] = []
    report = run(box, server, clock, rate=60, on_note=notes.append, schedule=Schedule(backoff_base=1))
    assert report.ok and report.sent == 30
    slowed = [n for n in notes if "slow down" in n]
    assert [n.split("now ")[1] for n in slowed] == [
        "30 letters a minute",
        "15 letters a minute",
        "7.5 letters a minute",
    ]
    assert any("back up" in n for n in notes)  # after 20 letters in a row: 10 a minute
    assert max(clock.slept) == pytest.approx(8.0)
    assert pytest.approx(6.0) in clock.slept


def test_a_quota_block_stops_the_batch_until_tomorrow(tmp_path, make_smtp_server, clock):
    blocked = "550 5.4.5 Daily user sending quota exceeded."
    server = make_smtp_server(data_reply=lambda n, rcpt: blocked if n == 3 else None)
    box = queue(tmp_path, 5)
    report = run(box, server, clock)
    assert isinstance(report.error, SendingBlocked) and report.error.exit_code == 1
    assert "5.4.5" in str(report.error) and "try again after 2026-11-27 10:00" in str(report.error)
    assert (report.sent, report.failed, report.deferred) == (2, 0, 3)
    left = [r for r in rows(box).values() if r.status == "queued"]
    assert {r.wait_reason for r in left} == {"blocked"}
    assert {r.next_attempt_at for r in left} == {"2026-11-27T10:00:00.000000+00:00"}
    again = run(box, server, clock)  # still blocked: nothing is tried
    assert again.sent == 0 and server.handler.data_commands == 3 and again.next_due.why == "blocked"
    clock.sleep(86400)
    tomorrow = run(box, server, clock)
    assert tomorrow.ok and tomorrow.sent == 3 and server.count() == 5


def test_greylisting_is_waited_out_in_the_same_run(tmp_path, make_smtp_server, clock):
    first_seen: dict[str, dt.datetime] = {}

    def greylist(address: str) -> str | None:
        seen = first_seen.setdefault(address, clock.now())
        if clock.now() - seen < dt.timedelta(seconds=60):
            return "450 4.2.0 Greylisted, see https://postgrey.example/"
        return None

    server = make_smtp_server(rcpt_reply=greylist)
    box = queue(tmp_path, 3)
    notes: list[str] = []
    report = run(box, server, clock, on_note=notes.append, schedule=Schedule(backoff_base=20))
    assert report.ok and report.sent == 3 and notes == []  # greylisting is no reason to slow down
    assert clock.t - START >= dt.timedelta(seconds=60)
    assert all(r.attempts >= 3 for r in rows(box).values())  # 0 s, ~20 s, ~60 s


# --- quotas -----------------------------------------------------------------------------------


def test_the_quota_counts_recipients_of_the_last_24_hours() -> None:
    quota = Quota(3, [(START - dt.timedelta(hours=23), 2), (START - dt.timedelta(hours=25), 5)])
    assert quota.used(START) == 2
    assert quota.earliest(1, START) == START
    assert quota.earliest(2, START) == START + dt.timedelta(hours=1)  # when the 2 of 23 h ago age out


def test_rate_50_a_day_spreads_120_letters_over_three_days(tmp_path, make_smtp_server, clock):
    server = make_smtp_server()
    box = queue(tmp_path, 120)
    account = server.account()
    per_minute, schedule = schedule_for(Config(), account, rate="50/day")
    assert (per_minute, schedule.per_day) == (20, 50)
    transport = SmtpTransport(account, lambda: PASSWORD)
    today = flush(
        box,
        account,
        rate=per_minute,
        schedule=schedule,
        transport=transport,
        sleep=clock.sleep,
        now=clock.now,
    )
    assert (today.sent, today.waiting, today.deferred) == (50, 70, 0) and today.ok
    assert today.next_due is not None and today.next_due.why == "quota"
    assert dt.timedelta(days=1) <= today.next_due.at - START <= dt.timedelta(days=1, minutes=3)
    _, waiting = schedule_for(Config(), account, rate="50/day", wait=True)
    rest = flush(
        box, account, rate=per_minute, schedule=waiting, transport=transport, sleep=clock.sleep, now=clock.now
    )
    assert rest.ok and rest.sent == 70 and server.count() == 120
    days = Counter(
        (dt.datetime.fromisoformat(r.sent_at) - START) // dt.timedelta(days=1) for r in rows(box).values()
    )
    assert days == {0: 50, 1: 50, 2: 20}


def test_presets_carry_the_daily_limit_with_a_margin() -> None:
    from letterkit.config import Account
    from letterkit.presets import daily_limit, default_quota

    gmail = Account(name="g", host="smtp.gmail.com", from_addr="me@gmail.com")
    workspace = Account(name="w", host="smtp.gmail.com", from_addr="me@example.org")
    assert daily_limit(gmail.host, gmail.from_addr) == (500, "gmail")
    assert daily_limit(workspace.host, workspace.from_addr) == (2000, "google-workspace")
    assert default_quota("smtp-mail.outlook.com") == 270
    assert schedule_for(Config(), gmail)[1].per_day == 450
    assert schedule_for(Config(), gmail, rate="100/day")[1].per_day == 100
    assert (
        schedule_for(Config(), Account(name="x", host="127.0.0.1", from_addr="a@example.org"))[1].per_day == 0
    )


def test_rates_per_day_in_the_config(tmp_path) -> None:
    from letterkit.config import load_config
    from letterkit.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[defaults]\nrate = "450/day"\nwindow = "9:00-17:30"\n', encoding="utf-8")
    config = load_config(path)
    assert (config.rate, config.daily, config.window) == (20, 450, "09:00-17:30")
    path.write_text('[defaults]\nwindow = "17:00-09:00"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="window"):
        load_config(path)


# --- windows ----------------------------------------------------------------------------------


def test_window_opens_on_the_next_weekday_in_the_recipients_zone() -> None:
    from zoneinfo import ZoneInfo

    vienna = ZoneInfo("Europe/Vienna")
    window = Window.parse("09:00-17:00")
    thursday_night = dt.datetime(2026, 11, 26, 18, 0, tzinfo=vienna)
    assert window.next_open(thursday_night, vienna) == dt.datetime(2026, 11, 27, 9, 0, tzinfo=vienna)
    friday_night = dt.datetime(2026, 11, 27, 18, 0, tzinfo=vienna)
    assert window.next_open(friday_night, vienna) == dt.datetime(2026, 11, 30, 9, 0, tzinfo=vienna)
    inside = dt.datetime(2026, 11, 26, 10, 0, tzinfo=vienna)
    assert window.next_open(inside, vienna) == inside


def test_letters_outside_the_window_wait_and_the_others_go(tmp_path, make_smtp_server, clock):
    server = make_smtp_server()
    box = queue(tmp_path, 3, timezones={1: "Asia/Tokyo", 2: "Europe/Vienna"})  # 19:00 / 11:00 there
    schedule = Schedule(window=Window.parse("09:00-17:00"))
    report = run(box, server, clock, schedule=schedule)
    assert (report.sent, report.waiting, report.deferred) == (2, 1, 0) and report.ok
    tokyo = rows(box)[1]
    assert (tokyo.status, tokyo.wait_reason, tokyo.timezone) == ("queued", "window", "Asia/Tokyo")
    assert tokyo.next_attempt_at == "2026-11-27T00:00:00.000000+00:00"  # 09:00 in Tokyo
    clock.sleep(14 * 3600)
    assert run(box, server, clock, schedule=schedule).sent == 1


def test_a_contact_timezone_must_be_a_real_zone(tmp_path) -> None:
    from letterkit.contacts import contact_from_table
    from letterkit.errors import ContactError

    table = {"id": "x", "name": "X", "email": "x@example.org"}
    assert contact_from_table({**table, "timezone": "Europe/Vienna"}, "f:1").timezone == "Europe/Vienna"
    with pytest.raises(ContactError, match="not a time zone"):
        contact_from_table({**table, "timezone": "Europe/Atlantis"}, "f:1")


def test_the_bundled_vienna_contacts_have_vienna_time() -> None:
    from letterkit.campaign import load_campaign as load

    contacts = {c.id: c for c in load(None).iter_contacts()}
    assert contacts["osce-secretariat"].timezone == "Europe/Vienna"
    assert contacts["kz-osce-delegation"].timezone == "Europe/Vienna"
    assert all("Vienna" in " ".join(c.address) for c in contacts.values() if c.timezone)


# --- the command line -------------------------------------------------------------------------


def _defaults(tmp_path: Path, lines: str) -> None:
    path = tmp_path / "config" / "letterkit" / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = (
        text.replace("[defaults]\n", f"[defaults]\n{lines}")
        if "[defaults]\n" in text
        else text + f"\n[defaults]\n{lines}"
    )
    path.write_text(text, encoding="utf-8")


def test_outbox_shows_when_each_letter_is_due_and_why(invoke, make_smtp_server, tmp_path):
    queue(tmp_path, 3, timezones={1: "Asia/Tokyo"}).close()  # queued without an account
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    _defaults(tmp_path, 'window = "09:00-17:00"\n')
    doc = json.loads(invoke("outbox", "--json").stdout)
    due = {r["recipient"]: (r["due"], r["waits_for"]) for r in doc["letters"]}
    assert due == {
        "kz-1": ("2026-11-27T00:00:00+00:00", "window"),
        "kz-2": (None, None),
        "kz-3": (None, None),
    }
    _defaults(tmp_path, 'rate = "1/day"\n')
    doc = json.loads(invoke("outbox", "--json").stdout)
    due = {r["recipient"]: (r["due"], r["waits_for"]) for r in doc["letters"]}
    assert due["kz-2"] == (None, None)  # one a day: kz-2 goes now, kz-3 tomorrow
    assert due["kz-3"] == ("2026-11-27T10:00:00+00:00", "quota")
    assert due["kz-1"][1] == "window"  # 09:00 in Tokyo is 00:00 here; then the quota, then Monday
    people = invoke("outbox")
    assert "(window)" in people.stdout and "2026-11-27 10:00 (quota)" in people.stdout
    flushed = invoke("outbox", "flush", "--yes", "--json")
    assert flushed.exit_code == 0, flushed.output  # waiting for a window or the quota is no failure
    result = json.loads(flushed.stdout)
    assert [r["recipient"] for r in result["sent"]] == ["kz-2"]
    assert result["next_due"] == "2026-11-27T10:00:00+00:00" and result["waits_for"] == "quota"
    assert {r["recipient"] for r in result["queued"]} == {"kz-1", "kz-3"}
    assert "2 letter(s) wait in the outbox" in invoke("outbox", "flush", "--yes").stderr


def test_a_quota_block_exits_1_and_says_when_to_try_again(invoke, make_smtp_server, tmp_path):
    camp = write_campaign(tmp_path / "camp", missions=3, hand=False)
    blocked = "550 5.4.5 Daily user sending quota exceeded."
    server = make_smtp_server(data_reply=lambda n, rcpt: blocked if n == 2 else None)
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("--campaign", str(camp), "send", "protest", "--yes", "--rate", "0", *SIGNER)
    assert result.exit_code == 1
    assert "refuses more mail from account 'test'" in result.stderr and "try again after" in result.stderr
    assert server.count() == 1
    waiting = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert {r["waits_for"] for r in waiting} == {"blocked"}


def test_window_option_is_checked(invoke, make_smtp_server):
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("outbox", "flush", "--yes", "--window", "9-5")
    assert result.exit_code == 2 and "HH:MM-HH:MM" in result.stderr
    assert invoke("outbox", "flush", "--yes", "--rate", "ten/day").exit_code == 2


def test_a_window_given_to_flush_shows_in_the_outbox_afterwards(invoke, make_smtp_server, tmp_path):
    queue(tmp_path, 2, timezones={1: "Asia/Tokyo"}).close()
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    flushed = invoke("outbox", "flush", "--yes", "--window", "09:00-17:00", "--json")
    assert flushed.exit_code == 0, flushed.output
    assert [r["recipient"] for r in json.loads(flushed.stdout)["sent"]] == ["kz-2"]
    (left,) = json.loads(invoke("outbox", "--json").stdout)["letters"]
    assert (left["recipient"], left["due"], left["waits_for"]) == (
        "kz-1",
        "2026-11-27T00:00:00+00:00",
        "window",
    )


def test_send_takes_a_daily_rate(invoke, make_smtp_server, tmp_path):
    camp = write_campaign(tmp_path / "camp", missions=3, hand=False)
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke(
        "--campaign", str(camp), "send", "protest", "--yes", "--cc", "", "--rate", "2/day", *SIGNER
    )
    assert result.exit_code == 0, result.output
    assert server.count() == 2 and "1 letter(s) wait in the outbox" in result.stderr
    assert "2026-11-27 10:00 (quota)" in result.stderr


def test_a_rate_given_to_send_holds_when_the_rest_is_flushed(invoke, make_smtp_server, tmp_path, monkeypatch):
    """send --rate 2/day, then outbox flush without --rate (cron, a timer): still two a day;
    flush --rate chooses anew."""
    camp = write_campaign(tmp_path / "camp", missions=5, hand=False)
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    send = ["--campaign", str(camp), "send", "protest", "--yes", "--cc", "", "--rate", "2/day", *SIGNER]
    assert invoke(*send).exit_code == 0 and server.count() == 2
    same_day = invoke("outbox", "flush", "--yes", "--json")
    assert same_day.exit_code == 0, same_day.output
    doc = json.loads(same_day.stdout)
    assert server.count() == 2 and doc["waits_for"] == "quota"
    assert "queued with --rate 2/day" in doc["notes"][0]  # scripts are told too
    assert "letters queued with --rate 2/day: it holds for them" in same_day.stderr
    monkeypatch.setenv("LETTERKIT_NOW", (START + dt.timedelta(hours=25)).isoformat())
    assert invoke("outbox", "flush", "--yes").exit_code == 0 and server.count() == 4
    chosen = invoke("outbox", "flush", "--yes", "--rate", "10/day")
    assert chosen.exit_code == 0 and server.count() == 5 and "queued with --rate" not in chosen.stderr


def _send_in_the_evening(invoke, make_smtp_server, tmp_path):  # type: ignore[no-untyped-def]
    """Two letters sent at 10:00 with --window 18:00-19:00: both wait (contacts without a
    time zone: the user's, UTC here)."""
    camp = write_campaign(tmp_path / "camp", missions=2, hand=False)
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    window = ["--window", "18:00-19:00"]
    sent = invoke("--campaign", str(camp), "send", "protest", "--yes", "--cc", "", *window, *SIGNER)
    assert sent.exit_code == 0, sent.output
    assert server.count() == 0
    return server


def test_a_window_given_to_send_holds_for_a_later_flush(invoke, make_smtp_server, tmp_path, monkeypatch):
    server = _send_in_the_evening(invoke, make_smtp_server, tmp_path)
    morning = invoke("outbox", "flush", "--yes", "--json")  # a timer without --window
    assert morning.exit_code == 0, morning.output
    assert server.count() == 0 and json.loads(morning.stdout)["waits_for"] == "window"
    dues = {r["due"] for r in json.loads(invoke("outbox", "--json").stdout)["letters"]}
    assert dues == {"2026-11-26T18:00:00+00:00"}
    monkeypatch.setenv("LETTERKIT_NOW", "2026-11-26T18:30:00+00:00")
    assert invoke("outbox", "flush", "--yes").exit_code == 0 and server.count() == 2


def test_a_window_given_to_flush_chooses_anew(invoke, make_smtp_server, tmp_path):
    server = _send_in_the_evening(invoke, make_smtp_server, tmp_path)
    assert invoke("outbox", "flush", "--yes", "--window", "any").exit_code == 0 and server.count() == 2


def test_send_json_says_when_the_rest_is_due(invoke, make_smtp_server, tmp_path):
    camp = write_campaign(tmp_path / "camp", missions=3, hand=False)
    server = make_smtp_server()
    assert invoke(*server.account_args(), "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = invoke("--campaign", str(camp), "send", "protest", "--yes", "--rate", "2/day", "--json", *SIGNER)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["sent"]) == 1 and len(doc["queued"]) == 2  # each letter has 2 recipients (a copy)
    assert doc["waits_for"] == "quota" and doc["next_due"] == "2026-11-27T10:00:00+00:00"
    done = json.loads(invoke("outbox", "flush", "--yes", "--rate", "2/day", "--json").stdout)
    assert done["sent"] == [] and done["waits_for"] == "quota"  # the quota counts what send sent
