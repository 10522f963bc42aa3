"""Mail providers letterkit knows (``account add --preset``), and how to add an account.

Plain data with no imports: the command line shows the preset names in ``--help``
without loading the library.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "gmail": {"host": "smtp.gmail.com", "port": 587, "security": "starttls",
              "note": "Gmail needs an app password (Google account → Security → App passwords)"},
    "outlook": {"host": "smtp-mail.outlook.com", "port": 587, "security": "starttls"},
    "yahoo": {"host": "smtp.mail.yahoo.com", "port": 465, "security": "tls",
              "note": "Yahoo needs an app password"},
    "fastmail": {"host": "smtp.fastmail.com", "port": 465, "security": "tls",
                 "note": "Fastmail needs an app password"},
    "posteo": {"host": "posteo.de", "port": 587, "security": "starttls"},
    "mailbox.org": {"host": "smtp.mailbox.org", "port": 465, "security": "tls"},
    "riseup": {"host": "mail.riseup.net", "port": 587, "security": "starttls"},
    "disroot": {"host": "disroot.org", "port": 587, "security": "starttls"},
}  # fmt: skip

ADD_ACCOUNT_HINT = (
    "letterkit account add NAME --host smtp.example.org --username you@example.org --from you@example.org"
)
