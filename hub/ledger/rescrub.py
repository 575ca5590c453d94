"""The claims a ledger change can affect, checked again in the same transaction as the change.

An authorization entered, imported or voided changes what the scrubber finds on the member's
claims with that payer; an enrollment recorded changes it for the rendering provider's claims
with that payer. Only claims not yet sent (needs_attention, ready) are checked again, with
``bhhub.claims.build.rescrub``, so a claim held for a missing authorization is ready the moment it is
entered, and a claim for a provider whose enrollment ended is held before it goes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from bhhub.claims.build import UNSENT, rescrub
from bhhub.scrub.engine import ConnectionContext
from bhhub.store import schema


@dataclass
class Rescrubbed:
    """How many claims were checked again, and those whose status changed."""

    checked: int = 0
    changed: list[dict] = field(default_factory=list)  # {"patient_control_number": pcn, "from": status, "to": status}

    def as_dict(self) -> dict:
        return {"checked": self.checked, "changed": self.changed}

    def summary(self) -> str:
        if not self.checked:
            return "no claim waiting to be sent is affected"
        return (f"{self.checked} claim(s) waiting to be sent checked again; "
                f"{len(self.changed)} changed status")


def for_members(hub, session: Session, members: Iterable[tuple[str, str]], reason: str) -> Rescrubbed:
    """Check again the unsent claims of these (payer id, member id) pairs."""
    pairs = sorted(set(members))
    if not pairs:
        return Rescrubbed()
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    query = (select(c).join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id)
             .where(c.status.in_(UNSENT), tuple_(payer.payer_id, cov.member_id).in_(pairs)).order_by(c.id))
    return _run(hub, session, list(session.scalars(query)), reason)


def for_providers(hub, session: Session, providers: Iterable[tuple[str, str]], reason: str) -> Rescrubbed:
    """Check again the unsent claims of these (payer id, rendering NPI) pairs.

    The rendering NPI is the rendering provider's, else the billing provider's (a solo
    clinician billing under their own NPI), as the credentialing check reads it.
    """
    pairs = sorted(set(providers))
    if not pairs:
        return Rescrubbed()
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    rendering, billing = aliased(schema.Provider), aliased(schema.Provider)
    npi = func.coalesce(rendering.npi, billing.npi)
    query = (select(c).join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id)
             .outerjoin(rendering, rendering.id == c.rendering_provider_id)
             .join(billing, billing.id == c.billing_provider_id)
             .where(c.status.in_(UNSENT), or_(*[(payer.payer_id == p) & (npi == n) for p, n in pairs]))
             .order_by(c.id))
    return _run(hub, session, list(session.scalars(query)), reason)


def _run(hub, session: Session, rows: list[schema.Claim], reason: str) -> Rescrubbed:
    result = Rescrubbed(checked=len(rows))
    if not rows:
        return result
    session.flush()  # the change itself, visible to the checks through this transaction
    context = ConnectionContext(hub, session.connection())
    for row in rows:
        before = row.status
        after = rescrub(hub, session, row, context)
        if after is not None and after != before:
            result.changed.append({"patient_control_number": row.patient_control_number, "from": before, "to": after})
    session.flush()
    hub.audit(session, "scrub", "claim", [r.id for r in rows], reason)
    return result
