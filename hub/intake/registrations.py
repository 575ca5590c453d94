"""Storing the records that are not encounters: registrations and appointments.

A ``Registration`` upserts its patient and coverages through the same ``Upserter`` statements
an encounter's patient and coverages go through (``bhhub.claims.build.store_encounter``), with the
payer table's claim filing indicator; no claim is made. An ``Appointment`` is one row of
``appointments`` per appointment key: booked, changed, cancelled, in the order the scheduler
sent them (an older message never undoes a newer one). Both run inside the inbox item's
transaction; the caller flushes the ``Upserter`` and commits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from sqlalchemy import bindparam, func, or_, select

from bhhub.coding.rules import claim_filing_indicator
from bhhub.intake.records import Appointment, Registration
from bhhub.store import schema
from bhhub.store.repo import Upserter
from bhhub.store.schema import utcnow


@dataclass(frozen=True)
class RecordOutcome:
    """What storing one record did. ``row_id`` is the patient's id for a registration, the
    appointment's for an appointment; ``detail`` is for a person (no PHI)."""

    kind: str  # registration, appointment
    row_id: int
    action: str  # stored, unchanged (an older appointment message than the one stored)
    detail: str = ""


def store_record(hub, upserts: Upserter, record, inbox_item_id: int) -> RecordOutcome:
    if isinstance(record, Registration):
        return store_registration(hub, upserts, record)
    if isinstance(record, Appointment):
        return store_appointment(upserts, record, inbox_item_id)
    raise TypeError(f"not a record the hub stores: {type(record).__name__}")


def store_registration(hub, upserts: Upserter, registration: Registration) -> RecordOutcome:
    patient_id = upserts.patient(registration.patient)
    for coverage in sorted(registration.coverages, key=lambda c: c.order):
        # SBR09 as the payer table says, as for an encounter's coverages.
        indicator = claim_filing_indicator(hub.mappings, coverage.payer)
        upserts.coverage(patient_id, replace(coverage, payer=replace(coverage.payer, claim_filing_indicator=indicator)))
    noun = "coverage" if len(registration.coverages) == 1 else "coverages"
    return RecordOutcome("registration", patient_id, "stored", f"patient {patient_id}, {len(registration.coverages)} {noun}")


_PATIENTS = schema.Patient.__table__
_FIND_PATIENT = select(_PATIENTS.c.id).where(_PATIENTS.c.key == bindparam("patient_key"))


def store_appointment(upserts: Upserter, appointment: Appointment, inbox_item_id: int) -> RecordOutcome:
    conn = upserts.connection
    patient_id = None
    if appointment.patient.key:
        patient_id = conn.execute(_FIND_PATIENT, {"patient_key": appointment.patient.key}).scalar()
    if patient_id is None and appointment.patient.key and appointment.patient.name.family:
        # A patient first seen in the schedule: recorded from the SIU's PID. A known patient is
        # not overwritten by it (registration and charges carry the fuller record).
        patient_id = upserts.patient(appointment.patient)
    row_id = conn.execute(_upsert_appointment(conn.dialect.name), {
        "key": appointment.key, "patient_key": appointment.patient.key, "patient_id": patient_id,
        "service_date": appointment.service_date, "starts_at": appointment.starts_at,
        "duration_minutes": appointment.duration_minutes, "provider_id": appointment.provider_id,
        "provider_npi": appointment.provider_npi, "appointment_type": appointment.appointment_type,
        "status": appointment.status, "message_time": appointment.message_time,
        "inbox_item_id": inbox_item_id, "updated_at": utcnow(),
    }).scalar()
    if row_id is None:  # the stored row came from a newer message
        row_id = conn.execute(select(_APPOINTMENTS.c.id).where(_APPOINTMENTS.c.key == appointment.key)).scalar_one()
        return RecordOutcome("appointment", row_id, "unchanged",
                             f"appointment {row_id}: a newer message about it is stored already")
    return RecordOutcome("appointment", row_id, "stored", f"appointment {row_id} {appointment.status}")


_APPOINTMENTS = schema.Appointment.__table__


@lru_cache(maxsize=4)
def _upsert_appointment(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = _APPOINTMENTS
    stmt = dialect_insert(table)
    columns = [c.name for c in table.columns if c.name not in ("id", "key")]
    updates = {c: stmt.excluded[c] for c in columns}
    # A message that names no patient (an SIU^S15 may not) keeps the one stored.
    updates["patient_key"] = func.coalesce(func.nullif(stmt.excluded.patient_key, ""), table.c.patient_key)
    updates["patient_id"] = func.coalesce(stmt.excluded.patient_id, table.c.patient_id)
    # A message without a time, or one no older than the stored one, wins.
    newer = or_(stmt.excluded.message_time.is_(None), table.c.message_time.is_(None),
                stmt.excluded.message_time >= table.c.message_time)
    return stmt.on_conflict_do_update(index_elements=["key"], set_=updates, where=newer).returning(table.c.id)
