"""Matching a claim's lines to the authorizations on file: ``BilledClaim`` (the facts the ledger
needs from a claim, canonical or stored), ``match_lines`` (each line's authorization: same code
set, provider and number, the date within, the one ending first with room winning) and
``line_needs`` (what each line takes: one visit per date of service, or the line's units).

Used by the ledger when a claim goes out (``bhhub.ledger.authorization_uses``) and by the
scrub's authorization checks, which must agree on which authorization a line takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub import model
from bhhub.store import schema

# --- what a claim bills, whatever form it is in ----------------------------------------------


@dataclass(frozen=True)
class BilledLine:
    number: int  # 1-based
    procedure_code: str
    service_date: date
    units: Decimal
    authorization_number: str | None  # the line's own REF*G1


@dataclass(frozen=True)
class BilledClaim:
    """The facts the ledger needs from a claim: a canonical ``model.Claim`` or a stored row."""

    patient_control_number: str
    payer_id: str
    member_id: str
    rendering_npi: str  # the rendering provider, else the billing provider
    authorization_number: str | None  # the claim's REF*G1
    lines: tuple[BilledLine, ...]

    @classmethod
    def from_model(cls, claim: model.Claim) -> BilledClaim:
        rendering = claim.rendering_provider or claim.billing_provider
        return cls(claim.patient_control_number, claim.coverage.payer.payer_id, claim.coverage.member_id,
                   rendering.npi, claim.prior_authorization,
                   tuple(BilledLine(n, l.procedure_code, l.service_date, l.units, l.prior_authorization)
                         for n, l in enumerate(claim.lines, start=1)))

    @classmethod
    def from_row(cls, session: Session, row: schema.Claim) -> BilledClaim:
        coverage = session.get(schema.Coverage, row.coverage_id)
        provider = session.get(schema.Provider, row.rendering_provider_id or row.billing_provider_id)
        return cls(row.patient_control_number, coverage.payer.payer_id, coverage.member_id, provider.npi,
                   row.prior_authorization,
                   tuple(BilledLine(l.line_number, l.procedure_code, l.service_date, l.units, l.prior_authorization)
                         for l in row.lines))


# --- matching a line to an authorization -------------------------------------------------------


@dataclass(frozen=True)
class LineMatch:
    """How one line stands against the member's authorizations.

    ``authorization`` covers the line (code, provider, number, dates); else ``near`` is one
    that would cover it but for its dates (``auth.outside_dates``); else neither (missing).
    """

    line: BilledLine
    authorization: schema.Authorization | None
    near: schema.Authorization | None = None


def candidates(session: Session, payer_id: str, member_id: str) -> list[schema.Authorization]:
    """The member's active authorizations with the payer, earliest ending first."""
    a = schema.Authorization
    return list(session.scalars(
        select(a).where(a.payer_id == payer_id, a.member_id == member_id, a.status == "active")
        .order_by(a.end_date, a.id)
    ))


def match_lines(claim: BilledClaim, authorizations: Sequence[schema.Authorization],
                used: dict[int, Decimal] | None = None) -> list[LineMatch]:
    """Each line's authorization: same code set, provider and number, and the date within.

    Where several fit, the one that ends first and still has room wins (``used``: units taken
    by other claims, per authorization id).
    """
    used = used or {}
    taken: dict[int, Decimal] = {}
    visit_days: dict[int, set[date]] = {}
    matches = []
    for line in claim.lines:
        number = line.authorization_number or claim.authorization_number
        fitting = [a for a in authorizations if _fits(a, line, claim.rendering_npi, number)]
        in_dates = [a for a in fitting if a.start_date <= line.service_date <= a.end_date]
        if not in_dates:
            near = min(fitting, key=lambda a: abs((a.start_date - line.service_date).days), default=None)
            matches.append(LineMatch(line, None, near))
            continue
        with_room = [a for a in in_dates
                     if used.get(a.id, Decimal(0)) + taken.get(a.id, Decimal(0)) + _need(a, line, visit_days) <= a.quantity]
        chosen = (with_room or in_dates)[0]
        taken[chosen.id] = taken.get(chosen.id, Decimal(0)) + _need(chosen, line, visit_days)
        if chosen.unit_type == "visits":
            visit_days.setdefault(chosen.id, set()).add(line.service_date)
        matches.append(LineMatch(line, chosen))
    return matches


def _fits(a: schema.Authorization, line: BilledLine, rendering_npi: str, number: str | None) -> bool:
    if a.procedure_codes and line.procedure_code not in a.procedure_codes:
        return False
    if a.rendering_npi and a.rendering_npi != rendering_npi:
        return False
    # A number on the claim must be this authorization's: a typo is CO-15 + M62 at the payer.
    return number is None or number.strip().upper() == a.number.strip().upper()


def _need(a: schema.Authorization, line: BilledLine, visit_days: dict[int, set[date]]) -> Decimal:
    """What ``line`` takes from ``a``, given the days of this claim already counted."""
    if a.unit_type == "units":
        return line.units
    return Decimal(0) if line.service_date in visit_days.get(a.id, ()) else Decimal(1)


def line_needs(matches: Iterable[LineMatch]) -> dict[int, Decimal]:
    """Line number → units it takes from its authorization (visits: first line of a day)."""
    days: dict[int, set[date]] = {}
    needs = {}
    for m in matches:
        if m.authorization is not None:
            needs[m.line.number] = _need(m.authorization, m.line, days)
            if m.authorization.unit_type == "visits":
                days.setdefault(m.authorization.id, set()).add(m.line.service_date)
    return needs
