"""Corrections: what an encounter sent again after its claim was billed becomes.

The payer has the claim as billed, so a changed visit can no longer change it in place. Instead
(``on_resend``, called by intake before anything is written):

- the same claim again (its 837P would be the same segments): nothing changes;
- a changed claim the payer has (or may have): a new revision with status ``pending_correction``,
  checked and kept out of batches, until a biller sends it as the replacement (frequency 7) with
  ``bhhub followup replace`` (``bhhub.remittance.followups``); sent again before that, it is updated;
- a changed original rejected at the front end (TA1, 999, 277CA): the payer never adjudicated
  it, so it is corrected in place and goes out again as an original (domain reference 7);
- a claim voided by a frequency-8 revision: nothing changes (a new visit claim is the way).

``payer_claim_number`` is what a replacement or void names in REF*F8: the payer's claim number
(835 CLP07) of the latest adjudication that stands, so after a reversal (CLP02 22) and a new
adjudication it is the new one's (domain reference 5.3, 6.5 item 4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select

from bhhub import model
from bhhub.errors import InputError
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.repo import claim_record
from bhhub.claims.claim837p import RenderedClaim, render_claim

PENDING = ClaimStatus.PENDING_CORRECTION.value
REPLACEMENT, VOID = "7", "8"


@dataclass(frozen=True)
class Resend:
    """What intake does with an encounter whose latest claim revision has left the hub.

    ``action``: ``unchanged`` (nothing to store; ``note`` says why), ``new_pending`` (insert a
    pending correction), ``update`` (rewrite ``row_id`` in place, keeping its status when it
    is a pending correction). ``claim`` is the claim as it will be checked and stored.
    """

    action: str
    claim: model.Claim
    row_id: int | None = None
    status: str | None = None  # the status a rewritten or new row keeps, None: ready or needs attention
    note: str | None = None


def on_resend(session, latest: schema.Claim, claim: model.Claim, source_ref: str) -> Resend:
    """Decide what ``claim`` (built from the re-sent encounter) does to the billed ``latest``."""
    pcn = latest.patient_control_number
    # A follow-up made since (a claim to the secondary payer) may be newer than the correction.
    latest = pending_correction(session, pcn) or latest
    if latest.status == PENDING:
        if _same_claim(claim, claim_record(session, latest)):
            return Resend("unchanged", claim, note=f"{source_ref} is already the pending correction of claim {pcn}")
        return Resend("update", _as_replacement(session, claim, latest), latest.id, PENDING,
                      note=f"{source_ref}: pending correction of claim {pcn} updated; send it with "
                           f"`bhhub followup replace {pcn}`")
    if latest.frequency_code == VOID:
        return Resend("unchanged", claim, note=f"{source_ref}: claim {pcn} was voided (revision {latest.revision}); "
                                               "not changed. Bill the visit as a new claim if it is still owed.")
    billed = billed_revision(session, pcn, claim.coverage.payer.payer_id) or latest
    if _same_as_sent(session, claim, billed):
        return Resend("unchanged", claim, note=f"{source_ref} was already billed as claim {pcn} ({latest.status}); "
                                               "unchanged.")
    if latest.status == ClaimStatus.REJECTED.value and latest.revision == 0:
        # Rejected at the front end: never adjudicated, so the fix is a new original (domain
        # reference 7), not a replacement; the claim goes back to the queue.
        return Resend("update", claim, latest.id,
                      note=f"{source_ref}: claim {pcn} was rejected at the front end; corrected and queued again "
                           "as an original")
    return Resend("new_pending", _as_replacement(session, claim, billed), None, PENDING,
                  note=f"{source_ref} changed after claim {pcn} was billed ({latest.status}); kept as a pending "
                       f"correction: send it with `bhhub followup replace {pcn}`")


def _as_replacement(session, claim: model.Claim, billed: schema.Claim) -> model.Claim:
    """The claim checked as the replacement it will be (a replacement's filing window differs)."""
    return replace(claim, frequency_code=REPLACEMENT, payer_claim_control_number=payer_claim_number(session, billed))


def _same_as_sent(session, claim: model.Claim, billed: schema.Claim) -> bool:
    """Whether ``claim`` says in an 837P exactly what ``billed`` said when it went out: its
    stored segments (patient, subscriber, rendering provider, diagnoses, lines) as they left,
    whatever the patient and provider rows say now, and the same billing provider."""
    if claim.billing_provider.npi != session.get(schema.Provider, billed.billing_provider_id).npi:
        return False
    shape = {"frequency_code": billed.frequency_code, "payer_claim_control_number": billed.payer_claim_control_number}
    try:
        now = render_claim(replace(claim, **shape))
        sent = (RenderedClaim.from_json(billed.rendered_x12) if billed.rendered_x12
                else render_claim(claim_record(session, billed)))
    except InputError:
        return False  # one of them cannot be written: they differ
    return (now.subscriber, now.patient, now.claim) == (sent.subscriber, sent.patient, sent.claim)


def _same_claim(claim: model.Claim, stored: model.Claim) -> bool:
    """Whether two claims would be the same 837P (both as originals; neither has gone out)."""
    if claim.billing_provider.npi != stored.billing_provider.npi:
        return False
    shape = {"frequency_code": "1", "payer_claim_control_number": None}
    try:
        now, then = render_claim(replace(claim, **shape)), render_claim(replace(stored, **shape))
    except InputError:
        return False
    return (now.subscriber, now.patient, now.claim) == (then.subscriber, then.patient, then.claim)


# --- reading the store --------------------------------------------------------------------------


def pending_correction(session, patient_control_number: str) -> schema.Claim | None:
    c = schema.Claim
    return session.scalar(select(c).where(c.patient_control_number == patient_control_number, c.status == PENDING)
                          .order_by(c.revision.desc()).limit(1))


def billed_revision(session, patient_control_number: str, payer_id: str | None = None) -> schema.Claim | None:
    """The latest revision that went out (to ``payer_id``, when given), voids included."""
    c = schema.Claim
    query = select(c).where(c.patient_control_number == patient_control_number, c.batch_id.is_not(None))
    if payer_id is not None:
        query = (query.join(schema.Coverage, schema.Coverage.id == c.coverage_id)
                 .join(schema.Payer, schema.Payer.id == schema.Coverage.payer_id).where(schema.Payer.payer_id == payer_id))
    return session.scalar(query.order_by(c.revision.desc()).limit(1))


def payer_claim_number(session, billed: schema.Claim) -> str | None:
    """The payer's claim number for ``billed`` (REF*F8): CLP07 of the newest 835 claim payment
    posted to any revision sent to the same payer that stands (neither a reversal nor reversed);
    else the number a 277CA gave (REF*1K); None when the payer has given none."""
    c, r = schema.Claim, schema.RemitClaim
    same_payer = (select(c.id).join(schema.Coverage, schema.Coverage.id == c.coverage_id)
                  .where(c.patient_control_number == billed.patient_control_number,
                         schema.Coverage.payer_id == session.get(schema.Coverage, billed.coverage_id).payer_id))
    standing = session.scalar(
        select(r.payer_claim_control_number)
        .where(r.claim_id.in_(same_payer), r.state == "posted", r.status_code != "22", r.reversed_by_id.is_(None),
               r.payer_claim_control_number != "")
        .order_by(r.id.desc()).limit(1))
    return standing or billed.payer_claim_control_number or None


def changes(session, billed: schema.Claim | None, pending: schema.Claim) -> list[str]:
    """What the correction changes, in a biller's words (codes only, no PHI)."""
    if billed is None:
        return []
    said = []
    if list(billed.diagnoses) != list(pending.diagnoses):
        said.append(f"diagnoses {' '.join(billed.diagnoses)} -> {' '.join(pending.diagnoses)}")

    def services(row):
        return [":".join([line.procedure_code, *line.modifiers]) + f" x{line.units.normalize():f} {line.charge}"
                for line in row.lines]

    if services(billed) != services(pending):
        said.append(f"lines {', '.join(services(billed))} -> {', '.join(services(pending))}")
    if billed.place_of_service != pending.place_of_service:
        said.append(f"place of service {billed.place_of_service} -> {pending.place_of_service}")
    if (billed.prior_authorization or "") != (pending.prior_authorization or ""):
        said.append("prior authorization number")
    if billed.coverage_id != pending.coverage_id or billed.other_coverage_ids != pending.other_coverage_ids:
        said.append("coverage")
    if billed.rendering_provider_id != pending.rendering_provider_id:
        said.append("rendering provider")
    return said or ["patient, subscriber or provider details"]


def list_pending(session) -> list[dict]:
    """Every pending correction, with the revision it replaces and its REF*F8 when known."""
    c = schema.Claim
    rows = session.scalars(select(c).where(c.status == PENDING).order_by(c.id)).all()
    out = []
    for row in rows:
        coverage = session.get(schema.Coverage, row.coverage_id)
        billed = billed_revision(session, row.patient_control_number, coverage.payer.payer_id)
        out.append({
            "patient_control_number": row.patient_control_number, "id": row.id, "revision": row.revision,
            "replaces_revision": billed.revision if billed else None,
            "billed_status": billed.status if billed else None,
            "payer_id": coverage.payer.payer_id, "service_date": row.service_date, "total_charge": row.total_charge,
            "changes": changes(session, billed, row),
            "payer_claim_control_number": payer_claim_number(session, billed) if billed else None,
            "errors": [f"{f.code}" + (f" line {f.line_number}" if f.line_number else "")
                       for f in row.findings if f.severity == "error"],
        })
    return out
