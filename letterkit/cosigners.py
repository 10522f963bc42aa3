"""Co-signers: people who add their names to a letter, read from a CSV file.

Columns (header row, case-insensitive): ``name``, ``city``, ``country``,
``organisation`` (optional, also ``organization``) and ``consent``.  A row is
accepted only with recorded consent (yes/y/true/1/x, or a date such as
2026-11-20).  Every bad row is reported with its line number, before anything
is queued.  Co-signers are listed under the signature of the one letter per
recipient: letterkit never sends in another person's name.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidValue, LetterkitError
from .validation import check_header_value

_YES = {"yes", "y", "true", "1", "x", "да", "ja", "oui", "si", "sí"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ALIASES = {"organization": "organisation", "org": "organisation", "consent_given": "consent"}


@dataclass(frozen=True)
class Cosigner:
    name: str
    city: str = ""
    country: str = ""
    organisation: str = ""

    def line(self) -> str:
        """'Name, City, Country (Organisation)', leaving out what is empty."""
        place = ", ".join(p for p in (self.name, self.city, self.country) if p)
        return f"{place} ({self.organisation})" if self.organisation else place


def has_consent(value: str) -> bool:
    value = value.strip().lower()
    return value in _YES or bool(_DATE.match(value))


MAX_FILE = 2_000_000  # characters: some 20,000 co-signers


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The CSV records with the line each starts on (a quoted field may span lines)."""
    from .fileutil import read_text_limited

    text = read_text_limited(path, MAX_FILE, "co-signers file", encoding="utf-8-sig")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text.split("\n", 1)[0], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[tuple[int, list[str]]] = []
    end = 0
    for row in reader:
        rows.append((end + 1, row))
        end = reader.line_num
    return rows


def _problem(rec: dict[str, str], seen: dict[str, int], lineno: int) -> str:
    """What is wrong with one co-signer ("" if nothing)."""
    if not rec["name"]:
        return "no name"
    try:
        for key in ("name", "city", "country", "organisation"):
            check_header_value(rec.get(key, ""), key)
    except LetterkitError as exc:
        return exc.message
    if not has_consent(rec["consent"]):
        return f"no recorded consent for {rec['name']!r}"
    key = " ".join(rec["name"].lower().split())
    if key in seen:
        return f"{rec['name']!r} is a duplicate of line {seen[key]}"
    seen[key] = lineno
    return ""


def load_cosigners(path: str | Path) -> list[Cosigner]:
    """Read and validate a co-signers CSV; raise one error listing every bad row."""
    path = Path(path)
    rows = _read_rows(path)
    columns_hint = "the first row names the columns: name,city,country,organisation,consent"
    if not rows:
        raise InvalidValue(f"{path}: the co-signers file is empty", hint=columns_hint)
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0][1]]
    missing = [c for c in ("name", "consent") if c not in header]
    if missing:
        raise InvalidValue(f"{path}:1: missing column(s) {', '.join(missing)}", hint=columns_hint)
    problems: list[str] = []
    result: list[Cosigner] = []
    seen: dict[str, int] = {}
    for lineno, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {lineno}: {len(row)} fields, expected {len(header)}")
            continue
        rec = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        if problem := _problem(rec, seen, lineno):
            problems.append(f"line {lineno}: {problem}")
            continue
        result.append(
            Cosigner(rec["name"], rec.get("city", ""), rec.get("country", ""), rec.get("organisation", ""))
        )
    if problems:
        raise InvalidValue(
            f"{path}: {len(problems)} bad row(s): " + "; ".join(problems),
            hint="fix or remove those rows; nothing was queued",
        )
    return result
