"""From an encounter to a stored claim: code it, scrub it, store it with its status history.

A claim's patient control number (CLM01) is handed out once and kept for the life of the
claim, across re-sends of the same encounter and later replacements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import model
from hub.coding.engine import code_encounter
from hub.model import ClaimStatus, Encounter
from hub.scrub.engine import blocking, scrub
from hub.store import schema
from hub.store.repo import Upserter, next_counter

PCN_PREFIX = "BH"
# Statuses in which a re-sent encounter may still change its claim: nothing has left the hub.
UNSENT = (ClaimStatus.NEEDS_ATTENTION.value, ClaimStatus.READY.value)


@dataclass(frozen=True)
class ClaimOutcome:
    claim_id: int | None
    patient_control_number: str | None
    status: str
    action: str  # created, updated, unchanged_sent
    note: str | None = None


def store_encounter(hub, session: Session, upserts: Upserter, encounter: Encounter, inbox_item_id: int) -> ClaimOutcome:
    """Store ``encounter`` and its claim in ``session`` (the caller commits)."""
    existing = session.scalar(select(schema.Encounter).where(schema.Encounter.key == encounter.key))
    prior_claim = None
    if existing is not None:
        prior_claim = session.scalar(
            select(schema.Claim).where(schema.Claim.encounter_id == existing.id).order_by(schema.Claim.revision.desc())
        )
        if prior_claim is not None and prior_claim.status not in UNSENT:
            return ClaimOutcome(
                prior_claim.id, prior_claim.patient_control_number, prior_claim.status, "unchanged_sent",
                f"{encounter.source_ref} was already billed as claim {prior_claim.patient_control_number} "
                f"({prior_claim.status}); not changed. Send a corrected claim instead.",
            )

    patient_row = upserts.patient(encounter.patient)
    coverages = sorted(encounter.coverages, key=lambda c: c.order)
    coverage_rows = [upserts.coverage(patient_row, c) for c in coverages]
    billing_row = upserts.provider(encounter.billing_provider)
    rendering_row = upserts.provider(encounter.rendering_provider) if encounter.rendering_provider else None
    session.flush()

    if existing is None:
        existing = schema.Encounter(key=encounter.key)
        session.add(existing)
    existing.source_ref = encounter.source_ref
    existing.inbox_item_id = inbox_item_id
    existing.patient_id = patient_row.id
    existing.service_date = encounter.service_date
    existing.minutes = encounter.minutes
    existing.virtual = encounter.virtual
    existing.audio_only = encounter.audio_only

    primary = coverages[0]
    coded = code_encounter(encounter, primary.payer, hub.mappings)
    pcn = prior_claim.patient_control_number if prior_claim else f"{PCN_PREFIX}{next_counter(session, 'patient_control_number'):08d}"
    lines = tuple(
        replace(line, control_number=line.control_number or f"{pcn}-{number}")
        for number, line in enumerate(coded.lines, start=1)
    )
    claim = model.Claim(
        patient_control_number=pcn,
        patient=encounter.patient,
        coverage=primary,
        billing_provider=encounter.billing_provider,
        rendering_provider=encounter.rendering_provider,
        diagnoses=encounter.diagnoses,
        lines=lines,
        place_of_service=coded.place_of_service,
        other_coverages=tuple(coverages[1:]),
        prior_authorization=encounter.prior_authorization,
    )
    findings = [*coded.findings, *scrub(claim, hub.claim_checks, hub)]
    status = ClaimStatus.NEEDS_ATTENTION if blocking(findings) else ClaimStatus.READY

    row = prior_claim or schema.Claim(patient_control_number=pcn, revision=0, frequency_code="1")
    if prior_claim is not None:
        # Delete the old lines first: the unit of work would insert the new ones before
        # deleting the old, and line numbers are unique per claim.
        row.lines = []
        row.findings = []
        session.flush()
    previous_status = row.status
    row.status = status.value
    row.encounter_id = existing.id
    row.patient_id = patient_row.id
    row.coverage_id = coverage_rows[0].id
    row.other_coverage_ids = [c.id for c in coverage_rows[1:]]
    row.billing_provider_id = billing_row.id
    row.rendering_provider_id = rendering_row.id if rendering_row else None
    row.place_of_service = claim.place_of_service
    row.prior_authorization = claim.prior_authorization
    row.service_date = min((line.service_date for line in lines), default=encounter.service_date)
    row.total_charge = claim.total_charge
    row.diagnoses = list(encounter.diagnoses)
    row.lines = [
        schema.ServiceLine(
            line_number=number,
            procedure_code=line.procedure_code,
            modifiers=list(line.modifiers),
            charge=line.charge if line.charge is not None else Decimal(0),
            units=line.units,
            diagnosis_pointers=list(line.diagnosis_pointers),
            service_date=line.service_date,
            place_of_service=line.place_of_service if line.place_of_service != claim.place_of_service else None,
            minutes=line.minutes,
            prior_authorization=line.prior_authorization,
            control_number=line.control_number,
        )
        for number, line in enumerate(lines, start=1)
    ]
    row.findings = [
        schema.Finding(line_number=f.line, code=f.code, severity=f.severity.value, message=f.message,
                       fix=f.fix, check_name=f.code.split(".", 1)[0])
        for f in findings
    ]
    if prior_claim is None:
        session.add(row)
    session.flush()
    if previous_status != status.value:
        session.add(schema.ClaimStatusEvent(
            claim_id=row.id, status=status.value,
            reason="intake" if prior_claim is None else "encounter re-sent",
        ))
    return ClaimOutcome(row.id, pcn, status.value, "created" if prior_claim is None else "updated")


def set_status(session: Session, row: schema.Claim, status: ClaimStatus, reason: str) -> None:
    """Move a claim to ``status`` and append it to the claim's history."""
    row.status = status.value
    session.add(schema.ClaimStatusEvent(claim_id=row.id, status=status.value, reason=reason))
