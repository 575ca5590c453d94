"""The alerts a person sees (``bhhub alerts``, the web workspace): one query, one shape."""

from __future__ import annotations

from sqlalchemy import select

from bhhub.store import schema


def alerts(session, *, open_only: bool = True) -> list[dict]:
    """Each alert, oldest first (only the open ones unless ``open_only`` is False), as ``bhhub
    alerts --json`` prints it: {id, key, kind, message, raised_at, occurrences, cleared_at,
    notified_at, notifications}. Messages name mailboxes, files and claims, never patients."""
    query = select(schema.Alert).order_by(schema.Alert.id)
    if open_only:
        query = query.where(schema.Alert.cleared_at.is_(None))
    return [{"id": a.id, "key": a.key, "kind": a.kind, "message": a.message, "raised_at": a.raised_at,
             "occurrences": a.occurrences, "cleared_at": a.cleared_at,
             # delivery to people (bhhub.notify): per target "sent" or why not
             "notified_at": a.notified_at, "notifications": a.notifications or {}}
            for a in session.scalars(query)]
