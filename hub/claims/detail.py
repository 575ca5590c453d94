"""One claim's page (``bhhub claims show CLAIM``, and the web workspace's claim page): the claim as
``bhhub claims --json`` shows it, its patient, every revision, its whole history in time order,
and the 837P segments it went out as, cut from the stored batch's bytes.

The claim's own figures (lines, findings with their fixes, acknowledgment, remittance) come from
the listing's queries (``bhhub.listings.claims.claim_json``), so the page and the listing never
disagree. The history is read from the rows each part of the hub already keeps: status events,
batches and their transmissions, TA1/999/277CA acknowledgments, 835 postings and denials, overrides
and claim status checks. The patient's name, birth date and member id are only under ``patient_phi``,
so a viewer's page can leave that key out (not ``patient``: in every ``--json`` that word is an amount
the patient owes).
"""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import and_, or_, select

from bhhub.store import schema

# The reason ``bhhub.claims.batches.create_batch`` records when a claim goes into a batch: a claim
# sent again is in a new batch, and only its status events remember the earlier ones.
_BATCHED_REASON = re.compile(r"^batch (\d+) ")


def claim_detail(hub, session, pcn: str) -> dict | None:
    """The page of claim ``pcn`` (its patient control number, CLM01) at its latest revision, or
    None when the hub has no such claim. Records a ``show_claim`` event (the revisions' ids) in the
    audit trail and commits the session.

    Keys: everything ``bhhub claims --json`` prints for the claim except ``member_id``, plus
    ``billing_provider`` and ``rendering_provider`` ({npi, name}), ``created_at``, ``updated_at``,
    ``overrides``, ``revisions`` ({id, revision, frequency_code, status, batch_id, created_at}, oldest
    first), ``history`` (events, oldest first: each {at, kind, revision, ...}; kinds ``status``,
    ``batch``, ``transmission``, ``acknowledgment``, ``remittance``, ``denial``, ``override``,
    ``status_check``), ``x12`` ({batch_id, interchange_control_number, segments}: the claim's CLM
    loop as it last went out, each segment with its terminator; None before it went out) and ``patient_phi``
    ({id, family_name, given_name, middle_name, birth_date, member_id}: PHI)."""
    from bhhub.listings.claims import claim_json
    from bhhub.remittance.denials import DenialRules

    c = schema.Claim
    rows = session.scalars(select(c).where(c.patient_control_number == pcn).order_by(c.revision)).all()
    if not rows:
        return None
    latest = rows[-1]
    ids = [r.id for r in rows]
    shown = claim_json(session, latest.id, DenialRules.load(hub.mappings))
    member_id = shown.pop("member_id")
    patient = session.get(schema.Patient, latest.patient_id)
    providers = {p.id: p for p in session.scalars(select(schema.Provider).where(
        schema.Provider.id.in_({latest.billing_provider_id, latest.rendering_provider_id} - {None})))}
    history = _history(session, rows, ids)
    detail = {
        **shown,
        "billing_provider": _provider(providers.get(latest.billing_provider_id)),
        "rendering_provider": _provider(providers.get(latest.rendering_provider_id)),
        "created_at": latest.created_at,
        "updated_at": latest.updated_at,
        "overrides": [e for e in history if e["kind"] == "override" and e["revision"] == latest.revision],
        "revisions": [{"id": r.id, "revision": r.revision, "frequency_code": r.frequency_code, "status": r.status,
                       "batch_id": r.batch_id, "created_at": r.created_at} for r in rows],
        "history": history,
        "x12": _sent_as(session, rows, history),
        "patient_phi": {"id": latest.patient_id, "family_name": patient.family_name, "given_name": patient.given_name,
                    "middle_name": patient.middle_name, "birth_date": patient.birth_date, "member_id": member_id},
    }
    session.rollback()  # the reads end before the audit writes
    hub.audit(session, "show_claim", "claim", ids, None)
    session.commit()
    return detail


def _provider(row: schema.Provider | None) -> dict | None:
    if row is None:
        return None
    name = row.organization_name or " ".join(filter(None, [row.given_name, row.family_name])) or None
    return {"npi": row.npi, "name": name}


def _history(session, rows: list[schema.Claim], ids: list[int]) -> list[dict]:
    """Every event of every revision, oldest first (ties in the order the hub wrote them)."""
    revision_of = {r.id: r.revision for r in rows}
    events: list[dict] = []

    def add(at, kind: str, claim_id: int | None, **fields) -> None:
        events.append({"at": at, "kind": kind, "revision": revision_of.get(claim_id), **fields})

    e = schema.ClaimStatusEvent
    batch_ids: set[int] = {r.batch_id for r in rows if r.batch_id is not None}
    for event in session.scalars(select(e).where(e.claim_id.in_(ids)).order_by(e.id)):
        add(event.at, "status", event.claim_id, status=event.status, reason=event.reason)
        found = _BATCHED_REASON.match(event.reason or "") if event.status == "batched" else None
        if found:
            batch_ids.add(int(found.group(1)))
    a = schema.Acknowledgment
    own = session.scalars(select(a).where(a.claim_id.in_(ids))).all()
    batch_ids |= {ack.batch_id for ack in own if ack.batch_id is not None}
    # this claim's answers, and the whole file's (a TA1, a 999) of each batch it went out in; not
    # the other claims' answers in those batches (a batch may hold thousands)
    acknowledgments = session.scalars(select(a).where(or_(a.claim_id.in_(ids), and_(
        a.claim_id.is_(None), a.batch_id.in_(batch_ids)))).order_by(a.id)).all()
    b, t, te = schema.Batch, schema.Transmission, schema.TransmissionEvent
    for batch in session.execute(select(b.id, b.kind, b.interchange_control_number, b.claim_count, b.created_at,
                                        b.path).where(b.id.in_(batch_ids), b.kind == "837P").order_by(b.id)):
        add(batch.created_at, "batch", None, batch_id=batch.id,
            interchange_control_number=batch.interchange_control_number, claims=batch.claim_count, path=batch.path)
    transmissions = {row.id: row for row in session.scalars(select(t).where(t.batch_id.in_(batch_ids)))}
    for event in session.scalars(select(te).where(te.transmission_id.in_(transmissions)).order_by(te.id)):
        sent = transmissions[event.transmission_id]
        add(event.at, "transmission", None, transmission_id=sent.id, batch_id=sent.batch_id, mailbox=sent.mailbox,
            remote_name=sent.remote_name, state=event.state, detail=event.detail)
    for ack in acknowledgments:
        add(ack.at, "acknowledgment", ack.claim_id, acknowledgment=ack.kind, batch_id=ack.batch_id,
            inbox_item_id=ack.inbox_item_id, accepted=ack.accepted, outcome=ack.outcome, source=ack.source,
            code=ack.code, detail=ack.detail, effective_on=ack.effective_on,
            payer_claim_control_number=ack.payer_claim_control_number, whole_file=ack.claim_id is None)
    rc, rp = schema.RemitClaim, schema.RemitPayment
    for posting, payment in session.execute(select(rc, rp).join(rp, rp.id == rc.payment_id)
                                            .where(rc.claim_id.in_(ids)).order_by(rc.id)):
        add(posting.posted_at, "remittance", posting.claim_id, remit_claim_id=posting.id, state=posting.state,
            status_code=posting.status_code, charge=posting.charge, paid=posting.paid,
            patient_responsibility=posting.patient_responsibility, contractual=posting.contractual,
            other_adjustments=posting.other_adjustments, adjustments=_adjustments(posting.adjustments),
            remarks=posting.remarks,
            payer_claim_control_number=posting.payer_claim_control_number, reverses_id=posting.reverses_id,
            # the 835's own payer id (maybe its TRN03), named as bhhub.remittance.claim_view names it
            payer_id_835=payment.payer_id, trace_number=payment.trace_number, payment_date=payment.payment_date,
            inbox_item_id=payment.inbox_item_id)
    d = schema.Denial
    for denial in session.scalars(select(d).where(d.claim_id.in_(ids)).order_by(d.id)):
        add(denial.created_at, "denial", denial.claim_id, denial_id=denial.id, line=denial.line,
            procedure_code=denial.procedure_code, group_code=denial.group_code, reason_code=denial.reason_code,
            remark_codes=denial.remark_codes, amount=denial.amount, category=denial.category, action=denial.action,
            action_text=denial.action_text, deadline=denial.deadline, status=denial.status,
            resolved_at=denial.resolved_at, resolution=denial.resolution)
    o = schema.FindingOverride
    for override in session.scalars(select(o).where(o.claim_id.in_(ids)).order_by(o.id)):
        add(override.created_at, "override", override.claim_id, code=override.code, line=override.line_number,
            reason=override.reason, actor=override.actor)
    s = schema.ClaimStatusCheck
    for check in session.scalars(select(s).where(s.claim_id.in_(ids)).order_by(s.id)):
        add(check.requested_at, "status_check", check.claim_id, trace_number=check.trace_number, source=check.source,
            state=check.state, status=check.status, error=check.error, answered_at=check.answered_at,
            batch_id=check.batch_id)
    # sorted() is stable: events at the same moment keep the order above (status, batch, sending, answers)
    return sorted(events, key=lambda event: event["at"])


def _adjustments(stored: list) -> list[dict]:
    """The CAS adjustments as stored ({level, line, group, reason, amount}), the amount as money
    (the JSON column keeps it as text, to the cent)."""
    return [{**adjustment, "amount": Decimal(str(adjustment["amount"]))} for adjustment in stored or ()]


def _sent_as(session, rows: list[schema.Claim], history: list[dict]) -> dict | None:
    """The claim's CLM loop in the last 837P batch it went out in, cut from the batch's stored
    bytes. From its history, not the claim's ``batch_id``: a claim queued to go again
    (``bhhub resubmit``) has none until its next batch, yet went out as the last one shows."""
    sent = sorted({e["batch_id"] for e in history if e["kind"] == "batch"}, reverse=True)
    pcn = rows[-1].patient_control_number
    b = schema.Batch
    for batch_id in sent:
        batch = session.execute(select(b.id, b.interchange_control_number, b.content).where(b.id == batch_id)).one()
        segments = clm_loop(batch.content, pcn)
        if segments:
            return {"batch_id": batch.id, "interchange_control_number": batch.interchange_control_number,
                    "segments": segments}
    return None


def clm_loop(content: bytes, pcn: str) -> list[str]:
    """The segments of claim ``pcn``'s 2300 loop (CLM and what follows it, its 2310s and 2400s) in
    the 837P ``content``, as written, each with the segment terminator; [] when it is not there.
    The loop ends at the next HL (another subscriber), CLM (another claim) or SE."""
    from bhhub.x12.tokens import segments

    found: list[str] = []
    inside = False
    for segment in segments(content):
        if segment.id in ("HL", "CLM", "SE"):
            if inside:
                break
            inside = segment.id == "CLM" and segment[1] == pcn
        if inside:
            found.append(segment.delimiters.element.join(segment.elements) + segment.delimiters.segment)
    return found
