"""Opening the store: engine, sessions, and Alembic migrations on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bhhub.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


class Store:
    """The hub's database: ``store.session()`` opens a unit of work."""

    def __init__(self, url: str, *, connect_args: dict | None = None):
        self.url = url
        try:
            self.engine = _engine(url, connect_args or {})
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open the store at {_safe(url)}: {exc}") from exc
        # Every transaction reads and writes one consistent state (the driver's own handling, which
        # ran SELECTs outside the transaction, is off: see ``_engine``). A ``writer`` session also
        # takes SQLite's write lock when it begins (BEGIN IMMEDIATE): work that reads, decides and
        # writes (intake, batching, uploads) then never acts on a state another process has just
        # changed, and never fails at its first write because of one; the other waits its turn.
        # Plain sessions and ``engine.connect()`` begin deferred, so readers never wait for writers
        # (WAL) and a reader opened inside a writer's transaction does not wait for it.
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.writer = sessionmaker(self.engine.execution_options(bhhub_write=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration.

        A store already at the newest is recognised with one query, without Alembic (whose
        import alone costs a listing more than its own start-up); anything else goes through
        Alembic's upgrade. Two commands may start at once on a new or older store (cron and a
        person): each migrates under a lock, so the second waits and then finds the store at the
        newest. Alembic takes none itself: SQLite's transaction takes the write lock when it begins
        (BEGIN IMMEDIATE, see ``_engine``); on PostgreSQL a transaction-scoped advisory lock.
        """
        if self._at_head():
            return
        from alembic import command

        try:
            with self.engine.execution_options(bhhub_write=True).begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                cfg = _alembic_config()
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the store at {_safe(self.url)}: {exc}") from exc

    def _at_head(self) -> bool:
        head = _head_revision()
        if head is None:
            return False
        try:
            with self.engine.connect() as connection:
                current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except SQLAlchemyError:  # a new store: no table yet
            return False
        return current == [head]

    def is_current(self) -> bool:
        """True when the schema is at the newest migration."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MIGRATION_LOCK = 0x62686875_62000001  # "bhhub" + 1: the advisory lock key migrations share


def open_store(url: str, *, migrate: bool = True, connect_args: dict | None = None) -> Store:
    """Open (and by default migrate) the store at ``url``."""
    store = Store(url, connect_args=connect_args)
    if migrate:
        store.migrate()
    return store


def _private_sqlite_file(path: Path) -> None:
    """The database file readable by its owner only (0600), created so before SQLite opens it.

    SQLite gives its -wal and -shm files the main file's permissions, so they follow. An existing
    file is never opened here, only chmod-ed by its path: POSIX locks belong to the process, so
    closing any descriptor of the file would drop the locks of every SQLite connection this
    process has open on it (a second Hub on the same store), and another process could then
    checkpoint or remove the WAL under them ("How To Corrupt An SQLite Database File", 2.2).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))  # new: no connection has it open
    except FileExistsError:
        pass
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            found = each.stat()
        except FileNotFoundError:
            continue
        if found.st_uid == os.getuid() and found.st_mode & 0o077:
            os.chmod(each, 0o600)


def _engine(url: str, connect_args: dict) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, **connect_args})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001
            # The driver's own transaction handling is off: the "begin" hook below starts each
            # transaction, so a writer's can be IMMEDIATE (SQLAlchemy's documented pysqlite recipe).
            dbapi_connection.isolation_level = None
            # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):  # noqa: ANN001
            writer = connection.get_execution_options().get("bhhub_write")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        # A deadline on every network call: a database that does not answer fails in seconds.
        connect_args = {"connect_timeout": 10, **connect_args}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


@cache
def _head_revision() -> str | None:
    """The newest migration's id, read from the migration files' ``revision`` and
    ``down_revision`` lines; None when they do not name exactly one head (Alembic then decides)."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name.startswith("_"):
            continue
        source = path.read_text(encoding="utf-8")
        found = re.search(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", source, re.MULTILINE)
        before = re.search(r"^down_revision\b[^=\n]*=\s*(.+)$", source, re.MULTILINE)
        if found is None or before is None:
            return None
        revisions.add(found.group(1))
        replaced.update(re.findall(r"['\"]([^'\"]+)['\"]", before.group(1)))
    heads = revisions - replaced
    return heads.pop() if len(heads) == 1 else None


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url

