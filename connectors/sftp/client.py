"""One SFTP connection to a clearinghouse mailbox: pinned host key, deadlines, atomic uploads.

    HubError
     ├── RetriableError          no answer in time, connection lost, server busy, spool unwritable
     │    └── RemoteFileError    one file cannot be fetched (refused, gone, unreadable, changing,
     │                           larger than max_download_bytes); the connection goes on
     └── FatalError
          ├── HostKeyError        the server's key is not pinned, or changed
          ├── AuthenticationError the server refused the login
          ├── RemoteRefusedError  permission denied, no such folder, a write-once server
          └── ConfigError         missing password variable or file, unreadable key, a secret
                                  file other users can read

- The server's key is checked against the mailbox's pinned ``known_hosts`` lines and nothing
  else (never the user's ~/.ssh/known_hosts, never trust on first use).
- Every call runs under a watchdog that closes the connection from outside when its deadline
  passes (paramiko's own timeouts do not stop a stalled transfer, #1380/#1832); the call then
  raises RetriableError and the connection is closed for good.
- Transfers pipeline a bounded number of requests, in this thread, and check every answer.
  paramiko's bounded prefetch (``getfo(max_concurrent_prefetch_requests=...)``) is not used: its
  helper thread races the reader, after which the whole file piles up in memory and reads
  fall back to one round trip each (paramiko PR #2519, reproduced here at 32 and 64 requests),
  and that thread cannot be stopped when the connection dies. paramiko's pipelined writes drop
  the server's late error answers; ours are all read.
- A server that goes silent or hangs up is said to have done so, at the step it did it ("accepted
  the connection but did not answer the SSH handshake within 15 s", "stopped answering during
  log in"), never in paramiko's words ("No existing session"); paramiko's exception is chained.
  paramiko logs each failure of its connection thread as an ERROR traceback; those lines go to
  ``bhhub.connectors.sftp.client.ssh`` and are shown only when it logs at DEBUG.

Log lines name files, sizes and hosts, never contents. An SftpClient is not shared across
threads: open one per worker (a shared paramiko session can deadlock, #1836).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import posixpath
import socket
import stat
import threading
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import paramiko
from paramiko.sftp import (
    CMD_CLOSE, CMD_DATA, CMD_HANDLE, CMD_INIT, CMD_OPEN, CMD_READ, CMD_STATUS, CMD_VERSION, CMD_WRITE,
    SFTP_FLAG_CREATE, SFTP_FLAG_READ, SFTP_FLAG_TRUNC, SFTP_FLAG_WRITE, SFTPError, int64,
)

from bhhub.connectors.sftp.settings import PinnedKey, SftpSettings, check_secret_file
from bhhub.errors import ConfigError, FatalError, HubError, RemoteFileError, RetriableError

log = logging.getLogger(__name__)
SSH_LOG = f"{__name__}.ssh"  # paramiko's own log of each connection


class _DebugOnly(logging.Filter):
    """paramiko's lines are for whoever debugs: the failures they tell are raised as one clear error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno <= logging.DEBUG or logging.getLogger(SSH_LOG).isEnabledFor(logging.DEBUG)


for _name in (SSH_LOG, f"{SSH_LOG}.sftp"):
    logging.getLogger(_name).addFilter(_DebugOnly())

# What paramiko still offers that no current server needs; OpenSSH 9.2 negotiates without them
# (tests/test_sftp_connector.py checks what was negotiated).
DISABLED_ALGORITHMS = {
    "ciphers": ["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"],
    "macs": ["hmac-md5", "hmac-md5-96", "hmac-sha1-96"],
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"],
    "keys": ["ssh-dss", "ssh-rsa"],  # ssh-rsa here is the SHA-1 signature; rsa-sha2-* stay
    "pubkeys": ["ssh-dss", "ssh-rsa"],
}
CHUNK = 32768  # bytes per read or write request: what every SFTP server must accept
CONNECT_STEPS = ("connect", "host key", "log in", "open SFTP")
# How each step reads in "the server at HOST:PORT stopped answering <during ...>".
DURING = {"host key": "during the key exchange", "log in": "during log in",
          "open SFTP": "while opening the SFTP session"}


class HostKeyError(FatalError):
    """The server's host key is not pinned for this mailbox, or it changed."""


class AuthenticationError(FatalError):
    """The server refused the login with the configured credentials."""


class RemoteRefusedError(FatalError):
    """The server refused an operation in a way retrying will not fix."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: int  # epoch seconds


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


@dataclass
class ConnectionReport:
    """What ``bhhub mailbox test NAME`` shows: each step, passed or not, in plain words."""

    ok: bool
    steps: list[tuple[str, bool, str]] = field(default_factory=list)


class SftpClient:
    """One SSH connection; a context manager. Not shared across threads."""

    def __init__(self, settings: SftpSettings):
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self._transport: paramiko.Transport | None = None
        self._sftp: _SFTPClient | None = None
        self._in_use = threading.Lock()

    def __enter__(self) -> "SftpClient":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sftp is not None and self._transport is not None and self._transport.is_active()

    @property
    def server_extensions(self) -> dict[str, bytes]:
        return dict(self._sftp.extensions) if self._sftp else {}

    def connect(self) -> None:
        if self.connected:
            return
        with self._exclusive():
            self._transport, self._sftp = _establish(self.settings)
        log.info("sftp: connected to %s as %s", self.where, self.settings.username)

    def close(self) -> None:
        transport, sftp = self._transport, self._sftp
        self._transport = self._sftp = None
        if sftp is not None:
            try:
                sftp.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
        _close_transport(transport)

    # --- operations ---------------------------------------------------------------------------

    def listdir(self, directory: str) -> list[RemoteFile]:
        """Regular files in ``directory``, sorted by name (folders and links left out)."""
        entries = self._run(f"list {directory}", self.settings.operation_timeout,
                            lambda sftp: sftp.listdir_attr(directory))
        files = [RemoteFile(a.filename, int(a.st_size or 0), int(a.st_mtime or 0)) for a in entries
                 if a.filename not in (".", "..") and (a.st_mode is None or stat.S_ISREG(a.st_mode))]
        return sorted(files, key=lambda f: f.name)

    def stat(self, path: str) -> RemoteFile | None:
        attributes = self._run(f"stat {path}", self.settings.operation_timeout,
                               lambda sftp: self._stat_or_none(sftp, path))
        if attributes is None:
            return None
        return RemoteFile(posixpath.basename(path), int(attributes.st_size or 0), int(attributes.st_mtime or 0))

    def remove(self, path: str) -> None:
        """Remove a file; one that is already gone is not an error."""
        def removing(sftp):
            try:
                sftp.remove(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT or not self.connected:
                    raise
                log.info("sftp: %s was already gone from %s", path, self.where)
        self._run(f"remove {path}", self.settings.operation_timeout, removing)

    def rename(self, source: str, target: str) -> None:
        """Rename without replacing: an existing ``target`` raises RetriableError."""
        def renaming(sftp):
            try:
                sftp.rename(source, target)
            except OSError as exc:
                if self.connected and exc.errno is None and self._stat_or_none(sftp, target) is not None:
                    raise RetriableError(f"cannot rename {source} to {target} on {self.where}: {target} "
                                         f"already exists and is not replaced") from exc
                raise
        self._run(f"rename {source} to {target}", self.settings.operation_timeout, renaming)

    def makedirs(self, directory: str) -> None:
        def making(sftp):
            current = "/" if directory.startswith("/") else ""
            for part in (p for p in directory.split("/") if p and p != "."):
                current = posixpath.join(current, part) if current else part
                found = self._stat_or_none(sftp, current)
                if found is None:
                    try:
                        sftp.mkdir(current)
                    except OSError:
                        found = self._stat_or_none(sftp, current)  # made meanwhile by someone else?
                        if found is None:
                            raise
                if found is not None and not stat.S_ISDIR(found.st_mode or 0):
                    raise RemoteRefusedError(f"{current} on {self.where} exists and is not a folder")
        self._run(f"create folder {directory}", self.settings.operation_timeout, making)

    def upload(self, data: bytes, directory: str, name: str, *, method: str = "rename",
               temp_suffix: str = ".part", confirm: bool = True) -> None:
        """Put ``data`` at ``directory/name`` so the receiver never sees part of it under that name.

        ``rename``: write ``name + temp_suffix``, check its size (``confirm``), then rename it onto
        ``name`` (posix-rename when offered; otherwise an existing ``name`` is never replaced:
        RetriableError). ``direct``: write ``name`` itself, for write-once servers that take a
        file away when it is closed; ``confirm=False`` skips the size check those servers fail.
        """
        if method not in ("rename", "direct"):
            raise ValueError(f"upload method must be 'rename' or 'direct', not {method!r}")
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        if method == "rename" and not temp_suffix:
            raise ValueError("upload method 'rename' needs a temp_suffix")
        final = posixpath.join(directory, name)
        size = len(data)

        def direct(sftp):
            self._write_file(sftp, final, data)
            if confirm:
                self._confirm_size(sftp, final, size, vanished=(
                    f"{final} was gone from {self.where} right after it was written: the server takes files "
                    f"away when they are closed, so it was probably delivered. Set confirm = false for this "
                    f"mailbox's uploads"))

        def via_temporary_name(sftp):
            temporary = final + temp_suffix
            posix = "posix-rename@openssh.com" in sftp.extensions
            if not posix and self._stat_or_none(sftp, final) is not None:
                raise RetriableError(f"{final} already exists on {self.where}, and this server cannot replace a "
                                     f"file atomically; it is not overwritten")
            self._write_file(sftp, temporary, data)
            write_once = (f"{temporary} was gone from {self.where} as soon as it was written: the server takes "
                          f"files away when they are closed (a write-once server), so it may have been delivered "
                          f"under that name. Use upload method \"direct\" with confirm = false for this mailbox")
            if confirm:
                self._confirm_size(sftp, temporary, size, vanished=write_once)
            try:
                (sftp.posix_rename if posix else sftp.rename)(temporary, final)
            except OSError as exc:
                if not self.connected:
                    raise
                if self._stat_or_none(sftp, temporary) is None:
                    raise RemoteRefusedError(write_once) from exc
                self._discard(sftp, temporary)
                if not posix and self._stat_or_none(sftp, final) is not None:
                    raise RetriableError(f"{final} appeared on {self.where} during the upload; it is not "
                                         f"overwritten") from exc
                if exc.errno == errno.EACCES:
                    raise RemoteRefusedError(f"{self.where} does not allow renaming {temporary} to {final} "
                                             f"(permission denied); if the server forbids renames, use upload "
                                             f"method \"direct\"") from exc
                raise

        self._run(f"upload {final}", self.settings.transfer_deadline(size),
                  direct if method == "direct" else via_temporary_name)
        log.info("sftp: uploaded %s to %s (%d bytes, %s)", final, self.where, size, method)

    def download(self, path: str, spool_dir: Path) -> Downloaded:
        """Stream ``path`` into ``spool_dir`` (hashed on the way, fsync'd, renamed when whole).

        Whatever fails, no partial spool file is left. When this file alone is the trouble (the
        server refuses or cannot read it, it is gone, it changes while read, it is larger than
        ``max_download_bytes``) it raises RemoteFileError and the connection stays usable for the
        other files; a failed connection or an unwritable spool raises RetriableError.
        """
        spool_dir = Path(spool_dir)
        partial = None
        try:
            listed = self._run(f"stat {path}", self.settings.operation_timeout, lambda sftp: sftp.stat(path))
            size = int(listed.st_size or 0)
            if size > self.settings.max_download_bytes:
                raise RemoteFileError(f"{path} on {self.where} is {size} bytes, more than max_download_bytes "
                                      f"({self.settings.max_download_bytes}), so it is not fetched; raise "
                                      f"max_download_bytes for this mailbox if files this large are expected")
            spool_dir.mkdir(parents=True, exist_ok=True)
            fd, name = _mkstemp(spool_dir)
            partial = Path(name)
            with os.fdopen(fd, "wb") as out:
                sink = _HashingWriter(out)
                self._run(f"download {path}", self.settings.transfer_deadline(size),
                          lambda sftp: self._read_file(sftp, path, size, sink))
                out.flush()
                os.fsync(out.fileno())
            if sink.size != size:
                raise RemoteFileError(f"download {path}: received {sink.size} bytes but the server listed {size}")
            final = spool_dir / f"{_safe_name(posixpath.basename(path))}.{uuid.uuid4().hex[:12]}"
            os.replace(partial, final)
            partial = None
            _fsync_directory(spool_dir)
        except BaseException as exc:
            if partial is not None:
                partial.unlink(missing_ok=True)
            failure = self._download_failure(path, spool_dir, exc)
            if failure is exc:
                raise
            raise failure from exc
        log.info("sftp: downloaded %s from %s (%d bytes, sha256 %s)", path, self.where, size, sink.hexdigest[:16])
        return Downloaded(final, size, sink.hexdigest)

    def _download_failure(self, path: str, spool_dir: Path, exc: BaseException) -> BaseException:
        """Whose fault a failed download is: the spool's, the connection's, or this one file's."""
        if isinstance(exc, _SpoolUnwritable):
            exc = exc.__cause__
        if isinstance(exc, OSError):  # raised here, never by the server (_run turns those into HubErrors)
            return RetriableError(f"download {path}: cannot write the spool file in {spool_dir} "
                                  f"({exc.strerror or type(exc).__name__})")
        if not isinstance(exc, HubError) or isinstance(exc, RemoteFileError):
            return exc
        if self.connected:  # the server answered and the connection is still good: the file is the trouble
            return RemoteFileError(str(exc))
        return exc if isinstance(exc, RetriableError) else RetriableError(str(exc))

    # --- deadlines and errors -------------------------------------------------------------

    @contextmanager
    def _exclusive(self):
        if not self._in_use.acquire(blocking=False):
            raise RuntimeError("an SftpClient is being used by two threads at once; give each worker its own")
        try:
            yield
        finally:
            self._in_use.release()

    def _run(self, what: str, seconds: float, action: Callable):
        """``action(sftp)`` under a deadline; paramiko's and the socket's errors become the hub's."""
        with self._exclusive():
            if not self.connected:
                raise RetriableError(f"{what}: not connected to {self.where} (the connection was closed)")
            transport = self._transport
            watchdog = _Watchdog(seconds, transport)
            try:
                with watchdog:
                    return action(self._sftp)
            except HubError:
                if watchdog.fired or not transport.is_active():
                    self.close()
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise self._translate(what, exc, watchdog, seconds) from exc

    def _translate(self, what: str, exc: BaseException, watchdog: "_Watchdog", seconds: float) -> HubError:
        if watchdog.fired:
            self.close()
            return RetriableError(f"{what}: the server at {self.where} stopped answering (no answer within "
                                  f"{_seconds(seconds)} s); the connection was closed")
        if not self.connected or not isinstance(exc, OSError):
            transport = self._transport
            why = transport.get_exception() if transport is not None and not transport.is_active() else None
            self.close()
            if _hung_up(why or exc):
                return RetriableError(f"{what}: the server at {self.where} closed the connection")
            return RetriableError(f"{what}: the connection to {self.where} was lost ({_reason(exc)})")
        if exc.errno == errno.EACCES:
            return RemoteRefusedError(f"{what}: {self.where} refused: permission denied")
        if exc.errno == errno.ENOENT:
            return RemoteRefusedError(f"{what}: no such file or folder on {self.where}")
        return RetriableError(f"{what}: {self.where} answered: {_reason(exc)}")

    def _stat_or_none(self, sftp, path: str):
        try:
            return sftp.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT and self.connected:
                return None
            raise

    def _confirm_size(self, sftp, path: str, size: int, *, vanished: str) -> None:
        found = self._stat_or_none(sftp, path)
        if found is None:
            raise RemoteRefusedError(vanished)
        if found.st_size != size:
            raise RetriableError(f"{path} on {self.where} has {found.st_size} bytes after the upload, not {size}")

    def _discard(self, sftp, path: str) -> None:
        try:
            sftp.remove(path)
        except OSError:
            log.info("sftp: could not remove the temporary %s on %s", path, self.where)

    # --- pipelined transfers --------------------------------------------------------------

    def _write_file(self, sftp: "_SFTPClient", path: str, data: bytes) -> None:
        """Write ``data`` with up to ``max_prefetch_requests`` writes in flight; every answer checked."""
        handle = _open_handle(sftp, path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC)
        answers, pending = _Answers(), deque()
        try:
            for offset in range(0, len(data), CHUNK):
                pending.append(sftp._async_request(answers, CMD_WRITE, handle, int64(offset),
                                                   data[offset:offset + CHUNK]))
                if len(pending) >= self.settings.max_prefetch_requests:
                    _expect_ok(sftp, answers, pending.popleft())
            while pending:
                _expect_ok(sftp, answers, pending.popleft())
        except BaseException:
            _close_handle_quietly(sftp, handle)
            raise
        sftp._request(CMD_CLOSE, handle)  # a server may refuse the file only now; that must be seen

    def _read_file(self, sftp: "_SFTPClient", path: str, size: int, sink: "_HashingWriter") -> None:
        """Read ``size`` bytes in order with a bounded window of requests, then make sure that was all."""
        handle = _open_handle(sftp, path, SFTP_FLAG_READ)
        answers, pending = _Answers(), deque()
        requested = 0
        try:
            while True:
                while len(pending) < self.settings.max_prefetch_requests and requested < size:
                    length = min(CHUNK, size - requested)
                    pending.append((_request_read(sftp, answers, handle, requested, length), requested, length))
                    requested += length
                if not pending:
                    break
                number, offset, length = pending.popleft()
                data = _expect_data(sftp, answers, number, path, offset, size)
                sink.write(data)
                while len(data) < length:  # a server may answer with fewer bytes: fetch the rest now
                    offset, length = offset + len(data), length - len(data)
                    data = _expect_data(sftp, answers, _request_read(sftp, answers, handle, offset, length),
                                        path, offset, size)
                    sink.write(data)
            # A file still being written is not taken as complete: nothing may follow the listed size.
            if _expect_data(sftp, answers, _request_read(sftp, answers, handle, size, 1), path, size, size,
                            eof_ok=True):
                raise RetriableError(f"{path} on {self.where} grew during the download (still being written)")
        except BaseException:
            _close_handle_quietly(sftp, handle)
            raise
        sftp._request(CMD_CLOSE, handle)


# --- connecting -------------------------------------------------------------------------------


def _establish(settings: SftpSettings, note: Callable[[str, str], None] = lambda step, message: None):
    """Connect, check the host key, log in, open SFTP; each step bounded, the whole under a watchdog."""
    where = f"{settings.host}:{settings.port}"
    seconds = settings.connect_timeout * len(CONNECT_STEPS)
    watchdog = _Watchdog(seconds, None)
    transport = None
    step = "connect"
    try:
        with watchdog:
            sock = _open_socket(settings)
            watchdog.target = sock
            note(step, f"reached {where}")
            step = "host key"
            transport, offered = _handshake(sock, settings)
            watchdog.target = transport
            note(step, f"the server's {offered.get_name()} key {offered.fingerprint} is pinned")
            step = "log in"
            methods = _authenticate(transport, settings)
            note(step, f"logged in as {settings.username} with {methods}")
            step = "open SFTP"
            sftp = _open_sftp(transport, settings)
            note(step, "SFTP session open")
            if settings.keepalive_interval:
                transport.set_keepalive(settings.keepalive_interval)
            return transport, sftp
    except HubError:
        _close_transport(transport)
        if watchdog.fired:
            raise _stopped_answering(where, step, seconds) from None
        raise
    except (OSError, EOFError, paramiko.SSHException) as exc:
        # paramiko's "SSH session not active" says only that the connection is gone; why is the
        # exception its thread kept
        why = transport.get_exception() if transport is not None and not transport.is_active() else None
        _close_transport(transport)
        if watchdog.fired:
            raise _stopped_answering(where, step, seconds) from exc
        raise _connecting_failure(where, step, why or exc, settings.connect_timeout) from exc


def _stopped_answering(where: str, step: str, seconds: float) -> RetriableError:
    if step == "connect":
        return RetriableError(f"no answer from {where} within {_seconds(seconds)} s")
    return RetriableError(f"the server at {where} stopped answering {DURING[step]} (no answer within "
                          f"{_seconds(seconds)} s)")


def _connecting_failure(where: str, step: str, exc: BaseException, seconds: float) -> RetriableError:
    """What a failed step looked like from here: silence, a hang-up, or the server's own words."""
    if _timed_out(exc):
        return _stopped_answering(where, step, seconds)
    during = f" {DURING[step]}" if step in DURING else ""
    if _hung_up(exc):
        return RetriableError(f"the server at {where} closed the connection{during}")
    return RetriableError(f"connecting to {where} failed{during}: {_reason(exc)}")


def _open_socket(settings: SftpSettings) -> socket.socket:
    where = f"{settings.host}:{settings.port}"
    try:
        return socket.create_connection((settings.host, settings.port), timeout=settings.connect_timeout)
    except socket.gaierror as exc:
        raise RetriableError(f"cannot find the host {settings.host} (name lookup failed: {exc.strerror})") from exc
    except TimeoutError as exc:
        raise RetriableError(f"no answer from {where} within {settings.connect_timeout:.0f} s") from exc
    except OSError as exc:
        raise RetriableError(f"cannot reach {where}: {_reason(exc)}") from exc


def _handshake(sock: socket.socket, settings: SftpSettings) -> tuple[paramiko.Transport, paramiko.PKey]:
    """Key exchange, then the server's key against the pinned ones. Nothing else is trusted."""
    where = f"{settings.host}:{settings.port}"
    pinned = settings.pinned_keys()
    transport = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    transport.set_log_channel(SSH_LOG)
    transport.auth_timeout = transport.channel_timeout = settings.connect_timeout
    # paramiko's own banner and handshake limits outlast ours, so the wait below decides, and
    # can tell a silent server from one that hung up (paramiko reports both as an EOF).
    transport.banner_timeout = transport.handshake_timeout = settings.connect_timeout + 30
    options = transport.get_security_options()
    # Ask only for the kinds of key that are pinned, so a server holding several presents ours.
    pinned_types = {p.key.get_name() for p in pinned}
    wanted = tuple(a for a in options.key_types if _key_type_of(a) in pinned_types)
    if wanted:
        options.key_types = wanted
    done = threading.Event()
    transport.start_client(event=done)
    # paramiko's start_client(timeout=...) returns at its timeout as if all went well, and the
    # next call fails with "No existing session": wait here, and say what happened instead.
    if not done.wait(settings.connect_timeout) or not transport.is_active():
        failure = transport.get_exception()
        greeted = bool(transport.remote_version)
        _close_transport(transport)
        if failure is not None and "host key" in str(failure).lower():
            raise HostKeyError(f"{where} offers none of the pinned kinds of host key ({', '.join(sorted(pinned_types))})"
                               f"; its key may have changed. Ask the clearinghouse for the server's current key "
                               f"fingerprint before pinning another one") from failure
        raise _handshake_failure(where, settings.connect_timeout, greeted, failure) from failure
    offered = transport.get_remote_server_key()
    if not any(p.key.asbytes() == offered.asbytes() for p in pinned):
        _close_transport(transport)
        raise HostKeyError(_host_key_message(where, offered, pinned))
    return transport, offered


def _handshake_failure(where: str, seconds: float, greeted: bool, failure: BaseException | None) -> RetriableError:
    """The SSH handshake did not complete within ``seconds``: silence, a hang-up, or not SSH."""
    silent = failure is None or _timed_out(failure)
    text = str(failure)
    if "Incompatible version" in text or "protocol version" in text or "Invalid SSH banner" in text:
        return RetriableError(f"{where} answered, but not as an SSH 2 server (is the port right?)")
    if not greeted:
        if silent:
            return RetriableError(f"the server at {where} accepted the connection but did not answer the SSH "
                                  f"handshake within {_seconds(seconds)} s")
        if _hung_up(failure):
            return RetriableError(f"the server at {where} accepted the connection but closed it without an SSH "
                                  f"greeting")
    elif silent:
        return RetriableError(f"the server at {where} sent its SSH greeting, then stopped answering during the "
                              f"key exchange (no answer within {_seconds(seconds)} s)")
    elif _hung_up(failure):
        return RetriableError(f"the server at {where} closed the connection during the key exchange")
    return RetriableError(f"the SSH handshake with {where} failed: {_reason(failure)}")


def _key_type_of(algorithm: str) -> str:
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def _host_key_message(where: str, offered: paramiko.PKey, pinned: list[PinnedKey]) -> str:
    said = f"the SFTP server at {where} presented the {offered.get_name()} host key {offered.fingerprint}"
    if any(p.key.get_name() == offered.get_name() for p in pinned):
        known = ", ".join(p.key.fingerprint for p in pinned if p.key.get_name() == offered.get_name())
        return (f"{said}, not the pinned {known}: the server's key has CHANGED. Do not connect until the "
                f"clearinghouse confirms the new fingerprint (someone may be intercepting the connection); "
                f"then replace the key in this mailbox's known_hosts")
    return (f"{said}, which is not pinned in this mailbox's known_hosts. Confirm that fingerprint with the "
            f"clearinghouse (not from the server itself), then add the key to known_hosts")


def _authenticate(transport: paramiko.Transport, settings: SftpSettings) -> str:
    where = f"{settings.host}:{settings.port}"
    key = _load_key(settings) if settings.key_file else None
    password = settings.password()
    tried = []
    if key is not None:
        tried.append("public key")
        try:
            transport.auth_publickey(settings.username, key)
        except paramiko.AuthenticationException as exc:
            _raise_if_lost(transport, exc, where, settings.connect_timeout)
    if not transport.is_authenticated() and password is not None:
        tried.append("password")
        try:
            transport.auth_password(settings.username, password)
        except paramiko.AuthenticationException as exc:
            _raise_if_lost(transport, exc, where, settings.connect_timeout)
    if not transport.is_authenticated():
        raise AuthenticationError(f"{where} refused the login of user {settings.username} (tried "
                                  f"{' and '.join(tried)}); check this mailbox's credentials")
    return " and ".join(tried)


def _raise_if_lost(transport: paramiko.Transport, exc: Exception, where: str, seconds: float) -> None:
    """A refusal is the caller's to report; a silent or vanished server is said as such."""
    if not transport.is_active() or _timed_out(exc):
        raise _connecting_failure(where, "log in", exc, seconds) from exc


def _load_key(settings: SftpSettings) -> paramiko.PKey:
    check_secret_file(settings.key_file, f"key_file for {settings.host}")
    passphrase = settings.key_passphrase()
    try:
        # paramiko hands the passphrase to cryptography, which wants bytes
        return paramiko.PKey.from_path(settings.key_file, password=passphrase.encode() if passphrase else None)
    except paramiko.PasswordRequiredException as exc:
        raise ConfigError(f"the key_file {settings.key_file} needs a passphrase: set key_passphrase_env") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the key_file {settings.key_file}: {exc.strerror}") from exc
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot load the key_file {settings.key_file} (wrong passphrase or not a private "
                          f"key): {type(exc).__name__}") from exc


def _open_sftp(transport: paramiko.Transport, settings: SftpSettings) -> "_SFTPClient":
    channel = transport.open_session(timeout=settings.connect_timeout)
    channel.settimeout(settings.connect_timeout)  # the SFTP version exchange has no limit of its own
    channel.invoke_subsystem("sftp")
    sftp = _SFTPClient(channel)
    channel.settimeout(None)  # from here each call has its own deadline (the watchdog)
    return sftp


def _close_transport(transport: paramiko.Transport | None) -> None:
    if transport is None:
        return
    transport.close()
    if transport is not threading.current_thread():
        transport.join(timeout=5)


class _SFTPClient(paramiko.SFTPClient):
    """paramiko's client, remembering the extensions the server announces (posix-rename)."""

    extensions: dict[str, bytes]

    def _send_version(self):
        init = paramiko.Message()
        init.add_int(3)
        self._send_packet(CMD_INIT, init)
        kind, data = self._read_packet()
        if kind != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        reply = paramiko.Message(data)
        version = reply.get_int()
        self.extensions = {}
        while reply.get_remainder():
            name = reply.get_text()
            self.extensions[name] = reply.get_binary()
        return version


class _Watchdog:
    """Closes ``target`` (a socket or Transport) from another thread when ``seconds`` pass."""

    def __init__(self, seconds: float, target):
        self.seconds, self.target, self.fired = seconds, target, False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        target = self.target
        if isinstance(target, socket.socket):
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if target is not None:
            target.close()

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._timer.join()  # if it fired, wait until the close is done: no thread outlives the call


# --- the SFTP requests themselves (paramiko's request plumbing, answers read in this thread) ----


class _Answers:
    """Where paramiko hands the answers to our pipelined requests, by request number."""

    def __init__(self):
        self.by_number: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        self.by_number[number] = (kind, message)


def _await(sftp: _SFTPClient, answers: _Answers, number: int) -> tuple[int, paramiko.Message]:
    while number not in answers.by_number:
        sftp._read_response()  # reads one answer and hands it to whoever asked
    return answers.by_number.pop(number)


def _open_handle(sftp: _SFTPClient, path: str, flags: int) -> bytes:
    kind, message = sftp._request(CMD_OPEN, path, flags, paramiko.SFTPAttributes())
    if kind != CMD_HANDLE:
        raise SFTPError("Expected handle")
    return message.get_binary()


def _close_handle_quietly(sftp: _SFTPClient, handle: bytes) -> None:
    try:
        sftp._request(CMD_CLOSE, handle)
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the connection is what failed; the first error is the one to report


def _request_read(sftp: _SFTPClient, answers: _Answers, handle: bytes, offset: int, length: int) -> int:
    return sftp._async_request(answers, CMD_READ, handle, int64(offset), int(length))


def _expect_ok(sftp: _SFTPClient, answers: _Answers, number: int) -> None:
    kind, message = _await(sftp, answers, number)
    if kind != CMD_STATUS:
        raise SFTPError("Expected status")
    sftp._convert_status(message)  # raises on anything but OK


def _expect_data(sftp: _SFTPClient, answers: _Answers, number: int, path: str, offset: int, size: int,
                 eof_ok: bool = False) -> bytes:
    kind, message = _await(sftp, answers, number)
    if kind == CMD_DATA:
        return message.get_string()
    if kind != CMD_STATUS:
        raise SFTPError("Expected data")
    try:
        sftp._convert_status(message)
    except EOFError:
        if eof_ok:
            return b""
        raise RetriableError(f"{path} ended after {offset} bytes although {size} were listed (it is changing)") from None
    raise SFTPError("Expected data")


class _SpoolUnwritable(Exception):
    """Writing the local spool file failed (the OSError is its cause). Not an OSError, so that it
    is never taken for the server's answer on its way out of a transfer."""


class _HashingWriter:
    """A file-like sink that hashes and counts what it writes."""

    def __init__(self, out):
        self.out, self.size, self._sha256 = out, 0, hashlib.sha256()

    def write(self, data: bytes) -> int:
        try:
            self.out.write(data)
        except OSError as exc:
            raise _SpoolUnwritable() from exc
        self._sha256.update(data)
        self.size += len(data)
        return len(data)

    @property
    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def _mkstemp(directory: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(dir=directory, prefix=".download-", suffix=".part")


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".")
    return cleaned[:100] or "download"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _seconds(seconds: float) -> str:
    return f"{round(seconds, 1):g}"


def _causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and what it was raised from or during, in order."""
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _timed_out(exc: BaseException | None) -> bool:
    """The other end said nothing in time (paramiko words it as a timeout somewhere in the chain)."""
    return any(isinstance(e, TimeoutError) or "timeout" in str(e).lower() or "timed out" in str(e).lower()
               for e in _causes(exc))


def _hung_up(exc: BaseException | None) -> bool:
    """The other end closed the connection (an EOF or reset, in paramiko's many words for it)."""
    words = ("connection dropped", "saw eof", "eof during negotiation", "channel closed")
    return any(isinstance(e, (EOFError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError))
               or any(w in str(e).lower() for w in words) for e in _causes(exc))


# --- test_connection --------------------------------------------------------------------------


def test_connection(settings: SftpSettings, directories: Sequence[str] = ()) -> ConnectionReport:
    """Connect, check the host key, log in and list each directory, saying what passed and what not."""
    report = ConnectionReport(ok=True)
    done: list[str] = []

    def note(step: str, message: str) -> None:
        done.append(step)
        report.steps.append((step, True, message))

    try:
        transport, sftp = _establish(settings, note)
    except HubError as exc:
        failed = next(step for step in CONNECT_STEPS if step not in done)
        report.ok = False
        report.steps.append((failed, False, str(exc)))
        return report
    client = SftpClient(settings)
    client._transport, client._sftp = transport, sftp
    with client:
        for directory in directories:
            try:
                files = client.listdir(directory)
            except HubError as exc:
                report.ok = False
                report.steps.append((f"list {directory}", False, str(exc)))
                if not client.connected:
                    break
            else:
                report.steps.append((f"list {directory}", True, f"{len(files)} files in {directory}"))
    return report


test_connection.__test__ = False  # not a pytest test, whatever its name
