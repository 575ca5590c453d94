"""HL7 v2 messages from an EHR: charges (DFT), registrations (ADT), appointments (SIU).

A built-in plugin, registered through the ``bhhub`` entry point exactly as a vendor's would be.
It reads HL7 v2.3 through v2.5.1 (and later versions, which only add fields):

* DFT^P03 → ``bhhub.model.Encounter``s, one per visit (patient, date, rendering clinician), with
  the FT1 lines, DG1 diagnoses and IN1/IN2 coverages; the billing provider comes from the
  practice profile for MSH-4 (``mappings/ehr/practices.toml``). They go through the same
  coding, checks and 837P rendering as the FHIR plugin's.
* ADT^A04/A08 (and A01, A05, A28, A31) → ``bhhub.intake.records.Registration``: the patient and their
  coverages, stored without a claim.
* SIU^S12/S13/S14/S15 → ``bhhub.intake.records.Appointment``, kept for eligibility sweeps; S15 cancels.

Field positions are in ``mappings/ehr/hl7v2.toml``, so an EHR that sends minutes or the NPI
elsewhere (a Z-segment) needs a mapping file, not code. A file of many messages is split into
one inbox item per message (``split``); MLLP framing bytes are stripped.

Speed: the reader (``wire``) cuts a message into segments once and a segment into fields only
when a mapped path reads it; hl7apy, which builds every field of every segment, is used only to
check a mapping file's paths against the standard's segment definitions.

Modules: ``wire`` (framing, segments, escapes), ``paths`` (field paths, groups), ``schema`` and
``fieldmap`` (the mapping file, checked), ``practices`` (billing providers by MSH-4),
``values`` (dates, numbers), ``people`` (PID, IN1/IN2, GT1), ``charges`` (DFT), ``scheduling``
(SIU).
"""

from __future__ import annotations

import logging
from importlib import resources

from bhhub import hookimpl
from bhhub.errors import InputError
from bhhub.intake.records import Registration
from bhhub.types import IntakeContext, IntakeFormat

from bhhub.plugins.ehr.hl7v2 import charges, people, scheduling
from bhhub.plugins.ehr.hl7v2.fieldmap import FieldMap, _build, load_field_map
from bhhub.plugins.ehr.hl7v2.shown import EVENT_CODE, VERSION, shown
from bhhub.plugins.ehr.hl7v2.wire import Message, looks_like_hl7, read_message, split_messages

log = logging.getLogger(__name__)

FORMAT_NAME = "hl7v2"

__all__ = ["FORMAT", "FORMAT_NAME", "MAPPING_FILE", "parse", "recognizes", "split", "validate_mapping",
           "bhhub_register_intake_formats"]

# The packaged field map, which the contract kit checks with validate_mapping as it would a vendor's.
MAPPING_FILE = resources.files("bhhub.mappings").joinpath("ehr/hl7v2.toml")


def validate_mapping(table: dict) -> None:
    """Raise ``MappingError`` naming every problem in an HL7 v2 field map (packaged or a practice's)."""
    _build(table)


def recognizes(content: bytes) -> bool:
    return looks_like_hl7(content)


def split(content: bytes) -> list[bytes]:
    """The messages in a file (one inbox item each); a one-message file as it is."""
    return split_messages(content)


def parse(content: bytes, context: IntakeContext) -> list:
    """The records in one HL7 v2 message, or ``InputError`` naming the segment and field at fault."""
    fmap = load_field_map(context.mappings)
    parts = split_messages(content)
    if len(parts) > 1:
        raise InputError(f"this item holds {len(parts)} messages; each message must be its own item",
                         fix="take the file in with `bhhub intake FILE`, which stores one item per message")
    message = read_message(content)
    try:
        return read(message, fmap, context)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a gap in this reader must still quarantine cleanly
        log.error("hl7v2 could not map a message: %s", type(exc).__name__)  # no content, not even MSH-10
        raise InputError(
            f"the HL7 v2 reader could not map {message.where()} ({type(exc).__name__})",
            fix="report it to the bhhub maintainers with the inbox item id; the message is kept",
        ) from exc


def read(message: Message, fmap: FieldMap, context: IntakeContext) -> list:
    code, event = message.message_type
    kind = f"{code}^{event}".upper()
    version = message.version
    if version and version not in fmap.versions:
        raise InputError(f"MSH-12 version {shown(version, VERSION)} is not read "
                         f"(versions read: {', '.join(sorted(fmap.versions))})",
                         where=message.where(),
                         fix="send HL7 v2.3 to v2.5.1, or add the version to [messages] versions")
    if kind in fmap.charges:
        return charges.encounters(message, fmap, context.mappings)
    if kind in fmap.registrations:
        return [_registration(message, fmap, kind)]
    if kind in fmap.appointments:
        return [scheduling.appointment(message, fmap)]
    read_kinds = sorted(fmap.charges | fmap.registrations | fmap.appointments)
    named = "^".join(shown(part, EVENT_CODE) for part in (code.upper(), event.upper()) if part) or "(empty)"
    raise InputError(f"MSH-9 message type {named} is not one the hub reads "
                     f"(it reads {', '.join(read_kinds)})", where=message.where(),
                     fix="send charges as DFT^P03, registrations as ADT^A04/A08, appointments as SIU^S12-S15; "
                         "or stop sending this type to the hub")


def _registration(message: Message, fmap: FieldMap, kind: str) -> Registration:
    patient = people.patient(message, fmap)
    return Registration(
        key=f"{patient.key}|registration|{message.control_id}",
        source_ref=f"{kind} {message.control_id}",
        patient=patient,
        coverages=people.coverages(message, fmap),
    )


FORMAT = IntakeFormat(
    name=FORMAT_NAME,
    description="HL7 v2.3-2.5.1 messages: DFT^P03 charges, ADT^A04/A08 registrations, SIU^S12-S15 appointments",
    recognizes=recognizes,
    parse=parse,
    split=split,
)


@hookimpl
def bhhub_register_intake_formats() -> list[IntakeFormat]:
    return [FORMAT]
