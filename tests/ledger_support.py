"""Visits, authorizations and later revisions of claims for one member of one payer: the store
state every test of the authorization ledger builds (``test_ledger``, ``test_auth_consumption_bulk``)."""

from __future__ import annotations

import json
from datetime import date

from bhhub.demo.synthetic import encounter_bundle
from bhhub.ledger import authorizations as ledger
from bhhub.store import schema


def visit_bundle(seed: int, day: date, *, payer: str, member: str) -> bytes:
    """Synthetic encounter ``seed`` moved to ``day``, for member ``member`` of ``payer``."""
    bundle = encounter_bundle(seed)
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Organization" and r["id"].startswith("payer-"):
            r["identifier"][0]["value"] = payer
        elif r["resourceType"] == "Coverage":
            r["subscriberId"] = member
        elif r["resourceType"] == "Encounter":
            r["period"]["start"] = f"{day.isoformat()}T10:00:00-05:00"
        elif r["resourceType"] == "ChargeItem":
            r["occurrenceDateTime"] = day.isoformat()
    return json.dumps(bundle).encode()


def add_authorization(hub, **fields) -> int:
    """An authorization on file (``fields`` as ``bhhub.ledger.authorizations.add`` takes them): its id."""
    with hub.store.session() as session:
        row = ledger.add(session, **fields)
        session.commit()
        return row.id


def revise(hub, claim_id: int, frequency: str, *, payer_claim_control_number: str | None = None) -> int:
    """A later revision of a claim that went out (7 replaces it, 8 voids it), ready to go: its id."""
    with hub.store.session() as session:
        original = session.get(schema.Claim, claim_id)
        revision = schema.Claim(
            patient_control_number=original.patient_control_number, revision=original.revision + 1,
            frequency_code=frequency, status="ready", encounter_id=original.encounter_id,
            patient_id=original.patient_id, coverage_id=original.coverage_id,
            billing_provider_id=original.billing_provider_id, rendering_provider_id=original.rendering_provider_id,
            place_of_service=original.place_of_service, service_date=original.service_date,
            total_charge=original.total_charge, diagnoses=original.diagnoses,
            payer_claim_control_number=payer_claim_control_number,
            lines=[schema.ServiceLine(line_number=l.line_number, procedure_code=l.procedure_code, modifiers=[],
                                      charge=l.charge, units=l.units, diagnosis_pointers=[1],
                                      service_date=l.service_date, control_number=l.control_number)
                   for l in original.lines])
        session.add(revision)
        session.commit()
        return revision.id
