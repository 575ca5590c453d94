"""The authorization ledger's uses: what the claims that went out took, and what was given back.

A use is recorded per claim line when the claim goes out (``consume``, or ``consume_many`` for
a batch, at batching), not when it is paid: decrementing on rendered sessions avoids overrunning
an authorization while claims are in flight (domain reference 9.1). A use is given back when the
payer denies the line for the authorization (CARC 197, 198, 15: ``release_for_denial``) or when
a later revision of the claim to the same payer replaces it; never by the claim to another payer
(each payer's authorizations count its own). ``used`` and ``remaining`` count what is held.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy import insert as insert_rows
from sqlalchemy.orm import Session

from bhhub.errors import UsageError
from bhhub.ledger.authorization_matching import BilledClaim, BilledLine, candidates, line_needs, match_lines
from bhhub.store import schema
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)

# CARCs that mean "not authorized" (domain reference 9.3): the line did not use the authorization.
RELEASING_CARCS = frozenset({"197", "198", "15"})


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


@dataclass
class _Held:
    """A use as the batch sees it: whose claim, on which authorization, still held or not."""

    authorization_id: int
    units: Decimal
    patient_control_number: str
    revision: int
    coverage_payer: int  # the claim's coverage's payer row: revisions are replaced per payer
    released: str | None = None  # the release reason, once given back in this batch
    new: dict | None = None  # the row to insert, for a use this batch makes


def consume_many(session: Session, claim_rows: Sequence[schema.Claim]) -> int:
    """``consume`` for every claim of a batch, in their order, with the same result, in a
    handful of queries instead of several per claim (the caller commits); the uses made.

    The ledger is read once (the claims' lines, coverages and providers; the members' active
    authorizations; every use still held on them or by the claims' earlier revisions), each
    claim is matched in turn against what the claims before it took, and the uses and releases
    are written at the end. As ``consume`` does, a claim takes its authorization even when the
    claims before it used it up (the earliest-ending one that fits; the overrun is the scrub's
    ``auth.exhausted`` finding's business, not a reason to leave a billed visit unrecorded).
    """
    rows = list(claim_rows)
    if not rows:
        return 0
    u, c, cov = schema.AuthorizationUse, schema.Claim, schema.Coverage
    ids = [row.id for row in rows]
    recorded = set(_in_chunks(session, lambda chunk: select(u.claim_id).where(u.claim_id.in_(chunk)).distinct(), ids))
    going = [row for row in rows if row.id not in recorded]  # idempotent, as consume
    if not going:
        return 0
    coverages = {cid: (payer_row, payer_id, member_id) for cid, payer_row, payer_id, member_id in _in_chunks(
        session, lambda chunk: select(cov.id, cov.payer_id, schema.Payer.payer_id, cov.member_id)
        .join(schema.Payer, schema.Payer.id == cov.payer_id).where(cov.id.in_(chunk)),
        list({row.coverage_id for row in going}))}
    npis = dict(_in_chunks(session, lambda chunk: select(schema.Provider.id, schema.Provider.npi)
                           .where(schema.Provider.id.in_(chunk)),
                           list({row.rendering_provider_id or row.billing_provider_id for row in going})))
    lines: dict[int, list[BilledLine]] = {}
    sl = schema.ServiceLine
    for claim_id, *facts in _in_chunks(session, lambda chunk: select(
            sl.claim_id, sl.line_number, sl.procedure_code, sl.service_date, sl.units, sl.prior_authorization)
            .where(sl.claim_id.in_(chunk)).order_by(sl.claim_id, sl.line_number), [row.id for row in going]):
        lines.setdefault(claim_id, []).append(BilledLine(*facts))
    members = list({coverages[row.coverage_id][2] for row in going})
    pairs = {coverages[row.coverage_id][1:] for row in going}
    a = schema.Authorization
    authorizations: dict[tuple[str, str], list[schema.Authorization]] = {}
    for auth in sorted(_in_chunks(session, lambda chunk: select(a).where(a.member_id.in_(chunk), a.status == "active"),
                                  members, scalars=True), key=lambda a: (a.end_date, a.id)):
        if (auth.payer_id, auth.member_id) in pairs:  # candidates(): earliest ending first
            authorizations.setdefault((auth.payer_id, auth.member_id), []).append(auth)
    # Every use still held that the batch may count (on these authorizations) or give back (of
    # these claims' earlier revisions), with the facts both need.
    held_query = (select(u.id, u.authorization_id, u.units, c.patient_control_number, c.revision, cov.payer_id)
                  .join(c, c.id == u.claim_id).join(cov, cov.id == c.coverage_id).where(u.released_at.is_(None)))
    held: dict[int | tuple, _Held] = {}
    auth_ids = [auth.id for group in authorizations.values() for auth in group]
    for column, keys in ((u.authorization_id, auth_ids), (c.patient_control_number,
                                                          list({row.patient_control_number for row in going}))):
        for use_id, *facts in _in_chunks(session, lambda chunk: held_query.where(column.in_(chunk)), keys):
            held[use_id] = _Held(*facts)
    by_pcn: dict[str, list[_Held]] = {}
    totals: dict[int, Decimal] = {}  # units held per authorization
    own: dict[tuple[int, str], Decimal] = {}  # ... of which by one patient control number
    for use in held.values():
        by_pcn.setdefault(use.patient_control_number, []).append(use)
        _count(totals, own, use, +1)
    made: list[_Held] = []
    for row in going:
        payer_row, payer_id, member_id = coverages[row.coverage_id]
        reason = f"replaced by revision {row.revision}"
        for use in by_pcn.get(row.patient_control_number, ()):
            if use.released is None and use.revision < row.revision and use.coverage_payer == payer_row:
                use.released = reason
                _count(totals, own, use, -1)
        if row.frequency_code == "8":
            continue
        candidates_here = authorizations.get((payer_id, member_id))
        if not candidates_here:
            continue
        claim = BilledClaim(row.patient_control_number, payer_id, member_id,
                            npis[row.rendering_provider_id or row.billing_provider_id], row.prior_authorization,
                            tuple(lines.get(row.id, ())))
        others = {auth.id: totals.get(auth.id, Decimal(0)) - own.get((auth.id, claim.patient_control_number),
                                                                      Decimal(0))
                  for auth in candidates_here}
        matches = match_lines(claim, candidates_here, others)
        needs = line_needs(matches)
        for m in matches:
            if m.authorization is None:
                continue
            use = _Held(m.authorization.id, needs[m.line.number], row.patient_control_number, row.revision, payer_row,
                        new={"authorization_id": m.authorization.id, "claim_id": row.id,
                             "line_number": m.line.number, "units": needs[m.line.number]})
            made.append(use)
            by_pcn.setdefault(use.patient_control_number, []).append(use)
            _count(totals, own, use, +1)
    now = utcnow()
    reasons: dict[str, list[int]] = {}
    for use_id, use in held.items():
        if use.released is not None:
            reasons.setdefault(use.released, []).append(use_id)
    for reason, use_ids in reasons.items():
        for start in range(0, len(use_ids), _CHUNK):
            session.execute(update(u).where(u.id.in_(use_ids[start:start + _CHUNK]))
                            .values(released_at=now, release_reason=reason)
                            .execution_options(synchronize_session="fetch"))
    if made:
        session.execute(insert_rows(u), [{**use.new, "used_at": now, "released_at": now if use.released else None,
                                     "release_reason": use.released} for use in made])
    return len(made)


_CHUNK = 500  # ids per IN list: well inside SQLite's and PostgreSQL's limits on parameters


def _in_chunks(session: Session, query_for, keys: list, *, scalars: bool = False) -> list:
    """The rows of ``query_for(chunk)`` over ``keys`` taken ``_CHUNK`` at a time."""
    found = []
    for start in range(0, len(keys), _CHUNK):
        statement = query_for(keys[start:start + _CHUNK])
        found.extend(session.scalars(statement) if scalars else
                     (row if len(row) > 1 else row[0] for row in session.execute(statement)))
    return found


def _count(totals: dict[int, Decimal], own: dict[tuple[int, str], Decimal], use: _Held, sign: int) -> None:
    totals[use.authorization_id] = totals.get(use.authorization_id, Decimal(0)) + sign * use.units
    key = (use.authorization_id, use.patient_control_number)
    own[key] = own.get(key, Decimal(0)) + sign * use.units


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
