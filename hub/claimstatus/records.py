"""Claim status records: what a 276 asks (``StatusInquiry``) and what a 277 answers.

The inquiry reuses the canonical records of ``bhhub.model`` (``Payer``, ``Provider``, ``Person``,
``ServiceLine``), so a stored ``Claim`` becomes an inquiry with ``inquiry_for_claim``. The
answer (``ClaimStatusResult``) carries ids, codes, amounts and dates: never a patient's or
subscriber's name. ``describe()`` gives one sentence for the biller with no PHI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bhhub.errors import InputError
from bhhub.model import Claim, Payer, Person, Provider, ServiceLine
from bhhub.acknowledgments.codes import Code
from bhhub.acknowledgments.x277ca import status_description


@dataclass(frozen=True)
class StatusInquiry:
    """One claim to ask a payer about (a 2000D/2000E loop of a 276, 005010X212).

    ``dependent`` is the patient when the patient is not the subscriber and has no member id
    of their own (loop 2000E); otherwise None and ``subscriber`` is the patient (2000D). The
    service period is the claim's first and last date of service (DTP*472, RD8).
    """

    trace_number: str  # TRN02 of 2200D/E: the 277 echoes it in its own TRN02
    payer: Payer  # 2100A NM1*PR: name and payer id (PI)
    provider: Provider  # 2100C NM1*1P: NPI (XX), or the tax id (FI) when there is no NPI
    subscriber: Person  # 2100D NM1*IL and 2000D DMG
    member_id: str  # 2100D NM109 (MI)
    patient_control_number: str  # REF*EJ: the 837's CLM01
    total_charge: Decimal  # AMT*T3: the 837's CLM02
    service_date_from: date  # DTP*472
    service_date_to: date | None = None  # None means the same day
    dependent: Person | None = None  # 2000E DMG and 2100E NM1*QC
    payer_claim_control_number: str | None = None  # REF*1K, when the payer has given one
    service_lines: tuple[ServiceLine, ...] = ()  # 2210D/E SVC, REF*FJ, DTP*472 (optional)

    @property
    def patient_is_subscriber(self) -> bool:
        return self.dependent is None


def inquiry_for_claim(claim: Claim, trace_number: str, payer_claim_control_number: str | None = None) -> StatusInquiry:
    """The inquiry about ``claim`` as it was sent (its coverage, billing provider and lines).

    Service lines are not included: a claim-level inquiry is what payers answer best, and
    the 277 reports line statuses on its own when the payer has them.
    """
    coverage = claim.coverage
    dependent = None if coverage.patient_is_subscriber else claim.patient
    subscriber = claim.patient if dependent is None else coverage.subscriber
    if subscriber is None:
        raise InputError("the patient is a dependent but the subscriber is unknown (2100D needs the "
                         "subscriber's name)", where=f"claim {claim.patient_control_number}",
                         fix="record the subscriber on the patient's coverage")
    dates = [line.service_date for line in claim.lines]
    return StatusInquiry(
        trace_number=trace_number,
        payer=coverage.payer,
        provider=claim.billing_provider,
        subscriber=subscriber,
        member_id=coverage.member_id,
        patient_control_number=claim.patient_control_number,
        total_charge=claim.total_charge,
        service_date_from=min(dates),
        service_date_to=max(dates),
        dependent=dependent,
        payer_claim_control_number=payer_claim_control_number or claim.payer_claim_control_number,
    )


# --- the answer (277, 005010X212) ----------------------------------------------------------------


@dataclass(frozen=True)
class StatusCode:
    """One composite of an STC (STC01, STC10 or STC11) with the meanings of its codes."""

    category: Code  # C043-1, code list 507: A2, P1, F1, R3 ...
    status: Code  # C043-2, code list 508 (or NCPDP's reject codes when code_list is RX)
    entity: Code | None  # C043-3: whose information the status is about (85, IL, QC ...)
    code_list: str = ""  # C043-4: RX when C043-2 is an NCPDP reject/payment code

    def describe(self) -> str:
        if self.code_list and self.code_list != "508":
            return f"{self.category.description}: status {self.status.value} of code list {self.code_list}"
        return status_description(self.category.value, self.status.value,
                                  self.entity.value if self.entity else "")


@dataclass(frozen=True)
class StatusReport:
    """One STC segment: the status codes, and the payment details a finalized claim has."""

    codes: tuple[StatusCode, ...]  # STC01, then STC10 and STC11 when given
    status: str  # the hub's word for STC01's category (mappings/x12/claim_status.toml)
    effective_date: date | None = None  # STC02
    total_charge: Decimal | None = None  # STC04
    paid_amount: Decimal | None = None  # STC05
    adjudication_date: date | None = None  # STC06: adjudicated or finalized
    payment_method: str | None = None  # STC07: ACH, BOP, CHK, FWT, NON
    payment_date: date | None = None  # STC08: check issue or EFT effective date
    check_or_eft_number: str | None = None  # STC09
    message: str | None = None  # STC12, free text from the payer
    level: str = "claim"  # claim, line, or the level it came from: payer, receiver, provider

    @property
    def category(self) -> str:
        return self.codes[0].category.value

    def describe(self) -> str:
        text = "; ".join(c.describe() for c in self.codes)
        if self.paid_amount is not None and self.status == "paid":
            text += f" (paid {self.paid_amount}"
            if self.check_or_eft_number:
                text += f", {self.payment_method or 'payment'} {self.check_or_eft_number}"
            text += ")"
        return text


@dataclass(frozen=True)
class RequestRejection:
    """An AAA segment: the request could not be answered at this level.

    The 005010X212 guide reports such problems with STC (E and D categories) and has no AAA;
    some senders add the 270/271 style AAA anyway, so it is read and kept, not dropped.
    """

    level: str  # payer, receiver, provider, subscriber, dependent
    valid_request: bool  # AAA01: Y valid request (answer still not possible), N invalid
    reason: Code  # AAA03, e.g. 75 subscriber/insured not found
    follow_up: Code | None  # AAA04, e.g. C please correct and resubmit

    def describe(self) -> str:
        text = f"{self.reason.description} ({self.reason.value})"
        return f"{text}; {self.follow_up.description}" if self.follow_up else text


@dataclass(frozen=True)
class LineStatus:
    """A 2220D/E loop: one service line of the claim and its statuses."""

    procedure_qualifier: str  # SVC01-1: HC for CPT/HCPCS
    procedure_code: str  # SVC01-2
    modifiers: tuple[str, ...]  # SVC01-3..6
    charge: Decimal | None  # SVC02
    paid_amount: Decimal | None  # SVC03
    revenue_code: str | None  # SVC04
    units: Decimal | None  # SVC07
    reports: tuple[StatusReport, ...]
    line_item_control_number: str | None = None  # REF*FJ: the 837's REF*6R
    service_date_from: date | None = None  # DTP*472
    service_date_to: date | None = None

    @property
    def status(self) -> str:
        return self.reports[0].status if self.reports else "unknown"

    def describe(self) -> str:
        line = f"service line {self.procedure_code}" + "".join(f":{m}" for m in self.modifiers)
        if self.line_item_control_number:
            line += f" ({self.line_item_control_number})"
        return f"{line}: " + "; ".join(r.describe() for r in self.reports)


@dataclass(frozen=True)
class OtherSegment:
    """A segment the reader does not interpret, kept with where it was (never logged)."""

    loop: str  # e.g. 2100A, 2200D
    number: int  # position in the interchange, ISA is 1
    elements: tuple[str, ...]  # elements[0] is the segment id

    @property
    def id(self) -> str:
        return self.elements[0]


@dataclass(frozen=True)
class ClaimStatusResult:
    """What a 277 (005010X212) says about one claim of a 276, or about a level above it.

    ``level`` is ``claim`` for a 2200D/2200E loop. A rejection at the payer, receiver, provider
    or subscriber level that has no claim loop under it becomes a result of its own with that
    level, so no rejection is lost; claims under a rejected level carry it in
    ``level_reports`` / ``rejections``.
    """

    trace_number: str  # TRN02: the 276's TRN02 ("" for a level result without one)
    status: str  # the hub's word: accepted, pending, paid, denied, information_requested ...
    reports: tuple[StatusReport, ...]  # the claim's own STCs, in order
    patient_control_number: str | None = None  # REF*EJ: the 837's CLM01
    payer_claim_control_number: str | None = None  # REF*1K
    clearinghouse_trace_number: str | None = None  # REF*D9
    service_date_from: date | None = None  # DTP*472
    service_date_to: date | None = None
    service_lines: tuple[LineStatus, ...] = ()
    level: str = "claim"
    level_reports: tuple[StatusReport, ...] = ()  # 2200B/2200C STCs of the levels above
    rejections: tuple[RequestRejection, ...] = ()  # AAA at this level or above
    payer_id: str = ""  # 2100A NM109
    payer_name: str = ""  # 2100A NM103
    receiver_id: str = ""  # 2100B NM109: the ETIN the 276 was sent with
    provider_id: str = ""  # 2100C NM109: NPI (or tax id)
    member_id: str = ""  # 2100D NM109
    patient_is_dependent: bool = False  # the claim was in a 2000E loop
    other_segments: tuple[OtherSegment, ...] = ()  # kept, not interpreted

    @property
    def category(self) -> str:
        """STC01-1 of the first status: the category the hub's ``status`` comes from."""
        reports = self.reports or self.level_reports
        return reports[0].category if reports else ""

    @property
    def paid_amount(self) -> Decimal | None:
        return next((r.paid_amount for r in self.reports if r.paid_amount is not None), None)

    @property
    def check_or_eft_number(self) -> str | None:
        return next((r.check_or_eft_number for r in self.reports if r.check_or_eft_number), None)

    def describe(self) -> str:
        """One sentence per status, ids only: "claim PCN1 (trace T1): finalized (paid) ..."."""
        who = f"claim {self.patient_control_number or '?'}" if self.level == "claim" else "the request"
        if self.trace_number:
            who += f" (trace {self.trace_number})"
        parts = [r.describe() for r in self.reports]
        parts += [f"{r.level} level: {r.describe()}" for r in (*self.level_reports, *self.rejections)]
        return f"{who}: {'; '.join(parts) or 'no status given'}"
