"""Imported by every Python that tests start (tests/ is on their PYTHONPATH): with
LETTERKIT_TEST_LOOPBACK=1 it, too, talks to 127.0.0.1 only (see _loopback.py)."""

import os

if os.environ.get("LETTERKIT_TEST_LOOPBACK") == "1":
    import _loopback  # noqa: F401  (installs the guard on import)
