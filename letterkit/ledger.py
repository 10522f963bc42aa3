"""The ledger: one SQLite file that remembers every letter, and the message of each e-mail.

One row per letter to one recipient: who, what, from whom, when, through which
account, and what the server said.  Beside it, in ``messages``, the exact
message of every e-mail letter (as queued, then as sent): the outbox and sent
Maildirs are views of it that mail programs can read, and
:meth:`letterkit.outbox.Outbox.reconcile` rewrites them from here.

A letter's metadata lives in these columns only (never in headers of the
message): the envelope recipients as a JSON list (``rcpt``), the signer's name
and address, the account.  Statuses:

``queued``    waiting in the outbox (also after a temporary failure: ``reply`` says why)
``failed``    refused for good; still in the outbox with the server's reason
``sent``      the server took it; ``partial``: some recipients were refused
``prepared``  written out for delivery by hand (fax, post, web form)
``done``      delivered by hand; ``dropped``: taken out of the outbox unsent

Writes go through :meth:`Ledger.transaction`.  Queueing commits with
``synchronous=FULL`` (the moment letters count as queued); delivery commits
every :data:`COMMIT_EVERY` letters under ``synchronous=NORMAL`` (WAL).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import OutboxError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

STATUSES = ("queued", "failed", "sent", "partial", "prepared", "done", "dropped")
IN_OUTBOX = ("queued", "failed")
DELIVERED = ("sent", "partial", "prepared", "done")
COMMIT_EVERY = 50  # delivery records this many letters per transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    campaign TEXT NOT NULL DEFAULT '',
    template TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    recipient TEXT NOT NULL DEFAULT '',
    recipient_name TEXT NOT NULL DEFAULT '',
    signer TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT 'email',
    status TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    rcpt TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    queued_at TEXT NOT NULL DEFAULT '',
    sent_at TEXT NOT NULL DEFAULT '',
    reply TEXT NOT NULL DEFAULT '',
    refused TEXT NOT NULL DEFAULT '',
    account TEXT NOT NULL DEFAULT '',
    file TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    batch TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS letters_key ON letters(key);
CREATE INDEX IF NOT EXISTS letters_status ON letters(status, id);
CREATE INDEX IF NOT EXISTS letters_file ON letters(file);
CREATE INDEX IF NOT EXISTS letters_batch ON letters(batch, id);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,  -- letters.id of an e-mail letter
    data BLOB NOT NULL       -- its message, exactly as it is (or was) sent
);
CREATE TABLE IF NOT EXISTS sent_copies (  -- the copy of a sent letter in the IMAP Sent folder
    id INTEGER PRIMARY KEY,  -- letters.id
    state TEXT NOT NULL,     -- appending (tried: may have landed), done, failed
    folder TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS mailbox_state (  -- per account: INBOX UIDVALIDITY/UID, copy watermark
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account, key)
);
CREATE TABLE IF NOT EXISTS responses (  -- replies, automatic replies and bounces read from INBOX
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    letter INTEGER NOT NULL,  -- letters.id it answers
    kind TEXT NOT NULL,       -- reply, auto-reply, bounce
    account TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL, -- the incoming message's (never counted twice)
    sender TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    date TEXT NOT NULL DEFAULT '',
    excerpt TEXT NOT NULL DEFAULT '',
    recipient TEXT NOT NULL DEFAULT '',  -- a bounce: the failed recipient
    status TEXT NOT NULL DEFAULT '',     -- a bounce: its status code (5.1.1)
    UNIQUE (account, message_id)
);
CREATE INDEX IF NOT EXISTS responses_letter ON responses(letter);
"""
_ADDED = {  # columns newer than the first ledgers: added on open
    "signer_name": "TEXT NOT NULL DEFAULT ''",
    "signer_email": "TEXT NOT NULL DEFAULT ''",
    "next_attempt_at": "TEXT NOT NULL DEFAULT ''",  # a deferred letter: not before (UTC ISO)
    "wait_reason": "TEXT NOT NULL DEFAULT ''",  # why it waits: back-off, window, quota, blocked
    "timezone": "TEXT NOT NULL DEFAULT ''",  # the recipient's (IANA), for send windows
    "limits": "TEXT NOT NULL DEFAULT ''",  # the --rate it was queued with ("50/day"): holds at flush
    "window": "TEXT NOT NULL DEFAULT ''",  # the --window it was queued with ("09:00-17:00", "any")
}
_COLUMNS = (
    "id", "key", "campaign", "template", "language", "recipient", "recipient_name", "signer",
    "channel", "status", "subject", "rcpt", "message_id", "queued_at", "sent_at", "reply",
    "refused", "account", "file", "attempts", "batch", "signer_name", "signer_email",
    "next_attempt_at", "wait_reason", "timezone", "limits", "window",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM letters"
_INSERTED = (
    "id", "key", "campaign", "template", "language", "recipient", "recipient_name", "signer",
    "channel", "status", "subject", "rcpt", "message_id", "queued_at", "account", "file", "batch",
    "signer_name", "signer_email", "timezone",
)  # fmt: skip


def now_text() -> str:
    """The time as the ledger writes it (UTC, ISO 8601, to the second)."""
    return clock.now().astimezone(dt.UTC).isoformat(timespec="seconds")


def rcpt_text(addresses: Sequence[str]) -> str:
    """The envelope recipients as stored: a JSON list (an address may contain ", ")."""
    return json.dumps(list(addresses), ensure_ascii=False)


def _rcpt(text: str) -> tuple[str, ...]:
    if text.startswith("["):
        return tuple(str(a) for a in json.loads(text))
    return tuple(a for a in text.split(", ") if a)  # ledgers written before the JSON list


@dataclass(frozen=True)
class Row:
    """One ledger row: one letter to one recipient.

    ``reply`` is the server's reply for a sent letter, the reason for a failed
    one, and the last temporary problem for a letter still queued.  ``file`` is
    the Maildir file name for e-mail (in ``outbox/new``, then ``sent/cur``), a
    JSON object of paths for hand letters.
    """

    id: int
    key: str
    campaign: str
    template: str
    language: str
    recipient: str
    recipient_name: str
    signer: str
    channel: str
    status: str
    subject: str
    rcpt: tuple[str, ...]
    message_id: str
    queued_at: str
    sent_at: str
    reply: str
    refused: dict[str, Any]
    account: str
    file: str
    attempts: int
    batch: str = ""
    signer_name: str = ""
    signer_email: str = ""
    next_attempt_at: str = ""
    wait_reason: str = ""
    timezone: str = ""
    limits: str = ""  # the --rate the letter was queued with, if one was given
    window: str = ""  # the --window it was queued with, if one was given

    @classmethod
    def from_sql(cls, values: Sequence[Any]) -> Row:
        """A row from the values of a ``SELECT`` of :data:`_COLUMNS`."""
        v = dict(zip(_COLUMNS, values, strict=True))
        v["rcpt"] = _rcpt(v["rcpt"])
        v["refused"] = json.loads(v["refused"]) if v["refused"] else {}
        if not v["signer_name"] and not v["signer_email"]:  # rows older than these columns
            name, _, email = v["signer"].partition(" <")
            v["signer_name"], v["signer_email"] = name, email.rstrip(">")
        return cls(**v)

    @property
    def files(self) -> dict[str, str]:
        """Paths of the files written for a hand letter ({"pdf": ..., "txt": ...})."""
        if self.channel == "email" or not self.file.startswith("{"):
            return {}
        return {k: str(v) for k, v in json.loads(self.file).items()}

    @property
    def reason(self) -> str:
        """Why the letter is not (fully) delivered; empty when it was."""
        return self.reply if self.status in ("queued", "failed", "partial") else ""

    def as_dict(self) -> dict[str, Any]:
        hidden = ("file", "rcpt", "batch", "signer_name", "signer_email")
        data: dict[str, Any] = {c: getattr(self, c) for c in _COLUMNS if c not in hidden}
        data["to"] = list(self.rcpt)
        data["reason"] = self.reason
        data["files"] = self.files
        return data


def _where(statuses: Iterable[str] | None, **equal: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause (and its arguments): status in ``statuses``, each column = value."""
    clauses, args = ["1"], list[Any]()
    if statuses is not None:
        wanted = list(statuses)
        clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return " AND ".join(clauses), args


class Ledger:
    """The ledger file at ``path``; ``readonly`` opens an existing one without writing (a
    missing file then reads as empty).  The connection is opened on first use."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._select = _SELECT
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            if self._conn.in_transaction:
                self._conn.rollback()
            self._conn.close()
            self._conn = None

    def exists(self) -> bool:
        return self.path.exists()

    # --- the connection ----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        import sqlite3

        try:
            if self.readonly:
                if not self.path.exists():
                    return None
                conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None)
                have = {r[1] for r in conn.execute("PRAGMA table_info(letters)")}
                if have and not have.issuperset(_ADDED):  # an older ledger, not to be changed here
                    columns = (c if c in have else f"'' AS {c}" for c in _COLUMNS)
                    self._select = f"SELECT {', '.join(columns)} FROM letters"
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():  # letters are personal: the user's alone (SQLite's -wal follows)
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                have = {r[1] for r in conn.execute("PRAGMA table_info(letters)")}
                for column, kind in _ADDED.items():
                    if column not in have:
                        conn.execute(f"ALTER TABLE letters ADD COLUMN {column} {kind}")
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the ledger {self.path}: {exc}") from None
        self._conn = conn
        return conn

    def _writer(self) -> sqlite3.Connection:
        if self.readonly:
            raise OutboxError("the ledger was opened read-only")
        conn = self._open()
        assert conn is not None
        return conn

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock at once); rolled back on
        any error.  ``durable``: the commit is fsynced (``synchronous=FULL``).  Inside
        another transaction, it is simply part of that one."""
        import sqlite3

        conn = self._writer()
        if conn.in_transaction:  # inside an open transaction: part of it
            yield conn
            return
        try:
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise OutboxError(
                f"cannot write the ledger {self.path}: {exc}",
                hint="is the disk full? Nothing is lost: letters already sent have their copy in sent/ "
                "and the next letterkit command records them; the others stay queued",
            ) from None

    def commit_and_continue(self) -> None:
        """Inside :meth:`transaction`: commit what is written so far and go on in a new one."""
        conn = self._writer()
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")

    # --- reading ---------------------------------------------------------------------

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Rows of ``SELECT <columns> FROM letters <sql>``."""
        import sqlite3

        conn = self._open()
        if conn is None:
            return []
        try:
            return [Row.from_sql(v) for v in conn.execute(f"{self._select} {sql}", args).fetchall()]
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the ledger {self.path}: {exc}") from None

    def select(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain rows of any SELECT (the tables of :mod:`letterkit.mailbox`: responses,
        sent copies...); empty when the ledger or the table does not exist yet."""
        import sqlite3

        conn = self._open()
        if conn is None:
            return []
        try:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a read-only ledger older than the table
                return []
            raise OutboxError(f"cannot read the ledger {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the ledger {self.path}: {exc}") from None

    def pages(self, where: str, args: Sequence[Any], page: int = 200) -> Iterator[Row]:
        """Rows matching ``where``, by id, fetched a page at a time (flat memory)."""
        last = 0
        while True:
            rows = self.query(f"WHERE ({where}) AND id > ? ORDER BY id LIMIT {page}", (*args, last))
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1].id

    def get(self, row_id: int) -> Row:
        rows = self.query("WHERE id = ?", (row_id,))
        if not rows:
            raise OutboxError(f"no letter #{row_id} in the ledger", hint="see them with: letterkit log --all")
        return rows[0]

    def latest(self, key: str) -> Row | None:
        """The row that decides about ``key``: one still in the outbox, else the newest
        (a dropped letter decides nothing)."""
        rows = self.query(
            "WHERE key = ? AND status != 'dropped' "
            "ORDER BY status IN ('queued', 'failed') DESC, id DESC LIMIT 1",
            (key,),
        )
        return rows[0] if rows else None

    def with_prefix(self, prefix: str, *, other_than: str, statuses: Sequence[str]) -> Row | None:
        """The newest row whose key starts with ``prefix`` (but is not ``other_than``)."""
        marks = ", ".join("?" * len(statuses))
        rows = self.query(
            f"WHERE key >= ? AND key < ? AND key != ? AND status IN ({marks}) ORDER BY id DESC LIMIT 1",
            (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), other_than, *statuses),
        )
        return rows[0] if rows else None

    def has_prefix(self, prefix: str) -> bool:
        """Whether any key starts with ``prefix`` (a first mailing needs no lookups)."""
        conn = self._open()
        return bool(
            conn
            and conn.execute(
                "SELECT 1 FROM letters WHERE key >= ? AND key < ? LIMIT 1",
                (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)),
            ).fetchone()
        )

    def iter_rows(
        self, statuses: Iterable[str] | None = None, *, campaign: str | None = None
    ) -> Iterator[Row]:
        return self.pages(*_where(statuses, campaign=campaign))

    def rows(
        self, statuses: Iterable[str] | None = None, *, campaign: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rows, oldest first (the last ``limit`` when given)."""
        if not limit:
            return list(self.iter_rows(statuses, campaign=campaign))
        where, args = _where(statuses, campaign=campaign)
        return self.query(f"WHERE {where} ORDER BY id DESC LIMIT {int(limit)}", args)[::-1]

    def batch_rows(self, batch: str, statuses: Iterable[str] | None = None) -> Iterator[Row]:
        return self.pages(*_where(statuses, batch=batch))

    def count(self, statuses: Iterable[str], *, batch: str | None = None, channel: str | None = None) -> int:
        conn = self._open()
        if conn is None:
            return 0
        where, args = _where(statuses, batch=batch, channel=channel)
        return int(conn.execute(f"SELECT COUNT(*) FROM letters WHERE {where}", args).fetchone()[0])

    def message(self, row_id: int) -> bytes | None:
        conn = self._open()
        found = conn.execute("SELECT data FROM messages WHERE id = ?", (row_id,)).fetchone() if conn else None
        return bytes(found[0]) if found else None

    def with_messages(
        self, batch: str, statuses: Sequence[str], page: int = 200, *, due: str = "9999"
    ) -> Iterator[tuple[Row, bytes | None]]:
        """The e-mail letters of ``batch`` in ``statuses`` with their messages, a page at a time
        (not those whose back-off lasts beyond ``due``: a window or quota is judged anew)."""
        conn = self._writer()
        columns = ", ".join(f"l.{c}" for c in _COLUMNS)
        marks = ", ".join("?" * len(statuses))
        last = 0
        while True:
            found = conn.execute(
                f"SELECT {columns}, m.data FROM letters l LEFT JOIN messages m ON m.id = l.id "
                f"WHERE l.batch = ? AND l.status IN ({marks}) AND l.channel = 'email' AND l.id > ? "
                f"AND (l.next_attempt_at <= ? OR l.wait_reason IN ('window', 'quota')) "
                f"ORDER BY l.id LIMIT {page}",
                (batch, *statuses, last, due),
            ).fetchall()
            for values in found:
                yield Row.from_sql(values[:-1]), (bytes(values[-1]) if values[-1] is not None else None)
            if len(found) < page:
                return
            last = found[-1][0]

    def waiting_files(self) -> Iterator[tuple[int, str, int | None]]:
        """(id, file name, message size or None) of every e-mail letter in the outbox."""
        conn = self._writer()
        last = 0
        while True:
            found = conn.execute(
                "SELECT l.id, l.file, length(m.data) FROM letters l LEFT JOIN messages m ON m.id = l.id "
                "WHERE l.status IN ('queued', 'failed') AND l.channel = 'email' AND l.id > ? "
                "ORDER BY l.id LIMIT 500",
                (last,),
            ).fetchall()
            yield from found
            if len(found) < 500:
                return
            last = found[-1][0]

    def sent_since(self, when: str) -> list[tuple[str, int]]:
        """(file name, id) of the e-mail letters sent since ``when`` (their copies are checked)."""
        conn = self._writer()
        found = conn.execute(
            "SELECT file, id FROM letters WHERE status IN ('sent', 'partial') AND channel = 'email' "
            "AND sent_at >= ? AND file != ''",
            (when,),
        ).fetchall()
        return [(str(name), int(row_id)) for name, row_id in found]

    def knows_file(self, name: str) -> bool:
        conn = self._writer()
        return conn.execute("SELECT 1 FROM letters WHERE file = ?", (name,)).fetchone() is not None

    # --- writing (inside a transaction) --------------------------------------------------

    def next_id(self) -> int:
        conn = self._writer()
        found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'letters'").fetchone()
        return int(found[0] if found else 0) + 1

    def insert(self, rows: Sequence[dict[str, Any]], messages: Sequence[tuple[int, bytes]] = ()) -> None:
        """New letters (each a dict of :data:`_INSERTED` columns) and their messages."""
        conn = self._writer()
        if rows:
            conn.executemany(
                f"INSERT INTO letters ({', '.join(_INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))})",
                [tuple(r.get(c, "") for c in _INSERTED) for r in rows],
            )
        if messages:
            conn.executemany("INSERT OR REPLACE INTO messages (id, data) VALUES (?, ?)", messages)

    def set_limits(self, batch: str, limits: str, window: str = "") -> None:
        """Remember the ``--rate`` and ``--window`` a batch was queued with (see :meth:`limits_of`
        and :func:`letterkit.schedule.due`)."""
        sql = "UPDATE letters SET limits = ?, window = ? WHERE batch = ?"
        self._writer().execute(sql, (limits, window, batch))

    def limits_of(self, statuses: Iterable[str]) -> list[str]:
        """The ``--rate`` texts the e-mail letters in ``statuses`` were queued with."""
        where, args = _where(statuses)
        if self._select != _SELECT:  # an older ledger read as it is: no letter has limits yet
            return []
        sql = f"SELECT DISTINCT limits FROM letters WHERE ({where}) AND channel = 'email' AND limits != ''"
        return [str(r[0]) for r in self.select(sql, args)]

    def update(self, row_id: int, **values: Any) -> None:
        conn = self._writer()
        columns = ", ".join(f"{c} = ?" for c in values)
        conn.execute(f"UPDATE letters SET {columns} WHERE id = ?", (*values.values(), row_id))

    def forget_orphan_messages(self) -> None:
        """Messages whose letter is gone (a commit undone by a power cut)."""
        self._writer().execute("DELETE FROM messages WHERE id NOT IN (SELECT id FROM letters)")

    def delete_message(self, row_id: int) -> None:
        self._writer().execute("DELETE FROM messages WHERE id = ?", (row_id,))

    def set_message(self, row_id: int, data: bytes) -> None:
        self._writer().execute("INSERT OR REPLACE INTO messages (id, data) VALUES (?, ?)", (row_id, data))

    def new_batch(self, batch: str, statuses: Sequence[str]) -> None:
        """Put every e-mail letter in ``statuses`` into ``batch``."""
        marks = ", ".join("?" * len(statuses))
        self._writer().execute(
            f"UPDATE letters SET batch = ? WHERE status IN ({marks}) AND channel = 'email'",
            (batch, *statuses),
        )

    def note_batch(self, batch: str, statuses: Sequence[str], note: str, *, from_id: int = 0) -> None:
        """Set ``reply`` of the batch's letters in ``statuses`` (from ``from_id`` on)."""
        marks = ", ".join("?" * len(statuses))
        self._writer().execute(
            f"UPDATE letters SET reply = ? WHERE batch = ? AND status IN ({marks}) "
            "AND channel = 'email' AND id >= ?",
            (note, batch, *statuses, from_id),
        )
