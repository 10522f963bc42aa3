"""The durable outbox, the sent folder and the ledger: no letter is lost or sent twice.

Files (under :func:`letterkit.config.data_dir`, or any ``root`` you pass)::

    ledger.sqlite3         one row per letter: who, what, when, the server's reply;
                           and the complete message of every letter not yet sent
    outbox/{tmp,new,cur}   a Maildir: one file per letter waiting to go (or failed)
    sent/{tmp,new,cur}     a Maildir: every message the server accepted
    prepared/CAMPAIGN/     PDF and text of letters that go by fax, post or web form

Both folders are ordinary Maildirs: ``mutt -f ~/.local/share/letterkit/outbox``
reads them.  A stored message (and an outbox file) is the complete RFC 5322
message, preceded by ``X-Letterkit-*`` headers (key, campaign, template,
recipient, account, envelope recipients, signer) that are stripped before
transmission.

Ledger statuses: ``queued`` (in the outbox), ``failed`` (refused permanently;
still in the outbox with the reason), ``sent``, ``partial`` (some recipients
refused), ``prepared`` (written out for delivery by hand), ``done``
(delivered by hand) and ``dropped`` (taken out of the outbox unsent; the row stays
as the record, with when in ``sent_at``).  A letter's identity is :attr:`letterkit.letters.Letter.key`
(campaign/template/recipient/signer): :meth:`Outbox.queue` skips keys already
sent, prepared or done (unless ``resend``) and keys still in the outbox.

Durability and crash safety (what is fsynced when):

* :meth:`Outbox.queue` renders and validates every letter, adding its ledger row
  and its message to one open transaction as it goes (memory stays flat).  Any
  error: the transaction is rolled back — nothing is queued.  Otherwise it is
  committed with ``synchronous=FULL`` (the ledger's write-ahead log is
  fsynced): *this* commit is the moment the letters count as queued, all at
  once, for one fsync however many letters there are.  Then each letter's file
  is written into ``outbox/`` (``tmp/``, renamed into ``new/``; not fsynced: the
  ledger is what makes it durable, and reconcile rewrites a file a crash
  damaged).  When the letters are delivered at once (``send`` with an
  account: ``queue(write_outbox=False)``), each file is written instead just
  before its letter goes, while the server is still taking in the previous
  message, so that creating thousands of files (half a millisecond each on
  some disks) does not hold up the first letter.
* :meth:`Outbox.deliver`, per letter: its outbox file exists → send → rename
  the file into ``sent/cur`` (the mark that it went) → update its ledger row.
  This bookkeeping is done in small steps while the server works on the next
  letter's commands (see ``while_waiting`` in :mod:`letterkit.transport`), so
  it costs no time on the wire; the rename always comes before the next
  message is sent.  Ledger updates are committed every
  :data:`COMMIT_SECONDS` (WAL, ``synchronous=NORMAL``).  At the end one sync
  of the file system (``syncfs``) makes the sent copies durable, and only then
  are the stored messages of the sent letters deleted from the ledger (in a
  thread, while the command prints its report).
* Every outbox operation first calls :meth:`Outbox.reconcile`: a letter still
  queued whose file is in ``sent/`` is marked sent; a sent letter whose message
  is still stored gets its copy in ``sent/`` checked (rewritten if a power cut
  emptied it); a queued letter's missing or damaged outbox file is rewritten
  from the ledger; a file in ``outbox/`` without a ledger row (put there by
  hand, or by letterkit 0.1) is adopted.  So a process killed at any moment
  (even ``kill -9``) loses no letter, and at most the one in flight at the kill
  can be delivered twice.  (A power cut can also undo the last ledger updates
  before the sync, and those letters can go again; it cannot lose one.)

Only one process changes an outbox at a time (a lock file, ``outbox.lock``;
:meth:`Outbox.session` holds it across a queue and its delivery);
:class:`OutboxError` says so if another one is busy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from . import clock
from .errors import LetterkitError, OutboxError
from .validation import check_address

if TYPE_CHECKING:
    import sqlite3

    from .config import Account
    from .letters import Letter
    from .transport import DeliveryResult, Transport

STATUSES = ("queued", "failed", "sent", "partial", "prepared", "done", "dropped")
IN_OUTBOX = ("queued", "failed")
DELIVERED = ("sent", "partial", "prepared", "done")
HAND_CHANNELS = ("fax", "post", "web")
HEADER_PREFIX = b"X-Letterkit-"
_META_FIELDS = ("Key", "Campaign", "Template", "Recipient", "Account", "Rcpt", "Signer", "Signer-Email")
_SAFE = " @<>,.:/+=_-!~*'()[]"
SENT_FLAGS = "2,S"
TMP_MAX_AGE = 36 * 3600  # Maildir convention: stray tmp files older than this are garbage
OTHER_SIGNER = "this recipient already got this letter from another signer on this machine"
COMMIT_SECONDS = 0.5  # ledger updates are committed at least this often while delivering

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
    id INTEGER PRIMARY KEY,  -- letters.id of an e-mail letter whose copy in sent/ is not yet synced
    data BLOB NOT NULL       -- its outbox file: X-Letterkit-* lines, then the message as sent
);
"""
_COLUMNS = (
    "id", "key", "campaign", "template", "language", "recipient", "recipient_name", "signer",
    "channel", "status", "subject", "rcpt", "message_id", "queued_at", "sent_at", "reply",
    "refused", "account", "file", "attempts", "batch",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM letters"
_RCPT, _REFUSED = _COLUMNS.index("rcpt"), _COLUMNS.index("refused")


def _now() -> str:
    return clock.now().astimezone(dt.UTC).isoformat(timespec="seconds")


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Where the outbox keeps its files."""

    root: Path
    outbox: Path
    sent: Path
    ledger: Path
    prepared: Path

    @classmethod
    def under(cls, root: Path) -> Paths:
        return cls(root, root / "outbox", root / "sent", root / "ledger.sqlite3", root / "prepared")

    def as_dict(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in ("outbox", "sent", "ledger", "prepared")}


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

    @classmethod
    def from_sql(cls, values: Sequence[Any]) -> Row:
        """A row from the values of ``SELECT`` in :data:`_COLUMNS` order."""
        v = list(values)
        v[_RCPT] = tuple(a for a in v[_RCPT].split(", ") if a)
        v[_REFUSED] = json.loads(v[_REFUSED]) if v[_REFUSED] else {}
        return cls(*v)

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
        data: dict[str, Any] = {c: getattr(self, c) for c in _COLUMNS if c not in ("file", "rcpt", "batch")}
        data["to"] = list(self.rcpt)
        data["reason"] = self.reason
        data["files"] = self.files
        return data


@dataclass(frozen=True)
class Skipped:
    """A letter :meth:`Outbox.queue` left out, and why."""

    key: str
    recipient: str
    recipient_name: str
    reason: str
    status: str = ""  # the status of the earlier letter, if any
    row_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "recipient": self.recipient,
            "recipient_name": self.recipient_name,
            "reason": self.reason,
            "status": self.status,
            "id": self.row_id,
        }


@dataclass
class QueueResult:
    """What :meth:`Outbox.queue` did (counts and a batch id: memory stays flat).

    ``batch`` tags, in the ledger, every letter this call queued and every
    letter of it that was *already* queued earlier (e.g. by an interrupted
    run): :meth:`Outbox.deliver` with ``batch=`` delivers exactly those, and
    :meth:`Outbox.batch_rows` lists them.  ``queued``: new e-mail letters;
    ``waiting``: letters of this batch queued before; ``prepared``: letters
    written out for delivery by hand (few, kept as rows); ``skipped``: left
    out, and why (empty when an ``on_skip`` callback took them).
    """

    batch: str = ""
    queued: int = 0
    waiting: int = 0
    prepared: list[Row] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def to_deliver(self) -> int:
        """How many e-mail letters of this batch wait to be delivered."""
        return self.queued + self.waiting


@dataclass
class DeliveryReport:
    """What :meth:`Outbox.deliver` did: counts per outcome (see :meth:`Outbox.batch_rows`).

    ``deferred`` letters are still queued (a temporary failure, or never tried
    because the batch stopped); ``error`` is why the batch stopped early (the
    server unreachable, TLS or authentication refused), or None.
    """

    batch: str = ""
    account: str = ""
    total: int = 0
    sent: int = 0
    partial: int = 0
    failed: int = 0
    deferred: int = 0
    error: LetterkitError | None = None

    @property
    def ok(self) -> bool:
        return not (self.partial or self.failed or self.deferred or self.error)

    @property
    def handled(self) -> int:
        """Letters with an outcome so far (sent, partial, failed or deferred)."""
        return self.sent + self.partial + self.failed + self.deferred


@dataclass
class SendReport:
    """What :func:`send_letters` did: the queueing, then the delivery (None without an account)."""

    queue: QueueResult
    delivery: DeliveryReport | None

    @property
    def ok(self) -> bool:
        return self.delivery is None or self.delivery.ok


# --- the stored message format ------------------------------------------------------------


def split_message(data: bytes) -> tuple[dict[str, str], bytes]:
    """Split a stored message into its ``X-Letterkit-*`` values and the message to transmit.

    Works on bytes without parsing the message: our headers are at the top.
    Keys are lower-case without the prefix (``key``, ``rcpt``, ``signer-email``...).
    """
    meta: dict[str, str] = {}
    pos = 0
    n = len(HEADER_PREFIX)
    while data.startswith(HEADER_PREFIX, pos):
        end = data.find(b"\n", pos)
        if end < 0:
            end = len(data)
        name, _, value = data[pos + n : end].partition(b":")
        meta[name.decode("ascii", "replace").lower()] = unquote(value.strip().decode("ascii", "replace"))
        pos = end + 1
    return meta, data[pos:]


def _meta_block(values: dict[str, str]) -> bytes:
    lines = []
    for name in _META_FIELDS:
        value = values.get(name.lower(), "")
        if not _NEEDS_NO_QUOTING.fullmatch(value):
            value = quote(value, safe=_SAFE)
        lines.append(f"X-Letterkit-{name}: {value}\n")
    return "".join(lines).encode("ascii")


_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9 @<>,.:/+=_!~*'()\[\]-]*")  # _SAFE, letters and digits


_counter = 0
_host = ""


@functools.cache
def _pid_cached() -> int:
    return os.getpid()


def _pid() -> int:
    return _pid_cached()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pid_cached.cache_clear)


def _row_filter(statuses: Iterable[str] | None, campaign: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause (and its arguments) for ledger rows by status and campaign."""
    where, args = ["1"], list[Any]()
    if statuses is not None:
        wanted = list(statuses)
        where.append(f"status IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)
    if campaign:
        where.append("campaign = ?")
        args.append(campaign)
    return " AND ".join(where), args


def _unique_name() -> str:
    """A Maildir unique file name (time, microseconds, pid, counter, host)."""
    global _counter, _host
    _counter += 1
    if not _host:
        _host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    now = time.time()
    return f"{int(now)}.M{int((now % 1) * 1e6):06d}P{_pid()}Q{_counter}.{_host}"


def _colon() -> str:
    return "!" if os.name == "nt" else ":"


# --- the outbox --------------------------------------------------------------------------


class Outbox:
    """The outbox, sent folder and ledger under ``root`` (default: the user's data dir).

    ``readonly=True`` opens an existing ledger without writing anything (what
    ``send --dry-run`` uses); a missing ledger then reads as empty.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> None:
        if root is None:
            from .config import data_dir

            root = data_dir()
        self.paths = Paths.under(Path(root))
        self._new_dir = os.path.join(self.paths.outbox, "new")  # plain strings for the hot loops
        self._sent_dir = os.path.join(self.paths.sent, "cur")
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._prefixes: dict[str, bool] = {}  # "campaign/template/" -> has the ledger any such key
        self._checked = ""  # while the lock is held: "lazy" or "full" once reconciled (see session)
        self._background: list[Any] = []  # threads finishing a delivery (joined before anything else)
        self._lock_fd: int | None = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Outbox {self.paths.root}>"

    def close(self) -> None:
        self._join_background()
        if self._conn is not None:
            if self._conn.in_transaction:
                self._conn.commit()
            self._conn.close()
            self._conn = None

    # --- storage -------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection | None:
        """The ledger connection (None: read-only and no ledger yet)."""
        if self._conn is not None:
            return self._conn
        import sqlite3

        path = self.paths.ledger
        try:
            if self.readonly:
                if not path.exists():
                    return None
                conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():  # letters are personal: the user's alone (SQLite's -wal follows)
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
                conn = sqlite3.connect(path, isolation_level=None, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                # a batch of a few thousand letters is queued without stopping to copy the log
                # into the database; the delivery's clean-up thread does that afterwards
                conn.execute("PRAGMA wal_autocheckpoint=10000")
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the ledger {path}: {exc}") from None
        self._conn = conn
        return conn

    def _write_db(self) -> sqlite3.Connection:
        if self.readonly:
            raise OutboxError("this outbox was opened read-only")
        conn = self._db()
        assert conn is not None
        return conn

    def _dirs(self) -> None:
        try:
            for box in (self.paths.outbox, self.paths.sent):
                for sub in ("tmp", "new", "cur"):
                    (box / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"cannot create the outbox under {self.paths.root}: {exc.strerror}") from None

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Hold the outbox across several calls, e.g. :meth:`queue` then :meth:`deliver`.

        Other processes wait meanwhile (they get an :class:`OutboxError`), so
        the outbox is checked (:meth:`reconcile`) once, not before every call.
        """
        return self._locked()

    def _join_background(self) -> None:
        while self._background:
            self._background.pop().join()

    def _reconcile_once(self, *, write_outbox: bool) -> None:
        if self._checked == "full" or (self._checked == "lazy" and not write_outbox):
            return
        self.reconcile(write_outbox=write_outbox)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the outbox lock (one process at a time changes the outbox)."""
        if self._lock_fd is not None:  # re-entrant within one Outbox
            yield
            return
        self._join_background()
        self.paths.root.mkdir(parents=True, exist_ok=True)
        lock = self.paths.root / "outbox.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock(fd):
                raise OutboxError(
                    f"another letterkit process is using the outbox ({lock})",
                    hint="wait for it to finish; see what is queued with: letterkit outbox",
                )
            self._lock_fd = fd
            self._checked = ""
            try:
                yield
            finally:
                self._lock_fd = None
                self._checked = ""
                _unlock(fd)
        finally:
            os.close(fd)

    def outbox_file(self, name: str, where: str = "new") -> Path:
        return self.paths.outbox / where / name

    def sent_file(self, name: str) -> Path:
        return self.paths.sent / "cur" / f"{name}{_colon()}{SENT_FLAGS}"

    def _outbox_path(self, name: str) -> str:
        return os.path.join(self._new_dir, name)

    def _sent_path(self, name: str) -> str:
        return os.path.join(self._sent_dir, f"{name}{_colon()}{SENT_FLAGS}")

    def path_of(self, row: Row) -> Path | None:
        """Where the letter's message file is (outbox or sent), if it is an e-mail.

        While a batch is being delivered, the outbox files of its letters are
        written just ahead of each letter; the message is in the ledger
        already (see :meth:`stored_message`).
        """
        if row.channel != "email" or not row.file:
            return None
        if row.status in IN_OUTBOX:
            return self.outbox_file(row.file)
        return self.sent_file(row.file)

    def stored_message(self, row: Row) -> bytes | None:
        """The stored message of an e-mail letter (``X-Letterkit-*`` lines first; see
        :func:`split_message`): from the ledger while it waits, else its sent copy."""
        if row.channel != "email":
            return None
        conn = self._db()
        found = conn.execute("SELECT data FROM messages WHERE id = ?", (row.id,)).fetchone() if conn else None
        if found:
            return bytes(found[0])
        path = self.path_of(row)
        try:
            return path.read_bytes() if path else None
        except OSError:
            return None

    # --- queries -------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        conn = self._db()
        if conn is None:
            return []
        import sqlite3

        try:
            return [Row.from_sql(v) for v in conn.execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the ledger {self.paths.ledger}: {exc}") from None

    def _pages(self, where: str, args: Sequence[Any], page: int = 200) -> Iterator[Row]:
        """Rows matching ``where``, by id, fetched a page at a time (flat memory)."""
        last = 0
        while True:
            rows = self._query(
                f"{_SELECT} WHERE ({where}) AND id > ? ORDER BY id LIMIT {page}", (*args, last)
            )
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1].id

    def latest(self, key: str) -> Row | None:
        """The row that decides about ``key``: one still in the outbox, else the newest."""
        rows = self._query(
            f"{_SELECT} WHERE key = ? ORDER BY status IN ('queued', 'failed') DESC, id DESC LIMIT 1",
            (key,),
        )
        return rows[0] if rows else None

    def from_other_signer(self, letter: Letter) -> Row | None:
        """The newest letter of the same campaign and template that this recipient already got
        (or that waits for it) from another signer on this machine, if any."""
        prefix = f"{letter.campaign}/{letter.template}/{letter.contact.id}/"
        rows = self._query(
            f"{_SELECT} WHERE key >= ? AND key < ? AND key != ? AND status IN "
            "('queued', 'sent', 'partial', 'prepared', 'done') ORDER BY id DESC LIMIT 1",
            (prefix, prefix[:-1] + "0", letter.key),
        )
        return rows[0] if rows else None

    def skip_reason(
        self, letter: Letter, *, resend: bool = False, other_signers: bool = False
    ) -> tuple[str, Row | None]:
        """Why :meth:`queue` would leave ``letter`` out ("" if not), and the deciding row.

        A recipient that already got this template from *another* signer on this
        machine (a changed ``--name``/``--email``) is skipped too, unless ``resend``
        or ``other_signers`` (the user was asked and said yes).
        """
        row = self.latest(letter.key)
        if row is None:
            other = None if (resend or other_signers) else self.from_other_signer(letter)
            if other is not None:
                when = (other.sent_at or other.queued_at)[:10]
                return (
                    f"{OTHER_SIGNER}: {other.signer} on {when} (#{other.id}, {other.status}); "
                    "--resend sends it anyway",
                    other,
                )
            return "", None
        when = (row.sent_at or row.queued_at)[:10]
        if row.status == "queued":
            return f"already waiting in the outbox (#{row.id})", row
        if row.status == "failed":
            return (
                f"failed earlier and still in the outbox (#{row.id}): {row.reply} — retry "
                "with 'letterkit outbox flush --retry-failed' or remove it with "
                f"'letterkit outbox drop {row.id}'",
                row,
            )
        if resend:
            return "", row
        if row.status in ("sent", "partial"):
            return f"sent on {when} (#{row.id}); use --resend to send it again", row
        if row.status == "prepared":
            return f"prepared for delivery by hand on {when} (#{row.id}); --resend redoes it", row
        if row.status == "done":
            return f"delivered by hand ({row.channel}) on {when} (#{row.id}); --resend redoes it", row
        return "", row

    def _skip_reason_fast(
        self, letter: Letter, *, resend: bool, other_signers: bool = False
    ) -> tuple[str, Row | None]:
        """:meth:`skip_reason`, without a query per letter when the ledger has never seen this
        campaign and template (a first mailing: every letter is new)."""
        prefix = f"{letter.campaign}/{letter.template}/"
        known = self._prefixes.get(prefix)
        if known is None:
            conn = self._db()
            known = bool(
                conn
                and conn.execute(
                    "SELECT 1 FROM letters WHERE key >= ? AND key < ? LIMIT 1", (prefix, prefix[:-1] + "0")
                ).fetchone()
            )
            self._prefixes[prefix] = known
        if not known:
            return "", None
        return self.skip_reason(letter, resend=resend, other_signers=other_signers)

    def get(self, row_id: int) -> Row:
        rows = self._query(f"{_SELECT} WHERE id = ?", (row_id,))
        if not rows:
            raise OutboxError(
                f"no letter #{row_id} in the ledger",
                hint="see them with: letterkit log --all",
            )
        return rows[0]

    def iter_rows(
        self, statuses: Iterable[str] | None = None, *, campaign: str | None = None
    ) -> Iterator[Row]:
        """Ledger rows, oldest first, fetched a page at a time."""
        return self._pages(*_row_filter(statuses, campaign))

    def rows(
        self,
        statuses: Iterable[str] | None = None,
        *,
        campaign: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Ledger rows, oldest first (the last ``limit`` when given)."""
        if not limit:
            return list(self.iter_rows(statuses, campaign=campaign))
        where, args = _row_filter(statuses, campaign)
        rows = self._query(f"{_SELECT} WHERE {where} ORDER BY id DESC LIMIT {int(limit)}", args)
        return rows[::-1]

    def batch_rows(self, batch: str, statuses: Iterable[str] | None = None) -> Iterator[Row]:
        """The rows of one batch (see :class:`QueueResult`), oldest first, streamed."""
        where, args = ["batch = ?"], [batch]
        if statuses is not None:
            wanted = list(statuses)
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        return self._pages(" AND ".join(where), args)

    def count(self, statuses: Iterable[str], *, batch: str | None = None) -> int:
        conn = self._db()
        if conn is None:
            return 0
        wanted = list(statuses)
        sql = f"SELECT COUNT(*) FROM letters WHERE status IN ({', '.join('?' * len(wanted))})"
        if batch is not None:
            sql += " AND batch = ?"
            wanted.append(batch)
        return int(conn.execute(sql, wanted).fetchone()[0])

    def pending(self, *, include_failed: bool = True) -> list[Row]:
        """Letters in the outbox (queued, and failed unless ``include_failed`` is False)."""
        if not self.readonly and self.paths.ledger.exists():
            self.reconcile_if_free()
        return self.rows(IN_OUTBOX if include_failed else ("queued",))

    # --- reconciliation -------------------------------------------------------------

    def reconcile_if_free(self) -> None:
        """Reconcile unless another process holds the outbox (then it is its job)."""
        try:
            with self._locked():
                self.reconcile()
        except OutboxError:
            pass

    def reconcile(self, *, write_outbox: bool = True) -> int:
        """Bring the ledger and the folders into agreement after an interruption.

        Returns how many letters were fixed; see the module docstring.  Costs a
        listing of ``outbox/new`` and one ``stat`` per letter in the outbox, and
        no memory per letter beyond the file names.  ``write_outbox=False``
        leaves missing outbox files to the caller (delivery writes them ahead).
        """
        conn = self._write_db()
        self._join_background()
        self._dirs()
        new_dir = self.paths.outbox / "new"
        fixed = self._undo_cur(new_dir)
        on_disk = set(os.listdir(new_dir))
        now = _now()
        conn.execute("BEGIN")
        try:
            for row_id, name, size in self._waiting(conn):
                in_outbox = name in on_disk
                on_disk.discard(name)
                if os.path.exists(self._sent_path(name)):  # sent; killed before the ledger knew
                    conn.execute(
                        "UPDATE letters SET status = 'sent', sent_at = ?, "
                        "reply = 'delivered (recorded after an interruption)' WHERE id = ?",
                        (now, row_id),
                    )  # a stored message stays until _finish_copies has checked the copy
                elif size is None and in_outbox:  # queued by letterkit 0.1: its message is the file
                    data = (new_dir / name).read_bytes()
                    conn.execute("INSERT INTO messages (id, data) VALUES (?, ?)", (row_id, data))
                elif size is None:
                    conn.execute(
                        "UPDATE letters SET status = 'failed', reply = ? WHERE id = ?",
                        ("its message is missing from the outbox and the ledger (deleted?)", row_id),
                    )
                elif write_outbox and not (in_outbox and os.path.getsize(new_dir / name) == size):
                    (data,) = conn.execute("SELECT data FROM messages WHERE id = ?", (row_id,)).fetchone()
                    write_maildir(self.paths.outbox, name, data, "new")
                else:
                    continue
                fixed += 1
            conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT id FROM letters)")  # rows undone
            for name in on_disk:  # files without a letter waiting: put there by hand, or a lost commit
                if not conn.execute("SELECT 1 FROM letters WHERE file = ?", (name,)).fetchone():
                    data = (new_dir / name).read_bytes()
                    row_id = self._adopt(conn, data, name)
                    conn.execute("INSERT INTO messages (id, data) VALUES (?, ?)", (row_id, data))
                    fixed += 1
            conn.execute("COMMIT")
        except OSError as exc:
            conn.execute("ROLLBACK")
            raise OutboxError(f"cannot bring {self.paths.outbox} up to date: {exc.strerror}") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._clean_tmp()
        fixed += self._finish_copies(conn)
        if self._lock_fd is not None:
            self._checked = "full" if write_outbox else "lazy"
        return fixed

    def _undo_cur(self, new_dir: Path) -> int:
        """A mail program that read the outbox moved files to cur/: put them back."""
        moved = 0
        for entry in os.scandir(self.paths.outbox / "cur"):
            os.replace(entry.path, new_dir / entry.name.split(_colon())[0])
            moved += 1
        return moved

    def _clean_tmp(self) -> None:
        """Maildir rule: stray files in tmp/ go after 36 hours."""
        limit = time.time() - TMP_MAX_AGE
        for folder in (self.paths.outbox / "tmp", self.paths.sent / "tmp"):
            for entry in os.scandir(folder):
                with suppress(OSError):
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)

    @staticmethod
    def _waiting(conn: sqlite3.Connection, page: int = 500) -> Iterator[tuple[int, str, int | None]]:
        """(id, file name, size of the stored message or None) of every e-mail letter in the outbox."""
        last = 0
        while True:
            rows = conn.execute(
                "SELECT l.id, l.file, length(m.data) FROM letters l LEFT JOIN messages m ON m.id = l.id "
                "WHERE l.status IN ('queued', 'failed') AND l.channel = 'email' AND l.id > ? "
                f"ORDER BY l.id LIMIT {page}",
                (last,),
            ).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1][0]

    def _finish_copies(self, conn: sqlite3.Connection, page: int = 200) -> int:
        """Sent letters whose message is still stored: check the copy in sent/, then forget it.

        Returns how many copies had to be (re)written.  If ``sent/`` cannot be
        written, the messages simply stay in the ledger (the letters' replies say
        so) and the next reconcile tries again: nothing else has to wait for it.
        """
        fixed = 0
        while True:
            rows = conn.execute(
                "SELECT l.id, l.file, m.data FROM letters l JOIN messages m ON m.id = l.id "
                f"WHERE l.status IN ('sent', 'partial') ORDER BY l.id LIMIT {page}"
            ).fetchall()
            if not rows:
                return fixed
            try:
                for _row_id, name, data in rows:
                    copy = self.sent_file(name)
                    if not copy.exists() or copy.stat().st_size != len(data):  # a power cut can empty it
                        write_maildir(self.paths.sent, name, data, "cur", fsync=True)
                        fixed += 1
                sync_files(self.paths.sent / "cur", (self.sent_file(r[1]).name for r in rows))
            except OSError:
                return fixed
            conn.execute("BEGIN")
            conn.executemany("DELETE FROM messages WHERE id = ?", [(r[0],) for r in rows])
            conn.execute("COMMIT")

    def _adopt(self, conn: sqlite3.Connection, data: bytes, name: str) -> int:
        """Give a ledger row to a message found in the old outbox without one; return its id."""
        from email.parser import BytesParser
        from email.policy import default

        meta, body = split_message(data)
        head = BytesParser(policy=default).parsebytes(body, headersonly=True)
        to = head["To"].addresses if head["To"] else ()
        rcpt = meta.get("rcpt") or ", ".join(
            a.addr_spec for h in ("To", "Cc") if head[h] for a in head[h].addresses
        )
        cur = conn.execute(
            "INSERT INTO letters (key, campaign, template, recipient, recipient_name, signer, "
            "channel, status, subject, rcpt, message_id, queued_at, reply, account, file) "
            "VALUES (?, ?, ?, ?, ?, ?, 'email', 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (
                meta.get("key") or f"outbox/{name}",
                meta.get("campaign", ""),
                meta.get("template", ""),
                meta.get("recipient", ""),
                str(to[0].display_name) if to else "",
                meta.get("signer", ""),
                str(head["Subject"] or ""),
                rcpt,
                str(head["Message-ID"] or ""),
                _now(),
                "found in the outbox without a ledger entry",
                meta.get("account", ""),
                name,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    # --- queueing --------------------------------------------------------------------

    def queue(
        self,
        letters: Iterable[Letter],
        *,
        account: Account | None = None,
        resend: bool = False,
        prepare_hand: bool = True,
        on_skip: Callable[[Skipped], None] | None = None,
        write_outbox: bool = True,
        other_signers: bool = False,
    ) -> QueueResult:
        """Write every letter durably to the outbox (e-mail) or prepare it by hand; all or nothing.

        ``letters`` may be a generator (e.g. :func:`letterkit.letters.compose`):
        each letter is added to the open ledger transaction as it comes, and
        nothing per letter is kept in memory.  If any letter raises, nothing is
        queued.  ``write_outbox=False`` leaves the outbox files to
        :meth:`deliver`, which writes them just ahead of each letter (for a
        batch delivered at once: the first letter goes sooner).  ``account`` sets the
        From address (its own address, the signer's name); without one the
        signer's e-mail is used and From is set again at delivery.  Letters for
        contacts without e-mail are written as PDF and text under
        ``prepared/CAMPAIGN/`` (with ``prepare_hand``) and recorded as
        ``prepared``.  Skipped letters go to ``on_skip`` if given, else into
        ``QueueResult.skipped``.
        """
        import sqlite3

        from .letters import message_bytes

        conn = self._write_db()
        batch = uuid.uuid4().hex
        result = QueueResult(batch=batch)
        hand: list[tuple[Letter, int]] = []
        from_addr = check_address(account.from_addr, "account From address") if account else None
        account_name = account.name if account else ""
        skip = on_skip or result.skipped.append
        with self._locked():
            self._join_background()  # a delivery's clean-up writes the ledger too
            self._reconcile_once(write_outbox=write_outbox)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")  # the write lock now: no other writer can slip in
            self._prefixes.clear()  # (other letters may have been queued since the last call)
            rows = _NewRows(conn, batch, account_name)
            try:
                for letter in letters:
                    reason, prior = self._skip_reason_fast(letter, resend=resend, other_signers=other_signers)
                    if reason:
                        skip(
                            Skipped(
                                letter.key,
                                letter.contact.id,
                                letter.contact.name,
                                reason,
                                prior.status if prior else "",
                                prior.id if prior else None,
                            )
                        )
                        if (
                            prior is not None
                            and prior.key == letter.key
                            and prior.status == "queued"
                            and prior.batch != batch
                        ):
                            conn.execute("UPDATE letters SET batch = ? WHERE id = ?", (batch, prior.id))
                            result.waiting += 1
                        continue
                    if letter.channel != "email":
                        hand.append((letter, rows.add(letter, "prepared", "", b"")))  # prepared below,
                        continue  # once every letter is valid
                    message, message_id = message_bytes(letter, from_addr=from_addr, date=rows.date)
                    rcpt = [
                        check_address(a, f"recipient address of {letter.contact.id}")
                        for a in (*letter.to, *letter.cc)
                    ]
                    meta = {
                        "key": letter.key,
                        "campaign": letter.campaign,
                        "template": letter.template,
                        "recipient": letter.contact.id,
                        "account": account_name,
                        "rcpt": ", ".join(rcpt),
                        "signer": letter.signer.name,
                        "signer-email": letter.signer.email,
                    }
                    rows.add(letter, "queued", message_id, _meta_block(meta) + message)
                    result.queued += 1
                rows.flush()
                prepared = self._prepare(hand) if (hand and prepare_hand) else {}
                for _letter, row_id in hand:
                    conn.execute(
                        "UPDATE letters SET file = ? WHERE id = ?",
                        (json.dumps(prepared.get(row_id, {})), row_id),
                    )
                conn.execute("COMMIT")  # synchronous=FULL: the whole batch is on disk, at once
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise OutboxError(f"cannot queue the letters in {self.paths.ledger}: {exc}") from None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.execute("PRAGMA synchronous=NORMAL")
            if write_outbox and result.queued:
                self._write_outbox(batch)
        result.prepared = list(self.batch_rows(batch, ("prepared",))) if hand else []
        return result

    def _write_outbox(self, batch: str) -> None:
        """Write the outbox files of a batch just queued (the ledger already holds them)."""
        try:
            for row, data in self._with_messages(batch, ("queued",)):
                if data is not None and _size(self._outbox_path(row.file)) != len(data):
                    write_maildir(self.paths.outbox, row.file, data, "new")
        except OSError as exc:
            raise OutboxError(
                f"the letters are queued, but their files could not be written to {self.paths.outbox}: "
                f"{exc.strerror}",
                hint="'letterkit outbox' tries again",
            ) from None

    def _prepare(self, letters: list[tuple[Letter, int]]) -> dict[int, dict[str, str]]:
        """Write PDF and text for each hand letter under prepared/CAMPAIGN/, named by its ledger
        id (and signer), so that no run ever overwrites the files of another letter."""
        from .export import prepare_by_hand, slugify

        done: dict[int, dict[str, str]] = {}
        for letter, row_id in letters:
            signer = slugify(letter.signer.name, "signer")
            files = prepare_by_hand(
                letter, self.paths.prepared / letter.campaign, prefix=f"{row_id:05d}-{signer}-"
            )
            done[row_id] = {k: str(v) for k, v in files.items()}
        return done

    # --- hand letters and removal ------------------------------------------------------

    def mark_done(self, row_id: int, via: str, *, force: bool = False) -> Row:
        """Record that a prepared letter was delivered by hand (fax, post or web form).

        Marking it again by the same channel changes nothing; by another channel it
        is refused unless ``force`` (a record of delivery is not silently rewritten),
        and then the earlier record is kept in the letter's ``reply``.
        """
        if via not in HAND_CHANNELS:
            raise OutboxError(f"unknown channel {via!r}", hint=f"use one of: {', '.join(HAND_CHANNELS)}")
        row = self.get(row_id)
        if row.status not in ("prepared", "done"):
            raise OutboxError(
                f"letter #{row_id} is {row.status}, not a letter prepared for delivery by hand",
                hint="'letterkit log' lists prepared letters",
            )
        note = row.reply
        if row.status == "done":
            if row.channel == via:
                return row
            earlier = f"recorded first as delivered by {row.channel} on {row.sent_at[:10]}"
            if not force:
                raise OutboxError(
                    f"letter #{row_id} is already {earlier}",
                    hint=f"if it went by {via} instead (or too), pass --force: the earlier record is kept",
                )
            note = "; ".join(n for n in (row.reply, earlier) if n)
        self._write_db().execute(
            "UPDATE letters SET status = 'done', channel = ?, sent_at = ?, reply = ? WHERE id = ?",
            (via, _now(), note, row_id),
        )
        return self.get(row_id)

    def droppable(self, row_ids: Iterable[int]) -> list[Row]:
        """The letters :meth:`drop` would take out (raises for one not in the outbox):
        what to show a person before asking."""
        rows = [self.get(row_id) for row_id in row_ids]
        for row in rows:
            if row.status not in IN_OUTBOX:
                raise OutboxError(
                    f"letter #{row.id} is {row.status}, not waiting in the outbox",
                    hint="'letterkit outbox' lists what can be dropped",
                )
        return rows

    def drop(self, row_id: int) -> Row:
        """Take a queued or failed letter out of the outbox: it is not sent.

        Its file and stored message go; its ledger row stays as the record
        (status ``dropped``, the time in ``sent_at``, what it was in ``reply``), so
        ``letterkit log`` still shows what happened to it.  Returns the row as it was.
        """
        with self._locked():
            self.reconcile()
            (row,) = self.droppable([row_id])
            was = f"dropped by you; it was {row.status}" + (f": {row.reply}" if row.reply else "")
            conn = self._write_db()
            conn.execute("BEGIN")
            conn.execute("DELETE FROM messages WHERE id = ?", (row_id,))
            conn.execute(
                "UPDATE letters SET status = 'dropped', sent_at = ?, reply = ? WHERE id = ?",
                (_now(), was, row_id),
            )
            conn.execute("COMMIT")
            with suppress(FileNotFoundError):
                self.outbox_file(row.file).unlink()
        return row

    # --- delivery ------------------------------------------------------------------------

    def deliver(
        self,
        transport: Transport,
        *,
        batch: str | None = None,
        rate: float = 0.0,
        retry_failed: bool = False,
        on_progress: Callable[[int, int, Row], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> DeliveryReport:
        """Deliver queued letters over ``transport``, oldest first.

        ``batch``: only the letters of one :meth:`queue` call (default: every
        queued letter; they become a new batch).  ``rate``: letters per minute
        (0: no limit; the first goes at once).  ``retry_failed`` also retries
        letters refused before.  ``on_progress(done, total, row)`` is called
        after each letter.  The transport is opened here if needed and left open
        (the caller closes it).  Per letter: its outbox file is written, it is
        sent, its file is moved into ``sent/`` and its ledger row updated — the
        bookkeeping in small steps while the server answers the next letter's
        commands (when the transport offers ``while_waiting``).  ``on_wait(seconds)``
        is called just before the rate limit makes it wait (a progress display says so).
        """
        import sqlite3

        account = transport.account
        mail_from = check_address(account.from_addr, f"account {account.name!r} From address")
        conn = self._write_db()
        statuses = IN_OUTBOX if retry_failed else ("queued",)
        marks = ", ".join("?" * len(statuses))
        with self._locked():
            self._join_background()
            self._reconcile_once(write_outbox=False)  # the files of this batch are written just ahead
            if batch is None:
                batch = uuid.uuid4().hex
                conn.execute(
                    f"UPDATE letters SET batch = ? WHERE status IN ({marks}) AND channel = 'email'",
                    (batch, *statuses),
                )
            report = DeliveryReport(batch=batch, account=account.name)
            where = f"batch = ? AND status IN ({marks}) AND channel = 'email'"
            total = conn.execute(f"SELECT COUNT(*) FROM letters WHERE {where}", (batch, *statuses))
            report.total = int(total.fetchone()[0])
            if not report.total:
                return report
            self._refuse_placeholders(batch, statuses, account)
            try:
                transport.open()
            except LetterkitError as exc:  # unreachable, TLS, AUTH, no password
                report.error = exc
                report.deferred = report.total
                conn.execute(
                    f"UPDATE letters SET reply = ? WHERE {where}", (f"not sent yet: {exc}", batch, *statuses)
                )
                with suppress(OutboxError):  # the letters wait in the ledger; mail tools see them too
                    self._write_outbox(batch)
                return report
            interval = 60.0 / rate if rate and rate > 0 else 0.0
            next_at = 0.0
            copies = _SentCopies(self, conn)
            last_commit = time.monotonic()
            rows = self._with_messages(batch, statuses)
            in_outbox: set[str] = set()  # outbox files written while the server answered
            work: deque[Callable[[], None]] = deque()  # done while the server answers (see tick)
            upcoming: list[tuple[Row, bytes, bytes, list[str]] | None] = []

            def tick() -> None:
                """One piece of work; the transport calls this after each command it sends."""
                if work:
                    work.popleft()()

            def drain() -> None:
                while work:
                    work.popleft()()

            def settle() -> None:
                """Only record what was sent (the batch is stopping): no more reading ahead."""
                while work:
                    job = work.popleft()
                    if isinstance(job, functools.partial) and job.func in (file_copy, record):
                        job()

            def fetch() -> None:
                """Get the next letter ready (None: no more)."""
                for row, data in rows:
                    if data is None:  # cannot happen after reconcile, unless edited by hand meanwhile
                        reason = "its message is missing from the ledger (deleted by hand?)"
                        record(row, DeliveryResult("failed", reason))
                        continue
                    meta, message = split_message(data)
                    if meta.get("account", "") != account.name:
                        message, data = self._readdress(conn, row.id, row.file, meta, message, account)
                    if (dated := redated(message)) is not None:  # it waited: Date is when it leaves
                        message = dated
                        data = _meta_block({**meta, "account": account.name}) + message
                    rcpt = [a for a in (meta.get("rcpt") or ", ".join(row.rcpt)).split(", ") if a]
                    upcoming.append((row, data, message, rcpt))
                    work.append(functools.partial(write_file, row.file, data))
                    return
                upcoming.append(None)

            notes: dict[int, str] = {}

            def write_file(name: str, data: bytes) -> None:
                """The next letter's outbox file (while the server takes in this one's message)."""
                try:
                    if _size(self._outbox_path(name)) != len(data):
                        write_maildir(self.paths.outbox, name, data, "new")
                except OSError as exc:
                    raise OutboxError(f"cannot write {self._outbox_path(name)}: {exc.strerror}") from None
                in_outbox.add(name)

            def file_copy(row: Row, data: bytes, result: DeliveryResult) -> None:
                """A sent letter's file goes to sent/: the mark reconcile goes by.

                Queued first, so it is done while the server reads the next MAIL FROM,
                before the next message goes: a kill can repeat at most the letter in flight.
                """
                if result.delivered:
                    notes[row.id] = copies.add(row.id, row.file, data)

            def record(row: Row, result: DeliveryResult) -> None:
                """The outcome of one letter into the ledger (committed every COMMIT_SECONDS)."""
                nonlocal last_commit
                note = notes.pop(row.id, "")
                try:
                    changes = self._record(conn, row, result, account.name, note)
                except sqlite3.Error as exc:
                    raise OutboxError(f"cannot update the ledger {self.paths.ledger}: {exc}") from None
                counter = _COUNTER[changes["status"]]
                setattr(report, counter, getattr(report, counter) + 1)
                now = time.monotonic()
                if note or now - last_commit > COMMIT_SECONDS:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN")
                    last_commit = now
                if on_progress is not None:
                    on_progress(report.handled, report.total, replace(row, **changes))

            conn.execute("BEGIN")
            try:
                fetch()
                drain()  # the first letter's file, now
                while (current := upcoming.pop()) is not None:
                    row, data, message, rcpt = current
                    if interval and next_at:  # not before the first letter
                        drain()
                        conn.execute("COMMIT")  # nothing stays unrecorded while we wait
                        conn.execute("BEGIN")
                        wait = next_at - time.monotonic()
                        if wait > 0:
                            if on_wait is not None:
                                on_wait(wait)
                            sleep(wait)
                    next_at = time.monotonic() + interval
                    if row.file not in in_outbox:  # its outbox file is written before it goes
                        write_file(row.file, data)
                    in_outbox.discard(row.file)
                    work.append(fetch)  # the next letter is read while the server works on this one
                    try:
                        result = _send(transport, message, mail_from, rcpt, tick)
                    except LetterkitError as exc:  # the server or the account, not this letter
                        settle()  # the letter before is recorded all the same
                        report.error = exc
                        report.deferred += report.total - report.handled
                        conn.execute(
                            f"UPDATE letters SET reply = ? WHERE {where} AND id >= ?",
                            (f"not sent yet: {exc}", batch, *statuses, row.id),
                        )
                        break
                    drain()  # what the transport had no time for (or no wait to do it in)
                    work.append(functools.partial(file_copy, row, data, result))
                    work.append(functools.partial(record, row, result))
                drain()
            finally:
                with suppress(Exception):  # interrupted: the letter already sent is still recorded
                    settle()
                copies.close()
                if report.error is not None or report.deferred:
                    with suppress(OutboxError):  # the letters left are in the ledger; mail tools see them too
                        self._write_outbox(batch)
        return report

    def _refuse_placeholders(self, batch: str, statuses: Sequence[str], account: Account) -> None:
        """Stop before the first letter leaves if one is signed with placeholder details
        (a reserved example domain, "Your Name"...) and the server is not on this machine."""
        from .errors import InvalidValue
        from .placeholders import placeholder_reason
        from .transport import is_loopback

        if is_loopback(account.host):
            return
        for row in self.batch_rows(batch, statuses):
            name, _, email = row.signer.partition(" <")
            if reason := placeholder_reason(name=name, email=email.rstrip(">")):
                raise InvalidValue(
                    f"letter #{row.id} to {row.recipient} is signed with placeholder details ({reason}); "
                    "nothing was sent and the letters stay in the outbox",
                    hint=f"remove it with 'letterkit outbox drop {row.id}', set your own details with "
                    "'letterkit signer set', and send again",
                )

    def _with_messages(
        self, batch: str, statuses: Sequence[str], page: int = 200
    ) -> Iterator[tuple[Row, bytes | None]]:
        """The e-mail letters of ``batch`` in ``statuses`` with their stored message, a page at a time."""
        conn = self._write_db()
        columns = ", ".join(f"l.{c}" for c in _COLUMNS)
        marks = ", ".join("?" * len(statuses))
        last = 0
        while True:
            rows = conn.execute(
                f"SELECT {columns}, m.data FROM letters l LEFT JOIN messages m ON m.id = l.id "
                f"WHERE l.batch = ? AND l.status IN ({marks}) AND l.channel = 'email' AND l.id > ? "
                f"ORDER BY l.id LIMIT {page}",
                (batch, *statuses, last),
            ).fetchall()
            for values in rows:
                yield Row.from_sql(values[:-1]), values[-1]
            if len(rows) < page:
                return
            last = rows[-1][0]

    def _readdress(
        self,
        conn: sqlite3.Connection,
        row_id: int,
        name: str,
        meta: dict[str, str],
        message: bytes,
        account: Account,
    ) -> tuple[bytes, bytes]:
        """Set From (and Reply-To) for the delivering account; store the message so."""
        from .letters import set_sender

        message = set_sender(message, meta.get("signer", ""), account.from_addr, meta.get("signer-email", ""))
        data = _meta_block({**meta, "account": account.name}) + message
        conn.execute("UPDATE messages SET data = ? WHERE id = ?", (data, row_id))
        with suppress(FileNotFoundError):  # an outbox file already written: it must say the same
            if self.outbox_file(name).exists():
                write_maildir(self.paths.outbox, name, data, "new")
        return message, data

    def _record(
        self, conn: sqlite3.Connection, row: Row, result: DeliveryResult, account: str, note: str = ""
    ) -> dict[str, Any]:
        """Write the outcome of one letter to the ledger (committed by the caller); return the
        changed fields (``replace(row, **changes)`` is the row as it is now)."""
        refused = {a: list(v) for a, v in result.refused.items()}
        status: str
        if result.delivered:
            status, sent_at, reply = result.status, _now(), result.reply
            if result.status == "partial":
                reply += "; refused: " + "; ".join(f"{a}: {m}" for a, (_c, m) in result.refused.items())
            reply += note
        elif result.status == "failed":
            status, sent_at, reply = "failed", "", result.reply
        else:
            status, sent_at, reply = "queued", "", f"deferred: {result.reply}"
        changes = {
            "status": status,
            "sent_at": sent_at,
            "reply": reply,
            "refused": refused,
            "account": account,
            "attempts": row.attempts + result.attempts,
        }
        conn.execute(
            "UPDATE letters SET status = ?, sent_at = ?, reply = ?, refused = ?, account = ?, "
            "attempts = ? WHERE id = ?",
            (
                status,
                sent_at,
                reply,
                json.dumps(refused) if refused else "",
                account,
                changes["attempts"],
                row.id,
            ),
        )
        return changes


_COUNTER = {"sent": "sent", "partial": "partial", "failed": "failed", "queued": "deferred"}


STALE_DATE_SECONDS = 30


def redated(message: bytes, *, now: dt.datetime | None = None) -> bytes | None:
    """``message`` with its Date set to now, if its Date is older than
    :data:`STALE_DATE_SECONDS` (None: it is fresh, send it as it is).

    A letter's Date is when it leaves, not when it was queued: a letter that
    waited in the outbox (no account yet, the rate limit, a temporary failure)
    gets a new Date just before it is sent.  Letters sent straight after they
    were queued keep theirs, and cost no second pass through the email package.
    """
    import email
    import email.policy
    import email.utils

    now = now or clock.now()
    head = message.replace(b"\r\n", b"\n").partition(b"\n\n")[0]  # LF or CRLF stored
    dates = [line[5:] for line in head.split(b"\n") if line[:5].lower() == b"date:"]
    if not dates:
        return None  # no Date header: nothing to correct (the server adds one)
    try:
        then = email.utils.parsedate_to_datetime(dates[0].decode("ascii", "replace").strip())
    except (TypeError, ValueError):
        then = None
    if (
        then is not None
        and then.tzinfo is not None
        and abs((now - then).total_seconds()) <= STALE_DATE_SECONDS
    ):
        return None
    msg = email.message_from_bytes(message, policy=email.policy.SMTP)
    msg.replace_header("Date", email.utils.format_datetime(now))
    return msg.as_bytes()


def _send(
    transport: Transport, message: bytes, mail_from: str, rcpt: list[str], while_waiting: Callable[[], None]
) -> DeliveryResult:
    """``transport.send``, passing ``while_waiting`` to transports that take it."""
    if getattr(transport, "supports_while_waiting", False):
        return transport.send(message, mail_from, rcpt, while_waiting=while_waiting)  # type: ignore[call-arg]
    return transport.send(message, mail_from, rcpt)


class _SentCopies:
    """Moves sent letters' files from ``outbox/new`` to ``sent/cur``; at the end, lets their messages go.

    The rename marks the letter as sent for :meth:`Outbox.reconcile`.  At
    :meth:`close`, one file-system sync makes the sent copies durable, and only
    then are the stored messages of those letters deleted from the ledger.
    """

    def __init__(self, box: Outbox, conn: sqlite3.Connection) -> None:
        self._box = box
        self._conn = conn
        self._moved: list[tuple[int, str]] = []  # (id, name): copies in sent/cur, maybe not on disk yet

    def add(self, row_id: int, name: str, data: bytes) -> str:
        """File one copy; return a note for the ledger if it could not be written."""
        box = self._box
        try:
            try:
                os.replace(box._outbox_path(name), box._sent_path(name))
            except FileNotFoundError:  # deleted by hand meanwhile: the ledger has the message
                write_maildir(box.paths.sent, name, data, "cur")
        except OSError as exc:
            return f" (no copy in {box.paths.sent}: {exc.strerror or exc}; the ledger keeps the message)"
        self._moved.append((row_id, name))
        return ""

    def close(self) -> None:
        """Commit the ledger; then, in the background, sync the copies and delete the stored
        messages they now hold (the outbox joins that thread before its next step or close)."""
        import threading

        if self._conn.in_transaction:
            self._conn.execute("COMMIT")
        if not self._moved:
            return
        moved, self._moved = self._moved, []
        box = self._box
        thread = threading.Thread(
            target=_forget_stored, args=(box, moved), name="letterkit-sync", daemon=True
        )
        thread.start()
        box._background.append(thread)


def _forget_stored(box: Outbox, moved: list[tuple[int, str]]) -> None:
    """Sync the sent copies, then delete their stored messages (own connection; errors: the
    messages stay, and the next reconcile checks the copies and tries again)."""
    import sqlite3

    try:
        sync_files(box.paths.sent / "cur", (box.sent_file(name).name for _i, name in moved))
        conn = sqlite3.connect(box.paths.ledger, isolation_level=None, timeout=30)
    except (OSError, sqlite3.Error):
        return
    try:
        conn.execute("BEGIN")
        conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i, _name in moved])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # so closing the ledger has little left to do
    except sqlite3.Error:
        pass
    finally:
        conn.close()


def _size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def write_maildir(box: str | Path, name: str, data: bytes, where: str, *, fsync: bool = False) -> None:
    """Write a message into a Maildir the Maildir way: ``tmp/NAME``, renamed into ``new/NAME``
    (``where="new"``) or ``cur/NAME:2,S`` (``where="cur"``, a message already read)."""
    tmp = os.path.join(box, "tmp", name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    final = name if where == "new" else f"{name}{_colon()}{SENT_FLAGS}"
    os.replace(tmp, os.path.join(box, where, final))


def sync_files(folder: Path, names: Iterable[str]) -> None:
    """Make the files ``names`` written in ``folder`` durable: one ``syncfs()`` of its file
    system on Linux, ``sync()`` where there is no syncfs, an fsync of each file elsewhere."""
    if not hasattr(os, "sync"):  # Windows
        for name in names:
            fd = os.open(folder / name, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _libc_syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _libc_syncfs(fd: int) -> int:
    try:
        return int(_libc().syncfs(fd))
    except (AttributeError, OSError):  # not Linux (or no syncfs): the caller syncs everything
        return -1


class _NewRows:
    """Ledger rows (and stored messages) of one queue() call, inserted a few hundred at a time.

    The ids are given here, following the ledger's own sequence: queue() holds
    the outbox lock inside one transaction, so nobody else inserts meanwhile.
    """

    CHUNK = 256

    def __init__(self, conn: sqlite3.Connection, batch: str, account: str) -> None:
        self._conn = conn
        self._batch = batch
        self._account = account
        self.date = dt.datetime.now().astimezone()  # the Date of every letter of the batch
        self._queued_at = _now()
        found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'letters'").fetchone()
        self._next_id = (found[0] if found else 0) + 1
        self._rows: list[tuple[Any, ...]] = []
        self._messages: list[tuple[int, bytes]] = []

    def add(self, letter: Letter, status: str, message_id: str, data: bytes) -> int:
        """Add one row (written with the next chunk); return its ledger id."""
        row_id, self._next_id = self._next_id, self._next_id + 1
        s = letter.signer
        self._rows.append(
            (
                row_id,
                letter.key,
                letter.campaign,
                letter.template,
                letter.language,
                letter.contact.id,
                letter.contact.name,
                f"{s.name} <{s.email}>" if s.email else s.name,
                letter.channel,
                status,
                letter.subject,
                ", ".join((*letter.to, *letter.cc)),
                message_id,
                self._queued_at,
                self._account,
                _unique_name() if data else "",
                self._batch,
            )
        )
        if data:
            self._messages.append((row_id, data))
        if len(self._rows) >= self.CHUNK:
            self.flush()
        return row_id

    def flush(self) -> None:
        if self._rows:
            self._conn.executemany(
                "INSERT INTO letters (id, key, campaign, template, language, recipient, recipient_name, "
                "signer, channel, status, subject, rcpt, message_id, queued_at, account, file, batch) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._rows,
            )
            self._rows = []
        if self._messages:
            self._conn.executemany("INSERT INTO messages (id, data) VALUES (?, ?)", self._messages)
            self._messages = []


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        with suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


# --- one call for scripts ----------------------------------------------------------------


def send_letters(
    letters: Iterable[Letter],
    *,
    account: Account | None,
    outbox: Outbox | None = None,
    password_provider: Callable[[], str] | None = None,
    resend: bool = False,
    rate: float | None = None,
    on_progress: Callable[[int, int, Row], None] | None = None,
    transport: Transport | None = None,
) -> SendReport:
    """Queue ``letters`` durably, then deliver them through ``account`` (the CLI's ``send --yes``).

    Without an account the letters stay queued (deliver them later with
    :meth:`Outbox.deliver`).  ``password_provider`` defaults to the account's
    non-interactive sources (:func:`letterkit.credentials.get_password`);
    ``rate`` to :data:`letterkit.config.DEFAULT_RATE` letters per minute.
    Letters of this batch queued by an earlier, interrupted run are delivered too.
    """
    from .config import DEFAULT_RATE

    box = outbox or Outbox()
    try:
        with box.session():  # queued and delivered without another process in between
            queued = box.queue(letters, account=account, resend=resend, write_outbox=account is None)
            if account is None or not queued.to_deliver:
                return SendReport(
                    queued, None if account is None else DeliveryReport(queued.batch, account.name)
                )
            if transport is None:
                from .credentials import get_password
                from .transport import SmtpTransport

                acct = account
                transport = SmtpTransport(
                    acct, password_provider or (lambda: get_password(acct, interactive=False))
                )
            try:
                report = box.deliver(
                    transport,
                    batch=queued.batch,
                    rate=DEFAULT_RATE if rate is None else rate,
                    on_progress=on_progress,
                )
            finally:
                transport.close()
            return SendReport(queued, report)
    finally:
        if outbox is None:
            box.close()
