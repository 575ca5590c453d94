"""SIU^S12/S13/S14/S15 (HL7 v2.5.1 chapter 10) as appointments, kept for eligibility sweeps.

The appointment's key is the filler's id (SCH-2), else the placer's (SCH-1), scoped by MSH-4, so
its booking (S12), changes (S13, S14) and cancellation (S15) land on one row. The start comes
from the first resource that has one (AIS-4, AIP-6, AIL-6; TQ1-7 or SCH-11.4 in older feeds);
the status from the trigger event.
"""

from __future__ import annotations

from bhhub.errors import InputError
from bhhub.common.identifiers import npi_is_valid
from bhhub.model import Patient, PersonName
from bhhub.intake.records import Appointment

from bhhub.plugins.ehr.hl7v2 import people
from bhhub.plugins.ehr.hl7v2.fieldmap import FieldMap
from bhhub.plugins.ehr.hl7v2.paths import Scope
from bhhub.plugins.ehr.hl7v2.shown import EVENT_CODE, shown
from bhhub.plugins.ehr.hl7v2.values import as_utc, decimal, parse_ts
from bhhub.plugins.ehr.hl7v2.wire import Message


def appointment(message: Message, fmap: FieldMap) -> Appointment:
    scope = Scope(message)
    where = message.where()
    if message.first("SCH") is None:
        raise InputError("no SCH segment: the message names no appointment", where=message.where(),
                         fix="send the schedule activity (SCH) segment")
    ident, _ = scope.value(fmap.paths("appointment.id"))
    if not ident:
        raise InputError("SCH-2/SCH-1 appointment id is empty", where=where,
                         fix="send the scheduler's appointment id in SCH-2 (filler) or SCH-1 (placer)")
    starts, path = scope.value(fmap.paths("appointment.start"))
    parsed = parse_ts(starts) if starts else None
    if parsed is None:
        label = path.label if path else "AIS-4/AIP-6/TQ1-7"
        what = "is empty" if not starts else "is not a date and time (YYYYMMDDHHMM)"
        raise InputError(f"{label} appointment start {what}", where=message.where(),
                         fix="send the start date and time in AIS-4 (or AIP-6, TQ1-7)")
    starts_at = parsed[0]
    event = message.message_type[1].upper()
    status = fmap.codes("appointment.status_by_event").get(event)
    if status is None:
        raise InputError(f"MSH-9 trigger event {shown(event, EVENT_CODE)} has no appointment status in the field map",
                         where=message.where(), fix="add it to [appointment.status_by_event]")
    provider = scope.first(fmap.paths("appointment.provider")) or None
    return Appointment(
        key=f"hl7:{people.facility_name(message)}|appointment|{ident}",
        source_ref=f"{'^'.join(message.message_type)} {message.control_id}",
        # The patient group is optional in SIU (v2.5.1 10.6): a cancellation may name none.
        patient=(people.patient(message, fmap, require_name=False) if message.first("PID") is not None
                 else Patient(PersonName(""), key="")),
        service_date=starts_at.date(),
        status=status,
        starts_at=starts_at,
        duration_minutes=_duration(scope, fmap, where),
        provider_id=provider[:80] if provider else None,
        provider_npi=provider if provider and npi_is_valid(provider) else None,
        appointment_type=(scope.first(fmap.paths("appointment.type")) or None),
        message_time=as_utc(message.msh.value(7)),
    )


def _duration(scope: Scope, fmap: FieldMap, where: str) -> int | None:
    text, path = scope.value(fmap.paths("appointment.duration"))
    if not text:
        return None
    try:
        amount = decimal(text, f"{path.label} duration", where)
    except InputError:
        return None  # the duration is informational: a bad one is left out, not a refusal
    units = scope.first(fmap.paths("appointment.duration_units"))
    per_unit = fmap.codes("appointment.minutes_per_unit").get(units)
    if amount is None or per_unit is None:
        return None
    return int(amount * int(per_unit)) if per_unit >= 1 else None
