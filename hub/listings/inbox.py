"""``bhhub inbox``: each stored payload's bookkeeping, streamed; never its content (the bytes
stay in the store: a listing of 100,000 items reads none of them)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from bhhub.listings import Page, keyset_chunks
from bhhub.store import schema


def inbox_listing(session, state: str | None, page: Page) -> Iterator[dict]:
    i = schema.InboxItem
    query = select(i.id, i.source_name, i.state, i.format, i.size, i.sha256, i.received_at, i.attempts, i.reason)
    if state:
        query = query.where(i.state == state)
    for chunk in keyset_chunks(session, query, i.id, page):
        for row in chunk:
            yield {"id": row.id, "source": row.source_name, "state": row.state, "format": row.format,
                   "size": row.size, "sha256": row.sha256, "received_at": row.received_at,
                   "attempts": row.attempts, "reason": row.reason}
