"""The 005010X279A1 270 writer: eligibility inquiries in, one X12 interchange out.

    write_270(requests, envelope, controls, created_at) -> bytes

One ISA/GS/ST. Inquiries are grouped under one 2000A per payer and, below it, one 2000B per
provider (NPI); each inquiry is a 2000C subscriber and, when the patient is a dependent without
their own member id, a 2000D under it (domain reference 8.1). The patient's loop carries the
trace number (TRN*1), name, DMG, the date of service (DTP*291) and one 2110 loop (EQ) per
service type: the request's, or the table's default (MH, then 30 as the fallback, domain
reference 8.2). Every segment ends with ``~`` and a newline, as the 837P writer does.

An inquiry that cannot be written raises ``InputError`` naming its trace number, never the
patient; a bad envelope raises ``ConfigError``. Nothing is written partially.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from bhhub.eligibility import codes
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.errors import InputError
from bhhub.model import Person, Provider
from bhhub.x12 import parties
from bhhub.x12.envelope import ControlNumbers, Delimiters, Envelope, write_headers, write_trailers
from bhhub.x12.segments import SegmentList, date8, identifier, time4

IMPLEMENTATION_GUIDE = "005010X279A1"
FUNCTIONAL_ID = "HS"  # GS01 of a 270


def write_270(
    requests: Sequence[EligibilityRequest],
    envelope: Envelope,
    controls: ControlNumbers,
    created_at: datetime,
) -> bytes:
    """The 270 interchange asking about ``requests``, dated ``created_at`` (as given)."""
    if not requests:
        raise InputError("a 270 needs at least one inquiry")
    seen: set[str] = set()
    for request in requests:
        if request.trace_number in seen:
            raise InputError("two inquiries share a trace number: the 271s could not be told apart",
                             where=f"inquiry {request.trace_number}", fix="give each inquiry its own trace number")
        seen.add(request.trace_number)
    out = SegmentList(Delimiters())
    write_headers(out, envelope, controls, created_at, FUNCTIONAL_ID, IMPLEMENTATION_GUIDE)
    first = len(out)
    out.add("ST", "270", controls.transaction_text, IMPLEMENTATION_GUIDE)
    # BHT02 13: a request. BHT03 is echoed by a real-time 271.
    out.add("BHT", "0022", "13", controls.batch_reference, date8(created_at), time4(created_at))
    hl = 0
    for payer_requests in _grouped(requests, lambda r: (r.payer.payer_id, r.payer.name)):
        hl += 1
        payer_hl = hl
        payer = payer_requests[0].payer
        with _about(payer_requests[0]):
            out.add("HL", str(payer_hl), None, "20", "1")
            payer_id = identifier(payer.payer_id, out.delimiters, "payer id", 80, 2)
            parties.organization_name(out, "PR", payer.name, "payer", "PI", payer_id)
        for provider_requests in _grouped(payer_requests, lambda r: r.provider.npi):
            hl += 1
            provider_hl = hl
            with _about(provider_requests[0]):
                out.add("HL", str(provider_hl), str(payer_hl), "21", "1")
                _information_receiver(out, provider_requests[0].provider)
            for request in provider_requests:
                with _about(request):
                    hl = _inquiry(out, request, provider_hl, hl)
    write_trailers(out, controls, len(out) - first + 1)
    return out.to_bytes()


def _inquiry(out: SegmentList, request: EligibilityRequest, parent_hl: int, hl: int) -> int:
    """2000C (and 2000D for a dependent); the last HL number used."""
    d = out.delimiters
    service_types = _service_types(request)
    trace = identifier(request.trace_number, d, "trace number", 50)
    originator = _trace_originator(request)
    member_id = identifier(request.member_id, d, "member id", 80, 2)
    dependent = request.dependent is not None
    hl += 1
    subscriber_hl = hl
    out.add("HL", str(subscriber_hl), str(parent_hl), "22", "1" if dependent else "0")
    if not dependent:
        out.add("TRN", "1", trace, originator)
    parties.person_name(out, "IL", request.subscriber.name, "subscriber", "MI", member_id)
    if not dependent:
        _patient_details(out, request.subscriber, request, service_types, "subscriber")
        return hl
    hl += 1
    out.add("HL", str(hl), str(subscriber_hl), "23", "0")
    out.add("TRN", "1", trace, originator)
    parties.person_name(out, "03", request.dependent.name, "dependent")
    _patient_details(out, request.dependent, request, service_types, "dependent")
    return hl


def _patient_details(out: SegmentList, patient: Person, request: EligibilityRequest,
                     service_types: tuple[str, ...], what: str) -> None:
    """DMG, DTP*291 and one EQ per service type, in the patient's loops (2100C/D, 2110C/D)."""
    if patient.birth_date is not None:
        parties.demographics(out, patient, what)
    elif request.dependent is not None:
        # A dependent has no member id of their own: payers find them by name and birth date.
        raise ValueError("the dependent's birth date is needed to find them (2100D DMG)")
    if request.service_date is not None:
        out.add("DTP", "291", "D8", date8(request.service_date))
    for service_type in service_types:
        out.add("EQ", service_type)


def _information_receiver(out: SegmentList, provider: Provider) -> None:
    """2100B NM1*1P: the practice (or clinician) asking, by NPI."""
    npi = identifier(provider.npi, out.delimiters, "provider NPI", 10, 10)
    if not npi.isdigit():
        raise ValueError("the provider NPI must be 10 digits")
    if provider.organization_name:
        parties.organization_name(out, "1P", provider.organization_name, "provider", "XX", npi)
    elif provider.name is not None:
        parties.person_name(out, "1P", provider.name, "provider", "XX", npi)
    else:
        raise ValueError("the provider has no name")


def _service_types(request: EligibilityRequest) -> tuple[str, ...]:
    wanted = request.service_types or codes.default_service_types()
    allowed = codes.inquiry_service_types()
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise ValueError(f"service type(s) {', '.join(unknown)} are not mental-health inquiry codes "
                         f"(use {', '.join(allowed)})")
    return tuple(dict.fromkeys(wanted))


def _trace_originator(request: EligibilityRequest) -> str:
    """TRN03: ten characters, "1" and the EIN of whoever assigns the trace number."""
    originator = request.trace_originator
    if originator is None:
        tin = request.provider.tin
        if not (tin and tin.isdigit() and len(tin) == 9):
            raise ValueError("the trace needs an originator id (TRN03): give the provider's 9-digit "
                             "tax id or the request's trace_originator")
        originator = "1" + tin
    if len(originator) != 10 or not originator.isalnum():
        raise ValueError("the trace originator (TRN03) must be 10 letters or digits")
    return originator


def _grouped(requests: Sequence[EligibilityRequest], key) -> list[list[EligibilityRequest]]:
    """Requests grouped by ``key``, groups and members in the order they first appear."""
    groups: dict[object, list[EligibilityRequest]] = {}
    for request in requests:
        groups.setdefault(key(request), []).append(request)
    return list(groups.values())


@contextmanager
def _about(request: EligibilityRequest) -> Iterator[None]:
    """A ``ValueError`` while writing becomes an ``InputError`` naming the inquiry's trace number."""
    try:
        yield
    except ValueError as exc:
        raise InputError(str(exc), where=f"inquiry {request.trace_number}") from exc
