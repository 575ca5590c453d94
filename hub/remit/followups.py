"""Follow-up claims in the store: a replacement (7), a void (8), the claim to the secondary payer.

Each is a new revision of the claim (same patient control number, ``revision`` + 1) built by
``hub.x12.followup`` from the stored claim and, for the secondary, from the primary's posted
835. It is rendered once, here, so it either goes into the next batch as it stands (status
``ready``) or is refused with a reason; the claim it follows is marked in its history.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from hub.claims import set_status
from hub.errors import InputError
from hub.model import ClaimStatus, LineAdjudication, PayerAdjustment, PriorPayerAdjudication
from hub.remit import crossovers
from hub.store import schema
from hub.store.repo import claim_record, coverage_record
from hub.x12 import followup

_SENT = {ClaimStatus.SUBMITTED.value, ClaimStatus.ACCEPTED.value, ClaimStatus.PAID.value,
         ClaimStatus.PARTIALLY_PAID.value, ClaimStatus.DENIED.value, ClaimStatus.REVERSED.value}


def create_replacement(session, row: schema.Claim) -> schema.Claim:
    _check_sent(row, "replaced")
    pccn = _payer_number(row)
    claim = followup.replacement(claim_record(session, row), pccn)
    return _new_revision(session, row, claim, "7", f"replacement (frequency 7) of revision {row.revision}, REF*F8 {pccn}")


def create_void(session, row: schema.Claim) -> schema.Claim:
    _check_sent(row, "voided")
    pccn = _payer_number(row)
    claim = followup.void(claim_record(session, row), pccn)
    new = _new_revision(session, row, claim, "8", f"void (frequency 8) of revision {row.revision}, REF*F8 {pccn}")
    set_status(session, row, ClaimStatus.VOID, f"voided by revision {new.revision}")
    return new


def create_secondary(session, row: schema.Claim) -> schema.Claim:
    """The claim to the next payer, with the primary's adjudication from its posted 835."""
    if row.status not in (ClaimStatus.PAID.value, ClaimStatus.PARTIALLY_PAID.value, ClaimStatus.DENIED.value):
        raise InputError(f"claim {row.patient_control_number} is {row.status}: a secondary claim needs the "
                         f"primary's 835 posted first")
    crossover = crossovers.pending(session, row)
    if crossover is not None:  # billing it again would be a duplicate (CARC 18, RARC N522)
        raise InputError(crossover.sentence(row.patient_control_number))
    if not row.other_coverage_ids:
        raise InputError(f"claim {row.patient_control_number} has no other coverage to bill",
                         fix="add the secondary coverage in the EHR and take the encounter in again")
    posting = _net_posting(session, row)
    original = claim_record(session, row)
    secondary = coverage_record(session.get(schema.Coverage, row.other_coverage_ids[0]))
    adjudication = _adjudication(original, posting)
    claim = followup.secondary(original, secondary, adjudication)
    new = _new_revision(session, row, claim, "1",
                        f"secondary claim to payer {secondary.payer.payer_id} after the primary's 835 "
                        f"(trace {posting['trace']})")
    new.coverage_id = row.other_coverage_ids[0]
    new.other_coverage_ids = [row.coverage_id, *row.other_coverage_ids[1:]]
    return new


def _check_sent(row: schema.Claim, what: str) -> None:
    if row.status not in _SENT or row.batch_id is None:
        raise InputError(f"claim {row.patient_control_number} is {row.status}: only a claim the payer has can be {what}")


def _payer_number(row: schema.Claim) -> str:
    if not row.payer_claim_control_number:
        raise InputError(f"claim {row.patient_control_number} has no payer claim number yet",
                         fix="wait for the payer's 277CA or 835 (REF*1K / CLP07), which carries it")
    return row.payer_claim_control_number


def _net_posting(session, row: schema.Claim) -> dict:
    """The posted 835 claim payment that stands (not reversed) for this claim revision."""
    r = schema.RemitClaim
    stands = session.scalars(select(r).where(r.claim_id == row.id, r.state == "posted", r.status_code != "22",
                                             r.reversed_by_id.is_(None)).order_by(r.id.desc())).first()
    if stands is None:
        raise InputError(f"claim {row.patient_control_number} has no posted 835 from its payer")
    payment = session.get(schema.RemitPayment, stands.payment_id)
    return {"row": stands, "trace": payment.trace_number, "date": payment.payment_date or date.today()}


def _adjudication(original, posting: dict) -> PriorPayerAdjudication:
    stands: schema.RemitClaim = posting["row"]

    def adjustments(line):
        return tuple(PayerAdjustment(a["group"], a["reason"], Decimal(a["amount"]))
                     for a in stands.adjustments if a["line"] == line)

    lines = ()
    if stands.services:
        if len(stands.services) != len(original.lines):
            raise InputError(f"claim {original.patient_control_number}: the primary's 835 has "
                             f"{len(stands.services)} lines for the claim's {len(original.lines)}; build the "
                             f"secondary claim by hand")
        lines = tuple(LineAdjudication(paid_amount=Decimal(s["paid"]), adjustments=adjustments(n), line_number=n,
                                       adjudication_date=posting["date"])
                      for n, s in enumerate(stands.services, start=1))
    return PriorPayerAdjudication(
        coverage=original.coverage, paid_amount=stands.paid, adjudication_date=posting["date"],
        claim_adjustments=adjustments(None), lines=lines,
        payer_claim_control_number=stands.payer_claim_control_number or None)


def _new_revision(session, row: schema.Claim, claim, frequency: str, reason: str) -> schema.Claim:
    from hub.x12.claim837p import render_claim

    rendered = render_claim(claim)
    revision = (session.scalar(select(func.max(schema.Claim.revision))
                               .where(schema.Claim.patient_control_number == row.patient_control_number)) or 0) + 1
    new = schema.Claim(
        patient_control_number=row.patient_control_number, revision=revision, frequency_code=frequency,
        status=ClaimStatus.READY.value, encounter_id=row.encounter_id, patient_id=row.patient_id,
        coverage_id=row.coverage_id, billing_provider_id=row.billing_provider_id,
        rendering_provider_id=row.rendering_provider_id, place_of_service=row.place_of_service,
        prior_authorization=claim.prior_authorization, payer_claim_control_number=claim.payer_claim_control_number,
        service_date=row.service_date, total_charge=row.total_charge, diagnoses=list(claim.diagnoses),
        other_coverage_ids=list(row.other_coverage_ids), rendered_x12=rendered.to_json(),
    )
    for line in row.lines:
        new.lines.append(schema.ServiceLine(
            line_number=line.line_number, procedure_code=line.procedure_code, modifiers=list(line.modifiers),
            charge=line.charge, units=line.units, diagnosis_pointers=list(line.diagnosis_pointers),
            service_date=line.service_date, place_of_service=line.place_of_service, minutes=line.minutes,
            prior_authorization=line.prior_authorization, control_number=line.control_number))
    session.add(new)
    session.flush()
    session.add(schema.ClaimStatusEvent(claim_id=new.id, status=ClaimStatus.READY.value, reason=reason))
    session.add(schema.ClaimStatusEvent(claim_id=row.id, status=row.status,
                                        reason=f"followed by revision {revision}: {reason}"))
    return new
