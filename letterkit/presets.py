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

ADD_ACCOUNT_HINT = (
    "letterkit account add NAME --host smtp.example.org --username you@example.org --from you@example.org"
)
