"""Checking the paths a person gives on the command line, before any work is done.

Used as argparse ``type=`` functions, so a wrong path is a usage error (exit code 2) in one line,
raised before anything is written: ``--out`` naming a file where a folder is wanted. (An 837P's
``--out FILE`` is checked by the export itself, before any claim changes: ``bhhub.claims.export_file``
refuses a folder, a device, a FIFO, a socket or a symbolic link even with ``--force``.)

A file a command reads must be a regular file (``input_file``, from ``bhhub.common.filekinds``).
"""

from __future__ import annotations

import argparse
from pathlib import Path



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
