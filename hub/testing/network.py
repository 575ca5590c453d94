"""Proving a plugin needs no network: a guard on sockets and name lookups, in-process or at import.

``no_network()`` replaces ``socket.socket.connect`` (and ``connect_ex``, ``sendto``,
``socket.getaddrinfo``, ``socket.gethostbyname``) while it is active. A connection or lookup to
anything but loopback (or a Unix socket) is refused with ``NetworkBlocked`` and *recorded*: a
plugin that catches the error and carries on still fails the check, because the contract kit
asserts the record is empty, not that nothing raised.

``imports_without_network(module)`` imports a module in a fresh interpreter under the guard, so
what runs at import time (a plugin's module body) is checked too, not only what runs when the
hub calls its hooks.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class NetworkBlocked(OSError):
    """Raised to a plugin that tried to reach the network while the contract kit was watching."""


@dataclass(frozen=True)
class NetworkAttempt:
    """One refused attempt: what was called (``connect``, ``getaddrinfo``, ...) and where to."""

    call: str
    address: str

    def __str__(self) -> str:
        return f"{self.call}({self.address})"


def is_loopback(host: object) -> bool:
    """True for loopback hosts (``localhost``, 127.0.0.0/8, ``::1``) and Unix-socket paths."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host.endswith(".localhost")


def _target(address: object) -> tuple[bool, str]:
    """(allowed, printable) for a socket address: a tuple (host, port, ...) or a Unix path."""
    if isinstance(address, (str, bytes)):  # AF_UNIX: a local file, not the network
        return True, repr(address)
    if isinstance(address, tuple) and address:
        return is_loopback(address[0]), ":".join(str(a) for a in address[:2])
    return False, repr(address)


@contextmanager
def no_network() -> Iterator[list[NetworkAttempt]]:
    """Refuse and record every non-loopback connection and name lookup while active.

    Yields the list the attempts are recorded in; it is complete when the block ends. Not
    re-entrant across threads: meant for a test, around the calls it checks.
    """
    attempts: list[NetworkAttempt] = []
    real = {
        "connect": socket.socket.connect,
        "connect_ex": socket.socket.connect_ex,
        "sendto": socket.socket.sendto,
        "getaddrinfo": socket.getaddrinfo,
        "gethostbyname": socket.gethostbyname,
    }

    def refuse(call: str, where: str) -> NetworkBlocked:
        attempts.append(NetworkAttempt(call, where))
        return NetworkBlocked(f"network access refused by bhhub.testing: {call}({where})")

    def connect(self, address, *args):
        allowed, where = _target(address)
        if not allowed:
            raise refuse("connect", where)
        return real["connect"](self, address, *args)

    def connect_ex(self, address, *args):
        allowed, where = _target(address)
        if not allowed:
            raise refuse("connect_ex", where)
        return real["connect_ex"](self, address, *args)

    def sendto(self, data, *args):
        address = args[-1] if args else None
        allowed, where = _target(address)
        if not allowed:
            raise refuse("sendto", where)
        return real["sendto"](self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not is_loopback(host):
            raise refuse("getaddrinfo", str(host))
        return real["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host):
        if not is_loopback(host):
            raise refuse("gethostbyname", str(host))
        return real["gethostbyname"](host)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    try:
        yield attempts
    finally:
        socket.socket.connect = real["connect"]
        socket.socket.connect_ex = real["connect_ex"]
        socket.socket.sendto = real["sendto"]
        socket.getaddrinfo = real["getaddrinfo"]
        socket.gethostbyname = real["gethostbyname"]


_IMPORT_PROBE = """
import importlib, json, sys
from bhhub.testing.network import no_network
result = {"attempts": [], "error": None}
with no_network() as attempts:
    try:
        importlib.import_module(sys.argv[1])
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
result["attempts"] = [str(a) for a in attempts]
print(json.dumps(result))
"""


@dataclass(frozen=True)
class ImportProbe:
    """What importing a module in a fresh interpreter did: network attempts, and any error."""

    attempts: tuple[str, ...]
    error: str | None


def imports_without_network(module_name: str, *, timeout: float = 60) -> ImportProbe:
    """Import ``module_name`` in a new interpreter (this one's, with this ``sys.path``) under
    ``no_network()``, and report the attempts it made and whether the import failed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, module_name],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return ImportProbe((), f"the import probe failed (exit {done.returncode}): {last}")
    report = json.loads(lines[-1])
    return ImportProbe(tuple(report["attempts"]), report["error"])
