"""The store: migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bhhub.store.db import open_store
from bhhub.store.repo import next_counter
from bhhub.store.schema import Base


def test_migrations_create_exactly_the_schema_the_models_describe(database_url):
    with open_store(database_url) as store:
        assert store.is_current()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        tables = set(inspect(store.engine).get_table_names())
    assert {"inbox_items", "claims", "service_lines", "claim_status_history", "batches", "audit_events"} <= tables


def test_migrating_twice_changes_nothing(database_url):
    with open_store(database_url) as store:
        store.migrate()
        assert store.is_current()


def test_control_counters_never_hand_out_a_value_twice(database_url):
    with open_store(database_url) as store:
        seen = []
        for _ in range(3):
            with store.session() as session:
                seen += [next_counter(session, "isa13:test"), next_counter(session, "isa13:test")]
                session.commit()
        with store.session() as session:  # rolled back: never used, so handed out again
            next_counter(session, "isa13:test")
            session.rollback()
        with store.session() as session:
            seen.append(next_counter(session, "isa13:test"))
            session.commit()
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert len(set(seen)) == len(seen)


def test_a_store_at_an_older_schema_upgrades_and_keeps_its_data(database_url):
    from alembic import command
    from sqlalchemy import text

    from bhhub.store.db import Store, _alembic_config

    store = Store(database_url)
    with store.engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with store.engine.begin() as conn:
        conn.execute(text("insert into control_counters (name, value) values ('isa13:ZZ:OLD', 41)"))
    assert not store.is_current()
    store.migrate()
    assert store.is_current()
    with store.session() as session:
        assert next_counter(session, "isa13:ZZ:OLD") == 42
        assert set(inspect(store.engine).get_table_names()) >= {"transmissions", "acknowledgments", "alerts"}
    store.close()


def test_a_second_store_on_an_open_sqlite_file_never_opens_the_file_itself(tmp_path, monkeypatch):
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    included: opening a second Store (a second Hub) on a store this process already has
    connections to must not open and close the database file behind SQLite's back."""
    import os

    from bhhub.store.db import Store

    path = tmp_path / "store.db"
    first = Store(f"sqlite:///{path}")
    first.migrate()
    opened = []
    real_open = os.open

    def watching(name, *args, **kwargs):
        fd = real_open(name, *args, **kwargs)
        opened.append(str(name))  # a descriptor was made (its close would drop the locks)
        return fd

    with first.engine.connect() as held:  # a live connection, holding SQLite's locks
        held.exec_driver_sql("select count(*) from alembic_version").all()
        monkeypatch.setattr(os, "open", watching)
        second = Store(f"sqlite:///{path}")
        monkeypatch.setattr(os, "open", real_open)
        assert str(path) not in opened
    second.close()
    first.close()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
