"""The durable outbox, the sent folder and the ledger: no letter is lost or sent twice.

Files (under :func:`letterkit.config.data_dir`, or any ``root`` you pass)::

    outbox/{tmp,new,cur}   a Maildir: one file per letter waiting to go (or failed)
    sent/{tmp,new,cur}     a Maildir: every message the server accepted
    ledger.sqlite3         one row per letter: who, what, when, the server's reply
    prepared/CAMPAIGN/     PDF and text of letters that go by fax, post or web form

Both folders are ordinary Maildirs: ``mutt -f ~/.local/share/letterkit/sent``
reads them.  An outbox file is the complete RFC 5322 message, preceded by
``X-Letterkit-*`` headers (key, campaign, template, recipient, account,
envelope recipients, signer) that are stripped before transmission.

Ledger statuses: ``queued`` (in the outbox), ``failed`` (refused permanently;
still in the outbox with the reason), ``sent``, ``partial`` (some recipients
refused), ``prepared`` (written out for delivery by hand) and ``done``
(delivered by hand).  A letter's identity is :attr:`letterkit.letters.Letter.key`
(campaign/template/recipient/signer): :meth:`Outbox.queue` skips keys already
sent, prepared or done (unless ``resend``) and keys still in the outbox.

Durability and crash safety (what is fsynced when):

* :meth:`Outbox.queue` renders and validates every letter, writing each to
  ``outbox/tmp`` as it goes (memory stays flat) and adding its ledger row in one
  open transaction.  Any error: the transaction is rolled back and the staged
  files deleted — nothing is queued.  Otherwise the staged files are flushed to
  disk (``os.sync()`` once; per-file fsync where that does not exist), the
  ledger transaction is committed with ``synchronous=FULL`` — *this* commit is
  the moment the letters count as queued — then each file is renamed into
  ``outbox/new`` and that directory is fsynced.
* :meth:`Outbox.deliver`, per letter: send → rename the file into ``sent/cur``
  → update its ledger row.  Ledger updates are committed in small batches (WAL,
  ``synchronous=NORMAL``; no fsync per message).
* Every outbox operation first calls :meth:`Outbox.reconcile`: a letter whose
  file is in ``sent/`` but whose row is not "sent" is marked sent; a committed
  letter still in ``tmp/`` is moved to ``new/``; a file in ``new/`` without a
  row gets one.  So a process killed at any moment (even ``kill -9``) loses no
  letter, and at most the one in flight at the kill can be delivered twice.
  (A power cut after a send but before the kernel wrote the rename to disk can
  also repeat letters; it cannot lose one.)

Only one process delivers from an outbox at a time (a lock file,
``outbox.lock``); :class:`OutboxError` says so if another one is busy.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .errors import LetterkitError, OutboxError
from .validation import check_address

if TYPE_CHECKING:
    import sqlite3

    from .config import Account
    from .letters import Letter
    from .transport import DeliveryResult, Transport

STATUSES = ("queued", "failed", "sent", "partial", "prepared", "done")
IN_OUTBOX = ("queued", "failed")
DELIVERED = ("sent", "partial", "prepared", "done")
HAND_CHANNELS = ("fax", "post", "web")
HEADER_PREFIX = b"X-Letterkit-"
_META_FIELDS = ("Key", "Campaign", "Template", "Recipient", "Account", "Rcpt", "Signer", "Signer-Email")
_SAFE = " @<>,.:/+=_-!~*'()[]"
SENT_FLAGS = "2,S"
TMP_MAX_AGE = 36 * 3600  # Maildir convention: stray tmp files older than this are garbage
COMMIT_EVERY = 50  # ledger rows per commit while delivering
COMMIT_SECONDS = 1.0

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
"""
_COLUMNS = (
    "id", "key", "campaign", "template", "language", "recipient", "recipient_name", "signer",
    "channel", "status", "subject", "rcpt", "message_id", "queued_at", "sent_at", "reply",
    "refused", "account", "file", "attempts", "batch",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM letters"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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
    the Maildir file name for e-mail, a JSON object of paths for hand letters.
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
        data = dict(zip(_COLUMNS, values, strict=True))
        data["rcpt"] = tuple(a for a in data["rcpt"].split(", ") if a)
        data["refused"] = json.loads(data["refused"]) if data["refused"] else {}
        return cls(**data)

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


@dataclass
class SendReport:
    """What :func:`send_letters` did: the queueing, then the delivery (None without an account)."""

    queue: QueueResult
    delivery: DeliveryReport | None

    @property
    def ok(self) -> bool:
        return self.delivery is None or self.delivery.ok


# --- the outbox file format ------------------------------------------------------------


def split_message(data: bytes) -> tuple[dict[str, str], bytes]:
    """Split an outbox file into its ``X-Letterkit-*`` values and the message to transmit.

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
    lines = [
        f"X-Letterkit-{name}: {quote(values.get(name.lower(), ''), safe=_SAFE)}\n" for name in _META_FIELDS
    ]
    return "".join(lines).encode("ascii")


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


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        self._new = os.path.join(self.paths.outbox, "new")  # plain strings for the hot loop
        self._sent_cur = os.path.join(self.paths.sent, "cur")
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Outbox {self.paths.root}>"

    def close(self) -> None:
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
                conn = sqlite3.connect(path, isolation_level=None, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
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

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the outbox lock (one process at a time changes the outbox)."""
        if self._lock_fd is not None:  # re-entrant within one Outbox
            yield
            return
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
            try:
                yield
            finally:
                self._lock_fd = None
                _unlock(fd)
        finally:
            os.close(fd)

    def outbox_file(self, name: str, where: str = "new") -> Path:
        return self.paths.outbox / where / name

    def sent_file(self, name: str) -> Path:
        return self.paths.sent / "cur" / f"{name}{_colon()}{SENT_FLAGS}"

    def path_of(self, row: Row) -> Path | None:
        """Where the letter's message file is now (outbox or sent), if it is an e-mail."""
        if row.channel != "email" or not row.file:
            return None
        if row.status in IN_OUTBOX:
            return self.outbox_file(row.file)
        return self.sent_file(row.file)

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

    def skip_reason(self, letter: Letter, *, resend: bool = False) -> tuple[str, Row | None]:
        """Why :meth:`queue` would leave ``letter`` out ("" if not), and the deciding row."""
        row = self.latest(letter.key)
        if row is None:
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

    def reconcile(self) -> int:
        """Bring the ledger and the folders into agreement after an interruption.

        Returns how many letters were fixed; see the module docstring.  Costs one
        ``stat`` per letter in the outbox and no memory per letter.
        """
        conn = self._write_db()
        self._dirs()
        fixed = 0
        new_dir, tmp_dir, cur_dir = (self.paths.outbox / d for d in ("new", "tmp", "cur"))
        in_cur = {n.split(_colon())[0]: n for n in os.listdir(cur_dir)}  # normally empty
        present = 0
        now = _now()
        conn.execute("BEGIN")
        try:
            for row_id, name in self._files_in_outbox(conn):
                if os.path.exists(os.path.join(self._new, name)):
                    present += 1
                    continue
                if os.path.exists(self.sent_file(name)):
                    conn.execute(
                        "UPDATE letters SET status = 'sent', sent_at = ?, "
                        "reply = 'delivered (recorded after an interruption)' WHERE id = ?",
                        (now, row_id),
                    )
                elif os.path.exists(tmp_dir / name):  # committed, not yet moved into new/
                    os.replace(tmp_dir / name, new_dir / name)
                    present += 1
                elif name in in_cur:  # a mail program moved it to cur/ when it read the outbox
                    os.replace(cur_dir / in_cur.pop(name), new_dir / name)
                    present += 1
                else:
                    conn.execute(
                        "UPDATE letters SET status = 'failed', reply = ? WHERE id = ?",
                        ("the message file is missing from the outbox (deleted?)", row_id),
                    )
                fixed += 1
            # files without a ledger row (a power cut undid a commit, or put there by hand)
            on_disk = sum(1 for _ in os.scandir(new_dir)) + len(in_cur)
            if on_disk > present:
                for entry in os.scandir(new_dir):
                    if not conn.execute("SELECT 1 FROM letters WHERE file = ?", (entry.name,)).fetchone():
                        self._adopt(conn, Path(entry.path), entry.name)
                        fixed += 1
                for name, full in in_cur.items():
                    if not conn.execute("SELECT 1 FROM letters WHERE file = ?", (name,)).fetchone():
                        os.replace(cur_dir / full, new_dir / name)
                        self._adopt(conn, new_dir / name, name)
                        fixed += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        limit = time.time() - TMP_MAX_AGE
        for entry in os.scandir(tmp_dir):  # Maildir rule: stray tmp files go after 36 hours
            with suppress(OSError):
                if (
                    entry.stat().st_mtime < limit
                    and not conn.execute("SELECT 1 FROM letters WHERE file = ?", (entry.name,)).fetchone()
                ):
                    os.unlink(entry.path)
        return fixed

    @staticmethod
    def _files_in_outbox(conn: sqlite3.Connection, page: int = 500) -> Iterator[tuple[int, str]]:
        """(id, file) of every e-mail letter in the outbox, a page at a time."""
        last = 0
        while True:
            rows = conn.execute(
                "SELECT id, file FROM letters WHERE status IN ('queued', 'failed') "
                f"AND channel = 'email' AND id > ? ORDER BY id LIMIT {page}",
                (last,),
            ).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1][0]

    def _adopt(self, conn: sqlite3.Connection, path: Path, name: str) -> None:
        """Give a ledger row to a message file found in the outbox without one."""
        from email.parser import BytesParser
        from email.policy import default

        meta, body = split_message(path.read_bytes())
        head = BytesParser(policy=default).parsebytes(body, headersonly=True)
        to = head["To"].addresses if head["To"] else ()
        rcpt = meta.get("rcpt") or ", ".join(
            a.addr_spec for h in ("To", "Cc") if head[h] for a in head[h].addresses
        )
        conn.execute(
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

    # --- queueing --------------------------------------------------------------------

    def queue(
        self,
        letters: Iterable[Letter],
        *,
        account: Account | None = None,
        resend: bool = False,
        prepare_hand: bool = True,
        on_skip: Callable[[Skipped], None] | None = None,
    ) -> QueueResult:
        """Write every letter durably to the outbox (e-mail) or prepare it by hand; all or nothing.

        ``letters`` may be a generator (e.g. :func:`letterkit.letters.compose`):
        each letter is staged as it comes, and nothing per letter is kept in
        memory.  If any letter raises, nothing is queued.  ``account`` sets the
        From address (its own address, the signer's name); without one the
        signer's e-mail is used and From is set again at delivery.  Letters for
        contacts without e-mail are written as PDF and text under
        ``prepared/CAMPAIGN/`` (with ``prepare_hand``) and recorded as
        ``prepared``.  Skipped letters go to ``on_skip`` if given, else into
        ``QueueResult.skipped``.
        """
        from .letters import message_bytes

        conn = self._write_db()
        self._dirs()
        batch = uuid.uuid4().hex
        result = QueueResult(batch=batch)
        hand: list[Letter] = []
        from_addr = check_address(account.from_addr, "account From address") if account else None
        account_name = account.name if account else ""
        tmp_dir = self.paths.outbox / "tmp"
        sync_each = not hasattr(os, "sync")
        skip = on_skip or result.skipped.append
        with self._locked():
            self.reconcile()
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN")
            committed = False
            current: Path | None = None
            try:
                for letter in letters:
                    reason, prior = self.skip_reason(letter, resend=resend)
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
                        if prior is not None and prior.status == "queued" and prior.batch != batch:
                            conn.execute("UPDATE letters SET batch = ? WHERE id = ?", (batch, prior.id))
                            result.waiting += 1
                        continue
                    if letter.channel != "email":
                        hand.append(letter)  # prepared below, once every letter is valid
                        conn.execute(*_insert(letter, "prepared", "", "", account_name, batch))
                        continue
                    message, message_id = message_bytes(letter, from_addr=from_addr)
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
                    name = _unique_name()
                    conn.execute(*_insert(letter, "queued", name, message_id, account_name, batch))
                    current = tmp_dir / name
                    _write_new(current, _meta_block(meta) + message, fsync=sync_each)
                    current = None
                    result.queued += 1
                prepared = self._prepare(hand) if (hand and prepare_hand) else {}
                for letter in hand:
                    conn.execute(
                        "UPDATE letters SET file = ? WHERE batch = ? AND key = ? AND status = 'prepared'",
                        (json.dumps(prepared.get(letter.key, {})), batch, letter.key),
                    )
                if result.queued and not sync_each:
                    os.sync()  # every staged file on disk before the commit that queues them
                conn.execute("COMMIT")
                committed = True
            except BaseException:
                if not committed:
                    self._unstage(conn, batch, current)
                raise
            finally:
                conn.execute("PRAGMA synchronous=NORMAL")
            if result.queued:
                try:
                    for row in self.batch_rows(batch, ("queued",)):
                        staged = tmp_dir / row.file
                        if os.path.exists(staged):
                            os.replace(staged, self.outbox_file(row.file))
                    _fsync_dir(self.paths.outbox / "new")
                except OSError as exc:
                    raise OutboxError(
                        f"letters are queued but could not be moved into "
                        f"{self.paths.outbox / 'new'}: {exc.strerror}",
                        hint="run 'letterkit outbox' to finish the move",
                    ) from None
        result.prepared = list(self.batch_rows(batch, ("prepared",))) if hand else []
        return result

    def _unstage(self, conn: sqlite3.Connection, batch: str, current: Path | None) -> None:
        """Undo a failed queue(): delete the staged files, roll the ledger back."""
        tmp_dir = self.paths.outbox / "tmp"
        with suppress(Exception):
            for row in self.batch_rows(batch, ("queued",)):
                with suppress(OSError):
                    (tmp_dir / row.file).unlink()
        if current is not None:
            with suppress(OSError):
                current.unlink()
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _prepare(self, letters: list[Letter]) -> dict[str, dict[str, str]]:
        """Write PDF and text for each hand letter under prepared/CAMPAIGN/."""
        from .export import prepare_by_hand

        done: dict[str, dict[str, str]] = {}
        for letter in letters:
            files = prepare_by_hand(letter, self.paths.prepared / letter.campaign)
            done[letter.key] = {k: str(v) for k, v in files.items()}
        return done

    # --- hand letters and removal ------------------------------------------------------

    def mark_done(self, row_id: int, via: str) -> Row:
        """Record that a prepared letter was delivered by hand (fax, post or web form)."""
        if via not in HAND_CHANNELS:
            raise OutboxError(f"unknown channel {via!r}", hint=f"use one of: {', '.join(HAND_CHANNELS)}")
        row = self.get(row_id)
        if row.status not in ("prepared", "done"):
            raise OutboxError(
                f"letter #{row_id} is {row.status}, not a letter prepared for delivery by hand",
                hint="'letterkit log' lists prepared letters",
            )
        self._write_db().execute(
            "UPDATE letters SET status = 'done', channel = ?, sent_at = ? WHERE id = ?",
            (via, _now(), row_id),
        )
        return self.get(row_id)

    def drop(self, row_id: int) -> Row:
        """Remove a queued or failed letter from the outbox (file and ledger row)."""
        with self._locked():
            self.reconcile()
            row = self.get(row_id)
            if row.status not in IN_OUTBOX:
                raise OutboxError(
                    f"letter #{row_id} is {row.status}, not waiting in the outbox",
                    hint="'letterkit outbox' lists what can be dropped",
                )
            self._write_db().execute("DELETE FROM letters WHERE id = ?", (row_id,))
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
    ) -> DeliveryReport:
        """Deliver queued letters over ``transport``, oldest first.

        ``batch``: only the letters of one :meth:`queue` call (default: every
        queued letter; they become a new batch).  ``rate``: letters per minute
        (0: no limit; the first goes at once).  ``retry_failed`` also retries
        letters refused before.  ``on_progress(done, total, row)`` is called
        after each letter.  The transport is opened here if needed and left open
        (the caller closes it).  Per letter: send, move the file to
        ``sent/cur``, update the ledger; ledger updates are committed every
        :data:`COMMIT_EVERY` letters or :data:`COMMIT_SECONDS` seconds.
        """
        account = transport.account
        mail_from = check_address(account.from_addr, f"account {account.name!r} From address")
        conn = self._write_db()
        statuses = IN_OUTBOX if retry_failed else ("queued",)
        marks = ", ".join("?" * len(statuses))
        with self._locked():
            self.reconcile()
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
            try:
                transport.open()
            except LetterkitError as exc:  # unreachable, TLS, AUTH, no password
                report.error = exc
                report.deferred = report.total
                conn.execute(
                    f"UPDATE letters SET reply = ? WHERE {where}", (f"not sent yet: {exc}", batch, *statuses)
                )
                return report
            interval = 60.0 / rate if rate and rate > 0 else 0.0
            next_at = 0.0
            done = uncommitted = 0
            last_commit = time.monotonic()
            conn.execute("BEGIN")
            try:
                for row in self._pages(where, (batch, *statuses)):
                    if interval and done:
                        wait = next_at - time.monotonic()
                        if wait > 0:
                            sleep(wait)
                    next_at = time.monotonic() + interval
                    try:
                        outcome = self._deliver_one(conn, transport, row, mail_from)
                    except LetterkitError as exc:  # the server or the account, not this letter
                        report.error = exc
                        report.deferred += report.total - done
                        conn.execute(
                            f"UPDATE letters SET reply = ? WHERE {where} AND id >= ?",
                            (f"not sent yet: {exc}", batch, *statuses, row.id),
                        )
                        break
                    done += 1
                    if outcome.status == "sent":
                        report.sent += 1
                    elif outcome.status == "partial":
                        report.partial += 1
                    elif outcome.status == "failed":
                        report.failed += 1
                    else:
                        report.deferred += 1
                    uncommitted += 1
                    if uncommitted >= COMMIT_EVERY or time.monotonic() - last_commit > COMMIT_SECONDS:
                        conn.execute("COMMIT")
                        conn.execute("BEGIN")
                        uncommitted, last_commit = 0, time.monotonic()
                    if on_progress is not None:
                        on_progress(done, report.total, outcome)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        return report

    def _deliver_one(self, conn: sqlite3.Connection, transport: Transport, row: Row, mail_from: str) -> Row:
        path = os.path.join(self._new, row.file)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            reason = "the message file is missing from the outbox (deleted?)"
            conn.execute("UPDATE letters SET status = 'failed', reply = ? WHERE id = ?", (reason, row.id))
            return replace(row, status="failed", reply=reason)
        meta, message = split_message(data)
        account = transport.account
        if meta.get("account", "") != account.name:
            message = self._readdress(Path(path), meta, message, account)
        rcpt = [a for a in (meta.get("rcpt") or ", ".join(row.rcpt)).split(", ") if a]
        result = transport.send(message, mail_from, rcpt)
        return self._record(conn, row, path, result, account.name)

    def _readdress(self, path: Path, meta: dict[str, str], message: bytes, account: Account) -> bytes:
        """Set From (and Reply-To) for the delivering account and rewrite the outbox file."""
        from .letters import set_sender

        message = set_sender(message, meta.get("signer", ""), account.from_addr, meta.get("signer-email", ""))
        data = _meta_block({**meta, "account": account.name}) + message
        tmp = self.paths.outbox / "tmp" / f"{path.name}.readdress"
        _write_new(tmp, data, fsync=True, replace_existing=True)
        os.replace(tmp, path)
        return message

    def _record(
        self, conn: sqlite3.Connection, row: Row, path: str, result: DeliveryResult, account: str
    ) -> Row:
        refused = {a: list(v) for a, v in result.refused.items()}
        attempts = row.attempts + result.attempts
        status: str
        if result.delivered:
            status, sent_at, reply = result.status, _now(), result.reply
            if result.status == "partial":
                reply += "; refused: " + "; ".join(f"{a}: {m}" for a, (_c, m) in result.refused.items())
            try:
                os.replace(path, os.path.join(self._sent_cur, f"{row.file}{_colon()}{SENT_FLAGS}"))
            except OSError as exc:  # sent all the same: record it, never send it again
                reply += f" (could not move the file to {self.paths.sent}: {exc.strerror})"
        elif result.status == "failed":
            status, sent_at, reply = "failed", "", result.reply
        else:
            status, sent_at, reply = "queued", "", f"deferred: {result.reply}"
        conn.execute(
            "UPDATE letters SET status = ?, sent_at = ?, reply = ?, refused = ?, account = ?, "
            "attempts = ? WHERE id = ?",
            (status, sent_at, reply, json.dumps(refused) if refused else "", account, attempts, row.id),
        )
        return replace(
            row,
            status=status,
            sent_at=sent_at,
            reply=reply,
            refused=refused,
            account=account,
            attempts=attempts,
        )


def _insert(
    letter: Letter, status: str, name: str, message_id: str, account: str, batch: str
) -> tuple[str, tuple[Any, ...]]:
    """The INSERT for one new ledger row."""
    s = letter.signer
    return (
        "INSERT INTO letters (key, campaign, template, language, recipient, recipient_name, "
        "signer, channel, status, subject, rcpt, message_id, queued_at, account, file, batch) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
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
            _now(),
            account,
            name,
            batch,
        ),
    )


def _write_new(path: Path, data: bytes, *, fsync: bool, replace_existing: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace_existing else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutboxError(f"cannot write {path}: {exc.strerror}") from None


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
        queued = box.queue(letters, account=account, resend=resend)
        if account is None or not queued.to_deliver:
            return SendReport(queued, None if account is None else DeliveryReport(queued.batch, account.name))
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
