"""Checking the paths a person gives on the command line, before any work is done.

Used as argparse ``type=`` functions, so a wrong path is a usage error (exit code 2) in one line,
raised before anything is written: ``--out`` naming a file where a folder is wanted. (An 837P's
``--out FILE`` is checked by the export itself, before any claim changes: ``hub.batches``
refuses a folder, a device, a FIFO, a socket or a symbolic link even with ``--force``.)

A file a command reads must be a regular file (``input_file``): reading a FIFO blocks until
someone writes to it, and a device such as /dev/zero never ends (it would fill the spool).
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

from hub.errors import UsageError


def output_folder(text: str) -> str:
    """``--out DIR``: a folder (made when missing) to write into (returned as given)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; name a folder to write into")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"cannot write into {text}: {parent} is a file, not a folder")
            break
    return text


def input_file(path: str | os.PathLike[str], *, folder_ok: bool = False) -> None:
    """Refuse (UsageError, exit 2, before anything is read or stored) a named input that is there
    and is not a regular file (a link is followed to what it names): a FIFO, a socket, a device,
    or a folder unless ``folder_ok``. A missing file is left to the reader, which says so."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            raise UsageError(f"{os.fspath(path)} is {kind}, not a regular file: nothing was read; name a file")
    raise UsageError(f"{os.fspath(path)} is not a regular file: nothing was read; name a file")
