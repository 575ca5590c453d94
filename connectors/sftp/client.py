"""One SFTP connection to a clearinghouse mailbox, and what the hub does in it: list, stat, remove,
rename, create folders, upload atomically, download into the spool.

    HubError
     ├── RetriableError          no answer in time, connection lost, server busy, spool unwritable
     │    └── RemoteFileError    one file cannot be fetched (refused, gone, unreadable, changing,
     │                           larger than max_download_bytes); the connection goes on
     └── FatalError
          ├── HostKeyError        the server's key is not pinned, or changed          (connection)
          ├── AuthenticationError the server refused the login                        (connection)
          ├── RemoteRefusedError  permission denied, no such folder, a write-once server
          └── ConfigError         missing password variable or file, unreadable key, a secret
                                  file other users can read

The SFTP transport is three modules: this one (``SftpClient``'s mailbox operations, each under a
deadline, and ``test_connection``); ``bhhub.connectors.sftp.connection`` (connecting, the pinned
host key, logging in, the watchdog that enforces deadlines, how a failed step is worded);
``bhhub.connectors.sftp.transfer`` (the pipelined reads and writes of a file's bytes).

- Every call runs under a watchdog that closes the connection from outside when its deadline
  passes (paramiko's own timeouts do not stop a stalled transfer, #1380/#1832); the call then
  raises RetriableError and the connection is closed for good.
- paramiko logs each failure of its connection thread as an ERROR traceback; those lines go to
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
import stat
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import paramiko

from bhhub.connectors.sftp.connection import (
    CONNECT_STEPS, SFTPSession, Watchdog, close_transport, establish, hung_up, in_seconds, reason_of,
)
from bhhub.connectors.sftp.settings import SftpSettings
from bhhub.connectors.sftp.transfer import read_file, write_file
from bhhub.errors import FatalError, HubError, RemoteFileError, RetriableError

log = logging.getLogger(__name__)


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
        self._sftp: SFTPSession | None = None
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
            self._transport, self._sftp = establish(self.settings)
        log.info("sftp: connected to %s as %s", self.where, self.settings.username)

    def close(self) -> None:
        transport, sftp = self._transport, self._sftp
        self._transport = self._sftp = None
        if sftp is not None:
            try:
                sftp.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
        close_transport(transport)

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
            write_file(sftp, final, data, self.settings.max_prefetch_requests)
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
            write_file(sftp, temporary, data, self.settings.max_prefetch_requests)
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
                          lambda sftp: read_file(sftp, path, size, sink, self.settings.max_prefetch_requests,
                                                    self.where))
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
            watchdog = Watchdog(seconds, transport)
            try:
                with watchdog:
                    return action(self._sftp)
            except HubError:
                if watchdog.fired or not transport.is_active():
                    self.close()
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise self._translate(what, exc, watchdog, seconds) from exc

    def _translate(self, what: str, exc: BaseException, watchdog: "Watchdog", seconds: float) -> HubError:
        if watchdog.fired:
            self.close()
            return RetriableError(f"{what}: the server at {self.where} stopped answering (no answer within "
                                  f"{in_seconds(seconds)} s); the connection was closed")
        if not self.connected or not isinstance(exc, OSError):
            transport = self._transport
            why = transport.get_exception() if transport is not None and not transport.is_active() else None
            self.close()
            if hung_up(why or exc):
                return RetriableError(f"{what}: the server at {self.where} closed the connection")
            return RetriableError(f"{what}: the connection to {self.where} was lost ({reason_of(exc)})")
        if exc.errno == errno.EACCES:
            return RemoteRefusedError(f"{what}: {self.where} refused: permission denied")
        if exc.errno == errno.ENOENT:
            return RemoteRefusedError(f"{what}: no such file or folder on {self.where}")
        return RetriableError(f"{what}: {self.where} answered: {reason_of(exc)}")

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


# --- the spool --------------------------------------------------------------------------------


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


# --- test_connection --------------------------------------------------------------------------


def test_connection(settings: SftpSettings, directories: Sequence[str] = ()) -> ConnectionReport:
    """Connect, check the host key, log in and list each directory, saying what passed and what not."""
    report = ConnectionReport(ok=True)
    done: list[str] = []

    def note(step: str, message: str) -> None:
        done.append(step)
        report.steps.append((step, True, message))

    try:
        transport, sftp = establish(settings, note)
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
