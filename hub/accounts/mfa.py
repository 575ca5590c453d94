"""The second factor: TOTP (RFC 6238, 30 s steps, 6 digits) with pyotp, enrolled by a QR code.

A code is accepted one step either side of now (clocks drift), and each step only once: the
step of the last code accepted is kept (``users.totp_last_step``) and a code of that step or an
earlier one is refused, so a code seen over a shoulder cannot be used again. The step is
claimed under the writer's lock on the user's row, so two requests with one code: one wins.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import select

from bhhub.accounts import clock
from bhhub.accounts.users import count_failure, locked_row
from bhhub.errors import UsageError
from bhhub.store import schema

ISSUER = "bhhub"
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps either side of now


@dataclass(frozen=True)
class Enrolment:
    """A secret offered to a user: ``uri`` for an authenticator app, ``qr_svg`` an inline SVG of it."""

    secret: str
    uri: str
    qr_svg: str


def begin_totp(hub, user_id: int) -> Enrolment:
    """A new secret for ``user_id`` to scan; nothing is stored until ``finish_totp``."""
    import pyotp

    with hub.store.session() as session:
        name = session.scalar(select(schema.User.name).where(schema.User.id == user_id))
    if name is None:
        raise UsageError(f"no user {user_id}")
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return Enrolment(secret=secret, uri=uri, qr_svg=_qr_svg(uri))


def _qr_svg(text: str) -> str:
    # The SVG path factory draws with no image library (no PIL) and needs no network.
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


def matching_step(secret: str, code: str, now) -> int | None:
    """The 30 s step within the window whose code ``code`` is; None when none is."""
    import pyotp

    code = (code or "").replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def finish_totp(hub, user_id: int, secret: str, code: str, *, source: str) -> bool:
    """Store ``secret`` as ``user_id``'s when ``code`` is its current code (the app was set up
    right); False, nothing stored, otherwise. A user enrolled already must be reset first
    (``reset_totp``): a password alone never replaces a second factor."""
    import binascii

    try:
        step = matching_step(secret, code, clock.now())
    except (binascii.Error, ValueError, TypeError):  # not a base32 secret
        step = None
    with hub.store.writer() as session:
        user = locked_row(session, user_id)
        if user is None:
            raise UsageError(f"no user {user_id}")
        if user.totp_secret is not None:
            hub.audit(session, "totp_enrol", "user", [user.id], "enrolled already", actor=user.name, source=source,
                      outcome="failed")
            session.commit()
            raise UsageError("this user has a second factor already; an admin resets it with `bhhub user reset-mfa NAME`")
        if step is None:
            hub.audit(session, "totp_enrol", "user", [user.id], "wrong code", actor=user.name, source=source,
                      outcome="failed")
            session.commit()
            return False
        user.totp_secret = secret
        user.totp_last_step = step
        user.failed_logins = 0
        hub.audit(session, "totp_enrol", "user", [user.id], None, actor=user.name, source=source, outcome="ok")
        session.commit()
        return True


def check_totp(hub, user_id: int, code: str, *, source: str) -> bool:
    """Whether ``code`` is ``user_id``'s current TOTP code, not used before. A wrong or replayed
    code counts toward the lockout; a locked, disabled or unenrolled user is always refused."""
    now = clock.now()
    with hub.store.session() as session:
        found = session.get(schema.User, user_id)
    step = matching_step(found.totp_secret, code, now) if found is not None and found.totp_secret else None
    with hub.store.writer() as session:
        user = locked_row(session, user_id)
        if user is None:
            session.rollback()
            return False
        if user.locked_until is not None and clock.utc(user.locked_until) > now:
            reason = "locked"
        elif user.disabled:
            reason = "disabled"
        elif user.totp_secret is None or user.totp_secret != found.totp_secret:
            reason = "not enrolled"
        elif step is None:
            reason = "wrong code"
        elif user.totp_last_step is not None and step <= user.totp_last_step:
            reason = "code used before"
        else:
            reason = None
        if reason:
            if reason in ("wrong code", "code used before"):
                count_failure(hub, session, user, now, source=source)
            hub.audit(session, "login_totp", "user", [user.id], reason, actor=user.name, source=source,
                      outcome="failed")
            session.commit()
            return False
        user.totp_last_step = step
        user.failed_logins = 0
        hub.audit(session, "login_totp", "user", [user.id], None, actor=user.name, source=source, outcome="ok")
        session.commit()
        return True
