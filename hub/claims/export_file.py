"""The file an 837P export writes (``--out``): what it may be, and how it is put there all or nothing.

- ``file_to_write``: ``--out`` naming anything but a regular file (a folder, a symbolic link, a
  device, a FIFO, a socket: even with ``force``), or one of the hub's own files (anything in the
  home but ``<home>/batches/``, the SQLite store and its journal and lock files, every file
  bhhub.toml names: even with ``force``), is refused before any claim changes state.
- ``stage``: the bytes written and fsynced to a hidden temporary file beside ``--out`` (same
  folder, so the rename is atomic); ``place`` then gives it its name (never over an existing
  file unless ``force``, and never over anything but a regular file) and fsyncs the folder;
  ``forget_staged`` removes what a killed export left. The export's order of these steps and the
  store's commit is ``bhhub.claims.export``'s.
"""

from __future__ import annotations

import os
import tempfile
from glob import escape as glob_escape
from pathlib import Path

from bhhub.common.filekinds import not_a_file
from bhhub.errors import InputError, UsageError


def file_to_write(out: Path, hub=None) -> Path:
    """``out`` as a file the export may create, or a UsageError saying why not (nothing changed yet)."""
    out = Path(out)
    if hub is not None:
        mine = _hub_own_file(hub, out)
        if mine is not None:  # --force would replace the store, the config or a raw file with an 837P
            raise UsageError(f"--out {out} is {mine}; it is never written over, even with --force: "
                             f"name a file outside the hub home (or in {hub.settings.batches_dir})")
    kind = _not_a_file(out)
    if kind == "a folder":
        raise UsageError(f"--out {out} is a folder; name the file to write in it, e.g. {out / 'batch-0001.x12'}")
    if kind is not None:  # --force replaces a file; a rename over a device or a link would replace it
        raise UsageError(f"--out {out} is {kind}, not a regular file; it is never written over, even with --force: "
                         "name a file")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--out {out}: {parent} is a file, not a folder")
            break
    return out


def _not_a_file(path: Path) -> str | None:
    """What is at ``path`` when it is there and not a regular file, else None. A symbolic link is
    named as one, not followed: writing "through" it by rename would replace the link itself, and
    a link may point anywhere (/dev/sda)."""
    return not_a_file(path, follow_links=False)


def _hub_own_file(hub, out: Path) -> str | None:
    """What of the hub's own ``out`` is or lies in ("inside the hub home ..."), else None.

    The whole home is the hub's (store, bhhub.toml, locks, spool/, raw files, mappings/, a demo
    hub) except ``<home>/batches/``, kept for 837Ps; so are a SQLite store kept elsewhere with its
    -wal/-journal/-shm and lock files beside it, and the secret files bhhub.toml names."""
    target = _resolved(out)
    home = _resolved(hub.settings.home)
    if target.is_relative_to(home) and not target.is_relative_to(_resolved(hub.settings.batches_dir)):
        return f"inside the hub home {home}"
    database = _sqlite_file(hub.settings.database_url)
    if database is not None:
        database = _resolved(database)
        if target.parent == database.parent and (
                target.name == database.name or target.name.startswith((f"{database.name}-", f"{database.name}."))):
            return "the hub's store (or its journal or lock file)"
    for key, named in _named_files(hub.settings.raw):
        if _same_file(out, Path(named).expanduser()):
            return f"the file bhhub.toml names as {key}"
    return None


def _resolved(path: Path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a link loop: compared as written
        return Path(os.path.abspath(Path(path).expanduser()))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there (yet): compare where they would be
        return _resolved(a) == _resolved(b)


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a URL the store itself will refuse, with its own message
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _named_files(table, where: str = ""):
    """(dotted key, path) of every ``*_file`` / ``*_path`` value in bhhub.toml (secrets, CA files)."""
    if isinstance(table, dict):
        for key, value in table.items():
            dotted = f"{where}.{key}" if where else str(key)
            if isinstance(value, str) and str(key).endswith(("_file", "_path")):
                yield dotted, value
            else:
                yield from _named_files(value, dotted)
    elif isinstance(table, list):
        for item in table:
            yield from _named_files(item, where)


class NotAFile(FileExistsError):
    """A name taken, between the check and the rename, by something that is not a regular file."""


_STAGED = ".partial"


def stage(path: Path, content: bytes) -> Path:
    """``content`` in a hidden temporary file beside ``path`` (same folder, so the rename to
    ``path`` is atomic), flushed and fsynced; its path. A write that fails is a HubError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_STAGED)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was batched") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was batched") from exc
        raise
    return Path(tmp)


def place(staged: Path, path: Path, *, force: bool) -> None:
    """Give the staged file its name: atomically, and over an existing regular file only when
    ``force`` (a hard link fails when the name is taken; FileExistsError then, the staged file
    removed). Never over a folder, a link, a device, a FIFO or a socket, even with ``force``."""
    try:
        if force:
            if _not_a_file(path) is not None:  # appeared since ``file_to_write`` looked
                raise NotAFile(str(path))
            os.replace(staged, path)
        else:
            try:
                os.link(staged, path)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then rename
                if path.exists() or path.is_symlink():
                    raise FileExistsError(str(path)) from None
                os.replace(staged, path)
            else:
                staged.unlink()
        _fsync_folder(path.parent)
    finally:
        staged.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable (a rename lives in the folder's entry)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def forget_staged(path: Path) -> None:
    """Remove temporary files a killed export left beside ``path`` (they hold PHI, and a name
    nobody sends: the store either forgot their batch or holds its bytes)."""
    try:
        for stale in path.parent.glob(f".{glob_escape(path.name)}.*{_STAGED}"):
            stale.unlink(missing_ok=True)
    except OSError:
        pass


def write_atomically(path: Path, content: bytes) -> None:
    """``content`` at ``path``, replacing a regular file there (nothing else), all or nothing."""
    place(stage(path, content), path, force=True)
