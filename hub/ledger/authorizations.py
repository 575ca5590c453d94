"""The authorization ledger: what each payer authorized, and what the claims that went out took.

A use is recorded per claim line when the claim goes out (``consume``, at batching), not when
it is paid: decrementing on rendered sessions avoids overrunning an authorization while claims
are in flight (domain reference 9.1). A use is given back when the payer denies the line for
the authorization (CARC 197, 198, 15) or when a later revision of the claim to the same payer
replaces it; never by the claim to another payer (each payer's authorizations count its own).

Counting "visits" takes one per date of service on a claim (an E/M with its psychotherapy
add-on is one visit); counting "units" takes the lines' units (H-codes, testing hours).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import model
from hub.errors import InputError, UsageError
from hub.identifiers import npi_is_valid
from hub.store import schema
from hub.store.schema import utcnow

log = logging.getLogger(__name__)

from hub.ledger.vocabulary import SOURCES, UNIT_TYPES  # noqa: E402 - re-exported: the CLI reads them there
# CARCs that mean "not authorized" (domain reference 9.3): the line did not use the authorization.
RELEASING_CARCS = frozenset({"197", "198", "15"})


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


def count_text(value: Decimal) -> str:
    """6, 1.5: a count without the store's trailing zeros."""
    return f"{Decimal(value).normalize():f}"


# --- the ledger -----------------------------------------------------------------------------------


def problems(*, payer_id: str, member_id: str, number: str, quantity: Decimal, start: date, end: date,
             procedure_codes: Sequence[str] = (), unit_type: str = "visits", rendering_npi: str | None = None,
             source: str = "typed") -> list[str]:
    """Everything wrong with an authorization's facts, in words a biller can act on."""
    found = []
    if not payer_id.strip() or not member_id.strip() or not number.strip():
        found.append("payer, member id and authorization number are all needed")
    if quantity <= 0:
        found.append(f"the authorized count must be positive, not {quantity}")
    if end < start:
        found.append(f"the authorization ends ({end}) before it starts ({start})")
    if unit_type not in UNIT_TYPES:
        found.append(f"unit type {unit_type!r} is not one of {', '.join(UNIT_TYPES)}")
    if source not in SOURCES:
        found.append(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if rendering_npi is not None and not npi_is_valid(rendering_npi):
        found.append(f"rendering NPI {rendering_npi!r} fails the NPI check digit")
    if any(len(c) != 5 for c in procedure_codes):
        found.append("procedure codes are 5-character CPT/HCPCS codes, separated by commas")
    return found


def clean_codes(procedure_codes: Iterable[str]) -> list[str]:
    return [c.strip().upper() for c in procedure_codes if c.strip()]


def on_file(session: Session, payer_id: str, member_id: str, number: str) -> schema.Authorization | None:
    """The active authorization with this payer, member and number: the ledger's natural key."""
    a = schema.Authorization
    return session.scalar(select(a).where(a.payer_id == payer_id, a.member_id == member_id,
                                          a.number == number, a.status == "active").order_by(a.id))


def add(session: Session, *, payer_id: str, member_id: str, number: str, quantity: Decimal | int,
        start: date, end: date, procedure_codes: Sequence[str] = (), unit_type: str = "visits",
        rendering_npi: str | None = None, source: str = "typed") -> schema.Authorization:
    """Record an authorization (the caller commits). Every problem is reported at once."""
    quantity = Decimal(quantity)
    codes = clean_codes(procedure_codes)
    found = problems(payer_id=payer_id, member_id=member_id, number=number, quantity=quantity, start=start,
                     end=end, procedure_codes=codes, unit_type=unit_type, rendering_npi=rendering_npi, source=source)
    if found:
        raise InputError("; ".join(found))
    same = on_file(session, payer_id, member_id, number)
    if same is not None:
        raise InputError(f"authorization {number} for this member and payer is already on file as {same.id}",
                         fix=f"void {same.id} first to enter it again")
    return insert(session, payer_id=payer_id, member_id=member_id, number=number, quantity=quantity, start=start,
                  end=end, procedure_codes=codes, unit_type=unit_type, rendering_npi=rendering_npi, source=source,
                  patient_id=patient_of(session, payer_id, member_id))


def insert(session: Session, *, payer_id: str, member_id: str, number: str, quantity: Decimal, start: date,
           end: date, procedure_codes: list[str], unit_type: str, rendering_npi: str | None, source: str,
           patient_id: int | None, issued_at=None) -> schema.Authorization:
    """Add a checked authorization row (``add`` checks; the importers check in bulk)."""
    row = schema.Authorization(payer_id=payer_id, member_id=member_id, patient_id=patient_id, number=number,
                               procedure_codes=procedure_codes, unit_type=unit_type, quantity=quantity,
                               start_date=start, end_date=end, rendering_npi=rendering_npi, source=source,
                               status="active", issued_at=issued_at)
    session.add(row)
    session.flush()
    log.info("authorization %s added (source %s)", row.id, source)
    return row


def patient_of(session: Session, payer_id: str, member_id: str) -> int | None:
    """The patient whose coverage carries this member id with this payer, when exactly one."""
    c = schema.Coverage
    ids = set(session.scalars(select(c.patient_id).join(schema.Payer, schema.Payer.id == c.payer_id)
                              .where(schema.Payer.payer_id == payer_id, c.member_id == member_id)))
    return ids.pop() if len(ids) == 1 else None


def void(session: Session, authorization_id: int) -> schema.Authorization:
    row = session.get(schema.Authorization, authorization_id)
    if row is None:
        raise UsageError(f"no authorization {authorization_id}")
    if row.status == "void":
        raise InputError(f"authorization {authorization_id} is void already")
    row.status = "void"
    return row


def list_authorizations(session: Session, *, include_void: bool = False) -> list[schema.Authorization]:
    a = schema.Authorization
    query = select(a).order_by(a.payer_id, a.member_id, a.start_date, a.id)
    if not include_void:
        query = query.where(a.status == "active")
    return list(session.scalars(query))


def used(session: Session, authorization_ids: Iterable[int], *, excluding_pcn: str | None = None) -> dict[int, Decimal]:
    """Units still held (not released) per authorization, leaving out one claim's revisions."""
    u = schema.AuthorizationUse
    ids = list(authorization_ids)
    if not ids:
        return {}
    query = (select(u.authorization_id, func.sum(u.units)).join(schema.Claim, schema.Claim.id == u.claim_id)
             .where(u.authorization_id.in_(ids), u.released_at.is_(None)).group_by(u.authorization_id))
    if excluding_pcn is not None:
        query = query.where(schema.Claim.patient_control_number != excluding_pcn)
    return {aid: Decimal(total or 0) for aid, total in session.execute(query)}


def remaining(session: Session, authorization_id: int) -> Decimal:
    row = session.get(schema.Authorization, authorization_id)
    if row is None:
        raise UsageError(f"no authorization {authorization_id}")
    return row.quantity - used(session, [row.id]).get(row.id, Decimal(0))


def consume(session: Session, claim_row: schema.Claim) -> list[schema.AuthorizationUse]:
    """Record what each line of a claim going out takes (the caller commits); the uses made.

    Idempotent: a line already recorded is left as it is. A later revision to the same payer
    (replacement or void) first gives back its earlier revisions' uses there; a void takes
    nothing itself. The claim to the next payer (a secondary) is another payer's count: the
    visit the primary's authorization paid for stays used.
    """
    u, c = schema.AuthorizationUse, schema.Claim
    if session.scalar(select(func.count()).select_from(u).where(u.claim_id == claim_row.id)):
        return []
    payer = session.get(schema.Coverage, claim_row.coverage_id).payer_id
    earlier = (select(c.id).join(schema.Coverage, schema.Coverage.id == c.coverage_id)
               .where(c.patient_control_number == claim_row.patient_control_number, c.revision < claim_row.revision,
                      schema.Coverage.payer_id == payer))
    for use in session.scalars(select(u).where(u.claim_id.in_(earlier), u.released_at.is_(None))):
        use.released_at, use.release_reason = utcnow(), f"replaced by revision {claim_row.revision}"
    if claim_row.frequency_code == "8":
        return []
    claim = BilledClaim.from_row(session, claim_row)
    authorizations = candidates(session, claim.payer_id, claim.member_id)
    if not authorizations:
        return []
    others = used(session, [a.id for a in authorizations], excluding_pcn=claim.patient_control_number)
    matches = match_lines(claim, authorizations, others)
    needs = line_needs(matches)
    uses = [u(authorization_id=m.authorization.id, claim_id=claim_row.id, line_number=m.line.number,
              units=needs[m.line.number], used_at=utcnow())
            for m in matches if m.authorization is not None]
    session.add_all(uses)
    session.flush()
    return uses


def release(session: Session, claim_id: int, line_number: int | None, reason: str) -> int:
    """Give back what a claim's line (None: every line) took; how many uses were released."""
    u = schema.AuthorizationUse
    query = select(u).where(u.claim_id == claim_id, u.released_at.is_(None))
    if line_number is not None:
        query = query.where(u.line_number == line_number)
    count = 0
    for use in session.scalars(query):
        use.released_at, use.release_reason = utcnow(), reason
        count += 1
    if count:
        log.info("claim %s line %s: %d authorization use(s) released", claim_id, line_number, count)
    return count


def release_for_denial(session: Session, claim_id: int, line_number: int | None, carc: str) -> int:
    """Called by 835 posting for each denied line: a denial for a missing or exceeded
    authorization (CO-197, CO-198, CO-15) means the visit was not used; others keep it."""
    code = carc.strip().upper().rsplit("-", 1)[-1]
    if code not in RELEASING_CARCS:
        return 0
    return release(session, claim_id, line_number, f"denied CARC {code}")
