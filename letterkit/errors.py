"""The one error family of letterkit.

Every expected failure (a user's mistake, a server's refusal, a missing
keyring) is a :class:`LetterkitError`.  The message says *what* and *where*
(file:line, host:port, contact id); ``hint`` says how to fix it.  The CLI prints
``str(error)`` on one line and exits with ``error.exit_code``; a library caller
can catch the family or one member of it.
"""

from __future__ import annotations


class LetterkitError(Exception):
    """Base class: an expected failure with a one-line message and a fix."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = " ".join(self.message.split())  # always one line
        if self.hint:
            text += f" — {' '.join(self.hint.split())}"
        return text


class ConfigError(LetterkitError):
    """The user configuration (config.toml, contacts.toml) is unreadable or wrong."""


class CampaignError(LetterkitError):
    """A campaign folder, campaign.toml or recipients.toml is missing or malformed."""


class TemplateError(LetterkitError):
    """A template is missing, has bad front matter, or fails to render."""


class ContactError(LetterkitError):
    """An unknown contact id or group, or an invalid contact."""


class InvalidValue(LetterkitError):
    """A value that would reach a header or envelope is unsafe or malformed."""


class CredentialError(LetterkitError):
    """No password could be obtained (no keyring backend, command failed...)."""


class TransportError(LetterkitError):
    """The SMTP server could not be reached, refused TLS or authentication."""


class OutboxError(LetterkitError):
    """The outbox, sent folder or ledger cannot be read or written."""


class ExportError(LetterkitError):
    """An export target exists already or cannot be written."""


class NotConfirmed(LetterkitError):
    """The user declined, or could not be asked (no TTY and no --yes)."""
