"""Canonical records that are not billable encounters: registrations and appointments.

An intake format's ``parse`` may return these beside ``bhhub.model.Encounter`` records. An HL7
ADT (patient registration or update) becomes a ``Registration``; an SIU (scheduling) message an
``Appointment``, kept so eligibility can be checked before the visit. Like the model, these are
plain frozen dataclasses, independent of wire formats and of the database
(``bhhub.intake.registrations`` stores them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from bhhub.model import Coverage, Patient


@dataclass(frozen=True)
class Registration:
    """A patient as the EHR registered them, with the coverages on file.

    Stored by upserting the patient (by ``patient.key``) and each coverage (patient, payer,
    member id), exactly as an encounter's patient and coverages are; no claim is made.
    ``key`` identifies the registration event (for messages), ``source_ref`` names it to a
    biller (``ADT^A04 MSG00001``).
    """

    key: str
    source_ref: str
    patient: Patient
    coverages: tuple[Coverage, ...] = ()


@dataclass(frozen=True)
class Appointment:
    """A scheduled visit. ``key`` is source-scoped and stable across the booking, its changes
    and its cancellation (``hl7:FACILITY|appointment|ID``).

    ``status``: booked, cancelled, deleted, noshow. ``starts_at`` is the local wall-clock time
    as the scheduler sent it (no offset); ``service_date`` its date. ``provider_id`` is the
    clinician's id as sent, ``provider_npi`` the same when it is a valid NPI. ``patient`` may
    carry only a key and a name (an SIU's PID); a stored patient is not overwritten by it.
    ``message_time`` orders the messages about one appointment: an older one never undoes a
    newer one. A message without a patient (an S15 may carry none) has a patient key of "".
    """

    key: str
    source_ref: str
    patient: Patient
    service_date: date
    status: str
    starts_at: datetime | None = None
    duration_minutes: int | None = None
    provider_id: str | None = None
    provider_npi: str | None = None
    appointment_type: str | None = None
    message_time: datetime | None = None


Record = Registration | Appointment
