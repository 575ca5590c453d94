"""``bhhub claims``: each claim as the listing shows it, streamed a chunk at a time.

Every field comes from a query per chunk (``hub.listings.CHUNK`` claims): the claim with its
payer, its lines, findings, overrides, latest status reason, deciding acknowledgment and, once
billed, what the 835s said. The object per claim is the one ``bhhub claims --json`` always had.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select

from hub.listings import Page, keyset_chunks
from hub.store import schema
from hub.store.one_of import one_of


@dataclass(frozen=True)
class ClaimFilter:
    """What ``bhhub claims`` narrows to, each applied in SQL; None is "any"."""

    status: str | None = None
    payer_id: str | None = None  # the payer's id (as in the claim's ``payer_id``)
    since: date | None = None  # date of service on or after
    until: date | None = None  # date of service on or before

    def describe(self) -> str | None:
        """For the audit trail and "no claims ..." (filters only: no PHI)."""
        parts = [f"payer {self.payer_id}" if self.payer_id else "",
                 f"service on or after {self.since}" if self.since else "",
                 f"service on or before {self.until}" if self.until else ""]
        return ", ".join(p for p in parts if p) or None


def listing_query(wanted: ClaimFilter):
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    query = (select(c.id, c.patient_control_number, c.patient_id, c.revision, c.frequency_code, c.status,
                    payer.payer_id.label("payer_id"), cov.member_id, c.service_date, c.total_charge,
                    c.place_of_service, c.prior_authorization, c.diagnoses, c.batch_id,
                    c.payer_claim_control_number)
             .join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id))
    if wanted.status:
        query = query.where(c.status == wanted.status)
    if wanted.payer_id:
        query = query.where(payer.payer_id == wanted.payer_id)
    if wanted.since:
        query = query.where(c.service_date >= wanted.since)
    if wanted.until:
        query = query.where(c.service_date <= wanted.until)
    return query


def claim_listing(session, wanted: ClaimFilter, page: Page, rules=None) -> Iterator[dict]:
    """Each claim ``wanted`` on ``page``, in id order, as ``bhhub claims --json`` shows it.

    ``rules`` (the denial table) adds ``remittance`` to a billed claim (hub.remit.claim_view)."""
    for chunk in keyset_chunks(session, listing_query(wanted), schema.Claim.id, page):
        yield from _chunk_json(session, chunk, rules)


def _per_chunk(make) -> dict[str, object]:
    """A statement about one chunk of claims, in two forms: its ids bound as one expanding
    parameter (compiled once, not once per chunk with every id coerced), and, when the chunk's
    ids are dense (an unfiltered listing's are consecutive), the range they span, which spares
    the store and the driver a list of hundreds of ids; rows of claims not in the chunk that the
    range catches are never looked up."""
    return {"ids": make(lambda column: one_of(column, "ids")),
            "range": make(lambda column: column.between(bindparam("low"), bindparam("high")))}


_sl, _f, _o, _e = schema.ServiceLine, schema.Finding, schema.FindingOverride, schema.ClaimStatusEvent
LINES = _per_chunk(lambda of: select(_sl.claim_id, _sl.line_number, _sl.procedure_code, _sl.modifiers, _sl.units,
                                     _sl.charge, _sl.diagnosis_pointers, _sl.service_date)
                   .where(of(_sl.claim_id)).order_by(_sl.claim_id, _sl.line_number))
FINDINGS = _per_chunk(lambda of: select(_f.claim_id, _f.code, _f.severity, _f.line_number, _f.message, _f.fix)
                      .where(of(_f.claim_id)).order_by(_f.claim_id, _f.id))
OVERRIDES = _per_chunk(lambda of: select(_o.claim_id, _o.code, _o.line_number, _o.reason)
                       .where(of(_o.claim_id)).order_by(_o.id))
LATEST_REASONS = _per_chunk(lambda of: select(_e.claim_id, _e.reason).where(
    _e.id.in_(select(func.max(_e.id)).where(of(_e.claim_id)).group_by(_e.claim_id))))
DENSE = 2  # a range at most this many times the chunk's size is read as a range


def _chunk_json(session, claims, rules) -> Iterator[dict]:
    from hub.acks.standing import acknowledgments_json

    conn = session.connection()
    ids = [c.id for c in claims]
    if ids[-1] - ids[0] < DENSE * len(ids):
        form, params = "range", {"low": ids[0], "high": ids[-1]}
    else:
        form, params = "ids", {"ids": ids}
    lines = _grouped(conn.execute(LINES[form], params).all())  # fetchall: one call, not one per row
    findings = _grouped(conn.execute(FINDINGS[form], params).all())
    waived: dict[int, dict] = {}
    for claim_id, code, line_number, reason in conn.execute(OVERRIDES[form], params):
        waived.setdefault(claim_id, {})[(code, line_number)] = reason  # the latest override speaks
    reasons = dict(conn.execute(LATEST_REASONS[form], params).all())
    acknowledgments = acknowledgments_json(session, claims)
    remittances = _remittances(session, claims, rules)
    for row in claims:
        mine = waived.get(row.id, {})
        yield {
            "id": row.id,
            "patient_control_number": row.patient_control_number,
            "patient_id": row.patient_id,  # what `bhhub eligibility check --patient` takes
            "revision": row.revision,
            "frequency_code": row.frequency_code,
            "status": row.status,
            "payer_id": row.payer_id,
            "member_id": row.member_id,
            "service_date": row.service_date,
            "total_charge": row.total_charge,
            "place_of_service": row.place_of_service,
            "prior_authorization": row.prior_authorization,
            "diagnoses": row.diagnoses,
            "lines": [
                {"line": line.line_number, "procedure_code": line.procedure_code, "modifiers": line.modifiers,
                 "units": line.units, "charge": line.charge, "diagnosis_pointers": line.diagnosis_pointers,
                 "service_date": line.service_date}
                for line in lines.get(row.id, ())
            ],
            "batch_id": row.batch_id,
            "payer_claim_control_number": row.payer_claim_control_number,
            "acknowledgment": acknowledgments[row.id],
            "status_reason": reasons.get(row.id),
            "findings": [
                {"code": f.code, "severity": f.severity, "line": f.line_number, "message": f.message, "fix": f.fix,
                 "overridden": mine.get((f.code, f.line_number))}
                for f in findings.get(row.id, ())
            ],
            "remittance": remittances.get(row.id),
        }


def _grouped(rows) -> dict[int, list]:
    """``rows`` (their first column a claim id) by claim id, in their order."""
    found: dict[int, list] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row)
    return found


def _remittances(session, claims, rules) -> dict[int, dict]:
    """What the 835s said, for the billed claims only (a claim never sent has no remittance)."""
    billed = [c for c in claims if c.batch_id is not None]
    if rules is None or not billed:
        return {}
    from hub.remit.claim_view import remittances_of

    return remittances_of(session, rules, billed)
