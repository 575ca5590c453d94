"""The audit trail as a hash chain: each row holds the hash of the row before it.

A row's ``hash`` is the sha256 of a canonical JSON of its id, time, actor, action, object type,
object ids, detail, source, outcome and ``prev_hash`` (the first row's ``prev_hash`` is 64
zeros). Editing a row breaks its own hash; deleting one breaks the next row's ``prev_hash``;
``verify`` names both. Deleting the newest rows leaves a shorter chain that still verifies:
``verify`` reports the head so a person (or a cron job) can note it and compare it later.

Appends are serialized so two writers never chain to the same row: on PostgreSQL a
transaction-scoped advisory lock is taken before the last hash is read; on SQLite the INSERT
itself takes the database's write lock, held to commit, and the previous row is read after it.
The unique constraint on ``prev_hash`` is the backstop: a fork cannot be committed.

``Hub.audit`` does not append at once: it queues the row on the session (``record``) and the
rows are appended when the session commits, as its last statements. The chain's lock is then
held only for the commit: taken mid-transaction, it would be held while the caller goes on to
wait for row locks another writer holds, who may be waiting for the chain (a deadlock on
PostgreSQL). A row's ``at`` is the time of the call; ids follow the order of the commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import event, insert, select, text, update

from bhhub.store import schema

GENESIS = "0" * 64  # the prev_hash of the first row

_LOCK = text("select pg_advisory_xact_lock(hashtextextended(current_schema() || ':audit:chain', 0))")
_TABLE = schema.AuditEvent.__table__
_HASHED = ("id", "at", "actor", "action", "object_type", "object_ids", "detail", "source", "outcome", "prev_hash")


def _utc(value: datetime) -> datetime:
    """SQLite gives the stored UTC time back without a zone; PostgreSQL in the session's zone."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def canonical(row: Any) -> bytes:
    """The bytes a row's hash covers: its fields as sorted, compact JSON, the time in UTC to the
    microsecond (what both databases keep). ``row`` is a mapping or has the fields as attributes."""
    get = row.__getitem__ if isinstance(row, dict) else lambda name: getattr(row, name)
    body = {name: get(name) for name in _HASHED}
    body["at"] = _utc(body["at"]).isoformat(timespec="microseconds")
    body["object_ids"] = list(body["object_ids"] or [])
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def row_hash(row: Any) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


_PENDING = "bhhub_audit_pending"  # session.info key: rows waiting for the commit


def record(session, *, actor: str, action: str, object_type: str, object_ids: Sequence[Any],
           detail: str | None = None, source: str = "cli", outcome: str | None = None) -> None:
    """Queue a row on ``session`` (an ORM Session): appended to the chain when it commits, dropped
    when it rolls back."""
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        if not event.contains(session, "before_commit", _append_pending):
            event.listen(session, "before_commit", _append_pending)
            event.listen(session, "after_transaction_end", _forget_pending)
    session.connection()  # a transaction is begun, so commit() has one to end (with these rows)
    session.info[_PENDING].append({"actor": actor, "action": action, "object_type": object_type,
                                   "object_ids": list(object_ids), "detail": detail, "source": source,
                                   "outcome": outcome, "at": schema.utcnow()})


def _append_pending(session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        connection = session.connection()
        for row in rows:
            append(connection, **row)


def _forget_pending(session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: rolled back, or committed without
        session.info.pop(_PENDING, None)


def append(connection, *, actor: str, action: str, object_type: str, object_ids: Sequence[Any],
           detail: str | None = None, source: str = "cli", outcome: str | None = None,
           at: datetime | None = None) -> int:
    """Add one row at the end of the chain, in the caller's transaction (committed with it);
    its id. The chain stays locked for other writers until that transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK)
    values = {"at": at or schema.utcnow(), "actor": actor, "action": action, "object_type": object_type,
              "object_ids": list(object_ids), "detail": detail, "source": source, "outcome": outcome}
    # SQLite: this INSERT takes the write lock (held to commit) before the previous row is read.
    row_id = connection.execute(insert(_TABLE).values(**values)).inserted_primary_key[0]
    prev = connection.execute(select(_TABLE.c.hash).where(_TABLE.c.id < row_id, _TABLE.c.hash.is_not(None))
                              .order_by(_TABLE.c.id.desc()).limit(1)).scalar()
    values.update(id=row_id, prev_hash=prev or GENESIS)
    connection.execute(update(_TABLE).where(_TABLE.c.id == row_id)
                       .values(prev_hash=values["prev_hash"], hash=row_hash(values)))
    return row_id


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: ``problems`` as (row id, reason), in id order."""

    ok: bool
    checked: int
    problems: list[tuple[int, str]] = field(default_factory=list)
    head_id: int | None = None
    head_hash: str | None = None

    def to_json(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "head_id": self.head_id, "head_hash": self.head_hash,
                "problems": [{"id": row_id, "reason": reason} for row_id, reason in self.problems]}


def verify(session) -> Verification:
    """Walk the whole chain in id order and check every link and every row's hash."""
    columns = [getattr(_TABLE.c, name) for name in _HASHED] + [_TABLE.c.hash]
    rows = session.connection().execution_options(yield_per=2000).execute(select(*columns).order_by(_TABLE.c.id))
    problems: list[tuple[int, str]] = []
    checked = 0
    expected, before = GENESIS, None  # the hash the next row must name, and whose it is
    for row in rows:
        checked += 1
        if row.hash is None:
            problems.append((row.id, "not chained: it has no hash (written around Hub.audit)"))
            continue
        if row.prev_hash != expected:
            problems.append((row.id, _broken_link(before, row.id)))
        if row_hash(row) != row.hash:
            problems.append((row.id, "edited: its contents no longer match its hash"))
        expected, before = row.hash, row.id
    return Verification(ok=not problems, checked=checked, problems=problems,
                        head_id=before, head_hash=expected if before is not None else None)


def _broken_link(before: int | None, row_id: int) -> str:
    if before is None:
        return "deleted before it: it does not start the chain, so the rows before it were deleted"
    if row_id - before > 1:
        missing = str(before + 1) if row_id - before == 2 else f"{before + 1}..{row_id - 1}"
        return f"deleted before it: its prev_hash is not row {before}'s hash and row(s) {missing} are gone"
    return f"its prev_hash is not row {before}'s hash: row {before} was rewritten, or a row between was deleted"


def events(session, *, user: str | None = None, since: date | datetime | None = None,
           limit: int | None = None) -> list[dict]:
    """Audit rows, newest first, as JSON-able dicts: only ``user``'s (the actor), only from
    ``since`` (a date is that day's start, UTC), at most ``limit``."""
    t = _TABLE
    query = select(t).order_by(t.c.id.desc())
    if user is not None:
        query = query.where(t.c.actor == user)
    if since is not None:
        if not isinstance(since, datetime):
            since = datetime.combine(since, time.min, tzinfo=timezone.utc)
        query = query.where(t.c.at >= _utc(since))
    if limit is not None:
        query = query.limit(limit)
    return [{"id": r.id, "at": _utc(r.at).isoformat(), "actor": r.actor, "action": r.action,
             "object_type": r.object_type, "object_ids": list(r.object_ids or []), "detail": r.detail,
             "source": r.source, "outcome": r.outcome, "hash": r.hash}
            for r in session.connection().execute(query)]
