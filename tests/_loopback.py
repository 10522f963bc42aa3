"""No test talks to any machine but this one.

:func:`install` wraps the socket module's name lookup and ``connect``: a lookup of a name
other than ``localhost``, or a connection to an address that is not loopback, is refused
(as an unknown name or a refused connection would be) and, in the tests' own process,
written down in :data:`VIOLATIONS`, so the test that tried fails even if the code under
test handled the error.  The campaign's addresses are real people's; they are data, never a destination.
conftest installs it for every test; ``sitecustomize`` (LETTERKIT_TEST_LOOPBACK=1, set by
conftest) installs it in the letterkit processes tests start.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

VIOLATIONS: list[str] = []
_REAL = {
    "getaddrinfo": socket.getaddrinfo,
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
}


def local(host: Any) -> bool:
    if host is None:
        return True
    name = (host.decode() if isinstance(host, bytes) else str(host)).strip("[]").lower().rstrip(".")
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    VIOLATIONS.append(what)
    print(f"letterkit tests: refused {what} (tests talk to 127.0.0.1 only)", file=sys.stderr)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not local(host):
        _refuse(f"a name lookup of {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (tests: 127.0.0.1 only)")
    return _REAL["getaddrinfo"](host, *args, **kwargs)


def _checked(address: Any) -> bool:
    if isinstance(address, tuple) and address and not local(address[0]):
        _refuse(f"a connection to {address[0]!r}")
        return False
    return True


def _connect(self: socket.socket, address: Any) -> None:
    if not _checked(address):
        raise ConnectionRefusedError(111, "Connection refused (tests: 127.0.0.1 only)")
    _REAL["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if not _checked(address):
        return 111
    return int(_REAL["connect_ex"](self, address))


def install() -> None:
    socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


def uninstall() -> None:
    socket.getaddrinfo = _REAL["getaddrinfo"]  # type: ignore[assignment]
    socket.socket.connect = _REAL["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _REAL["connect_ex"]  # type: ignore[method-assign]


if os.environ.get("LETTERKIT_TEST_LOOPBACK") == "1":  # pragma: no cover - in child processes
    install()
