"""Moving canonical records in and out of the store.

Upserts keyed by natural keys (payer id, NPI, patient key, coverage member id) so the same
person or provider arriving in many files is one row, updated to the latest data.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import model
from hub.store import schema


class Upserter:
    """Finds or creates rows for canonical records within one session, caching by key."""

    def __init__(self, session: Session):
        self.session = session
        self._payers: dict[str, schema.Payer] = {}
        self._providers: dict[str, schema.Provider] = {}
        self._patients: dict[str, schema.Patient] = {}

    def payer(self, payer: model.Payer) -> schema.Payer:
        row = self._payers.get(payer.payer_id) or self.session.scalar(
            select(schema.Payer).where(schema.Payer.payer_id == payer.payer_id))
        if row is None:
            row = schema.Payer(payer_id=payer.payer_id)
            self.session.add(row)
        row.name = payer.name
        if payer.claim_filing_indicator:
            row.claim_filing_indicator = payer.claim_filing_indicator
        self._payers[payer.payer_id] = row
        return row

    def provider(self, provider: model.Provider) -> schema.Provider:
        row = self._providers.get(provider.npi) or self.session.scalar(
            select(schema.Provider).where(schema.Provider.npi == provider.npi))
        if row is None:
            row = schema.Provider(npi=provider.npi)
            self.session.add(row)
        row.organization_name = provider.organization_name
        row.family_name = provider.name.family if provider.name else None
        row.given_name = provider.name.given if provider.name else None
        # Keep what an earlier feed told us when this one is silent.
        row.tin = provider.tin or row.tin
        row.taxonomy = provider.taxonomy or row.taxonomy
        row.address = _address(provider.address) or row.address
        self._providers[provider.npi] = row
        return row

    def patient(self, patient: model.Patient) -> schema.Patient:
        row = self._patients.get(patient.key) or self.session.scalar(
            select(schema.Patient).where(schema.Patient.key == patient.key))
        if row is None:
            row = schema.Patient(key=patient.key)
            self.session.add(row)
        row.family_name = patient.name.family
        row.given_name = patient.name.given
        row.middle_name = patient.name.middle
        row.birth_date = patient.birth_date
        row.gender = patient.gender
        row.address = _address(patient.address)
        self._patients[patient.key] = row
        return row

    def coverage(self, patient_row: schema.Patient, coverage: model.Coverage) -> schema.Coverage:
        payer_row = self.payer(coverage.payer)
        self.session.flush()
        row = self.session.scalar(select(schema.Coverage).where(
            schema.Coverage.patient_id == patient_row.id,
            schema.Coverage.payer_id == payer_row.id,
            schema.Coverage.member_id == coverage.member_id,
        ))
        if row is None:
            row = schema.Coverage(patient_id=patient_row.id, payer=payer_row, member_id=coverage.member_id)
            self.session.add(row)
        row.coverage_order = coverage.order
        row.relationship_code = coverage.relationship
        row.group_number = coverage.group_number
        row.plan_name = coverage.plan_name
        row.subscriber = _person(coverage.subscriber) if coverage.subscriber else None
        return row


def next_counter(session: Session, name: str) -> int:
    """The next value of a monotonic counter; values are never handed out twice.

    The UPDATE takes the row lock on PostgreSQL (and the write lock on SQLite), so concurrent
    writers serialize; the first use inserts the row.
    """
    counter = schema.ControlCounter
    value = session.scalar(
        update(counter).where(counter.name == name).values(value=counter.value + 1).returning(counter.value)
    )
    if value is not None:
        return value
    try:
        with session.begin_nested():
            session.execute(insert(counter).values(name=name, value=1))
        return 1
    except IntegrityError:  # another writer created it first
        return next_counter(session, name)


# --- rows back to canonical records -------------------------------------------------------


def claim_record(session: Session, row: schema.Claim) -> model.Claim:
    """The canonical claim for a stored claim row, as the 837P writer needs it."""
    patient = patient_record(session.get(schema.Patient, row.patient_id))
    coverage = coverage_record(session.get(schema.Coverage, row.coverage_id))
    others = tuple(coverage_record(session.get(schema.Coverage, cid)) for cid in row.other_coverage_ids)
    rendering = session.get(schema.Provider, row.rendering_provider_id) if row.rendering_provider_id else None
    return model.Claim(
        patient_control_number=row.patient_control_number,
        patient=patient,
        coverage=coverage,
        billing_provider=provider_record(session.get(schema.Provider, row.billing_provider_id)),
        rendering_provider=provider_record(rendering) if rendering else None,
        diagnoses=tuple(row.diagnoses),
        lines=tuple(
            model.ServiceLine(
                procedure_code=line.procedure_code,
                service_date=line.service_date,
                modifiers=tuple(line.modifiers),
                charge=Decimal(line.charge),
                units=Decimal(line.units).normalize(),
                diagnosis_pointers=tuple(line.diagnosis_pointers),
                place_of_service=line.place_of_service,
                minutes=line.minutes,
                prior_authorization=line.prior_authorization,
                control_number=line.control_number,
            )
            for line in row.lines
        ),
        place_of_service=row.place_of_service,
        frequency_code=row.frequency_code,
        other_coverages=others,
        prior_authorization=row.prior_authorization,
        payer_claim_control_number=row.payer_claim_control_number,
    )


def patient_record(row: schema.Patient) -> model.Patient:
    return model.Patient(
        name=model.PersonName(row.family_name, row.given_name, row.middle_name),
        birth_date=row.birth_date,
        gender=row.gender,
        address=_address_record(row.address),
        key=row.key,
    )


def provider_record(row: schema.Provider) -> model.Provider:
    return model.Provider(
        npi=row.npi,
        organization_name=row.organization_name,
        name=None if row.organization_name else model.PersonName(row.family_name or "", row.given_name),
        tin=row.tin,
        taxonomy=row.taxonomy,
        address=_address_record(row.address),
    )


def coverage_record(row: schema.Coverage) -> model.Coverage:
    return model.Coverage(
        order=row.coverage_order,
        payer=model.Payer(row.payer.payer_id, row.payer.name, row.payer.claim_filing_indicator),
        member_id=row.member_id,
        relationship=row.relationship_code,
        subscriber=_person_record(row.subscriber) if row.subscriber else None,
        group_number=row.group_number,
        plan_name=row.plan_name,
    )


def _address(address: model.Address | None) -> dict[str, Any] | None:
    return asdict(address) if address else None


def _address_record(data: dict[str, Any] | None) -> model.Address | None:
    return model.Address(**data) if data else None


def _person(person: model.Person) -> dict[str, Any]:
    return {
        "name": asdict(person.name),
        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
        "gender": person.gender,
        "address": _address(person.address),
    }


def _person_record(data: dict[str, Any]) -> model.Person:
    return model.Person(
        name=model.PersonName(**data["name"]),
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
        gender=data.get("gender", "U"),
        address=_address_record(data.get("address")),
    )
