"""One seam for the date and time: LETTERKIT_NOW (tests fix it in conftest)."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import SIGNER, TODAY

from letterkit import clock


def test_the_fixed_clock_is_what_letters_are_dated_with(invoke) -> None:
    result = invoke("preview", "protest", "--to", "osce-secretariat", *SIGNER)
    assert result.exit_code == 0, result.output
    assert f"{TODAY.day} November {TODAY.year}" in result.stdout


def test_another_day_gives_another_date(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERKIT_NOW", "2031-02-03")
    assert clock.today() == dt.date(2031, 2, 3)
    assert clock.now().tzinfo is not None
    result = invoke("preview", "protest", "--to", "osce-secretariat", *SIGNER)
    assert result.exit_code == 0, result.output
    assert "3 February 2031" in result.stdout
    assert "November 2026" not in result.stdout


def test_a_malformed_clock_is_a_one_line_error(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERKIT_NOW", "yesterday")
    result = invoke("preview", "protest", "--to", "osce-secretariat", *SIGNER)
    assert result.exit_code == 2
    assert "LETTERKIT_NOW" in result.stderr
    assert "Traceback" not in result.output


def test_without_the_variable_the_clock_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LETTERKIT_NOW")
    before = dt.datetime.now().astimezone()
    assert before - dt.timedelta(seconds=5) <= clock.now() <= before + dt.timedelta(seconds=5)
