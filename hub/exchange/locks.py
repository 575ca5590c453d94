"""The exchange lock: one batching, upload or pickup at a time per hub, whoever runs it.

A cron job and a person typing the same command, or ``bhhub run``'s scheduled exchange and a
``bhhub exchange`` by hand, must not interleave: the claims each takes are already disjoint
(``bhhub.claims.batches`` takes them atomically), but two pickups would download the same file and two
uploads would race on one transmission. Every command that batches, uploads or picks up holds
this lock for its work, and the second one waits for the first (up to a deadline), then runs
and finds what is left.

Where the lock lives follows the store: on PostgreSQL a session-level advisory lock (so workers
on several machines share it), keyed by the schema and the lock's name; on SQLite an ``flock``
on a file beside the database (SQLite is one machine). A process killed while holding it
releases it (the connection or the file descriptor dies with it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bhhub.errors import RetriableError

log = logging.getLogger(__name__)

EXCHANGE = "exchange"
DEFAULT_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.2


class LockBusy(RetriableError):
    """Another process held the lock for longer than this one would wait."""


@contextmanager
def hub_lock(hub, name: str = EXCHANGE, *, wait: float = DEFAULT_WAIT_SECONDS,
             waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the hub's lock ``name`` for the ``with`` block, waiting up to ``wait`` seconds for it.

    ``waiting`` is told once (with who holds it, when known) if this process has to wait.
    """
    if hub.store.dialect == "postgresql":
        manager = _postgres_lock(hub.store.engine, name, wait, waiting)
    else:
        manager = _file_lock(_lock_path(hub, name), name, wait, waiting)
    with manager:
        yield


def _lock_path(hub, name: str) -> Path:
    url = make_url(hub.store.url)
    database = url.database
    if database and database != ":memory:":
        return Path(database).resolve().with_name(f"{Path(database).name}.{name}.lock")
    return hub.settings.home / f"bhhub.{name}.lock"


@contextmanager
def _file_lock(path: Path, name: str, wait: float, waiting) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
                if not told:
                    told = True
                    _tell(waiting, name, f"pid {holder}")
                if time.monotonic() >= deadline:
                    raise LockBusy(_busy(name, f"pid {holder}", wait)) from None
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _postgres_lock(engine, name: str, wait: float, waiting) -> Iterator[None]:
    key = f"bhhub:{name}"
    with engine.connect() as connection:
        # The schema is part of the key: hubs sharing one database in their own schemas (and the
        # test suite) do not block each other.
        take = text("select pg_try_advisory_lock(hashtextextended(current_schema() || ':' || :key, 0))")
        deadline = time.monotonic() + wait
        told = False
        while not connection.execute(take, {"key": key}).scalar():
            connection.rollback()
            if not told:
                told = True
                _tell(waiting, name, "another bhhub process")
            if time.monotonic() >= deadline:
                raise LockBusy(_busy(name, "another bhhub process", wait))
            time.sleep(_POLL_SECONDS)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("select pg_advisory_unlock(hashtextextended(current_schema() || ':' || :key, 0))"),
                               {"key": key})
            connection.commit()


def _tell(waiting, name: str, holder: str) -> None:
    log.info("waiting for the %s lock (held by %s)", name, holder)
    if waiting is not None:
        waiting(f"another {name} is running ({holder}); waiting for it to finish")


def _busy(name: str, holder: str, wait: float) -> str:
    return (f"another {name} has been running for over {wait:g} s ({holder}); "
            "nothing was done: run the command again when it has finished")
