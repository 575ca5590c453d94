"""The 005010X222A1 837P writer: canonical ``Claim`` records in, one X12 interchange out.

Two steps. ``render_claim`` checks one claim and renders its segments once, when the claim
becomes ready, so a claim that cannot be written is caught at intake rather than failing a
batch. ``assemble_837p`` places rendered claims in one ISA/GS/ST: one 2000A billing-provider HL
per group, each claim its own 2000B subscriber HL and, when the patient is a dependent without
their own member id, a 2000C patient HL. ``write_837p`` does both for canonical claims. Every segment ends with ``~`` and a newline:
receivers (and pyx12) accept the newline, and people can read the file.

A claim that cannot be written raises ``InputError`` naming its patient control number; a bad
envelope raises ``ConfigError``. Nothing is written partially: the bytes are returned whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime

from bhhub.errors import ConfigError, InputError
from bhhub.model import Address, Claim, PersonName, Provider
from bhhub.x12 import parties
from bhhub.claims.claim_information import check_claim, claim_filing_indicator, claim_loop, payer_responsibility
from bhhub.x12.envelope import ControlNumbers, Delimiters, Envelope, write_headers
from bhhub.x12.segments import SegmentList, date8, identifier, text, time4

IMPLEMENTATION_GUIDE = "005010X222A1"
PATIENT_RELATIONSHIPS = frozenset("01 19 20 21 39 40 53 G8".split())  # PAT01


@dataclass(frozen=True)
class RenderedClaim:
    """One claim's segments, rendered and checked once, to be placed in any batch later.

    The hierarchy (HL) segments depend on where the claim lands in a batch, so they are left
    out: ``subscriber`` is loop 2000B after its HL, ``patient`` loop 2000C after its HL (None
    when the patient is the subscriber), ``claim`` loop 2300 and all inside it. Each part is
    segments joined by the default terminator ``~`` and a newline, the last one terminated.
    """

    subscriber: str
    patient: str | None
    claim: str
    segment_count: int  # segments in the three parts, the HL segments not included
    # The billing provider as the claim had it when rendered: its 2000A/2010AA loop. A practice
    # may bill under one NPI with more than one taxonomy (or name, address), and the store keeps
    # one row per NPI, so a batch groups claims by this, never by the NPI. None: rendered before
    # this was kept (the stored provider stands in).
    billing_provider: Provider | None = None

    def to_json(self) -> dict:
        return {"subscriber": self.subscriber, "patient": self.patient, "claim": self.claim,
                "segment_count": self.segment_count,
                "billing_provider": _provider_json(self.billing_provider) if self.billing_provider else None}

    @classmethod
    def from_json(cls, data: dict) -> RenderedClaim:
        provider = data.get("billing_provider")
        return cls(data["subscriber"], data["patient"], data["claim"], data["segment_count"],
                   _provider_from_json(provider) if provider else None)


def _provider_json(provider: Provider) -> dict:
    return {"npi": provider.npi, "organization_name": provider.organization_name,
            "name": asdict(provider.name) if provider.name else None, "tin": provider.tin,
            "taxonomy": provider.taxonomy, "address": asdict(provider.address) if provider.address else None}


def _provider_from_json(data: dict) -> Provider:
    return Provider(npi=data["npi"], organization_name=data["organization_name"],
                    name=PersonName(**data["name"]) if data["name"] else None, tin=data["tin"],
                    taxonomy=data["taxonomy"], address=Address(**data["address"]) if data["address"] else None)


def render_claim(claim: Claim) -> RenderedClaim:
    """Check and render one claim; ``InputError`` naming the claim if it cannot be written."""
    d = Delimiters()
    with _about_claim(claim):
        check_claim(claim)
        subscriber, patient, body = SegmentList(d), SegmentList(d), SegmentList(d)
        _subscriber_and_patient(subscriber, patient, claim)
        claim_loop(body, claim)
    return RenderedClaim(
        subscriber.to_text(), patient.to_text() if len(patient) else None, body.to_text(),
        len(subscriber) + len(patient) + len(body), claim.billing_provider,
    )


def write_837p(
    claims: Sequence[Claim],
    envelope: Envelope,
    controls: ControlNumbers,
    created_at: datetime,
) -> bytes:
    """The 837P interchange carrying ``claims``, dated ``created_at`` (as given, no zone change)."""
    grouped: dict[Provider, list[RenderedClaim]] = {}
    for claim in claims:  # one 2000A per billing provider, every field of the loop alike
        grouped.setdefault(claim.billing_provider, []).append(render_claim(claim))
    return assemble_837p(list(grouped.items()), envelope, controls, created_at)


def assemble_837p(
    groups: Sequence[tuple[Provider, Sequence[RenderedClaim]]],
    envelope: Envelope,
    controls: ControlNumbers,
    created_at: datetime,
) -> bytes:
    """One interchange from rendered claims grouped by billing provider (2000A per group)."""
    if not any(rendered for _, rendered in groups):
        raise InputError("an 837P needs at least one claim")
    out = SegmentList(Delimiters())
    _interchange_and_group_headers(out, envelope, controls, created_at)
    first_in_transaction = len(out)
    out.add("ST", "837", controls.transaction_text, IMPLEMENTATION_GUIDE)
    out.add("BHT", "0019", "00", controls.batch_reference, date8(created_at), time4(created_at), "CH")
    _submitter_and_receiver(out, envelope)
    header = out.to_text()
    parts: list[str] = [header]
    count = len(out) - first_in_transaction  # ST and BHT onwards; SE01 counts ST through SE
    hl = 0
    for billing_provider, rendered_claims in groups:
        hl += 1
        provider_hl = hl
        provider_block = SegmentList(Delimiters())
        with _about(f"billing provider {billing_provider.npi}"):
            _billing_provider(provider_block, billing_provider, str(provider_hl))
        parts.append(provider_block.to_text())
        count += len(provider_block)
        for rendered in rendered_claims:
            # HL01 increments through the transaction; HL02 names the parent (domain ref. 5.4).
            hl += 1
            subscriber_hl = hl
            if rendered.patient is None:
                parts.append(f"HL*{subscriber_hl}*{provider_hl}*22*0~\n{rendered.subscriber}{rendered.claim}")
                count += 1 + rendered.segment_count
            else:
                hl += 1
                parts.append(f"HL*{subscriber_hl}*{provider_hl}*22*1~\n{rendered.subscriber}"
                             f"HL*{hl}*{subscriber_hl}*23*0~\n{rendered.patient}{rendered.claim}")
                count += 2 + rendered.segment_count
    trailer = SegmentList(Delimiters())
    trailer.add("SE", str(count + 1), controls.transaction_text)
    trailer.add("GE", "1", controls.group_text)
    trailer.add("IEA", "1", controls.interchange_text)
    parts.append(trailer.to_text())
    return "".join(parts).encode("ascii")


@contextmanager
def _about(where: str) -> Iterator[None]:
    """Turn a ``ValueError`` raised while writing into an ``InputError`` naming what it was about."""
    try:
        yield
    except ValueError as exc:  # a ClaimProblem carries the fix to suggest
        raise InputError(str(exc), where=where, fix=getattr(exc, "fix", None)) from exc


def _about_claim(claim: Claim) -> AbstractContextManager[None]:
    return _about(f"claim {claim.patient_control_number}")


def _interchange_and_group_headers(
    out: SegmentList, envelope: Envelope, controls: ControlNumbers, created_at: datetime
) -> None:
    """ISA (fixed width: ids padded to 15, ISA02/ISA04 ten spaces) and GS."""
    write_headers(out, envelope, controls, created_at, "HC", IMPLEMENTATION_GUIDE)


def _submitter_and_receiver(out: SegmentList, envelope: Envelope) -> None:
    """Loop 1000A (NM1*41 and the EDI contact PER*IC) and loop 1000B (NM1*40)."""
    d = out.delimiters
    try:
        submitter_id = identifier(envelope.submitter_id, d, "submitter id", 80, 2)
        receiver_id = identifier(envelope.receiver_id_code, d, "receiver id", 80, 2)
        parties.organization_name(out, "41", envelope.submitter_name, "submitter", "46", submitter_id)
        contact: list[str | None] = [text(envelope.submitter_contact_name, d, 60)]
        if envelope.submitter_phone:
            contact += ["TE", identifier(re.sub(r"\D", "", envelope.submitter_phone), d, "submitter phone", 256)]
        if envelope.submitter_email:
            contact += ["EM", identifier(envelope.submitter_email, d, "submitter email", 256)]
        out.add("PER", "IC", *contact)
        parties.organization_name(out, "40", envelope.receiver_name, "receiver", "46", receiver_id)
    except ValueError as exc:
        raise ConfigError(f"837P envelope: {exc}") from exc


def _billing_provider(out: SegmentList, provider: Provider, hl: str) -> None:
    """2000A HL (+ PRV*BI when the taxonomy is known) and 2010AA NM1*85, N3, N4, REF*EI."""
    d = out.delimiters
    out.add("HL", hl, None, "20", "1")
    if provider.taxonomy:
        out.add("PRV", "BI", "PXC", identifier(provider.taxonomy, d, "billing provider taxonomy", 50))
    npi = identifier(provider.npi, d, "billing provider NPI", 10, 10)
    if provider.organization_name:
        parties.organization_name(out, "85", provider.organization_name, "billing provider", "XX", npi)
    elif provider.name is not None:  # a sole proprietor bills under their own name
        parties.person_name(out, "85", provider.name, "billing provider", "XX", npi)
    else:
        raise ValueError("the billing provider has no name")
    if provider.address is None:
        raise ValueError("the billing provider has no street address (2010AA N3/N4 are required)")
    parties.address(out, provider.address, "billing provider")
    if not (provider.tin and provider.tin.isdigit() and len(provider.tin) == 9):
        raise ValueError("the billing provider needs a 9-digit tax id (REF*EI)")
    out.add("REF", "EI", provider.tin)


def _subscriber_and_patient(out: SegmentList, patient_out: SegmentList, claim: Claim) -> None:
    """2000B/2010BA/2010BB, then 2000C/2010CA when the patient is a dependent.

    2010BA N3/N4 and DMG are "required when the patient is the subscriber; if not required, do
    not send" (TR3), so a dependent's claim names the subscriber and their id only, and 2000C
    (into ``patient_out``) carries the patient, whose N3, N4 and DMG are required. A dependent
    the payer knows by a member id of their own is not a dependent here: the EHR plugins give
    that coverage relationship 18 and the patient's id (TR3 2000C: only a patient who "cannot
    be uniquely identified to the payer using the subscriber's identifier").
    """
    d = out.delimiters
    coverage = claim.coverage
    dependent = not coverage.patient_is_subscriber
    group = identifier(coverage.group_number, d, "group number", 50) if coverage.group_number else None
    out.add("SBR", payer_responsibility(coverage), None if dependent else "18", group,
            None, None, None, None, None, claim_filing_indicator(coverage))
    member_id = identifier(coverage.member_id, d, "member id", 80, 2)
    if dependent:
        if coverage.relationship not in PATIENT_RELATIONSHIPS:
            raise ValueError(f"{coverage.relationship!r} is not a patient relationship code (PAT01)")
        if coverage.subscriber is None:
            raise ValueError("the patient is a dependent but the subscriber is unknown")
        parties.person_name(out, "IL", coverage.subscriber.name, "subscriber", "MI", member_id)
    else:
        parties.person_name(out, "IL", claim.patient.name, "subscriber", "MI", member_id)
        if claim.patient.address is None:
            raise ValueError("the patient (the subscriber) has no address")
        parties.address(out, claim.patient.address, "subscriber")
        parties.demographics(out, claim.patient, "subscriber")
    payer_id = identifier(coverage.payer.payer_id, d, "payer id", 80, 2)
    parties.organization_name(out, "PR", coverage.payer.name, "payer", "PI", payer_id)
    if dependent:
        patient_out.add("PAT", coverage.relationship)
        parties.person_name(patient_out, "QC", claim.patient.name, "patient")
        if claim.patient.address is None:
            raise ValueError("the patient has no address (2010CA N3/N4 are required)")
        parties.address(patient_out, claim.patient.address, "patient")
        parties.demographics(patient_out, claim.patient, "patient")
