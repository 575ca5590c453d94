"""The hub's home and what it writes are its owner's only (issue 13, item 8).

The store, the raw inbound files and the 837Ps hold PHI; on a shared practice server another
login must not read them, whatever umask the shell that ran bhhub had.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def _bhhub(home: Path, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    code = f"import os, sys; os.umask({umask}); from bhhub.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300)


def _open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            found.append(f"{path.relative_to(root.parent)} {oct(stat.S_IMODE(path.stat().st_mode))}")
    return found


def test_a_new_home_and_everything_the_demo_writes_in_it_is_the_owners_only(tmp_path):
    home = tmp_path / "home"
    done = _bhhub(home, "demo")
    assert done.returncode == 0, done.stderr
    assert list(home.rglob("bhhub.db")) and list(home.rglob("*.x12"))
    assert _open_to_others(home) == []


def test_an_existing_home_and_store_open_to_others_are_tightened(tmp_path):
    home = tmp_path / "home"
    assert _bhhub(home, "init").returncode == 0
    os.chmod(home, 0o755)
    os.chmod(home / "bhhub.db", 0o644)
    done = _bhhub(home, "claims")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "bhhub.db").stat().st_mode) == 0o600


def test_a_hub_opened_as_a_library_keeps_its_store_private(tmp_path):
    # A plugin or script opens the hub without the CLI (so without its umask).
    from bhhub.runtime.app import Hub

    old = os.umask(0o022)
    try:
        with Hub.open(tmp_path / "lib-home", create=True) as hub:
            with hub.store.session() as session:
                session.connection().exec_driver_sql("select 1")
    finally:
        os.umask(old)
    home = tmp_path / "lib-home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "bhhub.db").stat().st_mode) == 0o600


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to act as another user")
def test_another_user_cannot_read_the_store():
    # Not under pytest's tmp_path: its parents are closed to others already, which would hide a bug.
    parent = Path(tempfile.mkdtemp(prefix="bhhub-private-"))
    try:
        os.chmod(parent, 0o755)
        control = parent / "control.txt"
        control.write_text("readable")
        os.chmod(control, 0o644)
        home = parent / "home"
        assert _bhhub(home, "init").returncode == 0

        def as_nobody(path: Path) -> int:
            return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(path)],
                                  capture_output=True, timeout=30).returncode

        assert as_nobody(control) == 0  # the check itself can read what is open to others
        assert as_nobody(home / "bhhub.db") != 0
    finally:
        shutil.rmtree(parent, ignore_errors=True)
