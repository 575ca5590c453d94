"""``bhhub inbox``: each stored payload's bookkeeping, streamed; never its content (the bytes
stay in the store: a listing of 100,000 items reads none of them)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from bhhub.listings import Page, keyset_chunks
from bhhub.store import schema


STATES = ("received", "processed", "quarantined")


def inbox_page(session, *, state: str | None = None, limit: int | None = 50,
               after: str | int | None = None) -> tuple[list[dict], str | None]:
    """One page of ``bhhub inbox`` (each item the object ``bhhub inbox --json`` prints) and the
    cursor of the next page (None on the last). Bookkeeping only: no content, no PHI, not
    audited (as the command). ``bhhub.intake.inbox.retry(hub, item_id)`` processes an item again;
    its result's ``to_json()`` is what ``bhhub inbox retry --json`` prints."""
    from bhhub.errors import UsageError

    if state is not None and state not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    page = Page.from_options(limit, None if after is None else str(after))
    items = inbox_listing(session, state, page)
    try:
        rows = list(items)
    finally:
        items.close()
    return rows, page.next_cursor


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
