"""Mail providers letterkit knows (``account add --preset``), and how to add an account.

Plain data with no imports: the command line shows the preset names in ``--help``
without loading the library.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {  # "note": shown by account add, "{name}" the account's
    "gmail": {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "oauth_provider": "google",
              "note": "Gmail needs an app password (Google account → Security → App passwords), "
                      "or --auth oauth2 and: letterkit account login {name}",
              "daily_limit": 500, "source": "https://support.google.com/mail/answer/22839"},
    "google-workspace": {"host": "smtp.gmail.com", "port": 587, "security": "starttls",
                         "oauth_provider": "google",
                         "note": "Google Workspace: an app password, or --auth oauth2 and: "
                                 "letterkit account login {name}",
                         "daily_limit": 2000, "source": "https://support.google.com/a/answer/166852"},
    "outlook": {"host": "smtp-mail.outlook.com", "port": 587, "security": "starttls", "auth": "oauth2",
                "oauth_provider": "microsoft",
                "note": "Outlook.com takes no passwords: sign in with letterkit account login {name}",
                "daily_limit": 300,
                "source": "https://support.microsoft.com/office/sending-limits-in-outlook-com-"
                          "279ee200-594c-40f0-9ec8-bb6af7735c2e"},
    "yahoo": {"host": "smtp.mail.yahoo.com", "port": 465, "security": "tls",
              "note": "Yahoo needs an app password"},
    "fastmail": {"host": "smtp.fastmail.com", "port": 465, "security": "tls",
                 "note": "Fastmail needs an app password"},
    "posteo": {"host": "posteo.de", "port": 587, "security": "starttls"},
    "mailbox.org": {"host": "smtp.mailbox.org", "port": 465, "security": "tls"},
    "riseup": {"host": "mail.riseup.net", "port": 587, "security": "starttls"},
    "disroot": {"host": "disroot.org", "port": 587, "security": "starttls"},
    "office365": {"host": "smtp.office365.com", "port": 587, "security": "starttls",
                  "oauth_provider": "microsoft",
                  "note": "Microsoft 365 is retiring passwords for SMTP: prefer --auth oauth2 and "
                          "letterkit account login {name}"},
}  # fmt: skip

IMAP_PRESETS: dict[str, dict[str, Any]] = {
    # the providers' documented IMAP settings; save_sent False: the provider files a copy of
    # what is sent through its SMTP server in Sent itself (a second one would be a duplicate)
    "gmail": {"imap_host": "imap.gmail.com", "imap_port": 993, "imap_security": "tls", "save_sent": False},
    "outlook": {"imap_host": "outlook.office365.com", "imap_port": 993, "imap_security": "tls",
                "save_sent": False},
    "office365": {"imap_host": "outlook.office365.com", "imap_port": 993, "imap_security": "tls",
                  "save_sent": False},
    "yahoo": {"imap_host": "imap.mail.yahoo.com", "imap_port": 993, "imap_security": "tls"},
    "fastmail": {"imap_host": "imap.fastmail.com", "imap_port": 993, "imap_security": "tls"},
    "posteo": {"imap_host": "posteo.de", "imap_port": 993, "imap_security": "tls"},
    "mailbox.org": {"imap_host": "imap.mailbox.org", "imap_port": 993, "imap_security": "tls"},
    "riseup": {"imap_host": "mail.riseup.net", "imap_port": 993, "imap_security": "tls"},
    "disroot": {"imap_host": "disroot.org", "imap_port": 993, "imap_security": "tls"},
}  # fmt: skip
PRESETS.setdefault("office365", {"host": "smtp.office365.com", "port": 587, "security": "starttls"})

ADD_ACCOUNT_HINT = (
    "letterkit account add NAME --host smtp.example.org --username you@example.org --from you@example.org"
)

SAFETY_MARGIN = 0.9  # the default daily quota: this share of the provider's documented limit
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def daily_limit(host: str, from_addr: str = "") -> tuple[int, str]:
    """The documented daily limit of the provider whose SMTP host is ``host`` (0 if unknown),
    and the preset's name.  smtp.gmail.com serves Gmail (From an @gmail.com address) and
    Google Workspace (any other domain)."""
    host = host.lower().rstrip(".")
    domain = from_addr.rpartition("@")[2].lower()
    for name, preset in PRESETS.items():
        if preset["host"] != host or not preset.get("daily_limit"):
            continue
        if host == "smtp.gmail.com" and (name == "gmail") != (domain in GMAIL_DOMAINS):
            continue
        return int(preset["daily_limit"]), name
    return 0, ""


def default_quota(host: str, from_addr: str = "") -> int:
    """Recipients a day letterkit sends through such an account unless told otherwise:
    :data:`SAFETY_MARGIN` of the documented limit (0: no quota known)."""
    limit, _name = daily_limit(host, from_addr)
    return int(limit * SAFETY_MARGIN)
