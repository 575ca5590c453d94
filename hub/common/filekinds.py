"""What is at a path a person named, when it is not a plain file: one rule for reading and writing.

Reading a FIFO blocks until someone writes to it and a device such as /dev/zero never ends (it
would fill the spool); writing "over" a device, a FIFO or a link by rename replaces it. So a file
the hub reads or writes on a person's word must be a regular file. Used by the CLI's path checks
(``bhhub.cli.paths``), the CSV imports (``bhhub.ledger.csvfile``) and the 837P export (``bhhub.claims.export_file``).
"""

from __future__ import annotations

import os
import stat

from bhhub.errors import UsageError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def not_a_file(path: str | os.PathLike[str], *, follow_links: bool) -> str | None:
    """What is at ``path`` when it is there and not a regular file ("a FIFO (named pipe)", ...),
    else None (a regular file, or nothing there: the reader or writer then says why). Without
    ``follow_links`` a symbolic link is named as one rather than followed."""
    try:
        mode = (os.stat if follow_links else os.lstat)(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def input_file(path: str | os.PathLike[str], *, folder_ok: bool = False) -> None:
    """Refuse (UsageError, exit 2, before anything is read or stored) a named input that is there
    and is not a regular file (a link is followed to what it names): a FIFO, a socket, a device,
    or a folder unless ``folder_ok``. A missing file is left to the reader, which says so."""
    kind = not_a_file(path, follow_links=True)
    if kind is None or (folder_ok and kind == "a folder"):
        return
    if kind == "not a regular file":
        raise UsageError(f"{os.fspath(path)} is not a regular file: nothing was read; name a file")
    raise UsageError(f"{os.fspath(path)} is {kind}, not a regular file: nothing was read; name a file")
