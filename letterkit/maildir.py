"""The Maildir views of the ledger: file names, writing files, and reconciliation.

``outbox/`` and ``sent/`` are ordinary Maildirs that mail programs can read; the
ledger (:mod:`letterkit.ledger`) is the truth, and :func:`reconcile` brings the
folders and the ledger back into agreement after an interruption (see
:mod:`letterkit.outbox` for the promises this keeps).

The stdlib :class:`mailbox.Maildir` chooses its own file names, and crash safety
needs the name the ledger knew before a letter left; so files are written here
the Maildir way (a fresh file in ``tmp/``, renamed into ``new/`` or ``cur/``).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import OutboxError
from .ledger import now_text, rcpt_text

if TYPE_CHECKING:
    from pathlib import Path

    from .ledger import Ledger

SENT_FLAGS = "2,S"
TMP_MAX_AGE = 36 * 3600  # Maildir convention: stray tmp files older than this are garbage
RECHECK_SENT_SECONDS = 24 * 3600  # reconcile checks the copies of letters sent this recently
ADOPTED = "found in the outbox folder without a ledger entry: check it before it goes"
LEGACY_PREFIX = b"X-Letterkit-"  # letterkit 0.1 put its metadata in headers; read, never written


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

    def outbox_file(self, name: str, where: str = "new") -> Path:
        return self.outbox / where / name

    def sent_file(self, name: str) -> Path:
        return self.sent / "cur" / f"{name}:{SENT_FLAGS}"

    def make_dirs(self) -> None:
        try:
            for box in (self.outbox, self.sent):
                for sub in ("tmp", "new", "cur"):
                    (box / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"cannot create the outbox under {self.root}: {exc.strerror}") from None


def unique_name() -> str:
    """A Maildir file name: time, random part, pid (no host name: it would be stored)."""
    now = time.time()
    return f"{int(now)}.M{int((now % 1) * 1e6):06d}R{uuid.uuid4().hex[:12]}P{os.getpid()}.letterkit"


def write_maildir(box: Path, name: str, data: bytes, where: str) -> None:
    """Write ``data`` into the Maildir ``box`` the Maildir way: a fresh file in ``tmp/``
    (created exclusively, never following a link), renamed into ``new/NAME`` or, for a
    message already read (a sent copy), ``cur/NAME:2,S``."""
    tmp = stage(box, name, data)
    try:
        final = name if where == "new" else f"{name}:{SENT_FLAGS}"
        os.replace(tmp, box / where / final)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def stage(box: Path, name: str, data: bytes) -> str:
    """Write ``data`` to a fresh file in ``box/tmp`` (created exclusively, never following a
    link) and return its path: mail programs do not look in ``tmp/``, so the message is
    not in the Maildir until the file is renamed into ``new/`` or ``cur/``."""
    fd, tmp = tempfile.mkstemp(dir=box / "tmp", prefix=f"{name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def legacy_message(data: bytes) -> tuple[dict[str, str], bytes]:
    """A message as letterkit 0.1 stored it (``X-Letterkit-*`` lines first): those lines
    as a dict and the message without them.  Other messages come back unchanged."""
    from urllib.parse import unquote

    meta: dict[str, str] = {}
    pos = 0
    while data.startswith(LEGACY_PREFIX, pos):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        name, _, value = data[pos + len(LEGACY_PREFIX) : end].partition(b":")
        meta[name.decode("ascii", "replace").lower()] = unquote(value.strip().decode("ascii", "replace"))
        pos = end + 1
    return meta, data[pos:]


def size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def reconcile(paths: Paths, ledger: Ledger, *, adopt: bool = True) -> int:
    """Bring the ledger and the folders into agreement after an interruption.

    Returns how many letters were fixed (see the module docstring).  ``adopt``:
    also take in messages found in ``outbox/new`` without a ledger row; listings
    pass False (a read-only look never queues anything).
    """
    paths.make_dirs()
    fixed = _undo_cur(paths)
    new_dir = paths.outbox / "new"
    on_disk = set(os.listdir(new_dir))
    now = now_text()
    try:
        with ledger.transaction():
            for row_id, name, size in ledger.waiting_files():
                in_outbox = name in on_disk
                on_disk.discard(name)
                fixed += _fix_waiting(paths, ledger, row_id, name, size, in_outbox, now)
            ledger.forget_orphan_messages()
            if adopt:
                for name in sorted(on_disk):
                    fixed += _adopt(paths, ledger, new_dir / name)
            fixed += _fix_sent_copies(paths, ledger)
    except OSError as exc:
        raise OutboxError(f"cannot bring {paths.outbox} up to date: {exc.strerror}") from None
    _clean_tmp(paths)
    return fixed


def _fix_waiting(
    paths: Paths, ledger: Ledger, row_id: int, name: str, stored: int | None, in_outbox: bool, now: str
) -> int:
    """One letter the ledger says is waiting: already sent, message missing, or file damaged."""
    if paths.sent_file(name).exists():  # sent; killed before the ledger knew
        ledger.update(row_id, status="sent", sent_at=now, reply="delivered (recorded after an interruption)")
    elif stored is None and in_outbox:  # queued by letterkit 0.1: its message is the file
        ledger.set_message(row_id, legacy_message(paths.outbox_file(name).read_bytes())[1])
    elif stored is None:
        ledger.update(
            row_id,
            status="failed",
            reply="its message is missing from the outbox and the ledger (deleted?)",
        )
    elif not (in_outbox and paths.outbox_file(name).stat().st_size == stored):
        write_maildir(paths.outbox, name, ledger.message(row_id) or b"", "new")
    else:
        return 0
    return 1


def _fix_sent_copies(paths: Paths, ledger: Ledger) -> int:
    """Rewrite the missing copies of recently sent letters (a power cut can lose them)."""
    import datetime as dt

    from . import clock

    since = clock.now() - dt.timedelta(seconds=RECHECK_SENT_SECONDS)
    when = since.astimezone(dt.UTC).isoformat(timespec="seconds")
    fixed = 0
    for name, row_id in ledger.sent_since(when):
        if not paths.sent_file(name).exists() and (data := ledger.message(row_id)) is not None:
            with suppress(OSError):
                write_maildir(paths.sent, name, data, "cur")
                fixed += 1
    return fixed


def _adopt(paths: Paths, ledger: Ledger, path: Path) -> int:
    """A regular file found in ``outbox/new`` without a ledger row becomes a queued letter.

    Never a link (it could point anywhere), never one the ledger knows.  Its
    envelope is its own To and Cc; letterkit 0.1's ``X-Letterkit-*`` lines give only
    the campaign, template and recipient id, and are dropped from the message.
    """
    import email.policy
    from email.parser import BytesParser

    if path.is_symlink() or not path.is_file() or ledger.knows_file(path.name):
        return 0
    meta, message = legacy_message(path.read_bytes())
    head = BytesParser(policy=email.policy.default).parsebytes(message, headersonly=True)
    rcpt = [a.addr_spec for h in ("To", "Cc") if head[h] for a in head[h].addresses]
    to = head["To"].addresses if head["To"] else ()
    row_id = ledger.next_id()
    ledger.insert(
        [
            {
                "id": row_id,
                "key": meta.get("key") or f"outbox/{path.name}",
                "campaign": meta.get("campaign", ""),
                "template": meta.get("template", ""),
                "recipient": meta.get("recipient", "") or (to[0].addr_spec if to else ""),
                "recipient_name": str(to[0].display_name) if to else "",
                "signer": str(head["From"] or ""),
                "channel": "email",
                "status": "queued",
                "subject": str(head["Subject"] or ""),
                "rcpt": rcpt_text(rcpt),
                "message_id": str(head["Message-ID"] or ""),
                "queued_at": now_text(),
                "file": path.name,
                "batch": "",
            }
        ],
        [(row_id, message)],
    )
    ledger.update(row_id, reply=ADOPTED)
    if message != path.read_bytes():
        write_maildir(paths.outbox, path.name, message, "new")
    return 1


def _undo_cur(paths: Paths) -> int:
    """A mail program that read the outbox moved files to cur/: put them back."""
    moved = 0
    for entry in os.scandir(paths.outbox / "cur"):
        if entry.is_file(follow_symlinks=False):
            os.replace(entry.path, paths.outbox / "new" / entry.name.split(":")[0])
            moved += 1
    return moved


def _clean_tmp(paths: Paths) -> None:
    """Stray files in tmp/: letterkit's own go at once (the lock is held, so no letterkit
    is writing them: a killed one left them); others after 36 hours (the Maildir rule)."""
    limit = time.time() - TMP_MAX_AGE
    for folder in (paths.outbox / "tmp", paths.sent / "tmp"):
        for entry in os.scandir(folder):
            with suppress(OSError):
                if ".letterkit." in entry.name or entry.stat(follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
