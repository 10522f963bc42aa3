"""Compose letters: Jinja2 template + signer + recipient + case -> Letter -> EmailMessage.

Rendering uses Jinja2's sandboxed environment with ``StrictUndefined``: a
misspelt variable is an error naming the template file and line, never an
empty gap in a letter.  Every value that reaches a header is checked for CR,
LF and NUL before anything is queued.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from .campaign import Campaign, TemplateFile
from .config import Signer
from .contacts import Contact, select
from .cosigners import Cosigner
from .errors import ContactError, LetterkitError, TemplateError
from .validation import check_address, check_header_value

if TYPE_CHECKING:
    import jinja2
    import jinja2.sandbox

POLICY = email.policy.default


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
    date: dt.date = field(default_factory=dt.date.today)

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

    @property
    def env(self) -> jinja2.sandbox.SandboxedEnvironment:
        """The sandboxed Jinja2 environment (created, and jinja2 imported, on first use)."""
        if self._env is None:
            import jinja2.sandbox

            self._env = jinja2.sandbox.SandboxedEnvironment(
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
                autoescape=False,
            )
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

    def subject(self, t: TemplateFile) -> str:
        """The subject as far as it depends on the case alone (for listings).

        Falls back to the raw front-matter text when it needs a signer or recipient.
        """
        if not _has_jinja(t.subject):
            return t.subject
        import jinja2

        try:
            rendered = self._compile(t, "subject").render(campaign=self.campaign.for_language(t.language))
        except (jinja2.TemplateError, LetterkitError):
            return t.subject
        return " ".join(rendered.split())

    def render(self, t: TemplateFile, context: dict[str, Any], who: str) -> tuple[str, str]:
        """Render (subject, body); errors name the file, line and recipient."""
        import jinja2

        parts = []
        for part in ("subject", "body"):
            if part == "subject" and not _has_jinja(t.subject):
                parts.append(t.subject)
                continue
            template = self._compile(t, part)
            try:
                parts.append(template.render(context))
            except jinja2.TemplateError as exc:
                line = _template_line(exc, t, part)
                msg = getattr(exc, "message", None) or str(exc)
                raise TemplateError(
                    f"{t.path}:{line}: {msg} (rendering for {who})",
                    hint="check the variable's spelling; templates see signer, recipient, campaign, "
                    "note, cosigners, today, copy, primary, language",
                ) from None
        subject = " ".join(parts[0].split())
        body = parts[1].replace("\r\n", "\n")
        return subject, body


def _has_jinja(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


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
    """Which contacts a letter goes to: primaries and copies."""

    primary: list[Contact]
    copies: list[Contact]  # cc contacts (by e-mail on each letter, or a separate copy by hand)

    @property
    def copy_emails(self) -> list[str]:
        return [c.email for c in self.copies if c.email]

    @property
    def hand_copies(self) -> list[Contact]:
        return [c for c in self.copies if not c.email]


def plan(
    campaign: Campaign,
    template: str,
    to: Sequence[str] = (),
    cc: Sequence[str] | None = None,
) -> LetterPlan:
    """Resolve recipients: ``to`` (else the template's default) and copies."""
    t = campaign.template(template)
    primary = select(campaign.contacts, to or t.to)
    if not primary:
        raise ContactError(
            f"template {template!r} names no recipients",
            hint="pass --to ID or --to group:NAME, or set 'to' in its front matter",
        )
    ids = {c.id for c in primary}
    copies = [c for c in select(campaign.contacts, t.cc if cc is None else cc) if c.id not in ids]
    for c in [*primary, *copies]:
        if not c.channels:
            raise ContactError(
                f"contact {c.id!r} has no e-mail, fax, postal address or web form",
                hint=f"add one in {c.origin or 'recipients.toml'}",
            )
    return LetterPlan(primary, copies)


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
    note = note.replace("\r\n", "\n").strip("\n")
    if "\x00" in note:
        raise TemplateError("the personal note contains a NUL byte")
    cosigners = tuple(cosigners)
    today = today or dt.date.today()
    if language:
        campaign.template_strict(template, language)
    who_plan = plan(campaign, template, to, cc)
    renderer = renderer or Renderer(campaign)
    views: dict[str, dict[str, Any]] = {}
    signer_view = signer.as_dict()
    cosigner_views = [c.__dict__ for c in cosigners]
    primary_names = [c.name for c in who_plan.primary]
    for contact, is_copy in [(c, False) for c in who_plan.primary] + [
        (c, True) for c in who_plan.hand_copies
    ]:
        lang = language or contact.language
        t = campaign.template(template, lang)
        if t.language not in views:
            views[t.language] = campaign.for_language(t.language)
        context = {
            "signer": signer_view,
            "recipient": contact.template_view(),
            "campaign": views[t.language],
            "note": note,
            "cosigners": cosigner_views,
            "today": today,
            "copy": is_copy,
            "primary": primary_names,
            "language": t.language,
        }
        subject, body = renderer.render(t, context, f"contact {contact.id}")
        check_header_value(subject, f"{t.path}: subject (for contact {contact.id})")
        if not subject:
            raise TemplateError(f"{t.path}: the subject renders empty for contact {contact.id}")
        if "\x00" in body:
            raise TemplateError(f"{t.path}: the body contains a NUL byte for contact {contact.id}")
        if contact.email and not is_copy:
            to_addrs: tuple[str, ...] = (contact.email,)
            cc_addrs = tuple(
                dict.fromkeys(a for a in (*contact.cc, *who_plan.copy_emails) if a != contact.email)
            )
        else:
            to_addrs, cc_addrs = (), ()
        yield Letter(
            campaign=campaign.id,
            template=t.name,
            language=t.language,
            contact=contact,
            signer=signer,
            subject=subject,
            body=body,
            to=to_addrs,
            cc=cc_addrs,
            copy=is_copy,
            note=note,
            cosigners=cosigners,
            verbatim=not note,
            date=today,
        )


def compose_all(*args: Any, **kwargs: Any) -> list[Letter]:
    """:func:`compose` into a list (validates every letter before returning)."""
    return list(compose(*args, **kwargs))


def _mailbox(name: str, addr: str) -> Address:
    try:
        local, _, domain = addr.rpartition("@")
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise LetterkitError(f"cannot use address {addr!r}: {exc}") from None


def to_message(
    letter: Letter,
    *,
    from_addr: str | None = None,
    date: dt.datetime | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """The letter as a standards-conforming e-mail (UTF-8, encoded headers, Date, Message-ID).

    ``from_addr`` is the sending account's own address (the signer's name is the
    display name); without it the signer's e-mail is used.  Only e-mail
    letters can become messages.
    """
    if not letter.to:
        raise ContactError(f"contact {letter.contact.id!r} has no e-mail address; export the letter instead")
    sender = (
        check_address(from_addr or letter.signer.email, "From address")
        if (from_addr or letter.signer.email)
        else ""
    )
    msg = EmailMessage(policy=POLICY)
    if sender:
        msg["From"] = _mailbox(letter.signer.name, sender)
        if letter.signer.email and letter.signer.email.lower() != sender.lower():
            msg["Reply-To"] = _mailbox(letter.signer.name, letter.signer.email)
    msg["To"] = [_mailbox(letter.contact.name, a) for a in letter.to]
    if letter.cc:
        msg["Cc"] = [_mailbox("", a) for a in letter.cc]
    msg["Subject"] = letter.subject
    msg["Date"] = email.utils.format_datetime(date or dt.datetime.now().astimezone())
    domain = sender.rpartition("@")[2] if sender else "letterkit.invalid"
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    msg["Content-Language"] = letter.language
    msg.set_content(letter.body, charset="utf-8")
    return msg
