"""The workspace's users: passwords (argon2), a TOTP second factor, lockout and sessions.

    users.py      roles, add_user, check_password (lockout), list_users and an admin's changes
    mfa.py        begin_totp / finish_totp (enrolment with a QR code), check_totp (no replay)
    sessions.py   open_session, session_for (idle timeout), mark_mfa_done, close_session
    clock.py      now(), which tests replace to move time

Every function takes the hub and does its own transactions; every login, failure and change is
audited (``Hub.audit``) with the user's name (or the name tried) as actor and the caller's
source ("web:<client ip>", or the hub's "cli"). ``bhhub user ...`` (``bhhub.cli.accounts``) is
the command line over it; ``[workspace]`` in bhhub.toml holds the limits.
"""

from bhhub.accounts.mfa import Enrolment, begin_totp, check_totp, finish_totp
from bhhub.accounts.sessions import WebSession, close_session, mark_mfa_done, open_session, session_for
from bhhub.accounts.users import (
    MFA_ROLES,
    MIN_PASSWORD,
    PHI_ROLES,
    ROLES,
    Login,
    LoginRefused,
    add_user,
    check_password,
    list_users,
    reset_totp,
    set_disabled,
    unlock,
)

__all__ = [
    "ROLES", "PHI_ROLES", "MFA_ROLES", "MIN_PASSWORD", "Login", "LoginRefused", "Enrolment", "WebSession",
    "add_user", "check_password", "begin_totp", "finish_totp", "check_totp", "open_session", "session_for",
    "mark_mfa_done", "close_session", "list_users", "set_disabled", "reset_totp", "unlock",
]
