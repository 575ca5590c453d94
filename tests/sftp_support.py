"""Helpers for SFTP tests (not a test module): OpenSSH's real sshd on loopback, and a TCP fault proxy.

    with openssh_server(tmp_path / "sshd") as server:          # /usr/sbin/sshd on a free port
        settings = server.settings(operation_timeout=5)        # an SftpSettings with its key pinned
        ...
    with FaultProxy(server.address) as proxy:                  # 127.0.0.1:proxy.port -> server
        proxy.cut("client_to_server", after=1000)              # close both ends 1,000 bytes from now
        proxy.stall("server_to_client", after=0)               # black-hole what the server sends
        proxy.throttle("server_to_client", 512 * 1024)         # at most 512 KB/s that way

    with openssh_server(tmp_path / "sshd", unprivileged=True) as server:   # logs in as "nobody" if root

The sshd is started as the user running the tests (root here), with a throwaway host key, a
generated client key in a private authorized_keys, ``internal-sftp`` forced on every session
and its start directory set to ``server.root``, so paths relative to the login
(``outbound/x.837``) land under ``server.root`` as they do with the paramiko test server. No
chroot: a chroot directory must have only root-owned, non-writable parents, which /tmp is not.

Run as root, that user reads every file whatever its mode. ``unprivileged=True`` makes the
login an ordinary account, so a file's permissions count as they do at a clearinghouse: when
the tests run as root, sshd logs in as ``nobody`` and serves a folder under a world-traversable
temporary directory (pytest's own is private to root), which ``nobody`` owns.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
DIRECTIONS = ("client_to_server", "server_to_client")


def sshd_available() -> bool:
    """Whether the OpenSSH tests can run; with BHHUB_REQUIRE_SSHD=1 (CI) they always run, and a
    missing sshd fails them instead of skipping them."""
    if os.environ.get("BHHUB_REQUIRE_SSHD") == "1":
        return True
    return os.access(SSHD, os.X_OK) and os.access(SSH_KEYGEN, os.X_OK)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate_key(path: Path, passphrase: str = "", comment: str = "bhhub-test") -> str:
    """An ed25519 key pair at ``path`` and ``path.pub``; returns the public key line."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.with_name(path.name + ".pub").read_text().strip()


@dataclass
class OpenSshServer:
    """A running sshd: where it listens, what it serves and the keys to reach it."""

    host: str
    port: int
    root: Path
    username: str
    client_key: Path
    host_public_key: str  # "ssh-ed25519 AAAA..."
    log_file: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def settings(self, *, port: int | None = None, **overrides):
        """SftpSettings for this server with key auth (``port`` to go through a proxy)."""
        from bhhub.connectors.sftp.settings import SftpSettings

        values = dict(host=self.host, port=port or self.port, username=self.username,
                      known_hosts=(self.host_public_key,), key_file=str(self.client_key))
        values.update(overrides)
        return SftpSettings(**values)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _wait_for_banner(host: str, port: int, process: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1) as probe:
                probe.settimeout(2)
                if probe.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def openssh_server(workdir: Path, *, username: str | None = None, log_level: str = "ERROR",
                   unprivileged: bool = False) -> Iterator[OpenSshServer]:
    """Start /usr/sbin/sshd on a free 127.0.0.1 port serving ``workdir/root``; stop it on exit."""
    if not (os.access(SSHD, os.X_OK) and os.access(SSH_KEYGEN, os.X_OK)):
        raise RuntimeError(f"{SSHD} or ssh-keygen is not installed (apt-get install openssh-server)")
    if unprivileged and os.geteuid() == 0:
        with _unprivileged_openssh_server(log_level) as server:
            yield server
        return
    # sshd checks that its privilege-separation directory exists even when it never uses it.
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    for key in (host_key, client_key):
        for stale in (key, key.with_name(key.name + ".pub")):
            stale.unlink(missing_ok=True)
    host_public = " ".join(generate_key(host_key, comment="bhhub-test-host").split()[:2])
    authorized = workdir / "authorized_keys"
    authorized.write_text(generate_key(client_key) + "\n")
    username = username or _current_user()
    log_file = workdir / "sshd.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        config = workdir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{port}",
            f"HostKey {host_key}",
            "PidFile none",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            f"AuthorizedKeysFile {authorized}",
            f"AllowUsers {username}",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "MaxSessions 20",
            "MaxStartups 50:30:100",
            "LoginGraceTime 30",
            f"LogLevel {log_level}",
            "Subsystem sftp internal-sftp",
            f"ForceCommand internal-sftp -d {root}",
            "",
        ]))
        log = open(log_file, "ab")
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log)
        log.close()
        if _wait_for_banner("127.0.0.1", port, process, time.monotonic() + 10):
            break
        _stop(process)
        last_error = log_file.read_text(errors="replace")[-2000:]
    else:
        raise RuntimeError(f"sshd did not start: {last_error}")
    server = OpenSshServer("127.0.0.1", port, root, username, client_key, host_public, log_file, process)
    try:
        yield server
    finally:
        _stop(process)


@contextmanager
def _unprivileged_openssh_server(log_level: str) -> Iterator[OpenSshServer]:
    """As root: sshd logging in as ``nobody``, who owns the served folder and can read the
    authorized key on its way (sshd reads it as the user)."""
    import pwd
    import tempfile

    nobody = pwd.getpwnam("nobody")
    workdir = Path(tempfile.mkdtemp(prefix="bhhub-sshd-"))
    try:
        workdir.chmod(0o755)
        (workdir / "root").mkdir()
        os.chown(workdir / "root", nobody.pw_uid, nobody.pw_gid)
        with openssh_server(workdir, username="nobody", log_level=log_level) as server:
            (workdir / "authorized_keys").chmod(0o644)
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def give_to_login(server: OpenSshServer, path: Path) -> None:
    """Make ``path`` and everything under it the login's (a no-op unless it logs in as another user)."""
    import pwd

    login = pwd.getpwnam(server.username)
    if login.pw_uid == os.geteuid():
        return
    for found in [path, *path.rglob("*")]:
        os.chown(found, login.pw_uid, login.pw_gid, follow_symlinks=False)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- a TCP fault proxy --------------------------------------------------------------------------


class FaultProxy:
    """Forward 127.0.0.1:``port`` to ``target``, and misbehave on request.

    ``cut(direction, after=n)`` closes both ends once ``n`` more bytes have gone that way;
    ``stall(direction, after=n)`` forwards ``n`` more bytes that way, then black-holes the rest
    (read and dropped, as a dead link does; the connection stays open). ``direction`` is
    ``"client_to_server"`` or ``"server_to_client"``. Faults apply to open connections counted
    from the call, and to later connections counted from their start. ``throttle(direction,
    bytes_per_second)`` slows that way down without losing anything. ``heal()`` clears them all.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: list[_ProxiedConnection] = []
        self._faults: dict[str, tuple[str, int]] = {}  # direction -> (kind, bytes after connection start)
        self.rates: dict[str, float] = {}  # direction -> bytes per second (throttled)
        self.connections_accepted = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def cut(self, direction: str, after: int = 0) -> None:
        self._set_fault(direction, "cut", after)

    def stall(self, direction: str, after: int = 0) -> None:
        self._set_fault(direction, "stall", after)

    def throttle(self, direction: str, bytes_per_second: float) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        self.rates[direction] = bytes_per_second

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
            self.rates.clear()
            for connection in self._connections:
                connection.limits.clear()

    def bytes_forwarded(self, direction: str) -> int:
        """Bytes forwarded that way over every connection so far."""
        with self._lock:
            return sum(c.forwarded[direction] for c in self._connections)

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
            connection.thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_fault(self, direction: str, kind: str, after: int) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        with self._lock:
            self._faults[direction] = (kind, after)
            for connection in self._connections:
                connection.limits[direction] = (kind, connection.forwarded[direction] + after)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                connection = _ProxiedConnection(client, server, dict(self._faults), self._lock, self.rates)
                self._connections.append(connection)
                self.connections_accepted += 1
            connection.thread.start()


class _ProxiedConnection:
    """One client connection: a thread per direction, so a slow reader one way never blocks the other."""

    def __init__(self, client: socket.socket, server: socket.socket, limits: dict, lock: threading.Lock,
                 rates: dict[str, float]):
        self.rates = rates  # the proxy's, read at each chunk
        self.sockets = {"client_to_server": (client, server), "server_to_client": (server, client)}
        self.forwarded = {d: 0 for d in DIRECTIONS}
        self.limits = limits  # direction -> (kind, absolute byte count)
        self._lock = lock
        self._closed = threading.Event()
        self._pumps = [threading.Thread(target=self._pump, args=(d,), name=f"fault-proxy-{d}", daemon=True)
                       for d in DIRECTIONS]
        self.thread = threading.Thread(target=self._run, name="fault-proxy-connection", daemon=True)

    def close(self) -> None:
        self._closed.set()
        for sock in self.sockets["client_to_server"]:  # wakes a pump blocked in sendall
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self) -> None:
        for pump in self._pumps:
            pump.start()
        for pump in self._pumps:
            pump.join()
        for sock in self.sockets["client_to_server"]:
            sock.close()

    def _pump(self, direction: str) -> None:
        source, sink = self.sockets[direction]
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable:
                    continue
                rate = self.rates.get(direction)
                data = source.recv(4096 if rate else 65536)
                if not data or not self._forward(direction, data, sink):
                    break
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            self._closed.set()
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _forward(self, direction: str, data: bytes, sink: socket.socket) -> bool:
        """Send what the fault allows; False when the connection is to be cut."""
        with self._lock:
            kind, limit = self.limits.get(direction, (None, None))
            allowed = len(data) if limit is None else max(0, min(len(data), limit - self.forwarded[direction]))
            self.forwarded[direction] += allowed
        if allowed:
            sink.sendall(data[:allowed])
        if allowed < len(data):
            return kind != "cut"  # a stall drops the rest silently and keeps the connection open
        return True


# --- a peer that accepts and then says nothing ----------------------------------------------------


class SilentPeer:
    """A loopback listener that accepts connections and never answers (or only ``greeting``).

    ``close_at_once`` hangs up right after accepting (after the greeting, if any) instead: it
    ends its side (FIN), so the client reads what was sent and then the end of the stream.
    """

    def __init__(self, *, greeting: bytes | None = None, close_at_once: bool = False):
        self.greeting, self.close_at_once = greeting, close_at_once
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="silent-peer", daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                peer, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            if self.greeting:
                peer.sendall(self.greeting)
            if self.close_at_once:
                peer.shutdown(socket.SHUT_WR)  # closing outright could reset what was sent
            self._held.append(peer)  # what the client sends is never read

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for peer in self._held:
            peer.close()

    def __enter__(self) -> "SilentPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
