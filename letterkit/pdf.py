"""Print- and fax-ready letters: A4, DIN 5008 form B for a windowed envelope (fpdf2).

A return-address line and the recipient's postal address inside the window (85 x
45 mm at 20/45 mm), the place and date, the signer's e-mail and the fax number on
the right, the subject in bold, the body, a space to sign by hand, fold and hole
marks, page numbers when a letter runs over a page, and a fax header for
recipients reached by fax only.  Text is set in DejaVu Sans (shipped in
``letterkit/fonts``), which covers Latin, Cyrillic, Greek and more; a character it
lacks is an :class:`~letterkit.errors.ExportError` naming the letter, never a blank
box.  fpdf2 is imported only when a PDF is made.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .errors import ExportError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fpdf import FPDF

    from .letters import Letter

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FONT_NAME = "DejaVuSans"  # the fpdf2 family name; fpdf2 keys it as "dejavusans" + style
FONT_LABEL = "DejaVu Sans"

# --- page geometry (mm): A4, DIN 5008 form B ------------------------------------
PAGE_W, PAGE_H = 210.0, 297.0
LEFT, RIGHT, TOP = 25.0, 20.0, 20.0
TEXT_W = PAGE_W - LEFT - RIGHT
BOTTOM = 25.0  # automatic page break this far from the bottom edge
WINDOW_X, WINDOW_Y, WINDOW_W, WINDOW_H = 20.0, 45.0, 85.0, 45.0  # the envelope window
ADDRESS_W = WINDOW_W - 2 * (LEFT - WINDOW_X)  # text keeps 5 mm from the window's sides
RETURN_Y = WINDOW_Y + 2.0  # return-address line, at the top of the window
ADDRESS_Y = WINDOW_Y + 8.0  # recipient's address block
INFO_X, INFO_Y = 125.0, ADDRESS_Y  # place and date, e-mail, fax
SUBJECT_Y = 105.0
FOLD_MARKS = (105.0, 210.0)
HOLE_MARK = 148.5

BODY_PT, BODY_LH = 10.5, 5.2  # font size (pt) and line height (mm) of the body
PARA_GAP = 3.2  # extra space between paragraphs
SIGN_GAP = 12.0  # room for a handwritten signature
KEEP_TOGETHER = 50.0  # paragraphs up to this height are not split over two pages
SOURCE_WRAP = 72  # templates wrap their text at this width; see _reflow()

_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip
_RU_MONTHS = (
    "января", "февраля", "марта", "апреля", "мая", "июня", "июля",
    "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "email": "E-mail: {email}",
        "fax": "By fax: {fax}",
        "fax_address": "Fax: {fax}",
        "page": "Page {page}/{pages}",
        "fax_header": "FAX to {fax} — {pages}",
        "pages_1": "1 page",
        "pages_n": "{n} pages",
    },
    "ru": {
        "email": "Эл. почта: {email}",
        "fax": "По факсу: {fax}",
        "fax_address": "Факс: {fax}",
        "page": "Стр. {page}/{pages}",
        "fax_header": "ФАКС на номер {fax} — {pages}",
        "pages_1": "страниц: 1",
        "pages_n": "страниц: {n}",
    },
}

_ITEM_RE = re.compile(r"^(?P<lead>[ ]*)(?P<marker>(?:[-*•–—]|\d{1,3}[.)]))[ ]+(?P<text>\S.*)$")
# Format characters (zero-width spaces, BOM, direction marks) are dropped before
# printing; the soft hyphen stays (fpdf2 uses it as a hyphenation point).
_KEEP_FORMAT = {"\u00ad"}


# --- PDF ------------------------------------------------------------------------------


def _labels(language: str) -> dict[str, str]:
    return _LABELS.get(language.split("-")[0], _LABELS["en"])


def _clean(text: str) -> str:
    """Text as it can be printed: tabs as spaces, no control or zero-width characters."""
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    return "".join(
        ch for ch in text if ch == "\n" or ch in _KEEP_FORMAT or unicodedata.category(ch) not in ("Cc", "Cf")
    )


def format_date(date: dt.date, language: str) -> str:
    """A letter's date: '26 November 2026', '26 ноября 2026 г.', else ISO 8601."""
    lang = language.split("-")[0]
    if lang == "en":
        return f"{date.day} {_EN_MONTHS[date.month - 1]} {date.year}"
    if lang == "ru":
        return f"{date.day} {_RU_MONTHS[date.month - 1]} {date.year} г."
    return date.isoformat()


@dataclass
class _Line:
    """One logical line of the body: a paragraph, a list item or a short line."""

    text: str
    marker: str = ""  # a list item's "-" or "1."
    lead: int = 0  # leading spaces, in characters
    indent: int = 0  # where a list item's text starts (its continuation lines' indent)
    width: int = 0  # length of the last physical line that went into it


def _split_blocks(body: str) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for raw in body.split("\n"):
        if raw.strip():
            blocks[-1].append(raw.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _reflow(lines: Sequence[str]) -> list[_Line]:
    """Undo a template's hard wrapping so the PDF can fill its own, wider lines.

    Templates wrap paragraphs at 72 columns (Jinja's ``wordwrap``) and list
    items with a hanging indent.  A line joins the one before it only where the
    break must have been made by wrapping: a list item's continuation (indented
    to its text), or a line whose first word would not have fitted on the line
    before within 72 columns.  Every other break (a signature, an address) is
    kept.
    """
    out: list[_Line] = []
    for line in lines:
        stripped = line.lstrip(" ")
        lead = len(line) - len(stripped)
        item = _ITEM_RE.match(line)
        prev = out[-1] if out else None
        first_word = stripped.split(" ", 1)[0]
        if item:
            indent = len(line) - len(item["text"])
            out.append(_Line(item["text"], item["marker"], len(item["lead"]), indent, len(line)))
        elif prev is not None and (
            (prev.marker and lead and lead == prev.indent)  # a list item's continuation
            or (  # a paragraph's line that the template wrapped
                not prev.marker and lead == prev.lead and prev.width + 1 + len(first_word) > SOURCE_WRAP
            )
        ):
            prev.text += " " + stripped
            prev.width = len(line)
        else:
            out.append(_Line(stripped, "", lead, lead, len(line)))
    return out


def _date_line(letter: Letter, blocks: list[list[str]]) -> str | None:
    """The template's own date line, if the body starts with one (it moves to the info block)."""
    if not blocks or len(blocks[0]) != 1:
        return None
    line = blocks[0][0].strip()
    d = letter.date
    if len(line) <= 40 and str(d.year) in line and re.search(rf"(?<!\d)0?{d.day}(?!\d)", line):
        return line
    return None


@dataclass
class _Layout:
    """What goes on a letter's pages, worked out before anything is drawn."""

    letter: Letter
    date: str
    blocks: list[list[_Line]]
    sign_at: tuple[int, int] | None  # (block, line) of the signer's name after the closing
    fax_only: bool
    labels: dict[str, str]

    @classmethod
    def of(cls, letter: Letter) -> _Layout:
        raw_blocks = _split_blocks(_clean(letter.body))
        date = _date_line(letter, raw_blocks)
        if date is not None:
            raw_blocks = raw_blocks[1:]
        else:
            date = format_date(letter.date, letter.language)
        city = _clean(letter.signer.city).strip()
        if city:
            date = f"{city}, {date}"
        blocks = [_reflow(b) for b in raw_blocks]
        name = _clean(letter.signer.name).strip()
        sign_at = None
        for bi in range(len(blocks) - 1, -1, -1):
            hits = [li for li, ln in enumerate(blocks[bi]) if li > 0 and ln.text.strip() == name]
            if hits:
                sign_at = (bi, hits[-1])
                break
        contact = letter.contact
        return cls(
            letter=letter,
            date=date,
            blocks=blocks,
            sign_at=sign_at,
            fax_only=bool(contact.fax) and not contact.address and not letter.to,
            labels=_labels(letter.language),
        )

    def sender_lines(self) -> list[str]:
        s = self.letter.signer
        address = [_clean(a).strip() for a in s.address if a.strip()]
        extra = [
            v
            for v in (_clean(s.city).strip(), _clean(s.country).strip())
            if v and not any(v.lower() in a.lower() for a in address)
        ]
        lines = [ln for ln in (_clean(s.name).strip(), _clean(s.organisation).strip()) if ln]
        if len(lines) + len(address) + len(extra) > 6:
            address = [", ".join(address)] if address else []
        return lines + address + extra

    def return_line(self) -> str:
        return " · ".join(self.sender_lines())

    def recipient_lines(self) -> list[str]:
        c = self.letter.contact
        lines = [_clean(c.name).strip(), *(_clean(a).strip() for a in c.address)]
        if not c.address and c.fax and not self.fax_only:  # a fax-only letter has a fax header
            lines.append(self.labels["fax_address"].format(fax=c.fax))
        return [ln for ln in lines if ln]

    def info_lines(self) -> list[str]:
        lines = [self.date, ""]
        if self.letter.signer.email:
            lines.append(self.labels["email"].format(email=self.letter.signer.email))
        if self.letter.contact.fax:
            lines.append(self.labels["fax"].format(fax=self.letter.contact.fax))
        return lines if len(lines) > 2 else lines[:1]

    def fax_header(self, pages: int) -> str:
        count = self.labels["pages_1"] if pages == 1 else self.labels["pages_n"].format(n=pages)
        return self.labels["fax_header"].format(fax=self.letter.contact.fax, pages=count)

    def texts(self) -> tuple[str, str]:
        """(regular, bold) text printed on the letter, for the glyph check."""
        bold = "\n".join([_clean(self.letter.subject), self.fax_header(2), *self.sender_lines()[:1]])
        regular = "\n".join(
            [
                self.return_line(),
                *self.sender_lines(),
                *self.recipient_lines(),
                *self.info_lines(),
                self.labels["page"].format(page=1, pages=2),
                *(f"{ln.marker} {ln.text}" for b in self.blocks for ln in b),
            ]
        )
        return regular, bold


class _Renderer:
    """Draws letters on an fpdf2 document.

    Page numbers ("Page 1/2") and a fax header's page count need each letter's
    length: a first pass (``page_counts=None``) counts pages, and when a letter
    runs over one page a second pass draws with the counts.  A letter of one
    page comes out the same either way.
    """

    def __init__(self, page_counts: Sequence[int] | None = None) -> None:
        from fpdf import FPDF

        self.counts = page_counts
        self.starts: list[int] = []  # first page of each letter drawn so far
        renderer = self

        class _Doc(FPDF):
            def footer(self) -> None:
                renderer._footer()

        pdf = _Doc(orientation="portrait", unit="mm", format="A4")
        for style, name in FONT_FILES.items():
            pdf.add_font(FONT_NAME, style, str(FONT_DIR / name))
        pdf.set_margins(LEFT, TOP, RIGHT)
        pdf.set_auto_page_break(True, margin=BOTTOM)
        pdf.set_creator("letterkit")
        pdf.set_display_mode(zoom="fullwidth", layout="continuous")
        self.pdf: FPDF = pdf
        self.layouts: list[_Layout] = []

    # -- glyphs
    def check_glyphs(self, layout: _Layout) -> None:
        regular, bold = layout.texts()
        missing: dict[str, None] = {}
        for text, style in ((regular, ""), (bold, "B")):
            font = self.pdf.fonts[f"{FONT_NAME.lower()}{style}"]
            cmap = getattr(font, "cmap", {})  # a TTFFont's: code point -> glyph name
            for ch in text:
                if ch != "\n" and ch not in _KEEP_FORMAT and ord(ch) not in cmap:
                    missing[ch] = None
        if missing:
            shown = ", ".join(f"'{ch}' (U+{ord(ch):04X})" for ch in list(missing)[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            raise ExportError(
                f"the letter to {layout.letter.contact.id} contains characters the bundled font "
                f"({FONT_LABEL}) cannot print: {shown}{more}",
                hint="export that letter with --format txt or eml, or remove those characters",
            )

    # -- page furniture
    def _font(self, size: float, style: str = "") -> None:
        self.pdf.set_font(FONT_NAME, style, size)

    def _footer(self) -> None:
        if self.counts is None or not self.starts:
            return
        index = len(self.starts) - 1
        pages = self.counts[index]
        if pages < 2:
            return
        pdf = self.pdf
        page = pdf.page - self.starts[index] + 1
        layout = self.layouts[index]
        pdf.set_y(PAGE_H - 15)
        self._font(8)
        pdf.set_text_color(80)
        pdf.cell(TEXT_W, 4, layout.labels["page"].format(page=page, pages=pages), align="R")
        pdf.set_text_color(0)

    def _marks(self) -> None:
        pdf = self.pdf
        pdf.set_draw_color(120)
        pdf.set_line_width(0.2)
        for y in FOLD_MARKS:
            pdf.line(4, y, 9, y)
        pdf.line(4, HOLE_MARK, 11, HOLE_MARK)
        pdf.set_draw_color(0)

    def _first_page(self, layout: _Layout, pages: int | None) -> None:
        pdf = self.pdf
        self._marks()
        y = 15.0
        if layout.fax_only:  # (the measuring pass does not know the page count yet)
            self._font(11, "B")
            pdf.set_xy(LEFT, 9)
            pdf.cell(TEXT_W, 5, layout.fax_header(pages or 1), align="L")
            pdf.set_line_width(0.3)
            pdf.line(LEFT, 15.5, PAGE_W - RIGHT, 15.5)
            y = 19.0
        # The sender, top right.
        for i, line in enumerate(layout.sender_lines()):
            self._font(9.5 if i == 0 else 9, "B" if i == 0 else "")
            pdf.set_xy(LEFT, y)
            pdf.cell(TEXT_W, 4.2, line, align="R")
            y += 4.2
        # The return-address line, small, at the top of the envelope window.
        text = layout.return_line()
        size = 7.0
        self._font(size)
        while size > 5.5 and pdf.get_string_width(text) > ADDRESS_W:
            size -= 0.5
            self._font(size)
        while len(text) > 1 and pdf.get_string_width(text) > ADDRESS_W:
            text = text[:-2].rstrip() + "…"
        pdf.set_xy(LEFT, RETURN_Y)
        pdf.cell(ADDRESS_W, 3.2, text)
        pdf.set_draw_color(120)
        pdf.set_line_width(0.1)
        pdf.line(LEFT, RETURN_Y + 3.6, LEFT + ADDRESS_W, RETURN_Y + 3.6)
        pdf.set_draw_color(0)
        # The recipient's address, inside the window.
        from fpdf.enums import XPos, YPos

        self._font(10)
        pdf.set_xy(LEFT, ADDRESS_Y)
        for line in layout.recipient_lines():
            pdf.set_x(LEFT)
            pdf.multi_cell(ADDRESS_W, 4.6, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        bottom = pdf.get_y()
        # Place and date, the signer's e-mail, the fax number: on the right.
        self._font(9)
        pdf.set_xy(INFO_X, INFO_Y)
        for line in layout.info_lines():
            pdf.set_x(INFO_X)
            pdf.multi_cell(PAGE_W - RIGHT - INFO_X, 4.6, line, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
        bottom = max(bottom, pdf.get_y())
        # The subject.
        pdf.set_xy(LEFT, max(SUBJECT_Y, bottom + 6))
        self._font(BODY_PT, "B")
        pdf.multi_cell(
            TEXT_W, BODY_LH, _clean(layout.letter.subject), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.ln(6)

    # -- the body
    def _columns(self, line: _Line) -> tuple[float, float, float]:
        """(marker x, text x, text width) of a line; a list item's text hangs after its marker."""
        pdf = self.pdf
        marker_x = min(LEFT + pdf.get_string_width(" ") * line.lead, LEFT + TEXT_W / 3)
        x = marker_x
        if line.marker:
            x += max(pdf.get_string_width(line.marker) + 2.0, 6.0)
        return marker_x, x, LEFT + TEXT_W - x

    def _height(self, line: _Line) -> float:
        from fpdf.enums import MethodReturnValue

        _, _, w = self._columns(line)
        height = self.pdf.multi_cell(
            w, BODY_LH, line.text, align="L", dry_run=True, output=MethodReturnValue.HEIGHT
        )
        return float(cast("float", height))

    def _body(self, layout: _Layout) -> None:
        from fpdf.enums import XPos, YPos

        pdf = self.pdf
        self._font(BODY_PT)
        for bi, block in enumerate(layout.blocks):
            total = sum(self._height(ln) for ln in block)
            if layout.sign_at is not None and layout.sign_at[0] == bi:
                total += SIGN_GAP
            if block[-1].text.endswith(":") and bi + 1 < len(layout.blocks):
                # A line introducing a list stays with the list's first item.
                total += PARA_GAP + self._height(layout.blocks[bi + 1][0])
            if bi and total <= KEEP_TOGETHER and pdf.will_page_break(total + PARA_GAP):
                pdf.add_page()
            elif bi:
                pdf.ln(PARA_GAP)
            for li, line in enumerate(block):
                if layout.sign_at == (bi, li):
                    if pdf.will_page_break(SIGN_GAP + BODY_LH):
                        pdf.add_page()
                    else:
                        pdf.ln(SIGN_GAP)
                marker_x, x, w = self._columns(line)
                if line.marker:
                    if pdf.will_page_break(BODY_LH):
                        pdf.add_page()
                    pdf.set_x(marker_x)
                    pdf.cell(x - marker_x, BODY_LH, line.marker)
                pdf.set_x(x)
                pdf.multi_cell(w, BODY_LH, line.text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def draw(self, letter: Letter) -> None:
        """Draw one letter, starting on a new page."""
        layout = _Layout.of(letter)
        self.check_glyphs(layout)
        index = len(self.starts)
        self.pdf.add_page()
        self.layouts.append(layout)
        self.starts.append(self.pdf.page)
        self._first_page(layout, self.counts[index] if self.counts is not None else None)
        self._body(layout)

    def pages_of_each(self) -> list[int]:
        ends = [*self.starts[1:], self.pdf.page + 1]
        return [end - start for start, end in zip(self.starts, ends, strict=True)]


def render_pdf(letters: Sequence[Letter]) -> bytes:
    """One PDF holding ``letters``, each starting on a new A4 page, ready to print or fax.

    Deterministic: the same letters give the same bytes (the creation date is
    the letter's date).  Raises :class:`ExportError` for a character the
    bundled font cannot print.
    """
    letters = list(letters)
    if not letters:
        raise ExportError("there are no letters to put in a PDF")
    final = _Renderer()
    for letter in letters:
        final.draw(letter)
    counts = final.pages_of_each()
    if any(n > 1 for n in counts):  # draw again, now with "Page 1/2" and the fax header's count
        final = _Renderer(counts)
        for letter in letters:
            final.draw(letter)
    pdf = final.pdf
    first = letters[0]
    when = dt.datetime.combine(first.date, dt.time(0, 0), tzinfo=dt.UTC)
    pdf.set_creation_date(when)
    pdf.set_author(first.signer.name)
    pdf.set_lang(first.language)
    if len(letters) == 1:
        pdf.set_title(first.subject)
        pdf.set_subject(first.contact.name)
    else:
        pdf.set_title(f"{first.subject} ({len(letters)} letters)")
        pdf.set_subject("; ".join(dict.fromkeys(x.contact.name for x in letters)))
    data = bytes(pdf.output())
    for font in pdf.fonts.values():
        lost = getattr(font, "missing_glyphs", None)
        if lost:
            chars = ", ".join(f"U+{c:04X}" for c in lost[:8])
            raise ExportError(f"the bundled font ({FONT_LABEL}) cannot print {chars}")
    return data
