"""A keyring backend that keeps passwords in a JSON file in the test's temp dir.

Tests select it with PYTHON_KEYRING_BACKEND=_keyring.FileKeyring (and
``tests/`` on PYTHONPATH for subprocesses), so no test touches the real
desktop keychain.  The file path comes from $LETTERKIT_TEST_KEYRING.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["LETTERKIT_TEST_KEYRING"])

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\0{username}"] = password
        self._path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._path.write_text(json.dumps(data))
