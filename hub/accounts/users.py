"""Workspace users: adding them, checking a password (with lockout), and an admin's changes.

Each function opens its own transactions and audits through ``hub.audit``: a login with the
name tried as the actor and the caller's ``source``; an admin's change with ``actor`` (default
the hub's, ``cli:<login>``). Rows name user ids, never a password, a secret or PHI.

A password is checked outside any write transaction (argon2 takes tens of milliseconds and
must not hold SQLite's write lock); its outcome is then recorded on the user's row read again
under the writer's lock (``FOR UPDATE`` on PostgreSQL), so concurrent attempts all count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bhhub.accounts import clock
from bhhub.errors import UsageError
from bhhub.store import schema

ROLES = ("admin", "biller", "viewer")
PHI_ROLES = frozenset({"admin", "biller"})  # see patient names and member ids
MFA_ROLES = frozenset({"admin", "biller"})  # must pass a TOTP code after the password
MIN_PASSWORD = 12
# Letters, digits and . _ @ -: a user's name is the audit trail's actor, so it can never read as
# the command line's "cli:<login>" nor carry a control character into a terminal.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", re.ASCII)
REFUSED = "wrong name or password, or the account is locked"


class LoginRefused(UsageError):
    """A login (password or code) was refused. One message for every reason, so it tells an
    attacker nothing (which names exist, which are locked); the audit row says which."""

    def __init__(self, message: str = REFUSED):
        super().__init__(message)


@dataclass(frozen=True)
class Login:
    """A password that was right: who, and whether a TOTP code must follow."""

    user_id: int
    name: str
    role: str
    totp_enrolled: bool
    mfa_required: bool  # the role needs a second factor: a code if enrolled, else enrolment first


@cache
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


@cache
def _unknown_user_hash() -> str:
    # Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
    return _hasher().hash("no such user; this hash only spends the time")


def settings(hub):
    from bhhub.configuration.hub_file import Workspace

    return hub.settings.section(Workspace)


def printable(name: str) -> str:
    """A name someone typed, fit for the actor column: printable, at most 100 characters."""
    return "".join(c if c.isprintable() else "?" for c in name)[:100] or "?"


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password is shorter than {MIN_PASSWORD} characters: choose a longer one")


def add_user(hub, name: str, role: str, password: str, *, actor: str | None = None,
             source: str | None = None) -> int:
    """A new user; its id. UsageError for a bad name or role, a short password, or a name taken
    (two at once: the unique name lets one in, the other is told)."""
    if not NAME.fullmatch(name or ""):
        raise UsageError("a user name is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    if role not in ROLES:
        raise UsageError(f"no role {role!r}: choose one of {', '.join(ROLES)}")
    check_new_password(password)
    password_hash = _hasher().hash(password)
    with hub.store.writer() as session:
        user = schema.User(name=name, role=role, password_hash=password_hash, failed_logins=0, disabled=False,
                           created_at=clock.now())
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise UsageError(f"a user named {name} exists already") from None  # or one differing only in case
        hub.audit(session, "user_add", "user", [user.id], f"role {role}", actor=actor, source=source, outcome="ok")
        session.commit()
        return user.id


def _locked(user, now) -> bool:
    return user.locked_until is not None and clock.utc(user.locked_until) > now


def count_failure(hub, session, user, now, *, source: str | None) -> None:
    """One more failed login for ``user`` (read under the writer's lock); at ``lockout_after``
    in a row the account is locked for ``lockout_minutes`` and the count starts again."""
    rules = settings(hub)
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= rules.lockout_after:
        user.locked_until = now + timedelta(minutes=rules.lockout_minutes)
        user.failed_logins = 0
        hub.audit(session, "account_locked", "user", [user.id], f"after {rules.lockout_after} failed logins",
                  actor=user.name, source=source, outcome="locked")


def locked_row(session, user_id: int):
    """The user's row, locked for this transaction on PostgreSQL (the writer holds SQLite's)."""
    return session.scalars(select(schema.User).where(schema.User.id == user_id).with_for_update()).first()


def check_password(hub, name: str, password: str, *, source: str) -> Login:
    """``name``'s ``password``, checked: a ``Login``, or ``LoginRefused`` (one message) for a
    wrong name or password, a disabled account or a locked one. Failures count toward the
    lockout. A right password resets the count unless a TOTP code must still follow (then the
    code's success does: else guessing codes between right passwords would never lock)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with hub.store.session() as session:
        found = session.scalars(select(schema.User).where(schema.User.name == name)).first()
    try:
        _hasher().verify(found.password_hash if found else _unknown_user_hash(), password)
        right = found is not None
    except (VerificationError, InvalidHashError):
        right = False
    now = clock.now()
    with hub.store.writer() as session:
        user = locked_row(session, found.id) if found else None
        if user is None:
            # not the name as typed: it may be a password typed in the wrong field, or read
            # "cli:root" to whoever reads the trail; its length tells a probe from a slip
            hub.audit(session, "login_failed", "user", [], f"unknown name ({len(name)} characters)",
                      actor="(unknown name)", source=source, outcome="failed")
            session.commit()
            raise LoginRefused()
        reason = ("locked" if _locked(user, now) else "disabled" if user.disabled
                  else None if right and user.password_hash == found.password_hash else "wrong password")
        if reason:
            if reason == "wrong password":
                count_failure(hub, session, user, now, source=source)
            hub.audit(session, "login_failed", "user", [user.id], reason, actor=user.name, source=source,
                      outcome="failed")
            session.commit()
            raise LoginRefused()
        enrolled = user.totp_secret is not None
        required = user.role in MFA_ROLES
        if not (required and enrolled):
            user.failed_logins = 0
        if _hasher().check_needs_rehash(user.password_hash):
            user.password_hash = _hasher().hash(password)
        hub.audit(session, "login_password", "user", [user.id], None, actor=user.name, source=source, outcome="ok")
        session.commit()
        return Login(user_id=user.id, name=user.name, role=user.role, totp_enrolled=enrolled, mfa_required=required)


def list_users(hub) -> list[dict]:
    """Every user, JSON-able; never a hash or a secret."""
    now = clock.now()
    with hub.store.session() as session:
        users = session.scalars(select(schema.User).order_by(schema.User.name)).all()
    return [{"id": u.id, "name": u.name, "role": u.role, "mfa_enrolled": u.totp_secret is not None,
             "disabled": bool(u.disabled), "locked": _locked(u, now),
             "locked_until": clock.utc(u.locked_until).isoformat() if _locked(u, now) else None,
             "failed_logins": u.failed_logins, "created_at": clock.utc(u.created_at).isoformat()} for u in users]


def _change(hub, name: str, action: str, detail: str | None, change, *, actor: str | None, source: str | None,
            end_sessions: bool) -> None:
    with hub.store.writer() as session:
        user = session.scalars(select(schema.User).where(schema.User.name == name).with_for_update()).first()
        if user is None:
            raise UsageError(f"no user {name} (see `bhhub user list`)")
        change(user)
        if end_sessions:
            session.execute(delete(schema.WebSession).where(schema.WebSession.user_id == user.id))
        hub.audit(session, action, "user", [user.id], detail, actor=actor, source=source, outcome="ok")
        session.commit()


def set_disabled(hub, name: str, disabled: bool, *, actor: str | None = None, source: str | None = None) -> None:
    """Disable (its sessions end) or enable ``name``."""
    def change(user):
        user.disabled = disabled

    _change(hub, name, "user_disable" if disabled else "user_enable", None, change, actor=actor, source=source,
            end_sessions=disabled)


def reset_totp(hub, name: str, *, actor: str | None = None, source: str | None = None) -> None:
    """Forget ``name``'s TOTP secret (a lost phone): the next login enrols again. Its sessions end."""
    def change(user):
        user.totp_secret = None
        user.totp_last_step = None

    _change(hub, name, "user_reset_mfa", None, change, actor=actor, source=source, end_sessions=True)


def unlock(hub, name: str, *, actor: str | None = None, source: str | None = None) -> None:
    """End ``name``'s lockout now, and its count of failed logins."""
    def change(user):
        user.locked_until = None
        user.failed_logins = 0

    _change(hub, name, "user_unlock", None, change, actor=actor, source=source, end_sessions=False)
