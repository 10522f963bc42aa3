"""Writing a file so that a reader sees the old content or the new, never half, never elsewhere.

:func:`atomic_write` is the one way letterkit replaces a file it owns (config.toml,
contacts.toml, exported letters).  The temporary file is made by
:func:`tempfile.mkstemp` in the target's folder: a random name opened with
``O_CREAT | O_EXCL``, so a symlink planted under a predictable name in a shared
folder can never redirect the write (issue 12).  The data is fsynced before
``os.replace`` puts it in place, and the folder after, so a crash leaves either
file whole.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .errors import LetterkitError


def _mode_for(path: Path, default: int) -> int:
    """The permission bits the new file gets: those of the file it replaces, else ``default``.

    A config.toml made 0600 stays 0600; one the user opened up to 0644 stays so.  A
    symlink or anything else that is not a regular file is replaced, not followed.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return default
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else default


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, *, error: type[LetterkitError] = ConfigError
) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename).

    ``mode`` applies to a new file; an existing one keeps its permissions.  A folder
    that cannot be written is an ``error`` (a :class:`LetterkitError`) naming the
    file, never a traceback; nothing is left behind.
    """
    import tempfile

    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        wanted = _mode_for(path, mode)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), wanted)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; a file system that cannot sync a folder is no error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False if another has it."""
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


def unlock(fd: int) -> None:
    """Release :func:`try_lock`."""
    try:
        import fcntl
    except ImportError:
        import msvcrt

        with suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def read_text_limited(path: str | os.PathLike[str], limit: int, what: str, *, encoding: str = "utf-8") -> str:
    """A text file of at most ``limit`` characters (``/dev/zero`` or a huge file is an error,
    read no further than the limit); an unreadable or non-UTF-8 file is an InvalidValue."""
    from .errors import InvalidValue

    try:
        with open(path, encoding=encoding, newline="") as fh:
            text = fh.read(limit + 1)
    except FileNotFoundError:
        raise InvalidValue(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValue(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) > limit:
        raise InvalidValue(f"{what} {path} is longer than {limit:,} characters", hint="is it the right file?")
    return text


def toml_line(text: str, table: str, key: str) -> int | None:
    """The line (1-based) where ``key`` is set in ``[table]`` ("" for the top level) of a TOML
    text, or None: for error messages that point at the line (tomllib gives no positions)."""
    import re

    current = ""
    header = re.compile(r"\s*\[{1,2}\s*([^\]]+?)\s*\]{1,2}\s*(?:#.*)?")
    assignment = re.compile(rf"\s*(?:\"{re.escape(key)}\"|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        if found := header.fullmatch(line):
            current = found.group(1).replace('"', "").replace(" ", "")
        elif current == table and assignment.match(line):
            return number
    if table:  # a key given as a dotted table value, or the table itself: point at its header
        for number, line in enumerate(text.splitlines(), 1):
            if (found := header.fullmatch(line)) and found.group(1).replace(" ", "") == table:
                return number
    return None


def tls_context(ca_file: str, account: str, error: type[LetterkitError]) -> Any:
    """A TLS context that verifies the server: the system's CAs, or ``ca_file`` (an
    account's own CA); the one rule for SMTP and IMAP.  A CA file that cannot be loaded
    is ``error``, naming the account."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise error(
            f"account {account!r}: cannot load CA file {ca_file}: {getattr(exc, 'strerror', None) or exc}",
            hint="pass a PEM file with the CA certificate to --ca-file",
        ) from None
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
