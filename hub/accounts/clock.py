"""What time it is for logins: lockouts, TOTP steps and idle sessions.

One function, so a test moves time by replacing it (``monkeypatch.setattr(clock, "now", ...)``)
rather than sleeping. Days (``bhhub.runtime.clock.today``, fixed by ``BHHUB_TODAY`` in tests)
are another matter: a frozen day must not freeze the minutes a session lives.
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC time (SQLite gives it back without its zone)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
