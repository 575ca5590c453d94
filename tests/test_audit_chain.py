"""The audit trail is a hash chain: an edited or deleted row is named by `bhhub audit verify`,
rows every existing caller writes join it, and writers at once never fork it."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bhhub.audit import chain
from bhhub.cli.main import main
from bhhub.runtime.app import Hub
from bhhub.store import schema

A = schema.AuditEvent


def _write(hub, n: int, **kwargs) -> None:
    for i in range(n):
        with hub.store.session() as session:
            hub.audit(session, "list_claims", "claim", [i, i + 1], f"page {i}", **kwargs)
            session.commit()


def _verify(hub) -> chain.Verification:
    with hub.store.session() as session:
        return chain.verify(session)


def test_each_row_holds_the_hash_of_the_row_before(hub):
    _write(hub, 4)
    with hub.store.session() as session:
        rows = session.scalars(select(A).order_by(A.id)).all()
    assert rows[0].prev_hash == chain.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert all(r.hash == chain.row_hash(r) and len(r.hash) == 64 for r in rows)
    found = _verify(hub)
    assert found.ok and found.checked == 4 and found.problems == []
    assert (found.head_id, found.head_hash) == (rows[-1].id, rows[-1].hash)


def test_source_actor_and_outcome_are_recorded_and_hashed(hub):
    hub.source = "web:127.0.0.1"
    _write(hub, 1)
    _write(hub, 1, actor="ann", source="web:10.0.0.7", outcome="failed")
    with hub.store.session() as session:
        first, second = session.scalars(select(A).order_by(A.id)).all()
    assert (first.actor, first.source, first.outcome) == (hub.actor, "web:127.0.0.1", None)
    assert (second.actor, second.source, second.outcome) == ("ann", "web:10.0.0.7", "failed")
    with hub.store.session() as session:  # the source is covered by the hash
        session.execute(update(A).where(A.id == second.id).values(source="cli"))
        session.commit()
    assert _verify(hub).problems == [(second.id, "edited: its contents no longer match its hash")]


def test_an_edited_row_is_named(hub):
    _write(hub, 5)
    with hub.store.session() as session:
        session.execute(update(A).where(A.id == 3).values(object_ids=[99]))
        session.commit()
    found = _verify(hub)
    assert not found.ok
    assert found.problems == [(3, "edited: its contents no longer match its hash")]


def test_an_edited_row_whose_hash_was_recomputed_breaks_the_next_link(hub):
    _write(hub, 5)
    with hub.store.session() as session:
        row = session.get(A, 3)
        row.detail = "nothing to see"
        row.hash = chain.row_hash(row)
        session.commit()
    found = _verify(hub)
    assert [row_id for row_id, _ in found.problems] == [4]
    assert "row 3" in found.problems[0][1]


def test_a_deleted_row_is_named(hub):
    _write(hub, 5)
    with hub.store.session() as session:
        session.execute(delete(A).where(A.id == 3))
        session.commit()
    found = _verify(hub)
    assert not found.ok and found.checked == 4
    [(row_id, reason)] = found.problems
    assert row_id == 4 and "deleted" in reason and "3 are gone" in reason


def test_deleting_the_first_row_is_seen(hub):
    _write(hub, 3)
    with hub.store.session() as session:
        session.execute(delete(A).where(A.id == 1))
        session.commit()
    [(row_id, reason)] = _verify(hub).problems
    assert row_id == 2 and "deleted" in reason


def test_a_fork_of_the_chain_cannot_be_committed(hub):
    _write(hub, 2)
    with hub.store.session() as session:
        first = session.get(A, 1)
        forged = {c: getattr(first, c) for c in ("at", "actor", "action", "object_type", "object_ids", "source")}
        with pytest.raises(IntegrityError):
            session.execute(insert(A).values(**forged, prev_hash=first.prev_hash, hash="f" * 64))
            session.flush()


def test_a_rolled_back_audit_leaves_no_trace_in_the_chain(hub):
    _write(hub, 2)
    with hub.store.session() as session:
        hub.audit(session, "list_claims", "claim", [7])
        session.rollback()
    _write(hub, 2)
    found = _verify(hub)
    assert found.ok and found.checked == 4


def _append_rows(home: str, n: int, label: str, start) -> None:
    with Hub.open(home) as hub:
        with hub.store.session() as session:  # connected and imported: the race starts at the barrier,
            hub.audit(session, "warm_up", "claim", [], label)  # not when each process is done starting
            session.rollback()
        start.wait(60)
        for i in range(n):
            with hub.store.session() as session:
                hub.audit(session, "list_claims", "claim", [i], label)
                session.commit()


def test_two_processes_appending_at_once_leave_one_unbroken_chain(hub, hub_home):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)  # both processes ready, then both go (a loaded machine starts them seconds apart)
    workers = [ctx.Process(target=_append_rows, args=(str(hub_home), 200, name, start)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
        assert worker.exitcode == 0
    with hub.store.session() as session:
        by_writer = dict(session.execute(select(A.detail, func.count()).group_by(A.detail)).all())
        # interleaved, not one after the other: the test did race them
        order = session.scalars(select(A.detail).order_by(A.id)).all()
    assert by_writer == {"a": 200, "b": 200}
    assert sum(1 for x, y in zip(order, order[1:]) if x != y) > 1
    found = _verify(hub)
    assert found.ok, found.problems[:5]
    assert found.checked == 400


def test_rows_written_before_the_chain_are_chained_by_the_migration(database_url):
    from alembic import command

    from bhhub.store.db import Store, _alembic_config

    store = Store(database_url)
    try:
        with store.engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0013_batch_mailbox")
        with store.engine.begin() as conn:
            for i in range(3):
                conn.execute(text("insert into audit_events (at, actor, action, object_type, object_ids, detail) "
                                  "values (:at, 'cli:old', 'list_claims', 'claim', :ids, null)"),
                             {"at": schema.utcnow(), "ids": json.dumps([i])})
        store.migrate()
        with store.session() as session:
            found = chain.verify(session)
            rows = session.scalars(select(A).order_by(A.id)).all()
        assert found.ok and found.checked == 3
        assert [r.source for r in rows] == ["cli"] * 3 and rows[0].prev_hash == chain.GENESIS
    finally:
        store.close()


def test_audit_verify_exits_1_naming_the_broken_row(hub, hub_home, capsys):
    _write(hub, 3)
    assert main(["--home", str(hub_home), "audit", "verify"]) == 0
    assert "intact: 3 rows" in capsys.readouterr().out
    with hub.store.session() as session:
        session.execute(update(A).where(A.id == 2).values(actor="someone else"))
        session.commit()
    assert main(["--home", str(hub_home), "audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and "row 2: edited" in out
    assert main(["--home", str(hub_home), "audit", "verify", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["problems"] == [{"id": 2, "reason": "edited: its contents no longer match its hash"}]


def test_audit_list_filters_by_user_day_and_limit(sqlite_hub, capsys):
    home = str(sqlite_hub.settings.home)
    _write(sqlite_hub, 3)
    _write(sqlite_hub, 2, actor="ann", source="web:127.0.0.1", outcome="ok")
    assert main(["--home", home, "audit", "list", "--user", "ann", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [5, 4] and {r["source"] for r in rows} == {"web:127.0.0.1"}
    assert main(["--home", home, "audit", "--json", "list", "--limit", "2"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [5, 4]
    assert main(["--home", home, "audit", "list", "--since", "2999-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--home", home, "audit", "list", "--since", "2026-1-1"]) == 2
    assert main(["--home", home, "audit", "list", "--limit", "0"]) == 2


def test_rows_of_existing_callers_are_chained(sqlite_hub, capsys):
    home = str(sqlite_hub.settings.home)
    assert main(["--home", home, "claims"]) == 0  # audits the listing as it always has
    assert main(["--home", home, "notice", "list"]) == 0
    with sqlite_hub.store.session() as session:
        actions = session.scalars(select(A.action).order_by(A.id)).all()
    assert "list_advance_notices" in actions
    found = _verify(sqlite_hub)
    assert found.ok and found.checked == len(actions) >= 1


def test_an_audit_early_in_a_transaction_does_not_hold_the_chain_while_it_waits_for_a_row(hub):
    """A audits, then waits for a row B holds; B audits and commits. Were A's audit appended at
    once, A would hold the chain while waiting for B, and B wait for the chain: a deadlock."""
    import threading

    with hub.store.session() as session:
        session.execute(text("insert into control_counters (name, value) values ('audit:test', 0)"))
        session.commit()
    first, second = hub.store.session(), hub.store.session()
    failed = []

    def finish_first():
        try:
            first.execute(text("update control_counters set value = 2 where name = 'audit:test'"))
            first.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    hub.audit(first, "list_claims", "claim", [1], "first")
    second.execute(text("update control_counters set value = 1 where name = 'audit:test'"))
    waiting = threading.Thread(target=finish_first)
    waiting.start()
    waiting.join(1)  # the first now waits for the row the second holds
    hub.audit(second, "list_claims", "claim", [2], "second")
    second.commit()
    waiting.join(60)
    first.close(), second.close()
    assert not failed and not waiting.is_alive()
    with hub.store.session() as session:
        assert session.scalars(select(A.detail).order_by(A.id)).all() == ["second", "first"]  # commit order
    assert _verify(hub).ok
