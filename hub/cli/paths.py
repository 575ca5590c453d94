"""Checking the paths a person gives on the command line, before any work is done.

Used as argparse ``type=`` functions, so a wrong path is a usage error (exit code 2) in one line,
raised before a claim is batched or a file is written: ``--out`` naming a folder where a file is
wanted, or a file where a folder is, or a place whose folder does not exist.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def output_file(text: str) -> str:
    """``--out FILE``: a file to write, in a folder that exists (returned as given). Whether an
    existing file may be replaced is the command's to say."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write, e.g. {path / 'batch.x12'}")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {parent} {what}")
    return text


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
