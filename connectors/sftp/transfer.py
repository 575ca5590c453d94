"""Moving a file's bytes over an open SFTP session: pipelined reads and writes, every answer read.

Transfers pipeline a bounded number of requests (a mailbox's ``max_prefetch_requests``), in the
caller's thread, and check every answer. paramiko's bounded prefetch
(``getfo(max_concurrent_prefetch_requests=...)``) is not used: its helper thread races the
reader, after which the whole file piles up in memory and reads fall back to one round trip
each (paramiko PR #2519, reproduced here at 32 and 64 requests), and that thread cannot be
stopped when the connection dies. paramiko's pipelined writes drop the server's late error
answers; ours are all read. The deadline of a transfer is the caller's
(``bhhub.connectors.sftp.client``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import (
    CMD_CLOSE, CMD_DATA, CMD_HANDLE, CMD_OPEN, CMD_READ, CMD_STATUS, CMD_WRITE, SFTP_FLAG_CREATE, SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC, SFTP_FLAG_WRITE, SFTPError, int64,
)

from bhhub.errors import RetriableError

if TYPE_CHECKING:
    from bhhub.connectors.sftp.connection import SFTPSession

CHUNK = 32768  # bytes per read or write request: what every SFTP server must accept


def write_file(sftp: SFTPSession, path: str, data: bytes, window: int) -> None:
    """Write ``data`` with up to ``window`` writes in flight; every answer checked."""
    handle = _open_handle(sftp, path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC)
    answers, pending = _Answers(), deque()
    try:
        for offset in range(0, len(data), CHUNK):
            pending.append(sftp._async_request(answers, CMD_WRITE, handle, int64(offset),
                                               data[offset:offset + CHUNK]))
            if len(pending) >= window:
                _expect_ok(sftp, answers, pending.popleft())
        while pending:
            _expect_ok(sftp, answers, pending.popleft())
    except BaseException:
        _close_handle_quietly(sftp, handle)
        raise
    sftp._request(CMD_CLOSE, handle)  # a server may refuse the file only now; that must be seen

def read_file(sftp: SFTPSession, path: str, size: int, sink, window: int, where: str) -> None:
    """Read ``size`` bytes in order into ``sink`` (its ``write``) with up to ``window`` requests in
    flight, then make sure that was all (``where``: the server, as errors name it)."""
    handle = _open_handle(sftp, path, SFTP_FLAG_READ)
    answers, pending = _Answers(), deque()
    requested = 0
    try:
        while True:
            while len(pending) < window and requested < size:
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
            raise RetriableError(f"{path} on {where} grew during the download (still being written)")
    except BaseException:
        _close_handle_quietly(sftp, handle)
        raise
    sftp._request(CMD_CLOSE, handle)


# --- the SFTP requests themselves (paramiko's request plumbing, answers read in this thread) ---


class _Answers:
    """Where paramiko hands the answers to our pipelined requests, by request number."""

    def __init__(self):
        self.by_number: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        self.by_number[number] = (kind, message)


def _await(sftp: SFTPSession, answers: _Answers, number: int) -> tuple[int, paramiko.Message]:
    while number not in answers.by_number:
        sftp._read_response()  # reads one answer and hands it to whoever asked
    return answers.by_number.pop(number)


def _open_handle(sftp: SFTPSession, path: str, flags: int) -> bytes:
    kind, message = sftp._request(CMD_OPEN, path, flags, paramiko.SFTPAttributes())
    if kind != CMD_HANDLE:
        raise SFTPError("Expected handle")
    return message.get_binary()


def _close_handle_quietly(sftp: SFTPSession, handle: bytes) -> None:
    try:
        sftp._request(CMD_CLOSE, handle)
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the connection is what failed; the first error is the one to report


def _request_read(sftp: SFTPSession, answers: _Answers, handle: bytes, offset: int, length: int) -> int:
    return sftp._async_request(answers, CMD_READ, handle, int64(offset), int(length))


def _expect_ok(sftp: SFTPSession, answers: _Answers, number: int) -> None:
    kind, message = _await(sftp, answers, number)
    if kind != CMD_STATUS:
        raise SFTPError("Expected status")
    sftp._convert_status(message)  # raises on anything but OK


def _expect_data(sftp: SFTPSession, answers: _Answers, number: int, path: str, offset: int, size: int,
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
