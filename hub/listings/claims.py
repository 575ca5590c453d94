"""``bhhub claims``: each claim as the listing shows it, streamed a chunk at a time.

Every field comes from a query per chunk (``bhhub.listings.CHUNK`` claims): the claim with its
payer, its lines, findings, overrides, latest status reason, deciding acknowledgment and, once
billed, what the 835s said. The object per claim is the one ``bhhub claims --json`` always had.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select

from bhhub.acknowledgments.standing import acknowledgments_json
from bhhub.listings import Page, keyset_chunks
from bhhub.listings.json_columns import decode_json, json_text
from bhhub.remittance.claim_view import remittances_of
from bhhub.store import schema
from bhhub.store.one_of import one_of


@dataclass(frozen=True)
class ClaimFilter:
    """What ``bhhub claims`` narrows to, each applied in SQL; None is "any"."""

    status: str | None = None
    payer_id: str | None = None  # the payer's id (as in the claim's ``payer_id``)
    since: date | None = None  # date of service on or after
    until: date | None = None  # date of service on or before
    provider_npi: str | None = None  # the rendering provider's NPI
    patient_id: int | None = None  # the hub's own patient id (patients.id, the listing's ``patient_id``): not PHI

    def describe(self) -> str | None:
        """For the audit trail and "no claims ..." (filters only: no PHI)."""
        parts = [f"payer {self.payer_id}" if self.payer_id else "",
                 f"rendering provider {self.provider_npi}" if self.provider_npi else "",
                 f"patient {self.patient_id}" if self.patient_id is not None else "",
                 f"service on or after {self.since}" if self.since else "",
                 f"service on or before {self.until}" if self.until else ""]
        return ", ".join(p for p in parts if p) or None


def listing_query(wanted: ClaimFilter):
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    query = (select(c.id, c.patient_control_number, c.patient_id, c.revision, c.frequency_code, c.status,
                    payer.payer_id.label("payer_id"), cov.member_id, c.service_date, c.total_charge,
                    c.place_of_service, c.prior_authorization, json_text(c.diagnoses), c.batch_id,
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
    if wanted.provider_npi:
        # NPIs are unique: one provider row, looked up by the store inside the same SELECT
        rendering = select(schema.Provider.id).where(schema.Provider.npi == wanted.provider_npi)
        query = query.where(c.rendering_provider_id == rendering.scalar_subquery())
    if wanted.patient_id is not None:
        query = query.where(c.patient_id == wanted.patient_id)
    return query


def claim_listing(session, wanted: ClaimFilter, page: Page, rules=None) -> Iterator[dict]:
    """Each claim ``wanted`` on ``page``, in id order, as ``bhhub claims --json`` shows it.

    ``rules`` (the denial table) adds ``remittance`` to a billed claim (bhhub.remittance.claim_view)."""
    for chunk in keyset_chunks(session, listing_query(wanted), schema.Claim.id, page):
        yield from _chunk_json(session, chunk, rules)


def claim_json(session, claim_id: int, rules=None) -> dict | None:
    """One claim (by its row id) as ``bhhub claims --json`` shows it, or None: the same queries."""
    page = Page()
    query = listing_query(ClaimFilter()).where(schema.Claim.id == claim_id)
    for chunk in keyset_chunks(session, query, schema.Claim.id, page):
        return next(_chunk_json(session, chunk, rules))
    return None


def claim_page(hub, session, *, status: str | None = None, payer: str | None = None, provider: str | None = None,
               patient: int | None = None, since: date | None = None, until: date | None = None,
               limit: int | None = 50, after: str | int | None = None) -> tuple[list[dict], str | None]:
    """One page of ``bhhub claims``: the claims (each the object ``bhhub claims --json`` prints),
    and the cursor of the next page (None on the last), for callers that show a page at a time
    (the web workspace). The ids shown are recorded in the audit trail as ``bhhub claims``
    records them: the read is ended (rolled back) and the audit committed, so call it on a
    session holding no changes of its own. ``limit=None`` is the whole listing in memory.

    ``payer`` is a payer id, ``provider`` a rendering provider's NPI, ``patient`` the hub's
    patient id; an unknown payer or a malformed NPI is a ``UsageError``, as on the command line."""
    from bhhub.listings import Page
    from bhhub.remittance.denials import DenialRules

    wanted = claim_filter(hub, session, status=status, payer=payer, provider=provider, patient=patient,
                          since=since, until=until)
    page = Page.from_options(limit, None if after is None else str(after))
    claims = claim_listing(session, wanted, page, DenialRules.load(hub.mappings))
    try:
        rows = list(claims)
    finally:
        claims.close()
    session.rollback()  # the read ends before the audit writes
    audit_claims_shown(hub, session, wanted, page)
    session.commit()
    return rows, page.next_cursor


def claim_filter(hub, session, *, status: str | None = None, payer: str | None = None, provider: str | None = None,
                 patient: int | None = None, since: date | None = None, until: date | None = None) -> ClaimFilter:
    """The filter these options ask for, checked: a typo is a ``UsageError`` (exit 2), not "no claims"."""
    from bhhub.errors import UsageError

    if status is not None:
        from bhhub.model import ClaimStatus

        if status not in {s.value for s in ClaimStatus}:
            raise UsageError(f"--status must be one of {', '.join(s.value for s in ClaimStatus)}, not {status!r}")
    if payer is not None:
        from bhhub.ledger.payers import check_known_payer

        check_known_payer(session, hub.mappings, payer)
    if provider is not None and not (len(provider) == 10 and provider.isdigit()):
        raise UsageError(f"--provider must be a rendering provider's NPI (10 digits), not {provider!r}")
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    return ClaimFilter(status=status, payer_id=payer, since=since, until=until, provider_npi=provider,
                       patient_id=patient)


def audit_claims_shown(hub, session, wanted: ClaimFilter, page: Page) -> None:
    """One ``list_claims`` event per ``AUDIT_IDS_PER_EVENT`` claims shown (ids and filters only)."""
    from bhhub.listings import audit_shown

    detail = "; ".join(filter(None, [wanted.status, wanted.describe()])) or None
    audit_shown(hub, session, "list_claims", "claim", page.shown, detail)


def _per_chunk(make) -> dict[str, object]:
    """A statement about one chunk of claims, in two forms: its ids bound as one expanding
    parameter (compiled once, not once per chunk with every id coerced), and, when the chunk's
    ids are dense (an unfiltered listing's are consecutive), the range they span, which spares
    the store and the driver a list of hundreds of ids; rows of claims not in the chunk that the
    range catches are never looked up."""
    return {"ids": make(lambda column: one_of(column, "ids")),
            "range": make(lambda column: column.between(bindparam("low"), bindparam("high")))}


_sl, _f, _o, _e = schema.ServiceLine, schema.Finding, schema.FindingOverride, schema.ClaimStatusEvent
LINES = _per_chunk(lambda of: select(_sl.claim_id, _sl.line_number, _sl.procedure_code, json_text(_sl.modifiers),
                                     _sl.units, _sl.charge, json_text(_sl.diagnosis_pointers), _sl.service_date)
                   .where(of(_sl.claim_id)).order_by(_sl.claim_id, _sl.line_number))
FINDINGS = _per_chunk(lambda of: select(_f.claim_id, _f.code, _f.severity, _f.line_number, _f.message, _f.fix)
                      .where(of(_f.claim_id)).order_by(_f.claim_id, _f.id))
OVERRIDES = _per_chunk(lambda of: select(_o.claim_id, _o.code, _o.line_number, _o.reason)
                       .where(of(_o.claim_id)).order_by(_o.id))
LATEST_REASONS = _per_chunk(lambda of: select(_e.claim_id, _e.reason).where(
    _e.id.in_(select(func.max(_e.id)).where(of(_e.claim_id)).group_by(_e.claim_id))))
DENSE = 2  # a range at most this many times the chunk's size is read as a range


def chunk_form(ids: list[int]) -> tuple[str, dict]:
    """Which form of a ``_per_chunk`` statement asks about these ids (in order), and its parameters."""
    if ids[-1] - ids[0] < DENSE * len(ids):
        return "range", {"low": ids[0], "high": ids[-1]}
    return "ids", {"ids": ids}


def _chunk_json(session, claims, rules) -> Iterator[dict]:
    conn = session.connection()
    form, params = chunk_form([c.id for c in claims])
    lines = _lines(conn.execute(LINES[form], params).all())  # fetchall: one call, not one per row
    waived: dict[int, dict] = {}
    for claim_id, code, line_number, reason in conn.execute(OVERRIDES[form], params):
        waived.setdefault(claim_id, {})[(code, line_number)] = reason  # the latest override speaks
    findings = _findings(conn.execute(FINDINGS[form], params).all(), waived)
    reasons = dict(conn.execute(LATEST_REASONS[form], params).all())
    acknowledgments = acknowledgments_json(session, claims)
    remittances = _remittances(session, claims, rules)
    diagnoses = decode_json([c[12] for c in claims])
    for (claim_id, pcn, patient_id, revision, frequency_code, status, payer_id, member_id, service_date, total_charge,
         place_of_service, prior_authorization, _, batch_id, payer_claim_control_number), diagnosis_codes \
            in zip(claims, diagnoses):
        yield {
            "id": claim_id,
            "patient_control_number": pcn,
            "patient_id": patient_id,  # what `bhhub eligibility check --patient` takes
            "revision": revision,
            "frequency_code": frequency_code,
            "status": status,
            "payer_id": payer_id,
            "member_id": member_id,
            "service_date": service_date,
            "total_charge": total_charge,
            "place_of_service": place_of_service,
            "prior_authorization": prior_authorization,
            "diagnoses": diagnosis_codes,
            "lines": lines.get(claim_id) or [],
            "batch_id": batch_id,
            "payer_claim_control_number": payer_claim_control_number,
            "acknowledgment": acknowledgments[claim_id],
            "status_reason": reasons.get(claim_id),
            "findings": findings.get(claim_id) or [],
            "remittance": remittances.get(claim_id),
        }


def _lines(rows) -> dict[int, list[dict]]:
    """claim id -> its lines as the listing shows them, in line order; the JSON columns of all
    the chunk's lines decoded in one call."""
    found: dict[int, list[dict]] = {}
    decoded = iter(decode_json([text for row in rows for text in (row[3], row[6])]))
    for (claim_id, number, procedure_code, _, units, charge, _, service_date), modifiers, pointers \
            in zip(rows, decoded, decoded):
        found.setdefault(claim_id, []).append(
            # units are a count: 1, not 1.0 (which reads as money); a part unit (1.5) stays one
            {"line": number, "procedure_code": procedure_code, "modifiers": modifiers,
             "units": int(units) if units == int(units) else units,
             "charge": charge, "diagnosis_pointers": pointers, "service_date": service_date})
    return found


def _findings(rows, waived: dict[int, dict]) -> dict[int, list[dict]]:
    """claim id -> its findings as the listing shows them, each with the override that waived it."""
    found: dict[int, list[dict]] = {}
    for claim_id, code, severity, line_number, message, fix in rows:
        mine = waived.get(claim_id)
        found.setdefault(claim_id, []).append(
            {"code": code, "severity": severity, "line": line_number, "message": message, "fix": fix,
             "overridden": mine.get((code, line_number)) if mine else None})
    return found


def _remittances(session, claims, rules) -> dict[int, dict]:
    """What the 835s said, for the billed claims only (a claim never sent has no remittance)."""
    billed = [c for c in claims if c.batch_id is not None]
    if rules is None or not billed:
        return {}
    return remittances_of(session, rules, billed)
