"""The pipeline: how many claims (each revision is a claim of its own) stand at each status, and their
charges. ``bhhub claims --by-status`` prints it; the workspace's overview draws it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from bhhub.model import ClaimStatus
from bhhub.store import schema


def status_counts(session) -> list[dict]:
    """One object per status in the order a claim moves through them (every status, zero ones
    too, so a chart's bars stay in place): ``{status, claims, charges}``."""
    c = schema.Claim
    found = {status: (count, charges) for status, count, charges in session.execute(
        select(c.status, func.count(c.id), func.coalesce(func.sum(c.total_charge), 0)).group_by(c.status))}
    return [{"status": s.value, "claims": found.get(s.value, (0, 0))[0],
             "charges": Decimal(str(found.get(s.value, (0, 0))[1]))} for s in ClaimStatus]
