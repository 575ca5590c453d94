"""The 276 claim status request writer (005010X212): inquiries in, one X12 interchange out.

    write_276(inquiries, envelope, controls, created_at) -> bytes

The hierarchy (005010X212 table 2) is one 2000A per payer (2100A NM1*PR), one 2000B
information receiver under it (2100B NM1*41: the submitter the clearinghouse knows, with its
ETIN from the envelope), one 2000C per provider (2100C NM1*1P), then per inquiry a 2000D
subscriber (DMG, 2100D NM1*IL) and, when the patient is a dependent, a 2000E (DMG, 2100E
NM1*QC). The claim loop (2200D, or 2200E under a dependent) is TRN*1, REF*1K, REF*EJ,
AMT*T3, DTP*472 and, when asked per line, 2210D/E SVC, REF*FJ, DTP*472.

Ids (member ids, trace numbers, control numbers) are sent exactly or refused with an
``InputError`` naming the inquiry's trace number; names are cleaned as in the 837P writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from bhhub.errors import ConfigError, InputError
from bhhub.model import Payer, Person, Provider, ServiceLine
from bhhub.x12 import parties
from bhhub.x12.envelope import ControlNumbers, Delimiters, Envelope, write_headers
from bhhub.x12.segments import SegmentList, date8, decimal_text, identifier, money, time4

from bhhub.claimstatus.records import StatusInquiry

IMPLEMENTATION_GUIDE = "005010X212"
FUNCTIONAL_ID = "HR"  # GS01 for a 276
DMG_GENDERS = frozenset({"F", "M"})  # the 276 DMG03 has no "unknown": it is left out instead


def write_276(
    inquiries: Sequence[StatusInquiry],
    envelope: Envelope,
    controls: ControlNumbers,
    created_at: datetime,
) -> bytes:
    """One 276 interchange asking about ``inquiries``, dated ``created_at`` (as given)."""
    if not inquiries:
        raise InputError("a 276 needs at least one claim to ask about")
    traces = [inquiry.trace_number for inquiry in inquiries]
    if len(set(traces)) != len(traces):
        raise InputError("two inquiries share a trace number (TRN02): the 277 could not tell them apart",
                         fix="give each inquiry its own trace number")
    out = SegmentList(Delimiters())
    _headers(out, envelope, controls, created_at)
    first = len(out)
    out.add("ST", "276", controls.transaction_text, IMPLEMENTATION_GUIDE)
    # BHT02 13 = request; BHT03 the submitter's reference for this transaction.
    out.add("BHT", "0010", "13", controls.batch_reference, date8(created_at), time4(created_at))
    hl = 0
    for payer, by_provider in _grouped(inquiries).items():
        hl += 1
        payer_hl = hl
        out.add("HL", str(payer_hl), None, "20", "1")
        with _about(f"payer {payer.payer_id}"):
            payer_id = identifier(payer.payer_id, out.delimiters, "payer id", 80, 2)
            parties.organization_name(out, "PR", payer.name, "payer", "PI", payer_id)
        hl += 1
        receiver_hl = hl
        out.add("HL", str(receiver_hl), str(payer_hl), "21", "1")
        _information_receiver(out, envelope)
        for provider, provider_inquiries in by_provider.items():
            hl += 1
            provider_hl = hl
            out.add("HL", str(provider_hl), str(receiver_hl), "19", "1")
            with _about(f"provider {provider.npi or provider.tin}"):
                _service_provider(out, provider)
            for inquiry in provider_inquiries:
                with _about(f"inquiry {inquiry.trace_number}"):
                    hl = _inquiry(out, inquiry, hl, provider_hl)
    out.add("SE", str(len(out) - first + 1), controls.transaction_text)
    out.add("GE", "1", controls.group_text)
    out.add("IEA", "1", controls.interchange_text)
    return out.to_bytes()


def _grouped(inquiries: Sequence[StatusInquiry]) -> dict[Payer, dict[Provider, list[StatusInquiry]]]:
    """Inquiries by payer (2000A), then by provider (2000C), in the order first seen."""
    grouped: dict[Payer, dict[Provider, list[StatusInquiry]]] = {}
    for inquiry in inquiries:
        grouped.setdefault(inquiry.payer, {}).setdefault(inquiry.provider, []).append(inquiry)
    return grouped


@contextmanager
def _about(where: str) -> Iterator[None]:
    """A ``ValueError`` raised while writing becomes an ``InputError`` naming what it was about."""
    try:
        yield
    except ValueError as exc:
        raise InputError(str(exc), where=where) from exc


def _headers(out: SegmentList, envelope: Envelope, controls: ControlNumbers, created_at: datetime) -> None:
    """ISA (fixed width) and GS, as for the 837P but with GS01 HR and GS08 005010X212."""
    write_headers(out, envelope, controls, created_at, FUNCTIONAL_ID, IMPLEMENTATION_GUIDE)


def _information_receiver(out: SegmentList, envelope: Envelope) -> None:
    """2100B: the submitter, identified by its ETIN (NM108 46), the only id the guide allows."""
    try:
        etin = identifier(envelope.submitter_id, out.delimiters, "submitter id (ETIN)", 80, 2)
        parties.organization_name(out, "41", envelope.submitter_name, "information receiver", "46", etin)
    except ValueError as exc:
        raise ConfigError(f"276 envelope: {exc}") from exc


def _service_provider(out: SegmentList, provider: Provider) -> None:
    """2100C NM1*1P: the NPI (XX); a provider without one is named by its tax id (FI)."""
    d = out.delimiters
    if provider.npi:
        qualifier, value = "XX", identifier(provider.npi, d, "provider NPI", 10, 10)
    elif provider.tin:
        qualifier, value = "FI", identifier(provider.tin, d, "provider tax id", 9, 9)
    else:
        raise ValueError("the provider has neither an NPI nor a tax id")
    if provider.organization_name:
        parties.organization_name(out, "1P", provider.organization_name, "provider", qualifier, value)
    elif provider.name is not None:
        parties.person_name(out, "1P", provider.name, "provider", qualifier, value)
    else:
        raise ValueError("the provider has no name")


def _inquiry(out: SegmentList, inquiry: StatusInquiry, hl: int, provider_hl: int) -> int:
    """2000D (and 2000E) with the claim loop; returns the last HL number used."""
    d = out.delimiters
    hl += 1
    subscriber_hl = hl
    out.add("HL", str(subscriber_hl), str(provider_hl), "22", "0" if inquiry.patient_is_subscriber else "1")
    subscriber = inquiry.subscriber
    if subscriber.birth_date is not None:
        _demographics(out, subscriber)
    elif inquiry.patient_is_subscriber:
        # The guide requires the subscriber's DMG when the subscriber is the patient.
        raise ValueError("the subscriber (the patient) has no birth date (2000D DMG)")
    member_id = identifier(inquiry.member_id, d, "member id", 80, 2)
    parties.person_name(out, "IL", subscriber.name, "subscriber", "MI", member_id)
    if inquiry.dependent is not None:
        hl += 1
        out.add("HL", str(hl), str(subscriber_hl), "23")
        if inquiry.dependent.birth_date is None:
            raise ValueError("the patient (a dependent) has no birth date (2000E DMG is required)")
        _demographics(out, inquiry.dependent)
        parties.person_name(out, "QC", inquiry.dependent.name, "patient")  # no id: NM108/09 not used
    _claim(out, inquiry)
    return hl


def _demographics(out: SegmentList, person: Person) -> None:
    assert person.birth_date is not None
    out.add("DMG", "D8", date8(person.birth_date), person.gender if person.gender in DMG_GENDERS else None)


def _claim(out: SegmentList, inquiry: StatusInquiry) -> None:
    """2200D/E: TRN*1, REF*1K, REF*EJ, AMT*T3, DTP*472, then the 2210D/E service lines."""
    d = out.delimiters
    out.add("TRN", "1", identifier(inquiry.trace_number, d, "trace number (TRN02)", 50))
    if inquiry.payer_claim_control_number:
        out.add("REF", "1K", identifier(inquiry.payer_claim_control_number, d, "payer claim control number", 50))
    out.add("REF", "EJ", identifier(inquiry.patient_control_number, d, "patient control number", 50))
    out.add("AMT", "T3", money(inquiry.total_charge))
    out.add("DTP", "472", "RD8", _period(inquiry.service_date_from, inquiry.service_date_to))
    for line in inquiry.service_lines:
        _service_line(out, line)


def _service_line(out: SegmentList, line: ServiceLine) -> None:
    d = out.delimiters
    if line.charge is None:
        raise ValueError(f"service line {line.procedure_code} has no charge (SVC02 is required)")
    if len(line.modifiers) > 4:
        raise ValueError(f"service line {line.procedure_code} has more than 4 modifiers")
    procedure = [identifier(line.procedure_code, d, "procedure code", 48)]
    procedure += [identifier(m, d, "procedure modifier", 2, 2) for m in line.modifiers]
    # SVC03 (payment) is not used in a request; SVC07 carries the units billed.
    out.add("SVC", ["HC", *procedure], money(line.charge), None, None, None, None, decimal_text(line.units))
    if line.control_number:
        out.add("REF", "FJ", identifier(line.control_number, d, "line item control number", 50))
    out.add("DTP", "472", "RD8", _period(line.service_date, line.service_date))


def _period(start: date, end: date | None) -> str:
    end = end or start
    if end < start:
        raise ValueError("the service period ends before it starts")
    return f"{date8(start)}-{date8(end)}"
