"""Who is asking: the session cookie, the second factor, the CSRF token and the role.

The session lives in the store (``bhhub.accounts``: the cookie carries a random token whose hash
the store keeps, never the token itself); it ends after ``[workspace] idle_minutes`` without a
request, when the user is disabled or locked, or on sign-out. An admin or a biller is signed in
only once their one-time code is checked. Every form carries the session's CSRF token, and a
POST without it (or with another session's) is refused before anything is read from it.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
it) and ``Secure`` when the workspace is reached over HTTPS or on this machine (browsers treat
loopback as secure): over plain HTTP on a network the browser would drop a Secure cookie, so
there the README's advice is a TLS proxy in front.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from bhhub.runtime.app import Hub

SESSION_COOKIE = "bhhub_session"
PRE_COOKIE = "bhhub_login"  # before sign-in: the login form's CSRF token (double submit)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MAX_ID = 2**63 - 1  # the largest row id either store keeps: a bigger one is refused, not a 500


class LoginNeeded(Exception):
    """Not signed in (or no longer): pages send the browser to the sign-in form, the API says 401."""

    def __init__(self, reason: str, *, clear_cookie: bool = False, to: str = "/login"):
        super().__init__(reason)
        self.reason, self.clear_cookie, self.to = reason, clear_cookie, to


class CsrfRefused(Exception):
    """A POST without this session's CSRF token; ``who`` when the session is known."""

    def __init__(self, who: Visitor | None = None):
        super().__init__("csrf")
        self.who = who


class Forbidden(Exception):
    """Signed in, but the role may not do this."""

    def __init__(self, reason: str, who: Visitor | None = None):
        super().__init__(reason)
        self.who = who


@dataclass(frozen=True)
class Visitor:
    """A signed-in user on this request, and the hub as them (``hub.actor`` names them)."""

    name: str
    role: str
    user_id: int
    csrf: str
    hub: Hub

    @property
    def sees_phi(self) -> bool:
        from bhhub.accounts import PHI_ROLES

        return self.role in PHI_ROLES

    @property
    def acts(self) -> bool:
        """May take actions on claims and denials (admins and billers)."""
        return self.role in ("admin", "biller")


def visitor(request: Request) -> Visitor:
    """FastAPI dependency: the signed-in user, or ``LoginNeeded``."""
    from bhhub import accounts
    from bhhub.web.app import request_hub

    hub = request.app.state.hub
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginNeeded("sign in first")
    found = accounts.session_for(hub, token)
    if found is None:
        raise LoginNeeded("your session has ended: sign in again", clear_cookie=True)
    if not found.mfa_done:
        raise LoginNeeded("enter your one-time code to finish signing in", to="/login/code")
    return Visitor(found.name, found.role, found.user_id, found.csrf_token, request_hub(request, found.name))


def acting(request: Request) -> Visitor:
    """FastAPI dependency for an action: a biller or an admin."""
    who = visitor(request)
    if not who.acts:
        raise Forbidden("a viewer cannot change claims: ask a biller or an admin", who)
    return who


def check_csrf(expected: str, given: str | None, who: Visitor | None = None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), str(given).encode()):
        raise CsrfRefused(who)


def secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https" or (request.url.hostname or "") in LOOPBACK


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=secure_cookie(request))


def login_token(request: Request) -> tuple[str, bool]:
    """The sign-in form's CSRF token, and whether it is new (then the caller sets its cookie)."""
    token = request.cookies.get(PRE_COOKIE)
    if token and len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=secure_cookie(request))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this workspace only (never ``//elsewhere``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
