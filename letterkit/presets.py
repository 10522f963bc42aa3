"""Mail providers letterkit knows (``account add --preset``), and how to add an account.

Plain data with no imports: the command line shows the preset names in ``--help``
without loading the library.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "gmail": {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "oauth_provider": "google",
              "note": "Gmail needs an app password (Google account → Security → App passwords), "
                      "or --auth oauth2 and: letterkit account login NAME"},
    "outlook": {"host": "smtp-mail.outlook.com", "port": 587, "security": "starttls", "auth": "oauth2",
                "oauth_provider": "microsoft",
                "note": "Outlook.com takes no passwords: sign in with letterkit account login NAME"},
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
                          "letterkit account login NAME"},
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
