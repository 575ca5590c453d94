"""Logged-in browsers. The cookie carries a random token; the store keeps only its sha256, so a
copy of the database logs no one in. Each session has its own CSRF token for its forms.

A session unused for ``[workspace] idle_minutes`` ends (it is deleted when next presented, and
with others' when a session opens); one of a disabled user ends; one of a locked user is
refused while the lock lasts. ``last_seen`` is written at most every ``TOUCH`` so that reading
pages does not take the store's write lock on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from bhhub.accounts import clock
from bhhub.accounts.users import settings
from bhhub.errors import UsageError
from bhhub.store import schema

TOUCH = timedelta(seconds=15)


@dataclass(frozen=True)
class WebSession:
    id: int
    user_id: int
    name: str
    role: str
    csrf_token: str
    mfa_done: bool


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _idle(hub) -> timedelta:
    return timedelta(minutes=settings(hub).idle_minutes)


def open_session(hub, user_id: int, *, mfa_done: bool, source: str) -> tuple[str, str]:
    """A new session for ``user_id``: (token for the cookie, CSRF token for its forms)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = clock.now()
    with hub.store.writer() as session:
        user = session.get(schema.User, user_id)
        if user is None or user.disabled:
            raise UsageError(f"no user {user_id} who may log in")
        session.execute(delete(schema.WebSession).where(schema.WebSession.last_seen < now - _idle(hub)))
        row = schema.WebSession(token_hash=token_hash(token), user_id=user_id, csrf_token=csrf, mfa_done=mfa_done,
                                created_at=now, last_seen=now)
        session.add(row)
        session.flush()
        hub.audit(session, "session_open", "user", [user_id], f"session {row.id}" + ("" if mfa_done else ", before MFA"),
                  actor=user.name, source=source, outcome="ok")
        session.commit()
    return token, csrf


def session_for(hub, token: str | None, *, source: str | None = None) -> WebSession | None:
    """The live session ``token`` names, its ``last_seen`` now; None when unknown, idle too
    long (then deleted, and audited), or its user is disabled or locked."""
    if not token:
        return None
    now = clock.now()
    with hub.store.session() as session:
        found = session.execute(select(schema.WebSession, schema.User).join(schema.User)
                                .where(schema.WebSession.token_hash == token_hash(token))).first()
    if found is None:
        return None
    row, user = found
    idle = now - clock.utc(row.last_seen)
    if idle > _idle(hub) or user.disabled:
        with hub.store.writer() as session:
            gone = session.execute(delete(schema.WebSession).where(schema.WebSession.id == row.id)).rowcount
            if gone:
                hub.audit(session, "session_expired" if not user.disabled else "session_end", "user", [user.id],
                          f"session {row.id}" + (", user disabled" if user.disabled else ""),
                          actor=user.name, source=source, outcome="ok")
            session.commit()
        return None
    if user.locked_until is not None and clock.utc(user.locked_until) > now:
        return None
    if idle >= TOUCH:
        with hub.store.writer() as session:
            session.execute(update(schema.WebSession).where(schema.WebSession.id == row.id).values(last_seen=now))
            session.commit()
    return WebSession(id=row.id, user_id=user.id, name=user.name, role=user.role, csrf_token=row.csrf_token,
                      mfa_done=bool(row.mfa_done))


def mark_mfa_done(hub, token: str) -> bool:
    """The session ``token`` names has passed its second factor; False when there is no such session."""
    with hub.store.writer() as session:
        done = session.execute(update(schema.WebSession).where(schema.WebSession.token_hash == token_hash(token))
                               .values(mfa_done=True)).rowcount
        session.commit()
    return bool(done)


def close_session(hub, token: str, *, source: str | None = None) -> None:
    """Log out: the session ``token`` names is deleted (nothing happens when there is none)."""
    with hub.store.writer() as session:
        row = session.scalars(select(schema.WebSession).where(schema.WebSession.token_hash == token_hash(token))).first()
        if row is None:
            return
        name = session.scalar(select(schema.User.name).where(schema.User.id == row.user_id))
        session.delete(row)
        hub.audit(session, "logout", "user", [row.user_id], f"session {row.id}", actor=name, source=source, outcome="ok")
        session.commit()
