"""The folder ``bhhub.connectors.sftp.testserver``'s SFTP server serves: what a client may reach
in it, and the misbehaviours of a file's handling.

Paths are confined to the root: ``..`` cannot climb out of it, symbolic links leading outside are
refused, and relative paths start at the root (as OpenSSH's ``internal-sftp -d`` does); the
hidden ``moved_dir`` is invisible. A file whose owner may not read (or write) it cannot be opened
for that, even when the tests run as root. The server's file-level misbehaviours are carried
out here (``move_on_close``, ``refuse_rename``, ``stall_after_bytes``, ``fail_remove``,
``fail_reads``, each read at each request), and ``on_file_ready`` is called from here once a
file is in place; ``bhhub.connectors.sftp.testserver`` describes them.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_OP_UNSUPPORTED, SFTP_PERMISSION_DENIED

if TYPE_CHECKING:
    from bhhub.connectors.sftp.testserver import SftpTestServer, _Login

log = logging.getLogger("bhhub.connectors.sftp.testserver")  # the test server's lines, under one name


class _Outside(Exception):
    """A path that leads out of the served root."""


class ServedFolder(paramiko.SFTPServerInterface):
    """The served root as the client sees it: ``/`` is the root, ``moved_dir`` is invisible."""

    def __init__(self, login: "_Login", test_server: "SftpTestServer"):
        super().__init__(login)
        self.test = test_server
        self.root = os.path.realpath(test_server.root)

    def _local(self, path: str) -> str:
        virtual = posixpath.normpath(posixpath.join("/", path))  # ".." stops at the root
        local = os.path.join(self.root, virtual.lstrip("/"))
        real = os.path.realpath(local)
        if os.path.commonpath([real, self.root]) != self.root:
            raise _Outside(path)
        moved = os.path.realpath(self.test.moved_dir)
        if moved != self.root and os.path.commonpath([real, moved]) == moved:
            raise FileNotFoundError(errno.ENOENT, "no such file")
        return local

    def _call(self, action, path: str, *more: str):
        """Run ``action`` on local paths, turning refusals into SFTP status codes."""
        try:
            return action(self._local(path), *(self._local(p) for p in more))
        except _Outside:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def canonicalize(self, path):
        return posixpath.normpath(posixpath.join("/", path))

    def session_ended(self):
        pass

    def list_folder(self, path):
        def listing(local):
            entries = []
            moved = os.path.realpath(self.test.moved_dir)
            for entry in os.scandir(local):
                if os.path.realpath(entry.path) == moved:
                    continue
                attributes = paramiko.SFTPAttributes.from_stat(entry.stat(follow_symlinks=False), entry.name)
                entries.append(attributes)
            return entries
        return self._call(listing, path)

    def stat(self, path):
        return self._call(lambda local: paramiko.SFTPAttributes.from_stat(os.stat(local),
                                                                           posixpath.basename(path)), path)

    def lstat(self, path):
        return self._call(lambda local: paramiko.SFTPAttributes.from_stat(os.lstat(local),
                                                                           posixpath.basename(path)), path)

    def open(self, path, flags, attr):
        def opening(local):
            mode = attr.st_mode if attr is not None and attr.st_mode is not None else 0o644
            fd = os.open(local, flags | getattr(os, "O_NOFOLLOW", 0), stat.S_IMODE(mode) or 0o644)
            found = os.fstat(fd).st_mode
            if stat.S_ISDIR(found):
                os.close(fd)
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            # as the file's owner sees it, not root: a mode-000 file cannot be read here either
            writing = flags & (os.O_WRONLY | os.O_RDWR)
            reading = not flags & os.O_WRONLY
            if (reading and not found & stat.S_IRUSR) or (writing and not found & stat.S_IWUSR):
                os.close(fd)
                raise PermissionError(errno.EACCES, "permission denied")
            return _Handle(fd, flags, local, self.test)
        return self._call(opening, path)

    def remove(self, path):
        if self.test.fail_remove:
            return SFTP_PERMISSION_DENIED
        return self._call(lambda local: os.remove(local) or SFTP_OK, path)

    def rename(self, oldpath, newpath):
        """The SFTP draft's rename: refuses to replace an existing target."""
        if self.test.refuse_rename:
            return SFTP_PERMISSION_DENIED

        def renaming(old, new):
            if os.path.isdir(old):
                if os.path.lexists(new):
                    return SFTP_FAILURE
                os.rename(old, new)
            else:
                os.link(old, new, follow_symlinks=False)  # fails if the target exists: atomic
                os.unlink(old)
                self.test._file_ready(new)
            return SFTP_OK
        return self._call(renaming, oldpath, newpath)

    def posix_rename(self, oldpath, newpath):
        if not self.test.offer_posix_rename:
            return SFTP_OP_UNSUPPORTED
        if self.test.refuse_rename:
            return SFTP_PERMISSION_DENIED

        def replacing(old, new):
            os.replace(old, new)
            self.test._file_ready(new)
            return SFTP_OK
        return self._call(replacing, oldpath, newpath)

    def mkdir(self, path, attr):
        mode = attr.st_mode if attr is not None and attr.st_mode is not None else 0o755
        return self._call(lambda local: os.mkdir(local, stat.S_IMODE(mode) or 0o755) or SFTP_OK, path)

    def rmdir(self, path):
        return self._call(lambda local: os.rmdir(local) or SFTP_OK, path)

    def chattr(self, path, attr):
        return self._call(lambda local: _apply_attributes(local, attr), path)

    def readlink(self, path):
        return SFTP_OP_UNSUPPORTED

    def symlink(self, target_path, path):
        return SFTP_OP_UNSUPPORTED


def _apply_attributes(target, attr) -> int:
    """chmod, utime and truncate (``target`` is a path or a file descriptor); no chown."""
    if attr._flags & attr.FLAG_PERMISSIONS and attr.st_mode is not None:
        os.chmod(target, stat.S_IMODE(attr.st_mode))
    if attr._flags & attr.FLAG_AMTIME:
        os.utime(target, (attr.st_atime, attr.st_mtime))
    if attr._flags & attr.FLAG_SIZE:
        os.truncate(target, attr.st_size)
    return SFTP_OK


class _Handle(paramiko.SFTPHandle):
    def __init__(self, fd: int, flags: int, local: str, test_server: "SftpTestServer"):
        super().__init__(flags)
        self.fd, self.local, self.test = fd, local, test_server
        self.writable = bool(flags & (os.O_WRONLY | os.O_RDWR))
        self.transferred = 0
        self.closed = False

    def _stall_if_due(self, size: int) -> bool:
        limit = self.test.stall_after_bytes
        if limit is not None and self.transferred + size > limit:
            session = threading.current_thread()
            channel = getattr(session, "channel", None)
            if channel is not None:
                self.test._wait_while_stalled(channel)
            return True
        return False

    def read(self, offset, length):
        if self._stall_if_due(length):
            return SFTP_FAILURE
        failing_after = self.test.fail_reads.get(os.path.basename(self.local))
        if failing_after is not None and offset + length > failing_after:
            return SFTP_FAILURE  # what OpenSSH answers for EIO
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        self.transferred += len(data)
        return data

    def write(self, offset, data):
        if self._stall_if_due(len(data)):
            return SFTP_FAILURE
        try:
            view = memoryview(data)
            while view:
                written = os.pwrite(self.fd, view, offset)
                view, offset = view[written:], offset + written
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        self.transferred += len(data)
        return SFTP_OK

    def stat(self):
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr):
        try:
            return _apply_attributes(self.fd, attr)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def close(self):
        if self.closed:
            return
        self.closed = True
        os.close(self.fd)
        if self.writable and self.test.move_on_close:
            self._move_away()
        elif self.writable:
            self.test._file_ready(self.local)

    def _move_away(self) -> None:
        """As a write-once server does: the closed file leaves the mailbox at once."""
        relative = os.path.relpath(self.local, os.path.realpath(self.test.root))
        target = Path(self.test.moved_dir) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        candidate, n = target, 1
        while candidate.exists():
            candidate, n = target.with_name(f"{target.name}.{n}"), n + 1
        try:
            os.replace(self.local, candidate)
        except OSError:
            log.warning("test server could not move a closed file away")
