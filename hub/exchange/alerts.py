"""Alerts: raised once per incident, counted while it lasts, cleared once when it ends.

A key names the incident (``mailbox_unreachable:officeally``, ``ack_missing:transmission:7``);
raising an open key again only counts it, so a failing poll every five minutes is one alert,
not hundreds. Messages name mailboxes, transmissions and files, never patients.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bhhub.store import schema
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)


def raise_alert(session, key: str, kind: str, message: str) -> bool:
    """Open (or count) the incident ``key``; True when it is new."""
    current = _open(session, key)
    if current is not None:
        current.occurrences += 1
        current.last_seen_at = utcnow()
        current.message = message
        return False
    session.add(schema.Alert(key=key, kind=kind, message=message))
    log.warning("alert raised: %s: %s", key, message)
    return True


def clear_alert(session, key: str) -> bool:
    """Close the incident ``key`` if it is open; True when it was."""
    current = _open(session, key)
    if current is None:
        return False
    current.cleared_at = utcnow()
    log.warning("alert cleared: %s", key)
    return True


def _open(session, key: str) -> schema.Alert | None:
    return session.scalar(
        select(schema.Alert).where(schema.Alert.key == key, schema.Alert.cleared_at.is_(None))
    )


# What a person does about claims an acknowledgment refused, by outcome.
_CLAIMS_REFUSED = {
    "rejected": ("rejected", "fix each claim and send it again with `bhhub resubmit`"),
    "not_found": ("not found by the payer",
                  "investigate: ask where each stands (`bhhub status check CLAIM`); `bhhub resubmit` sends one "
                  "again if the payer never got it"),
}


def claims_refused(session, kind: str, item_id: int, outcome: str, by: str, claims: list[str]) -> bool:
    """One alert per response file that rejected claims or could not find them (``ack_rejected``,
    ``ack_not_found``), naming the file's inbox item and the claims' control numbers (CLM01),
    never a patient. True when it is new."""
    said, todo = _CLAIMS_REFUSED[outcome]
    names = ", ".join(sorted(claims))
    noun = "claim" if len(claims) == 1 else "claims"
    return raise_alert(session, f"ack_{outcome}:inbox:{item_id}", f"ack_{outcome}",
                       f"{kind} (inbox item {item_id}) from {by}: {len(claims)} {noun} {said}: {names}; {todo}")
