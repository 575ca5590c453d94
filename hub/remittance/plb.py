"""PLB provider-level adjustments, named and tied to the claim they reference (domain reference 6.4).

A PLB is money between the payer and the provider, not a claim's payment: a recoupment of an
earlier overpayment (WO), prompt-pay interest (L6), a refund the provider asked for (72), a
balance carried forward (FB). The hub never counts it in a claim's balance, but shows it with
the claim whose patient control number or payer claim number PLB03-2 carries, so a biller sees
why a deposit is short of the claim payments. What each reason code means is data:
``mappings/remittance/provider_adjustments.toml``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store import schema
from bhhub.store.one_of import one_of

TABLE = "remittance/provider_adjustments.toml"


def meaning(mappings: MappingSet, reason: str) -> str:
    return mappings.load(TABLE).get("reason", {}).get(reason, f"PLB reason {reason} (not in the table)")


def references_of(session, claim: schema.Claim) -> set[str]:
    """What a PLB03-2 may carry for this claim: its patient control number, and every payer
    claim number (CLP07, 277CA) any revision of it was given."""
    c, r = schema.Claim, schema.RemitClaim
    refs = {claim.patient_control_number}
    revisions = select(c.id).where(c.patient_control_number == claim.patient_control_number)
    refs.update(session.scalars(select(c.payer_claim_control_number).where(c.id.in_(revisions))))
    refs.update(session.scalars(select(r.payer_claim_control_number).where(r.claim_id.in_(revisions))))
    return {ref.strip() for ref in refs if ref and ref.strip()}


def for_claim(session, mappings: MappingSet, claim: schema.Claim) -> list[dict]:
    """The PLB amounts whose reference names this claim, oldest first."""
    return for_claims(session, mappings, [claim.patient_control_number])[claim.patient_control_number]


def for_claims(session, mappings: MappingSet, patient_control_numbers) -> dict[str, list[dict]]:
    """``for_claim`` for many claims at once (a listing's page), by patient control number."""
    c, r = schema.Claim, schema.RemitClaim
    pcns = sorted(set(patient_control_numbers))
    refs: dict[str, set[str]] = {pcn: {pcn} for pcn in pcns}
    conn = session.connection()
    for pcn, number in conn.execute(select(c.patient_control_number, c.payer_claim_control_number)
                                       .where(c.patient_control_number.in_(pcns))):
        refs[pcn].add(number)
    for pcn, number in conn.execute(select(c.patient_control_number, r.payer_claim_control_number)
                                       .join(c, c.id == r.claim_id).where(c.patient_control_number.in_(pcns))):
        refs[pcn].add(number)
    return for_references(session, mappings, refs)


def for_references(session, mappings: MappingSet, refs: dict[str, set]) -> dict[str, list[dict]]:
    """The PLB lines naming each claim, given what its PLB03-2 may carry (``references_of``)."""
    refs = {pcn: {ref.strip() for ref in found if ref and ref.strip()} for pcn, found in refs.items()}
    wanted = sorted(set().union(*refs.values())) if refs else []
    rows = session.connection().execute(_BY_REFERENCE, {"refs": wanted}).all() if wanted else []
    # one row holds what ``line`` reads of the adjustment and of its payment
    return {pcn: [line(mappings, row, row) for row in rows if row.reference in mine] for pcn, mine in refs.items()}


_BY_REFERENCE = (select(schema.ProviderAdjustment.reason, schema.ProviderAdjustment.reference,
                        schema.ProviderAdjustment.amount, schema.RemitPayment.payer_id,
                        schema.RemitPayment.trace_number, schema.RemitPayment.payment_date)
                 .join(schema.RemitPayment, schema.RemitPayment.id == schema.ProviderAdjustment.payment_id)
                 .where(one_of(schema.ProviderAdjustment.reference, "refs"))
                 .order_by(schema.ProviderAdjustment.id))


def line(mappings: MappingSet, adjustment: schema.ProviderAdjustment, payment: schema.RemitPayment) -> dict:
    return {"reason": adjustment.reason, "meaning": meaning(mappings, adjustment.reason),
             "reference": adjustment.reference, "amount": adjustment.amount,
             "effect": "reduces the deposit" if adjustment.amount > 0 else "adds to the deposit",
             "payer_id": payment.payer_id, "trace_number": payment.trace_number,
             "payment_date": payment.payment_date}


def claims_referenced(session, references: Iterable[str]) -> dict[str, str]:
    """reference -> the patient control number it names (by CLM01, else a payer claim number)."""
    wanted = {ref.strip() for ref in references if ref and ref.strip()}
    if not wanted:
        return {}
    c, r = schema.Claim, schema.RemitClaim
    found = {pcn: pcn for pcn in session.scalars(select(c.patient_control_number)
                                                  .where(c.patient_control_number.in_(wanted)))}
    for number, pcn in session.execute(select(c.payer_claim_control_number, c.patient_control_number)
                                       .where(c.payer_claim_control_number.in_(wanted))):
        found.setdefault(number, pcn)
    for number, pcn in session.execute(select(r.payer_claim_control_number, c.patient_control_number)
                                       .join(c, c.id == r.claim_id).where(r.payer_claim_control_number.in_(wanted))):
        found.setdefault(number, pcn)
    return found
