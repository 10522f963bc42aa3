"""Export letters for every channel: print/fax-ready PDF, .eml/.mbox, and text for web forms.

Some recipients have no e-mail address (the OSCE Secretariat has a postal
address, a fax number and web forms only), and some campaigns ask for paper
letters.  This module turns composed :class:`~letterkit.letters.Letter` objects
into files a person can print, fax, open in a mail client or paste into a web
form:

* ``pdf``: one A4 letter per recipient, laid out after DIN 5008 form B for a
  windowed C5/C6/DL envelope: a return-address line and the recipient's postal
  address inside the window (85 x 45 mm at 20/45 mm), the place and date, the
  signer's e-mail and the fax number on the right, the subject in bold, the
  body, a space to sign by hand, fold and hole marks, page numbers when a
  letter runs over a page, and a fax header for recipients reached by fax
  only.  ``combined`` puts every letter in one PDF, each on its own pages.
  Text is set in DejaVu Sans (shipped in ``letterkit/fonts``), which covers
  Latin, Cyrillic, Greek and more; a character it lacks is an
  :class:`~letterkit.errors.ExportError` naming the letter, never a blank box.
* ``eml``: one RFC 5322 message per e-mail letter (CRLF line ends, UTF-8,
  encoded headers, ``X-Unsent: 1`` so that Outlook opens it ready to send).
* ``mbox``: every e-mail letter in one mailbox file.
* ``txt``: ``Subject: ...``, a blank line, the body: what a person pastes into
  a web form.

Letters without an e-mail address cannot become messages: ``eml`` and
``mbox`` skip them (see :attr:`ExportPlan.skipped`) and the CLI names them and
points to ``pdf``/``txt``.  Nothing is written until every letter has been
rendered and no target exists (unless ``force``); each file is written
atomically.  fpdf2 is imported only when a PDF is made.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import ConfigError, ExportError
from .message import encode_message, to_message
from .pdf import format_date, render_pdf
from .validation import check_address

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .letters import Letter

FORMATS = ("pdf", "eml", "mbox", "txt")
# --- names ----------------------------------------------------------------------


def slugify(text: str, default: str = "letter") -> str:
    """An ASCII, lower-case, file-name-safe form of ``text`` (a-z, 0-9, '-', '_')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")
    return slug[:80].strip("-_") or default


def file_stem(letter: Letter) -> str:
    """``<template>-<contact-id>[-copy].<lang>``: says whom the letter is for, ASCII only.

    >>> file_stem(letter)  # doctest: +SKIP
    'protest-osce-secretariat-copy.en'
    """
    who = slugify(letter.contact.id, "recipient") + ("-copy" if letter.copy else "")
    return f"{slugify(letter.template)}-{who}.{slugify(letter.language, 'xx')}"


def _group_name(prefix: str, letters: Sequence[Letter], ext: str) -> str:
    """The file name for many letters in one file: ``[prefix-]<template>[.<lang>].<ext>``."""
    templates = {slugify(x.template) for x in letters}
    languages = {slugify(x.language, "xx") for x in letters}
    name = "-".join(p for p in (prefix, templates.pop() if len(templates) == 1 else "") if p) or "letters"
    if len(languages) == 1:
        name += f".{languages.pop()}"
    return f"{name}.{ext}"


# --- plain text -------------------------------------------------------------------


def letter_text(letter: Letter) -> str:
    """The letter as text to paste into a web form: ``Subject: ...``, a blank line, the body."""
    body = letter.body.replace("\r\n", "\n").strip("\n")
    return f"Subject: {letter.subject}\n\n{body}\n"


# --- e-mail -----------------------------------------------------------------------


def _check_sender(letters: Sequence[Letter], fmt: str) -> None:
    for letter in letters:
        if not letter.signer.email:
            raise ExportError(
                f"an .{fmt} message needs a From address, and the signer has no e-mail address",
                hint="pass --email you@example.org, or set it once: "
                "letterkit signer set --email you@example.org",
            )


def eml_bytes(letter: Letter, *, linesep: str = "\r\n", unsent: bool = True) -> bytes:
    """One e-mail letter as an RFC 5322 message file (From is the signer's own address).

    The same :class:`~email.message.EmailMessage` the outbox sends
    (:func:`letterkit.message.to_message`), written with ``linesep`` line ends
    (CRLF for ``.eml``, LF inside an mbox) and ``X-Unsent: 1`` unless ``unsent``
    is false.
    """
    msg = to_message(letter, from_addr=letter.signer.email or None)
    if unsent:
        msg["X-Unsent"] = "1"  # Outlook opens the file as a draft, ready to send
    return encode_message(msg, linesep=linesep)


def mbox_bytes(letters: Sequence[Letter]) -> bytes:
    """Every letter as one message in a Unix mbox (the format :mod:`mailbox` reads)."""
    import mailbox
    import tempfile

    with tempfile.TemporaryDirectory(prefix="letterkit-") as tmp:
        path = Path(tmp) / "letters.mbox"
        box = mailbox.mbox(path, create=True)
        try:
            for letter in letters:
                msg = mailbox.mboxMessage(eml_bytes(letter, linesep="\n", unsent=False))
                # the envelope sender goes into the "From " line: the checked, ASCII address
                sender = check_address(letter.signer.email, "signer e-mail") if letter.signer.email else ""
                msg.set_from(sender or "MAILER-DAEMON", clock.now().astimezone(dt.UTC).timetuple())
                box.add(msg)
            box.flush()
        finally:
            box.close()
        return path.read_bytes()


# --- planning and writing ------------------------------------------------------------


@dataclass
class ExportFile:
    """One file to write and the letters in it."""

    path: Path
    letters: list[Letter]
    kind: str  # pdf, eml, mbox or txt


@dataclass
class ExportPlan:
    """Which files an export writes, and which letters it leaves out (and why)."""

    fmt: str
    out_dir: Path
    files: list[ExportFile] = field(default_factory=list)
    skipped: list[Letter] = field(default_factory=list)

    def existing(self) -> list[Path]:
        """The targets that exist already."""
        return [f.path for f in self.files if f.path.exists() or f.path.is_symlink()]

    def check(self, *, force: bool = False) -> None:
        """Raise :class:`ExportError` if the output folder is unusable or a target exists."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ExportError(f"{self.out_dir} is not a folder", hint="pass a folder to --out")
        for f in self.files:
            if f.path.is_dir():
                raise ExportError(f"{f.path} is a folder; cannot write a letter there")
        clashes = self.existing()
        if clashes and not force:
            others = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
            raise ExportError(
                f"{clashes[0]} exists already{others}; nothing was written",
                hint="pass --force to overwrite, or choose another --out folder",
            )

    def render(
        self, on_file: Callable[[int, int, ExportFile], None] | None = None
    ) -> list[tuple[Path, bytes]]:
        """Every file's content, rendered in memory (this is where letters are validated);
        ``on_file(done, total, file)`` after each one (a progress display)."""
        contents = []
        for n, f in enumerate(self.files, 1):
            contents.append((f.path, _content(f)))
            if on_file is not None:
                on_file(n, len(self.files), f)
        return contents

    def write(
        self, *, force: bool = False, on_file: Callable[[int, int, ExportFile], None] | None = None
    ) -> list[Path]:
        """Check, render everything, then write every file atomically; return the paths."""
        self.check(force=force)
        contents = self.render(on_file)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create {self.out_dir}: {exc.strerror}") from None
        for path, data in contents:
            _write(path, data)
        return [path for path, _ in contents]

    def as_dicts(self) -> list[dict[str, Any]]:
        """One entry per letter: recipient, name, language, copy, path."""
        return [
            {
                "recipient": letter.contact.id,
                "name": letter.contact.name,
                "language": letter.language,
                "copy": letter.copy,
                "channel": letter.channel,
                "path": str(f.path),
            }
            for f in self.files
            for letter in f.letters
        ]


def _content(f: ExportFile) -> bytes:
    if f.kind == "pdf":
        return render_pdf(f.letters)
    if f.kind == "txt":
        return letter_text(f.letters[0]).encode("utf-8")
    if f.kind == "eml":
        return eml_bytes(f.letters[0])
    if f.kind == "mbox":
        return mbox_bytes(f.letters)
    raise ExportError(f"unknown export format {f.kind!r}", hint=f"use one of: {', '.join(FORMATS)}")


def _write(path: Path, data: bytes) -> None:
    from .fileutil import atomic_write

    try:
        atomic_write(path, data, mode=0o644)
    except ConfigError as exc:
        raise ExportError(exc.message) from None


def plan_export(letters: Iterable[Letter], fmt: str, out_dir: Path, *, combined: bool = False) -> ExportPlan:
    """Work out the files an export writes (nothing is rendered or written yet).

    ``eml`` and ``mbox`` take only e-mail letters; the others are in
    ``skipped``.  Raises :class:`ExportError` for an unknown format,
    ``combined`` with a format other than ``pdf``, no letters at all, or
    an e-mail format without a signer's e-mail address.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if combined and fmt != "pdf":
        raise ExportError("--combined makes one PDF of all letters; use it with --format pdf")
    letters = list(letters)
    if not letters:
        raise ExportError("there are no letters to export")
    out_dir = Path(out_dir)
    plan = ExportPlan(fmt, out_dir)
    chosen = letters
    if fmt in ("eml", "mbox"):
        chosen = [x for x in letters if x.to]
        plan.skipped = [x for x in letters if not x.to]
        if not chosen:
            who = ", ".join(x.contact.id for x in letters)
            raise ExportError(
                f"none of the letters can go by e-mail ({who}: no e-mail address)",
                hint="export them with --format pdf (post, fax) or --format txt (web forms)",
            )
        _check_sender(chosen, fmt)
    if fmt == "mbox" or combined:
        prefix = "letters" if combined else ""
        plan.files.append(ExportFile(out_dir / _group_name(prefix, chosen, fmt), chosen, fmt))
        return plan
    taken: set[str] = set()
    for letter in chosen:
        stem = file_stem(letter)
        name, n = f"{stem}.{fmt}", 2
        while name in taken:
            name, n = f"{stem}-{n}.{fmt}", n + 1
        taken.add(name)
        plan.files.append(ExportFile(out_dir / name, [letter], fmt))
    return plan


def export_letters(
    letters: Iterable[Letter],
    fmt: str,
    out_dir: Path,
    *,
    force: bool = False,
    combined: bool = False,
) -> list[Path]:
    """Write letters as ``pdf``, ``eml``, ``mbox`` or ``txt`` files in ``out_dir``; return the paths.

    Every letter is rendered before anything is written; an existing target is
    an :class:`ExportError` unless ``force``.  For ``eml``/``mbox``, letters
    without an e-mail address are left out (use :func:`plan_export` to learn
    which).
    """
    return plan_export(letters, fmt, out_dir, combined=combined).write(force=force)


def prepare_by_hand(letter: Letter, directory: Path, *, prefix: str = "") -> dict[str, Path]:
    """Write ``<prefix><stem>.pdf`` (to print or fax) and ``<prefix><stem>.txt`` (for a web
    form) for one letter.

    Used by ``send`` for recipients without e-mail, with the letter's ledger id and
    signer as ``prefix``.  Never overwrites a file: an existing one is an
    :class:`ExportError`.  Returns ``{"pdf": path, "txt": path}``.
    """
    directory = Path(directory)
    stem = prefix + file_stem(letter)
    pdf_path, txt_path = directory / f"{stem}.pdf", directory / f"{stem}.txt"
    for path in (pdf_path, txt_path):
        if os.path.lexists(path):
            raise ExportError(f"{path} exists already; letterkit never overwrites a prepared letter")
    pdf = render_pdf([letter])
    text = letter_text(letter).encode("utf-8")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {directory}: {exc.strerror}") from None
    _write(pdf_path, pdf)
    _write(txt_path, text)
    return {"pdf": pdf_path, "txt": txt_path}


__all__ = [
    "FORMATS",
    "ExportFile",
    "ExportPlan",
    "eml_bytes",
    "export_letters",
    "file_stem",
    "format_date",
    "letter_text",
    "mbox_bytes",
    "plan_export",
    "prepare_by_hand",
    "render_pdf",
    "slugify",
]
