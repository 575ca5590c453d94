"""An SFTP server in this process, on 127.0.0.1, for tests and the sandbox clearinghouse.

    with SftpTestServer(tmp_path / "mailbox") as server:      # random port, own host key
        server.known_hosts_line                                 # "[127.0.0.1]:40123 ssh-ed25519 AAAA..."
        server.password                                         # generated unless given
        key_path = server.new_client_key(tmp_path / "id")       # an authorized ed25519 key, on disk
        server.move_on_close = True                             # misbehave, from now on

It serves one directory for one user, over password or public-key authentication, each
connection on its own threads. Paths are confined to the root: ``..`` cannot climb out of it,
symbolic links leading outside are refused, and relative paths start at the root (as OpenSSH's
``internal-sftp -d`` does). It serves as an ordinary account would: a file whose owner may not
read (or write) it cannot be opened for that, even when the tests run as root. ``stop()``
closes every session and joins every thread. This module is the server (its life cycle, the
login, the SFTP session); the folder it serves, with the file-level misbehaviours below, is
``bhhub.connectors.sftp.testserver_folder``.

Ways to misbehave, read at each request so a test can flip them mid-session:

- ``move_on_close``: a file written by a client leaves the listing when closed, for a hidden
  folder (``moved_dir``), as write-once clearinghouse servers do;
- ``refuse_rename``: rename and posix-rename answer "permission denied";
- ``stall_after_bytes``: after N bytes of one transfer (read or written through one handle),
  stop answering; the session hangs until the client gives up or the server stops;
- ``fail_remove``: remove answers "permission denied";
- ``fail_reads``: ``{file name: N}``: reads of a file of that name (in any folder) answer
  "failure" once N bytes of it were read, as a server whose disk returns a read error does;
- ``silent_during``: ``"log in"`` or ``"open SFTP"``: the server stops answering at that step
  (the connection stays open) until the client gives up or the server stops;
- ``offer_posix_rename``: whether the ``posix-rename@openssh.com`` extension is announced.

``on_file_ready(local_path)``, when given, is called in the session's thread once a file is in
place: after a successful rename or posix-rename (with the new name), and after a client closes
a file it wrote (unless ``move_on_close`` took it away). The client's request is answered only
when it returns, so whatever it does is done by then; an exception it raises is logged (by type)
and does not change the answer. The sandbox clearinghouse answers uploads this way.
"""

from __future__ import annotations

import hmac
import io
import logging
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Callable

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.sftp import CMD_INIT, CMD_VERSION, SFTPError

from bhhub.connectors.sftp.testserver_folder import ServedFolder

log = logging.getLogger(__name__)
_SSH_LOG = f"{__name__}.ssh"
logging.getLogger(_SSH_LOG).addHandler(logging.NullHandler())
logging.getLogger(_SSH_LOG).propagate = False  # paramiko logs a client hanging up as an ERROR


def generate_ed25519_key(path: Path | None = None, passphrase: str | None = None) -> paramiko.Ed25519Key:
    """A new ed25519 key; written to ``path`` (OpenSSH format, mode 600) when given."""
    private = Ed25519PrivateKey.generate()
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    text = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 encryption).decode()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    return paramiko.Ed25519Key(file_obj=io.StringIO(text), password=passphrase)


class SftpTestServer:
    """One user's SFTP mailbox on 127.0.0.1; a context manager that starts and stops it."""

    host = "127.0.0.1"

    def __init__(self, root: Path, *, username: str = "bhhub", password: str | None = None,
                 host_key: paramiko.PKey | None = None, authorized_keys: tuple[paramiko.PKey, ...] = (),
                 move_on_close: bool = False, refuse_rename: bool = False, stall_after_bytes: int | None = None,
                 fail_remove: bool = False, offer_posix_rename: bool = True, moved_dir: Path | None = None,
                 port: int = 0, on_file_ready: Callable[[Path], None] | None = None,
                 fail_reads: dict[str, int] | None = None, silent_during: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self.host_key = host_key or generate_ed25519_key()
        self.authorized_keys: list[paramiko.PKey] = list(authorized_keys)
        self.move_on_close = move_on_close
        self.refuse_rename = refuse_rename
        self.stall_after_bytes = stall_after_bytes
        self.fail_remove = fail_remove
        self.fail_reads: dict[str, int] = dict(fail_reads or {})
        self.silent_during = silent_during
        self.offer_posix_rename = offer_posix_rename
        self.moved_dir = Path(moved_dir) if moved_dir else self.root / ".moved"
        self.port = port
        self.on_file_ready = on_file_ready
        self.sessions_open = 0
        self.sessions_max = 0  # the most SFTP sessions open at once
        self.connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._handlers: list[threading.Thread] = []

    # --- what a client needs ---------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...``: the key line without a host."""
        return f"{self.host_key.get_name()} {self.host_key.get_base64()}"

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def authorize(self, key: paramiko.PKey) -> None:
        with self._lock:
            self.authorized_keys.append(key)

    def new_client_key(self, path: Path, passphrase: str | None = None) -> Path:
        """Write a new ed25519 private key to ``path``, authorize it, return ``path``."""
        self.authorize(generate_ed25519_key(path, passphrase))
        return path

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> "SftpTestServer":
        self._stopping.clear()
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"sftp-test-server:{self.port}",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close every connection and wait for every thread of this server to end."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            transports, handlers = list(self._transports), list(self._handlers)
        for transport in transports:
            transport.close()
        for thread in handlers + transports:
            thread.join(timeout=5)
        with self._lock:
            self._transports.clear()
            self._handlers.clear()

    def __enter__(self) -> "SftpTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            transport = paramiko.Transport(sock)
            transport.set_log_channel(_SSH_LOG)  # a client hanging up is routine here, not an error
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", _SftpSession, ServedFolder, self)
            with self._lock:
                self._transports = [t for t in self._transports if t.is_alive()]
                self._transports.append(transport)
                self.connections += 1
            try:
                transport.start_server(event=threading.Event(), server=_Login(self, transport))
            except (paramiko.SSHException, OSError):
                transport.close()

    def _session_started(self, handler: threading.Thread) -> None:
        with self._lock:
            self._handlers = [h for h in self._handlers if h.is_alive()]
            self._handlers.append(handler)
            self.sessions_open += 1
            self.sessions_max = max(self.sessions_max, self.sessions_open)

    def _session_ended(self) -> None:
        with self._lock:
            self.sessions_open -= 1

    def _file_ready(self, local: str) -> None:
        """Tell ``on_file_ready`` a file is in place; its failure never reaches the client."""
        callback = self.on_file_ready
        if callback is None or not os.path.isfile(local):
            return
        try:
            callback(Path(local))
        except Exception as exc:  # noqa: BLE001 - a failing callback must not break the session
            log.error("test server: on_file_ready failed (%s)", type(exc).__name__)

    def _wait_while_stalled(self, channel: paramiko.Channel) -> None:
        """Answer nothing until the client hangs up or the server stops."""
        self._wait_while_silent(channel.get_transport(), channel)

    def _wait_while_silent(self, transport: paramiko.Transport, channel: paramiko.Channel | None = None) -> None:
        while not self._stopping.wait(0.05):
            if (channel is not None and channel.closed) or not transport.is_active():
                return


class _Login(paramiko.ServerInterface):
    def __init__(self, server: SftpTestServer, transport: paramiko.Transport):
        self.server, self.transport = server, transport

    def get_allowed_auths(self, username):
        return "publickey,password"

    def _silent_if_asked(self) -> None:
        if self.server.silent_during == "log in":
            self.server._wait_while_silent(self.transport)

    def check_auth_password(self, username, password):
        self._silent_if_asked()
        ok = (hmac.compare_digest(username.encode(), self.server.username.encode())
              and hmac.compare_digest(password.encode(), self.server.password.encode()))
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self._silent_if_asked()
        if username == self.server.username and any(
                key.asbytes() == known.asbytes() for known in self.server.authorized_keys):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _SftpSession(paramiko.SFTPServer):
    """paramiko's SFTP protocol handler, announcing posix-rename as OpenSSH does."""

    def __init__(self, channel, name, server, sftp_si, test_server: SftpTestServer):
        super().__init__(channel, name, server, sftp_si, test_server)
        self.test_server = test_server
        self.channel = channel

    def start_subsystem(self, name, transport, channel):
        self.test_server._session_started(self)
        super().start_subsystem(name, transport, channel)

    def finish_subsystem(self):
        try:
            super().finish_subsystem()
        finally:
            self.test_server._session_ended()

    def _send_server_version(self):
        if self.test_server.silent_during == "open SFTP":
            self.test_server._wait_while_stalled(self.channel)
        kind, data = self._read_packet()
        if kind != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        message = paramiko.Message()
        message.add_int(3)
        if self.test_server.offer_posix_rename:
            message.add_string("posix-rename@openssh.com")
            message.add_string("1")
        self._send_packet(CMD_VERSION, message)
