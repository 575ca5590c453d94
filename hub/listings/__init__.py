"""Listings at a practice's scale: rows stream from the store a page at a time, are filtered in
SQL, and are paged by a cursor, so memory stays flat however many claims the hub holds.

A listing reads its rows with one streaming SELECT (``yield_per``: a server-side cursor on
PostgreSQL, a stepped statement on SQLite) and asks for what each row needs (lines, findings,
acknowledgments, remittances) once per chunk of rows, never once per row nor for all rows at
once. Paging is keyset on the row's id: ``--limit N`` ends a page after N rows and gives the id
of the last one as the cursor; ``--after CURSOR`` starts after it. Ids only grow, so rows
inserted between pages land on later pages and none is skipped or shown twice.
"""

from __future__ import annotations

import gc
from array import array
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field

from bhhub.errors import UsageError

# Rows per fetch and per related-data query: bounds memory and the IN lists. A chunk of the
# claims listing costs some ten round trips to the store, each waiting its turn on a busy
# machine: 2,000 rather than 500 took `claims --json` of 100,000 claims on PostgreSQL from
# 2.4x to 1.9x the bare SELECT's time, for about 10 MB more at the peak.
CHUNK = 2000
AUDIT_IDS_PER_EVENT = 10_000  # a long listing is audited in several events, each naming its ids


@dataclass
class Page:
    """Which rows a listing shows (``after``, ``limit``) and, once shown, where the next page starts."""

    after: int | None = None
    limit: int | None = None
    next_cursor: str | None = None  # set when rows follow this page
    shown: array = field(default_factory=lambda: array("q"))  # ids shown, for the audit trail

    @classmethod
    def from_options(cls, limit: int | None, after: str | None) -> Page:
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        return cls(after=parse_cursor(after), limit=limit)


def audit_shown(hub, session, action: str, object_type: str, ids, detail: str | None) -> None:
    """Record the ids a listing showed: one event, or one per ``AUDIT_IDS_PER_EVENT`` ids."""
    ids = array("q", ids)
    for start in range(0, max(len(ids), 1), AUDIT_IDS_PER_EVENT):
        hub.audit(session, action, object_type, ids[start:start + AUDIT_IDS_PER_EVENT].tolist(), detail)


def parse_cursor(text: str | None) -> int | None:
    """The id a cursor (``--after``) names; a cursor is the id of the last row of a page."""
    if text is None:
        return None
    if not text.strip().isdigit():
        raise UsageError(f"--after must be a cursor printed by an earlier page (a number), not {text!r}")
    return int(text)


def keyset_chunks(session, query, id_column, page: Page, chunk: int | None = None) -> Iterator[list]:
    """The rows of ``query`` after ``page.after``, in id order, at most ``page.limit``, in chunks.

    One streaming SELECT; ``page.next_cursor`` is set when more rows follow the page."""
    chunk = chunk or CHUNK
    if page.after is not None:
        query = query.where(id_column > page.after)
    query = query.order_by(id_column)
    if page.limit is not None:
        query = query.limit(page.limit + 1)  # one more tells whether another page follows
    # Core, not the ORM: rows need no identity map, and the ORM's row handling doubles the cost
    result = session.connection().execute(query.execution_options(yield_per=chunk))
    # What is alive now (the modules, the hub) lives on; the listing makes only short-lived,
    # acyclic objects. Frozen, the full collections a big listing triggers (one per ~100,000
    # objects made) skip the hundreds of thousands of objects SQLAlchemy and the hub are made
    # of, which cost a listing of 100,000 claims a tenth of its time. Not when something froze
    # before (another listing, the process itself): that is its to undo.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        # Each row as a named tuple: reading a field of SQLAlchemy's Row by name costs some
        # twenty times reading it by position (a listing reads millions), a named tuple's the same
        listed = namedtuple("Listed", result.keys(), rename=True)._make
        shown = 0
        for rows in result.partitions():
            rows = list(map(listed, rows))
            if page.limit is not None and shown + len(rows) > page.limit:
                rows = rows[:page.limit - shown]
                if rows:
                    page.shown.extend(row.id for row in rows)
                    yield rows
                page.next_cursor = str(page.shown[-1]) if page.shown else None
                return
            page.shown.extend(row.id for row in rows)
            shown += len(rows)
            yield rows
    finally:
        if freezing:
            gc.unfreeze()
        result.close()
