"""Compose letters: Jinja2 template + signer + recipient + case -> Letter -> EmailMessage.

Rendering uses Jinja2's sandboxed environment with ``StrictUndefined``: a
misspelt variable is an error naming the template file and line, never an
empty gap in a letter.  Every value that reaches a header is checked for CR,
LF and NUL before anything is queued.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import clock
from .config import Signer
from .contacts import iter_select, matches, select
from .errors import ContactError, LetterkitError, TemplateError
from .memo import PRIMARY, ReadList, ReadRecorder, memo_values
from .validation import check_header_value, normalise_newlines

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Hashable, Iterable, Iterator, Sequence

    import jinja2
    import jinja2.sandbox

    from .campaign import Campaign, TemplateFile
    from .contacts import Contact
    from .cosigners import Cosigner


@dataclass(frozen=True)
class Letter:
    """One rendered letter to one recipient.

    ``channel`` is ``"email"`` when it goes by e-mail, else ``"hand"``: the
    signer delivers it by fax, post or web form (see ``contact.channels``).
    ``copy`` marks the copy for a cc contact without an e-mail address.
    """

    campaign: str
    template: str
    language: str
    contact: Contact
    signer: Signer
    subject: str
    body: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    copy: bool = False
    note: str = ""
    cosigners: tuple[Cosigner, ...] = ()
    verbatim: bool = True
    date: dt.date = field(default_factory=clock.today)
    in_reply_to: str = ""  # a follow-up: the Message-ID of the letter it follows up (threads it)

    @property
    def channel(self) -> str:
        return "email" if self.to else "hand"

    @property
    def hand_channels(self) -> tuple[str, ...]:
        """The non-e-mail channels that reach this recipient (fax, post, web)."""
        return tuple(c for c in self.contact.channels if c != "email")

    @property
    def key(self) -> str:
        """What the ledger remembers: campaign, template, recipient and signer."""
        who = (self.signer.email or self.signer.name).strip().lower()
        return f"{self.campaign}/{self.template}/{self.contact.id}/{who}"

    def with_body(self, body: str) -> Letter:
        """The same letter with a body the signer edited (no longer verbatim)."""
        return replace(self, body=body, verbatim=self.verbatim and body == self.body)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "campaign": self.campaign,
            "template": self.template,
            "language": self.language,
            "recipient": self.contact.id,
            "recipient_name": self.contact.name,
            "channel": self.channel,
            "hand_channels": list(self.hand_channels) if self.channel == "hand" else [],
            "to": list(self.to),
            "cc": list(self.cc),
            "copy": self.copy,
            "subject": self.subject,
            "body": self.body,
            "verbatim": self.verbatim,
            "cosigners": [c.line() for c in self.cosigners],
        }


class Renderer:
    """Compiles a campaign's templates once and renders letters from them."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._env: jinja2.sandbox.SandboxedEnvironment | None = None
        self._compiled: dict[tuple[str, str], jinja2.Template] = {}
        self._memo: dict[Hashable, tuple[tuple[str, ...], OrderedDict[Hashable, str]]] = {}
        self._generation = 0

    def new_batch(self) -> int:
        """A fresh memo generation: keys from earlier batches can never match again, so
        their results are dropped."""
        self._memo.clear()
        self._generation += 1
        return self._generation

    @property
    def env(self) -> jinja2.sandbox.SandboxedEnvironment:
        """The sandboxed Jinja2 environment (created, and jinja2 imported, on first use)."""
        if self._env is None:
            from .sandbox import environment

            self._env = environment(self.campaign.root / "templates")
            self._env.filters["wordwrap"] = _cached_wordwrap(self._env)
        return self._env

    def _compile(self, t: TemplateFile, part: str) -> jinja2.Template:
        import jinja2

        key = (str(t.path), part)
        if key not in self._compiled:
            source = t.subject if part == "subject" else t.body
            try:
                code = self.env.compile(source, name=t.name, filename=str(t.path))
            except jinja2.TemplateSyntaxError as exc:
                line = (exc.lineno or 1) + (t.body_line - 1 if part == "body" else 0)
                raise TemplateError(f"{t.path}:{line}: {exc.message}") from None
            self._compiled[key] = self.env.template_class.from_code(self.env, code, self.env.globals)
        return self._compiled[key]

    _MEMO_SIZE = 256

    def _no_memo(self, t: TemplateFile) -> bool:
        """Templates using Jinja's ``random`` filter are not pure: never memoise them."""
        return "random" in t.body or "random" in t.subject

    def _memo_render(self, template: jinja2.Template, key: Hashable, context: dict[str, Any]) -> str:
        """Render, or return an earlier result for the same ``key`` and the same values of
        whatever the template read: the recipient fields, and ``primary`` if it looked at it
        (``primary`` grows while the primary letters of a batch are rendered)."""
        recipient = context["recipient"]
        primary = context.get("primary")
        entry = self._memo.get(key)
        if entry is not None:
            fields, outputs = entry
            values = memo_values(recipient, primary, fields)
            if values in outputs:
                outputs.move_to_end(values)
                return outputs[values]
        view = ReadRecorder(recipient)
        tracked = ReadList(primary) if isinstance(primary, list) else None
        seen_primary = primary if tracked is None else tracked
        text = sandbox_render(template, {**context, "recipient": view, "primary": seen_primary})
        read = view.read | ({PRIMARY} if tracked is not None and tracked.seen else set())
        fields = tuple(sorted(read | (set(entry[0]) if entry else set())))
        if entry is None or fields != entry[0]:
            entry = (fields, OrderedDict())
            self._memo[key] = entry
        outputs = entry[1]
        outputs[memo_values(recipient, primary, fields)] = text
        if len(outputs) > self._MEMO_SIZE:
            outputs.popitem(last=False)  # bounded: personalised letters never pile up in memory
        return text

    def subject(self, t: TemplateFile) -> str:
        """The subject as far as it depends on the case alone (for listings).

        Falls back to the raw front-matter text when it needs a signer or recipient.
        """
        if not _has_jinja(t.subject):
            return t.subject
        import jinja2

        try:
            rendered = sandbox_render(
                self._compile(t, "subject"), {"campaign": self.campaign.for_language(t.language)}
            )
        except (jinja2.UndefinedError, LetterkitError):
            return t.subject  # it needs a signer or a recipient
        except jinja2.TemplateError as exc:
            raise _render_error(exc, t, "subject", "the templates list") from None
        except (Exception, RecursionError) as exc:  # the template's own code failed: its error
            raise _render_error(exc, t, "subject", "the templates list") from None
        return " ".join(rendered.split())

    def render(
        self, t: TemplateFile, context: dict[str, Any], who: str, *, memo: Hashable | None = None
    ) -> tuple[str, str]:
        """Render (subject, body); errors name the file, line and recipient.

        With ``memo`` (a key that stands for everything in ``context`` except
        ``recipient`` and ``primary``), results are memoised on the recipient fields the
        template actually read: letters to recipients that agree on those
        fields (say, the same salutation and language) are rendered once.
        """
        import jinja2

        parts = []
        for part in ("subject", "body"):
            if part == "subject" and not _has_jinja(t.subject):
                parts.append(t.subject)
                continue
            template = self._compile(t, part)
            try:
                if memo is None or self._no_memo(t):
                    parts.append(sandbox_render(template, context))
                else:
                    parts.append(self._memo_render(template, (str(t.path), part, memo), context))
            except LetterkitError:
                raise
            except jinja2.TemplateError as exc:
                raise _render_error(exc, t, part, who) from None
            except (Exception, RecursionError) as exc:  # the template's own code failed: its error
                raise _render_error(exc, t, part, who) from None
        subject = " ".join(parts[0].split())
        return subject, normalise_newlines(parts[1])


@functools.cache
def _not_given() -> type:
    """A signer detail not given on the command line: false in ``{% if %}`` and ``select``
    (templates treat it as empty), but an error where the template prints it.  (A class
    made on first use: jinja2 is imported only when a template is rendered.)"""
    import jinja2

    class NotGiven(jinja2.StrictUndefined):
        def __bool__(self) -> bool:  # type: ignore[override]
            return False

        def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
            return iter(())

        def __len__(self) -> int:  # type: ignore[override]
            return 0

    return NotGiven


def signer_view_of(signer: Signer) -> dict[str, Any]:
    """What a template sees as ``signer``: every detail, and for a signer given on the
    command line, the details not given as values that stop the letter if printed."""
    view = signer.as_dict()
    if signer.given is not None:
        for name in Signer.SIGNER_FIELDS:
            if name not in signer.given:
                option = "--address" if name == "address" else f"--{name}"
                view[name] = _not_given()(
                    hint=f"this template prints the signer's {name}, which was not given: add {option}, "
                    "or leave out --name and --email to sign as the stored signer (letterkit signer set)",
                    name=f"signer.{name}",
                )
    return view


def _cached_wordwrap(env: jinja2.Environment) -> Any:
    """Jinja's ``wordwrap`` filter, memoised.

    Letters of one campaign wrap the same paragraphs (facts, demands) again
    and again; textwrap is the main cost of rendering, so each distinct
    paragraph is wrapped once per batch.
    """
    import functools

    import jinja2.filters

    @functools.lru_cache(maxsize=2048)
    def wrap(
        s: str, width: int, break_long_words: bool, wrapstring: str | None, break_on_hyphens: bool
    ) -> str:
        return jinja2.filters.do_wordwrap(env, s, width, break_long_words, wrapstring, break_on_hyphens)

    def wordwrap(
        s: str,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> str:
        return wrap(str(s), width, break_long_words, wrapstring, break_on_hyphens)

    return wordwrap


def _has_jinja(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def sandbox_render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render within the sandbox's limits (jinja2 is imported only when a letter is rendered)."""
    from .sandbox import render

    return render(template, context)


def _render_error(exc: BaseException, t: TemplateFile, part: str, who: str) -> TemplateError:
    """A template's failure as a one-line error naming the file and line."""
    import jinja2

    from .sandbox import RenderLimit

    line = _template_line(exc, t, part)
    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(
            f"{t.path}:{line}: {exc.message} (rendering for {who})",
            hint="check the variable's spelling; templates see signer, recipient, campaign, "
            "note, cosigners, today, copy, primary, language",
        )
    if isinstance(exc, jinja2.TemplateNotFound) and exc.message == exc.name:
        return TemplateError(
            f"{t.path}:{line}: {exc.name!r} is not in the campaign's templates folder (rendering for {who})"
        )
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(f"{t.path}:{line}: {getattr(exc, 'message', None) or exc} (rendering for {who})")
    what = str(exc) if isinstance(exc, RenderLimit) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RecursionError):
        what = "the template calls itself without end (recursion)"
    return TemplateError(
        f"{t.path}:{line}: {what} (rendering for {who})", hint="fix the template at that line"
    )


def _template_line(exc: BaseException, t: TemplateFile, part: str) -> int:
    line = getattr(exc, "lineno", None)
    if line is None:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(t.path):
                line = tb.tb_lineno
            tb = tb.tb_next
    if part == "subject":
        return 1 + 1  # the front matter: subject is near the top; point at the header block
    return (line or 1) + t.body_line - 1


@dataclass
class LetterPlan:
    """Which contacts a letter goes to: primaries (streamed) and copies (a short list)."""

    campaign: Campaign
    selectors: tuple[str, ...]
    copies: list[Contact]  # cc contacts (by e-mail on each letter, or a separate copy by hand)

    def primaries(self) -> Iterator[Contact]:
        """Stream the primary recipients; raises if one has no channel or there are none."""
        count = 0
        for contact in iter_select(self.campaign.iter_contacts(), self.selectors):
            _check_reachable(contact)
            count += 1
            yield contact
        if not count:
            raise ContactError(
                "the template names no recipients",
                hint="pass --to ID or --to group:NAME, or set 'to' in its front matter",
            )

    @property
    def copy_emails(self) -> list[str]:
        return [c.email for c in self.copies if c.email]

    @property
    def hand_copies(self) -> list[Contact]:
        return [c for c in self.copies if not c.email]


def _check_reachable(contact: Contact) -> None:
    if not contact.channels:
        raise ContactError(
            f"contact {contact.id!r} has no e-mail, fax, postal address or web form",
            hint=f"add one in {contact.origin or 'recipients.toml'}",
        )


def plan(
    campaign: Campaign,
    template: str,
    to: Sequence[str] = (),
    cc: Sequence[str] | None = None,
) -> LetterPlan:
    """Resolve recipients: ``to`` (else the template's default) and copies.

    Copies are read now (a contact that is also a primary recipient is not a
    copy); primaries are streamed by :meth:`LetterPlan.primaries`.
    """
    t = campaign.template(template)
    selectors = tuple(to or t.to)
    if not selectors:
        raise ContactError(
            f"template {template!r} names no recipients",
            hint="pass --to ID or --to group:NAME, or set 'to' in its front matter",
        )
    cc_selectors = tuple(sel for sel in (t.cc if cc is None else cc) if sel.strip())  # '' = no copies
    copies = [
        c
        for c in (select(campaign.iter_contacts(), cc_selectors) if cc_selectors else [])
        if not matches(c, selectors)
    ]
    for c in copies:
        _check_reachable(c)
    return LetterPlan(campaign, selectors, copies)


def compose(
    campaign: Campaign,
    template: str,
    signer: Signer,
    *,
    to: Sequence[str] = (),
    cc: Sequence[str] | None = None,
    language: str | None = None,
    note: str = "",
    cosigners: Iterable[Cosigner] = (),
    today: dt.date | None = None,
    renderer: Renderer | None = None,
) -> Iterator[Letter]:
    """Render one letter per primary recipient, then one per copy recipient without e-mail.

    A generator: letters are produced one at a time (a large campaign is never
    held in memory at once).  Raises :class:`LetterkitError` on the first
    invalid letter; call :func:`compose_all` to validate a whole batch.
    """
    signer = signer.validated()
    if language:
        campaign.template_strict(template, language)
    who_plan = plan(campaign, template, to, cc)
    batch = _Batch(
        campaign, template, signer, language, _clean_note(note), tuple(cosigners), today or clock.today(),
        renderer or Renderer(campaign),
    )  # fmt: skip
    for contact in who_plan.primaries():
        if who_plan.hand_copies:
            batch.primary_names.append(contact.name)  # for the copies' "a copy of my letter to ..."
        yield batch.letter(contact, False, who_plan.copy_emails)
    for contact in who_plan.hand_copies:
        yield batch.letter(contact, True, who_plan.copy_emails)


class _Batch:
    """What every letter of one :func:`compose` call shares, and how one letter is made."""

    def __init__(
        self, campaign: Campaign, template: str, signer: Signer, language: str | None, note: str,
        cosigners: tuple[Cosigner, ...], today: dt.date, renderer: Renderer,
    ) -> None:  # fmt: skip
        self.campaign, self.template, self.signer, self.language = campaign, template, signer, language
        self.note, self.cosigners, self.today, self.renderer = note, cosigners, today, renderer
        self.generation = renderer.new_batch()  # signer, note, co-signers... are fixed for this batch
        self.views: dict[str, dict[str, Any]] = {}
        self.signer_view = signer_view_of(signer)
        self.cosigner_views = [c.__dict__ for c in cosigners]
        self.primary_names: list[str] = []

    def letter(self, contact: Contact, is_copy: bool, copy_emails: Sequence[str]) -> Letter:
        t = self.campaign.template(self.template, self.language or contact.language)
        if t.language not in self.views:
            self.views[t.language] = self.campaign.for_language(t.language)
        context = {
            "signer": self.signer_view,
            "recipient": contact.template_view(),
            "campaign": self.views[t.language],
            "note": self.note,
            "cosigners": self.cosigner_views,
            "today": self.today,
            "copy": is_copy,
            "primary": self.primary_names,
            "language": t.language,
        }
        # The memo key stands for everything but the recipient and ``primary`` (which grows
        # while primaries are rendered; the memo tracks whether a template reads it).
        memo = (self.generation, is_copy)
        subject, body = self.renderer.render(t, context, f"contact {contact.id}", memo=memo)
        _check_rendered(t, contact, subject, body)
        to_addrs, cc_addrs = _addresses(contact, is_copy, copy_emails)
        return Letter(
            campaign=self.campaign.id, template=t.name, language=t.language, contact=contact,
            signer=self.signer, subject=subject, body=body, to=to_addrs, cc=cc_addrs, copy=is_copy,
            note=self.note, cosigners=self.cosigners, verbatim=not self.note, date=self.today,
        )  # fmt: skip


MAX_NOTE = 65_536  # characters of personal words in one letter


def _clean_note(note: str) -> str:
    if len(note) > MAX_NOTE:
        raise TemplateError(f"the personal note is longer than {MAX_NOTE:,} characters")
    note = normalise_newlines(note).strip("\n")
    if "\x00" in note:
        raise TemplateError("the personal note contains a NUL byte")
    return note


def _check_rendered(t: TemplateFile, contact: Contact, subject: str, body: str) -> None:
    check_header_value(subject, f"{t.path}: subject (for contact {contact.id})")
    if not subject:
        raise TemplateError(f"{t.path}: the subject renders empty for contact {contact.id}")
    if "\x00" in body:
        raise TemplateError(f"{t.path}: the body contains a NUL byte for contact {contact.id}")


def _addresses(
    contact: Contact, is_copy: bool, copy_emails: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(To, Cc) of one letter: a primary with e-mail gets its address, its own copies and the
    template's e-mail copies; a copy to a recipient without e-mail goes by hand."""
    if not contact.email or is_copy:
        return (), ()
    return (contact.email,), tuple(
        dict.fromkeys(a for a in (*contact.cc, *copy_emails) if a != contact.email)
    )


def compose_all(*args: Any, **kwargs: Any) -> list[Letter]:
    """:func:`compose` into a list (validates every letter before returning)."""
    return list(compose(*args, **kwargs))
