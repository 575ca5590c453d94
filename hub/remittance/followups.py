"""Follow-up claims in the store: a replacement (7), a void (8), the claim to the secondary payer.

Each is a new revision of the claim (same patient control number, ``revision`` + 1) built by
``bhhub.claims.followup`` from the stored claim and, for the secondary, from the primary's posted
835. It is rendered once, here, so it either goes into the next batch as it stands (status
``ready``) or is refused with a reason; the claim it follows is marked in its history.

A replacement carries the correction: it is the claim's pending correction (the encounter sent
again after billing, ``bhhub.remittance.corrections``) checked again as a frequency-7 claim, so one
whose corrected data fails a check is held (``needs_attention``) like any claim. Resending the
claim exactly as billed is a deliberate choice (``as_billed``). REF*F8 of a replacement or void
is the payer's claim number of the latest adjudication that stands.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from bhhub.claims.build import check_and_render, set_status
from bhhub.errors import InputError
from bhhub.model import ClaimStatus, LineAdjudication, PayerAdjustment, PriorPayerAdjudication
from bhhub.remittance import crossovers
from bhhub.remittance.corrections import billed_revision, payer_claim_number, pending_correction
from bhhub.store import schema
from bhhub.store.repo import claim_record, coverage_record
from bhhub.claims import followup

_SENT = {ClaimStatus.SUBMITTED.value, ClaimStatus.ACCEPTED.value, ClaimStatus.PAID.value,
         ClaimStatus.PARTIALLY_PAID.value, ClaimStatus.DENIED.value, ClaimStatus.REVERSED.value}


def create_replacement(session, row: schema.Claim, *, hub=None, as_billed: bool = False) -> schema.Claim:
    """The replacement (frequency 7) of the claim ``row`` is a revision of.

    With a pending correction, that correction becomes the replacement (``hub`` runs the
    checks); ``as_billed`` instead repeats the claim as billed, for a payer that needs the same
    data again. Neither, or both, is refused: a replacement that changes nothing is not a fix.
    """
    pcn = row.patient_control_number
    pending = pending_correction(session, pcn)
    if pending is not None and as_billed:
        raise InputError(f"claim {pcn} has a pending correction (revision {pending.revision}) from the EHR",
                         fix=f"send it with `bhhub followup replace {pcn}` (without --as-billed)")
    if pending is None and not as_billed:
        raise InputError(f"claim {pcn} has no pending correction: a replacement would repeat the claim as billed",
                         fix="correct the visit in the EHR and send it again (it shows in `bhhub followup "
                             "corrections`), or add --as-billed to resend the claim unchanged")
    if pending is not None:
        return _send_correction(hub, session, pending)
    row = billed_revision(session, pcn) or row
    _check_sent(row, "replaced")
    pccn = _payer_number(session, row)
    claim = followup.replacement(claim_record(session, row), pccn)
    return _new_revision(session, row, claim, "7", f"replacement (frequency 7) of revision {row.revision} as billed, "
                                                   f"REF*F8 {pccn}")


def _send_correction(hub, session, pending: schema.Claim) -> schema.Claim:
    """The pending correction, checked again as the replacement of the revision it corrects."""
    if hub is None:
        raise TypeError("sending a pending correction runs the claim checks: pass hub=")
    pcn = pending.patient_control_number
    billed = billed_revision(session, pcn, session.get(schema.Coverage, pending.coverage_id).payer.payer_id)
    if billed is None:
        raise InputError(f"claim {pcn} never went to this payer: its correction cannot replace anything",
                         fix="bill it as a new claim")
    if billed.frequency_code == followup.VOID:
        raise InputError(f"claim {pcn} was voided (revision {billed.revision}) and cannot be replaced",
                         fix="bill the visit as a new claim if it is still owed")
    if billed.status == ClaimStatus.REJECTED.value and billed.revision == 0:
        # Rejected at the front end after the correction came: the payer never adjudicated the
        # claim, so the correction goes as a new original (domain reference 7), not a 7.
        pending.frequency_code, pending.payer_claim_control_number = "1", None
        reason = "new original (frequency 1) from the corrected encounter; revision 0 was rejected at the front end"
    elif billed.status in _SENT:
        pccn = _payer_number(session, billed)
        pending.frequency_code, pending.payer_claim_control_number = followup.REPLACEMENT, pccn
        reason = f"replacement (frequency 7) of revision {billed.revision} from the corrected encounter, REF*F8 {pccn}"
    else:
        raise InputError(f"claim {pcn} is {billed.status}: only a claim the payer has can be replaced")
    status = check_and_render(hub, session, pending)
    held = "" if status == ClaimStatus.READY else "; held: its corrected data has error findings"
    set_status(session, pending, status, reason + held)
    session.add(schema.ClaimStatusEvent(claim_id=billed.id, status=billed.status,
                                        reason=f"followed by revision {pending.revision}: {reason}"))
    session.flush()
    return pending


def create_void(session, row: schema.Claim, **_) -> schema.Claim:
    """The void (frequency 8) of the claim as billed. A pending correction cannot replace a
    cancelled claim, so it is closed with it."""
    row = billed_revision(session, row.patient_control_number) or row
    _check_sent(row, "voided")
    pccn = _payer_number(session, row)
    claim = followup.void(claim_record(session, row), pccn)
    new = _new_revision(session, row, claim, "8", f"void (frequency 8) of revision {row.revision}, REF*F8 {pccn}")
    set_status(session, row, ClaimStatus.VOID, f"voided by revision {new.revision}")
    _close_denials(session, row.patient_control_number, f"claim voided (revision {new.revision})")
    pending = pending_correction(session, row.patient_control_number)
    if pending is not None:
        set_status(session, pending, ClaimStatus.VOID, f"pending correction dropped: the claim was voided by "
                                                        f"revision {new.revision}")
    return new


def _close_denials(session, pcn: str, why: str) -> None:
    """A void cancels the claim: nothing on it is appealed or corrected any more, so its open
    denials leave the worklist (resolved, with the reason) rather than ask for an appeal."""
    d, c = schema.Denial, schema.Claim
    claim_ids = select(c.id).where(c.patient_control_number == pcn)
    for denial in session.scalars(select(d).where(d.claim_id.in_(claim_ids), d.status == "open")):
        denial.status, denial.resolution, denial.resolved_at = "resolved", why, schema.utcnow()


def create_secondary(session, row: schema.Claim, **_) -> schema.Claim:
    """The claim to the next payer, with the primary's adjudication from its posted 835."""
    row = billed_revision(session, row.patient_control_number) or row
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


def _payer_number(session, row: schema.Claim) -> str:
    number = payer_claim_number(session, row)
    if not number:
        raise InputError(f"claim {row.patient_control_number} has no payer claim number yet",
                         fix="wait for the payer's 277CA or 835 (REF*1K / CLP07), which carries it")
    return number


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
    from bhhub.claims.claim837p import render_claim

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
