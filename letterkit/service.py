"""The use cases: what ``letterkit send``, ``outbox flush`` and ``account add`` do, for scripts too.

Every rule a script must obey as much as the command line lives here, not in
the CLI: a campaign that asks for personal words, letters signed with
placeholder details, the account's defaults and presets, the rate.  The CLI
parses options, calls one of these, and renders the result; a script calls the
same functions and gets the same rules::

    job = letterkit.service.SendJob.create(config, campaign, "protest", signer, account="main")
    with letterkit.Outbox() as box:
        report = job.run(box, job.letters())

A :class:`SendJob` holds what was decided before the first letter is composed
(account, pace, placeholder check, warnings); :meth:`SendJob.plan` is the dry
run, :meth:`SendJob.run` queues durably and delivers.  :func:`flush` delivers
what waits in the outbox; :func:`account_from_options` and :func:`add_account`
make and store an account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import AUTH_KEYS, DEFAULT_PORTS, Account, parse_limits
from .credentials import remembered_password
from .errors import ConfigError, InvalidValue
from .mailbox import copy_to_sent, imap_options
from .presets import ADD_ACCOUNT_HINT, PRESETS

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from .campaign import Campaign
    from .config import Config, Signer
    from .cosigners import Cosigner
    from .delivery import DeliveryReport, SendReport
    from .ledger import Row
    from .letters import Letter
    from .oauth import AccessToken
    from .outbox import Outbox, QueueResult, Skipped
    from .schedule import Schedule
    from .transport import SmtpTransport, Transport

# --- rules ----------------------------------------------------------------------------------


def require_note(campaign: Campaign, note: str, *, will_edit: bool = False) -> None:
    """A campaign with ``require_note`` takes no letter without the signer's own words."""
    if campaign.require_note and not note.strip() and not will_edit:
        raise InvalidValue(
            f"campaign {campaign.id!r} asks every letter-writer to add personal words",
            hint="pass --note 'your words', --note-file FILE or --edit; nothing was queued",
        )


def placeholder(signer: Signer, account: Account | None) -> str:
    """Why letters signed so must not be queued ("" if they may).

    Letters signed with placeholder details may only go to a server on this
    machine (tests, rehearsals); without an account they would wait for any
    server added later.
    """
    from .placeholders import placeholder_reason
    from .validation import is_loopback

    if account is not None and is_loopback(account.host):
        return ""
    return placeholder_reason(name=signer.name, email=signer.email, city=signer.city, country=signer.country)


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """What :meth:`SendJob.run` would do with one letter (the dry run)."""

    letter: Letter
    action: str  # "send", "queue" (no account), "prepare" (by hand) or "skip"
    reason: str = ""
    envelope: dict[str, Any] | None = None


@dataclass
class SendJob:
    """One ``send``: the letters of a template, from a signer, through an account (or none)."""

    campaign: Campaign
    template: str
    signer: Signer
    account: Account | None
    rate: float
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] | None = None
    language: str | None = None
    note: str = ""
    cosigners: tuple[Cosigner, ...] = ()
    placeholder: str = ""
    warnings: list[str] = field(default_factory=list)
    schedule: Schedule | None = None  # daily quota, send window (see :func:`schedule_for`)
    limits: str = ""  # the --rate given, kept with the letters (it holds when they are flushed)
    window: str = ""  # the --window given, kept with the letters likewise

    @classmethod
    def create(
        cls,
        config: Config,
        campaign: Campaign,
        template: str,
        signer: Signer,
        *,
        account: str | None = None,
        rate: str | float | None = None,
        to: Iterable[str] = (),
        cc: Iterable[str] | None = None,
        language: str | None = None,
        note: str = "",
        cosigners: Iterable[Cosigner] = (),
        will_edit: bool = False,
        window: str | None = None,
    ) -> SendJob:
        """Check everything that can be checked before composing (raises LetterkitError)."""
        require_note(campaign, note, will_edit=will_edit)
        acct = config.account(account)
        text = None if isinstance(rate, int | float) else rate
        per_minute = rate if isinstance(rate, int | float) else parse_limits(text, config.limits).per_minute
        schedule = schedule_for(config, acct, rate=text, window=window)[1] if acct is not None else None
        return cls(
            campaign=campaign,
            template=template,
            signer=signer.validated(),
            account=acct,
            rate=float(per_minute),
            to=tuple(to),
            cc=tuple(cc) if cc is not None else None,
            language=language,
            note=note,
            cosigners=tuple(cosigners),
            placeholder=placeholder(signer, acct),
            warnings=[w for w in (campaign.deadline_warning(),) if w],
            schedule=schedule,
            limits=text or (f"{rate:g}/min" if isinstance(rate, int | float) else ""),
            window=window or "",
        )

    @property
    def dry_run_only(self) -> bool:
        """Signed with placeholder details: the letters may be shown, never queued."""
        return bool(self.placeholder)

    def letters(self) -> Iterator[Letter]:
        """The letters, composed one at a time (every one checked as it comes)."""
        from .letters import compose

        return compose(
            self.campaign,
            self.template,
            self.signer,
            to=self.to,
            cc=self.cc,
            language=self.language,
            note=self.note,
            cosigners=self.cosigners,
        )

    def recipients(self) -> list[Any]:
        """Every contact the letters go to (primaries and copies), for stale-data notes."""
        from .letters import plan

        who = plan(self.campaign, self.template, self.to, self.cc)
        return [*who.primaries(), *who.copies]

    def plan(self, box: Outbox, letters: Iterable[Letter], *, resend: bool = False) -> Iterator[Planned]:
        """What :meth:`run` would do with each letter, envelope included; changes nothing."""
        from_addr = self.account.from_addr if self.account else None
        for letter in letters:
            reason, _row = box.skip_reason(letter, resend=resend)
            if reason:
                action = "skip"
            elif letter.channel != "email":
                action = "prepare"
            else:
                action = "send" if self.account else "queue"
            envelope = (
                {"mail_from": from_addr, "rcpt_to": [*letter.to, *letter.cc]}
                if letter.channel == "email"
                else None
            )
            yield Planned(letter, action, reason, envelope)

    def run(
        self,
        box: Outbox,
        letters: Iterable[Letter],
        *,
        resend: bool = False,
        other_signers: bool = False,
        on_skip: Callable[[Skipped], None] | None = None,
        on_queued: Callable[[QueueResult], None] | None = None,
        on_progress: Callable[[int, int, Row], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
        transport: Transport | None = None,
        interactive: bool = False,
        on_note: Callable[[str], None] | None = None,
    ) -> SendReport:
        """Queue every letter durably (all or nothing), then deliver them through the account.

        Without an account the letters stay queued.  ``interactive``: a password
        may be asked for on the terminal.  Refuses letters signed with
        placeholder details (see :func:`placeholder`).
        """
        if self.placeholder:
            raise InvalidValue(f"not queued: {self.placeholder}", hint="sign with your own details")
        return send_letters(
            letters,
            account=self.account,
            outbox=box,
            resend=resend,
            rate=self.rate,
            other_signers=other_signers,
            on_skip=on_skip,
            on_queued=on_queued,
            on_progress=on_progress,
            on_wait=on_wait,
            transport=transport,
            interactive=interactive,
            schedule=self.schedule,
            on_note=on_note,
            limits=self.limits,
            window=self.window,
        )


def send_letters(
    letters: Iterable[Letter],
    *,
    account: Account | None,
    outbox: Outbox | None = None,
    resend: bool = False,
    rate: float | None = None,
    other_signers: bool = False,
    on_skip: Callable[[Skipped], None] | None = None,
    on_queued: Callable[[QueueResult], None] | None = None,
    on_progress: Callable[[int, int, Row], None] | None = None,
    on_wait: Callable[[float], None] | None = None,
    transport: Transport | None = None,
    password_provider: Callable[[], str] | None = None,
    interactive: bool = False,
    schedule: Schedule | None = None,
    on_note: Callable[[str], None] | None = None,
    limits: str = "",
    window: str = "",
) -> SendReport:
    """Queue ``letters`` durably (all or nothing), then deliver them through ``account``.

    Without an account the letters stay queued (:func:`flush` sends them later).
    ``on_queued(result)`` is called once they are queued, before any is sent.
    ``rate`` defaults to :data:`letterkit.config.DEFAULT_RATE` letters a minute.  The
    password comes from ``password_provider``, else the account's usual sources
    (``interactive``: it may be asked for on the terminal).  Letters of this
    batch queued by an earlier, interrupted run are delivered too.  ``limits``, ``window``:
    the ``--rate`` and ``--window`` texts given, kept with the letters for a later :func:`flush`.
    """
    from .config import DEFAULT_RATE
    from .delivery import DeliveryReport, SendReport, deliver
    from .outbox import Outbox

    box = outbox or Outbox()
    try:
        with box.session():  # queued and delivered without another process in between
            queued = box.queue(
                letters, account=account, resend=resend, on_skip=on_skip, other_signers=other_signers,
                write_outbox=account is None,  # delivered at once: no outbox files unless it stops
                limits=limits, window=window,
            )  # fmt: skip
            if on_queued is not None:
                on_queued(queued)
            if account is None or not queued.to_deliver:
                return SendReport(
                    queued, None if account is None else DeliveryReport(queued.batch, account.name)
                )
            password = password_provider or remembered_password(account, interactive=interactive)
            transport = transport or smtp_transport(account, password=password)
            try:
                report = deliver(
                    box, transport, batch=queued.batch, rate=DEFAULT_RATE if rate is None else rate,
                    on_progress=on_progress, on_wait=on_wait, on_note=on_note, schedule=schedule,
                )  # fmt: skip
            finally:
                transport.close()
            copy_to_sent(box, account, password=password)  # never fails the letters
            return SendReport(queued, report)
    finally:
        if outbox is None:
            box.close()


def smtp_transport(
    account: Account, *, interactive: bool = False, password: Callable[[], str] | None = None
) -> SmtpTransport:
    """The account's SMTP transport; its password from ``password``, else the usual sources
    (the environment, the account's command, the keyring, a prompt if ``interactive``)."""
    from .transport import SmtpTransport

    return SmtpTransport(account, password or remembered_password(account, interactive=interactive))


def flush(
    box: Outbox,
    account: Account | None,
    *,
    rate: float,
    retry_failed: bool = False,
    on_progress: Callable[[int, int, Row], None] | None = None,
    on_wait: Callable[[float], None] | None = None,
    transport: Transport | None = None,
    interactive: bool = False,
    schedule: Schedule | None = None,
    on_note: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], dt.datetime] | None = None,
    keep_queued_limits: bool = True,
) -> DeliveryReport:
    """Deliver what is due in the outbox (``retry_failed``: the refused letters too).

    Letters queued with a ``--rate`` keep it: ``rate`` and the schedule's daily quota
    are made no looser than it (:func:`queued_limits`), unless ``keep_queued_limits``
    is False (``outbox flush --rate``: the user chose again).

    With ``schedule.wait`` (``outbox flush --wait``) it keeps going until every letter
    is sent: between runs it sleeps until the next one is due (its window, the quota,
    a back-off), with the connection closed.  Everything is in the ledger before each
    sleep, so Ctrl-C or a kill there loses nothing; running it again goes on.
    """
    import time

    from . import clock
    from .delivery import deliver

    if account is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    note = ""
    if keep_queued_limits:
        from .ledger import IN_OUTBOX

        rate, schedule, note = queued_limits(box, rate, schedule, IN_OUTBOX if retry_failed else ("queued",))
        if note and on_note is not None:
            on_note(note)
    password = remembered_password(account, interactive=interactive)  # asked for once, if at all
    transport = transport or smtp_transport(account, password=password)
    now = now or clock.running()
    sleep = sleep or time.sleep
    options: dict[str, Any] = {"rate": rate, "on_progress": on_progress, "on_wait": on_wait}
    options.update(on_note=on_note, schedule=schedule, sleep=sleep, now=now)
    try:
        report = deliver(box, transport, retry_failed=retry_failed, **options)
        while schedule is not None and schedule.wait and report.error is None and report.next_due:
            transport.close()  # no idle connection for hours
            seconds = (report.next_due.at - now()).total_seconds()
            if seconds > 0:
                if on_wait is not None:
                    on_wait(seconds)
                sleep(seconds)
            report = _add(report, deliver(box, transport, batch=report.batch, **options))
    finally:
        transport.close()
    if note:
        report.notes.insert(0, note)  # --json says it too
    copy_to_sent(box, account, password=password)  # never fails the letters; retried later
    return report


def queued_limits(
    box: Outbox, rate: float, schedule: Schedule | None, statuses: Sequence[str]
) -> tuple[float, Schedule | None, str]:
    """``rate`` and ``schedule`` made no looser than the ``--rate`` the letters in
    ``statuses`` were queued with (``send --rate 50/day``, then ``outbox flush``: still
    50 a day), and a note saying so ("" when nothing changed)."""
    from dataclasses import replace

    from .config import Rate
    from .schedule import Schedule
    from .transport import retry_delay

    texts = box.ledger.limits_of(statuses)
    per_minute, per_day = rate, schedule.per_day if schedule else 0
    for text in texts:
        try:
            limits = parse_limits(text, Rate(0, 0))
        except InvalidValue:  # a ledger edited by hand
            continue
        if limits.per_minute and (not per_minute or limits.per_minute < per_minute):
            per_minute = limits.per_minute
        if limits.per_day and (not per_day or limits.per_day < per_day):
            per_day = limits.per_day
    if (per_minute, per_day) == (rate, schedule.per_day if schedule else 0):
        return rate, schedule, ""
    base = schedule or Schedule(backoff_base=retry_delay())
    note = f"letters queued with --rate {', '.join(sorted(texts))}: it holds for them (--rate chooses anew)"
    return per_minute, replace(base, per_day=per_day), note


def _add(before: DeliveryReport, after: DeliveryReport) -> DeliveryReport:
    """One report for two runs over the same batch (``--wait``)."""
    from dataclasses import replace

    return replace(
        after,
        total=before.total,
        sent=before.sent + after.sent,
        partial=before.partial + after.partial,
        failed=before.failed + after.failed,
        notes=before.notes + after.notes,
    )


def schedule_for(
    config: Config,
    account: Account,
    *,
    rate: str | None = None,
    window: str | None = None,
    wait: bool = False,
) -> tuple[float, Schedule]:
    """The pace (letters a minute) and the schedule of a run through ``account``.

    ``rate`` (``--rate``; default ``[defaults] rate``): ``N/min``, ``N/hour`` set the
    pace, ``N/day`` the daily quota; without a quota, the account's provider preset
    gives one with a safety margin (:func:`letterkit.presets.default_quota`).
    ``window`` (``--window``; default ``[defaults] window``; ``any``: none).
    """
    from .presets import default_quota
    from .schedule import Schedule, Window
    from .transport import retry_delay

    limits = parse_limits(rate, config.limits)
    chosen = config.window if window is None else window
    return limits.per_minute, Schedule(
        per_day=limits.per_day or default_quota(account.host, account.from_addr),
        window=Window.parse(chosen) if chosen and chosen.strip().lower() != "any" else None,
        window_given=window is not None,
        backoff_base=retry_delay(),
        wait=wait,
    )


# --- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountOptions:
    """What ``letterkit account add`` was given (None: not given)."""

    name: str
    preset: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    from_addr: str | None = None
    ca_file: str | None = None
    password_command: str | None = None
    no_login: bool = False
    timeout: float = 30.0
    imap: dict[str, Any] = field(
        default_factory=dict
    )  # imap_host, imap_port, imap_security, sent_folder, save_sent
    auth: str | None = None  # "password" or "oauth2" (default: the preset's, else password)
    token_command: str | None = None
    oauth_provider: str | None = None
    oauth_client_id: str | None = None
    oauth_authority: str | None = None
    oauth_auth_uri: str | None = None
    oauth_token_uri: str | None = None


def account_from_options(opts: AccountOptions) -> tuple[Account, str]:
    """The account (validated) and the preset's note for people ("" if none).

    A preset fills host, port and security; the port follows the security
    (587 starttls, 465 tls, 25 none); the login defaults to the From address and
    the From address to a login that is an address.
    """
    from .oauth import auth_fields

    chosen: dict[str, Any] = {}
    if opts.preset:
        if opts.preset.lower() not in PRESETS:
            raise InvalidValue(f"unknown preset {opts.preset!r}", hint=f"known: {', '.join(PRESETS)}")
        chosen = dict(PRESETS[opts.preset.lower()])
    security = opts.security or chosen.get("security") or "starttls"
    host = opts.host or chosen.get("host")
    if not host:
        raise InvalidValue("--host is required (or a --preset)", hint=f"e.g. {ADD_ACCOUNT_HINT}")
    sender = opts.from_addr or (opts.username if opts.username and "@" in opts.username else "")
    port = opts.port
    if port is None:  # (0 is a port given, and refused below)
        port = (chosen.get("port") if not opts.security else None) or DEFAULT_PORTS.get(security, 587)
    account = Account(
        name=opts.name,
        host=host,
        port=port,
        security=security,
        username="" if opts.no_login else (opts.username or sender),
        from_addr=sender,
        ca_file=str(Path(opts.ca_file).expanduser().resolve()) if opts.ca_file else "",
        password_command=opts.password_command or "",
        timeout=opts.timeout,
        **auth_fields(chosen, **{k: getattr(opts, k) for k in ("auth", *AUTH_KEYS)}),
    ).validated()
    account = imap_options(account, opts.preset, **opts.imap)
    return account, str(chosen.get("note", "")).format(name=opts.name)  # a preset's note names the account


def check_password_for(account: Account, *, given: bool) -> None:
    """Refuse a password (``given``, or the account's ``password_command``) for an account
    that takes none: one without a login, or one that signs in with OAuth2."""
    if given and not account.username:
        raise InvalidValue("--password-stdin with --no-login: there is no login to use it for")
    if account.auth == "oauth2" and (given or account.password_command):
        raise InvalidValue("an OAuth2 account has no password", hint="give --auth password, or no password")


def add_account(
    config: Config,
    account: Account,
    *,
    password: str | None = None,
    default: bool = False,
    replace: bool = False,
) -> tuple[Path, str]:
    """Store the password (if given) in the keyring, then the account in config.toml.

    The first account becomes the default.  Returns the config file and where the
    password comes from, for people.  If config.toml cannot be written, the
    password just stored is taken out of the keyring again.
    """
    from .config import save_config
    from .credentials import delete_password, no_password_hint, store_password
    from .oauth import token_status

    if account.name in config.accounts and not replace:
        raise ConfigError(
            f"an account named {account.name!r} exists already",
            hint=f"pass --replace to change it, or remove it: letterkit account remove {account.name}",
        )
    check_password_for(account, given=password is not None)
    if password is not None:
        store_password(account.name, password)  # raises before anything is saved
    first = not config.accounts
    config.accounts[account.name] = account
    if default or first:
        config.default_account = account.name
    try:
        path = save_config(config)
    except ConfigError:
        if password is not None:
            delete_password(account.name)
        raise
    if password is not None:
        stored = "in the OS keyring"
    elif account.auth == "oauth2":
        stored = f"not needed: OAuth2 ({token_status(account)})"
    elif not account.username:
        stored = "not needed (no login)"
    elif account.password_command:
        stored = f"from {account.password_command!r}"
    else:
        stored = f"not stored yet: {no_password_hint(account.name)}"
    return path, stored


def login_account(
    config: Config,
    name: str,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    show: Callable[[str], object],
    open_url: Callable[[str], object] | None = None,
) -> tuple[Account, AccessToken]:
    """``letterkit account login``: keep a new client id (config.toml) and secret (keyring), then
    sign in with the provider (see :func:`letterkit.oauth.login`)."""
    from dataclasses import replace

    from .config import save_config
    from .oauth import login, store_client_secret

    account = config.account(name)
    if account is None:
        raise ConfigError("no mail account is set up", hint=f"add yours with: {ADD_ACCOUNT_HINT}")
    if client_id and client_id != account.oauth_client_id:
        account = replace(account, oauth_client_id=client_id).validated()
        config.accounts[account.name] = account
        save_config(config)
    if client_secret:
        store_client_secret(account.name, client_secret)
    return account, login(account, show=show, open_url=open_url)
