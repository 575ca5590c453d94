"""Duplicate services: a claim that repeats a service already billed is blocked, unless it replaces.

A line duplicates an earlier claim's line when the patient, payer, date of service, procedure
code (with the same modifiers) and rendering provider all agree, and the earlier claim is still
standing (not rejected, voided or held back). Payers deny such lines as CARC 18; the fix is a
replacement claim (frequency 7) of the first one, or nothing at all if it was a re-export.

Reads committed claims through a short session of its own: two copies of one visit inside the
same intake chunk are not seen by each other (the encounter key already catches a re-sent
visit; this catches the same service recorded twice under two visits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from hub import hookimpl
from hub.model import Claim, Finding, Severity
from hub.store import schema
from hub.types import ClaimCheck

_NOT_STANDING = ("needs_attention", "rejected", "void")


def check_duplicates(claim: Claim, context: Any = None) -> Iterator[Finding]:
    if context is None or getattr(context, "store", None) is None or claim.frequency_code != "1":
        return
    c, line, p, cov, payer, prov = (schema.Claim, schema.ServiceLine, schema.Patient, schema.Coverage,
                                    schema.Payer, schema.Provider)
    dates = {l.service_date for l in claim.lines}
    codes = {l.procedure_code for l in claim.lines}
    with context.store.session() as session:
        rows = session.execute(
            select(c.patient_control_number, line.procedure_code, line.modifiers, line.service_date,
                   payer.payer_id, prov.npi)
            .join(line, line.claim_id == c.id)
            .join(p, p.id == c.patient_id)
            .join(cov, cov.id == c.coverage_id)
            .join(payer, payer.id == cov.payer_id)
            .join(prov, prov.id == c.rendering_provider_id, isouter=True)
            .where(p.key == claim.patient.key, line.service_date.in_(dates), line.procedure_code.in_(codes),
                   c.patient_control_number != claim.patient_control_number, c.status.not_in(_NOT_STANDING),
                   c.frequency_code != "8")
        ).all()
    if not rows:
        return
    rendering = claim.rendering_provider.npi if claim.rendering_provider else None
    for number, billed in enumerate(claim.lines, start=1):
        for pcn, code, modifiers, day, payer_id, npi in rows:
            if (code == billed.procedure_code and day == billed.service_date
                    and tuple(modifiers or ()) == tuple(billed.modifiers)
                    and payer_id == claim.coverage.payer.payer_id and (npi is None or npi == rendering)):
                yield Finding(
                    "claim.duplicate_service", Severity.ERROR,
                    f"{billed.procedure_code} on {billed.service_date} for this patient and payer was already "
                    f"billed on claim {pcn}",
                    f"if this visit is the same one, do not bill it again; if {pcn} was wrong, send a "
                    f"replacement of it (`bhhub followup replace {pcn}`) instead of a new claim",
                    number,
                )
                break


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("duplicates", "a service already billed for the same patient, payer, date and provider",
                       check_duplicates)]
