"""The canonical model: what every plugin produces and every writer consumes.

Plain frozen dataclasses, independent of any wire format and of the database. EHR plugins turn
their input into ``Encounter`` records; the hub's coding stage turns an ``Encounter`` into a
``Claim``; the 837P writer turns ``Claim`` records into X12. Hook arguments are these objects,
never ORM rows.

Conventions: money is ``Decimal``; dates of service are local ``date``s; ICD-10-CM codes carry
their dot (``F33.1``) and lose it only in X12; gender is ``M``, ``F`` or ``U``; relationship codes
are X12 individual-relationship codes (``18`` self, ``01`` spouse, ``19`` child, ``G8`` other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class ClaimStatus(StrEnum):
    """One vocabulary for a claim's state across the hub (documented in the README)."""

    NEEDS_ATTENTION = "needs_attention"  # has an error finding; kept out of batches
    READY = "ready"  # clean; goes into the next 837P batch
    BATCHED = "batched"  # written into an 837P batch, not yet uploaded
    SUBMITTED = "submitted"  # uploaded to the clearinghouse
    ACCEPTED = "accepted"  # acknowledged (999/277CA) into adjudication
    REJECTED = "rejected"  # refused at the front end; may be sent again once fixed
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    REVERSED = "reversed"
    VOID = "void"
    # An encounter changed after its claim was billed: the corrected claim, checked, kept out of
    # batches until a biller sends it as the replacement (``bhhub followup replace``).
    PENDING_CORRECTION = "pending_correction"


class Severity(StrEnum):
    ERROR = "error"  # the claim is wrong as billed: it stays out of batches
    WARNING = "warning"  # may still be right: shown, does not block


SELF = "18"  # X12 individual relationship code: the patient is the subscriber


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str | None = None


@dataclass(frozen=True)
class PersonName:
    family: str
    given: str | None = None
    middle: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class Person:
    """A patient or a subscriber as the claim needs them."""

    name: PersonName
    birth_date: date | None = None
    gender: str = "U"
    address: Address | None = None


@dataclass(frozen=True)
class Patient(Person):
    """``key`` is the source-scoped identity (``fhir:MR|http://ehr.example/mrn|123``)."""

    key: str = ""


@dataclass(frozen=True)
class Payer:
    payer_id: str  # the clearinghouse payer id (2010BB NM109)
    name: str
    claim_filing_indicator: str | None = None  # SBR09: CI, BL, MB, MC, HM, 12, 16, CH ...


@dataclass(frozen=True)
class Coverage:
    order: int  # 1 primary, 2 secondary, 3 tertiary
    payer: Payer
    member_id: str
    relationship: str = SELF  # patient's relationship to the subscriber (X12 code)
    subscriber: Person | None = None  # None when the patient is the subscriber
    group_number: str | None = None
    plan_name: str | None = None

    @property
    def patient_is_subscriber(self) -> bool:
        return self.relationship == SELF


@dataclass(frozen=True)
class Provider:
    """A billing (Type 2 organisation or sole proprietor) or rendering (Type 1) provider."""

    npi: str
    organization_name: str | None = None  # set for organisations (NM102 = 2)
    name: PersonName | None = None  # set for individuals (NM102 = 1)
    tin: str | None = None  # EIN, 9 digits, no dash
    taxonomy: str | None = None  # NUCC code, e.g. 1041C0700X
    address: Address | None = None

    @property
    def is_organization(self) -> bool:
        return self.organization_name is not None

    @property
    def display_name(self) -> str:
        if self.organization_name:
            return self.organization_name
        assert self.name is not None
        return " ".join(p for p in (self.name.given, self.name.family) if p)


@dataclass(frozen=True)
class ServiceLine:
    """One billed service. ``charge`` None means "price from the fee schedule"."""

    procedure_code: str  # CPT or HCPCS
    service_date: date
    modifiers: tuple[str, ...] = ()
    charge: Decimal | None = None
    units: Decimal = Decimal(1)
    diagnosis_pointers: tuple[int, ...] = (1,)  # 1-based into Claim.diagnoses
    place_of_service: str | None = None  # only when it differs from the claim's
    minutes: int | None = None
    prior_authorization: str | None = None  # line-level REF*G1
    control_number: str | None = None  # REF*6R, echoed in the 835
    source_ref: str | None = None  # e.g. ChargeItem/ci-1


@dataclass(frozen=True)
class AuthorizationGrant:
    """A payer's prior authorization as a source sent it, for the authorization ledger.

    An EHR plugin reads it from the payer's answer (a FHIR ClaimResponse to a preauthorization)
    and only when the authorized count is known: an authorization whose count cannot be read
    is not a grant (its number may still travel as ``Encounter.prior_authorization``).
    ``unit_type`` is ``visits`` (one per date of service) or ``units`` (H-codes, testing
    hours). ``procedure_codes`` empty means any code. ``issued`` is when the payer issued it:
    a later grant with the same payer, member and number replaces an earlier one's dates and
    count, an earlier one never does. ``source_ref`` names the source resource (ids only).
    """

    payer_id: str
    member_id: str
    number: str  # REF*G1
    quantity: Decimal
    start: date
    end: date
    unit_type: str = "visits"
    procedure_codes: tuple[str, ...] = ()
    rendering_npi: str | None = None
    source: str = "fhir"
    source_ref: str = ""
    issued: datetime | None = None


@dataclass(frozen=True)
class Encounter:
    """A visit as the EHR recorded it, before the hub codes and prices it.

    ``services`` may be empty: the coding stage then derives the psychotherapy code from
    ``minutes``. ``as_billed`` marks a source claim (a FHIR ``Claim``) whose lines, modifiers
    and place of service are taken as they stand. ``authorizations`` are recorded in the ledger
    when the encounter is stored, before its claim is checked.
    """

    key: str  # source-scoped identity, stable across re-sends
    source_ref: str  # e.g. Encounter/enc-1 (named in messages to the biller)
    service_date: date
    patient: Patient
    coverages: tuple[Coverage, ...]
    billing_provider: Provider
    rendering_provider: Provider | None
    diagnoses: tuple[str, ...]  # ICD-10-CM with dots, principal first
    services: tuple[ServiceLine, ...] = ()
    place_of_service: str | None = None  # None: the coding stage decides
    virtual: bool = False
    audio_only: bool = False
    minutes: int | None = None
    prior_authorization: str | None = None
    as_billed: bool = False
    # The patient's prior authorizations the source sent with the visit, for the ledger.
    authorizations: tuple[AuthorizationGrant, ...] = ()


@dataclass(frozen=True)
class Finding:
    """What a check found on a claim, with the fix a biller can apply."""

    code: str  # stable, e.g. "npi.check_digit"
    severity: Severity
    message: str
    fix: str = ""
    line: int | None = None  # 1-based service line, None for the claim


@dataclass(frozen=True)
class PayerAdjustment:
    """One reason a payer paid less (or more) than was charged: an 835 CAS group, CARC and amount.

    ``group`` is CO (contractual), PR (patient responsibility), OA (other) or PI (payer
    initiated); a positive ``amount`` reduces the payment, a negative one increases it.
    """

    group: str
    reason: str  # claim adjustment reason code (CARC), e.g. 45, 1, 2, 3
    amount: Decimal
    quantity: Decimal | None = None  # units adjusted, when the payer said


@dataclass(frozen=True)
class LineAdjudication:
    """How a prior payer adjudicated one service line (its 835 SVC loop).

    The line is identified by ``line_number`` (1-based, on the claim as sent), else by its
    ``control_number`` (REF*6R echoed back), else by ``procedure_code`` and ``modifiers``
    (and ``service_date`` when given). ``procedure_code``, when set, is also the procedure as
    the payer adjudicated it. ``paid_units`` None means the units billed; ``adjudication_date``
    None means the adjudication's date; ``remaining_patient_liability`` None means the sum of
    the line's PR adjustments.
    """

    paid_amount: Decimal
    adjustments: tuple[PayerAdjustment, ...] = ()
    line_number: int | None = None
    control_number: str | None = None
    procedure_code: str | None = None
    modifiers: tuple[str, ...] = ()
    service_date: date | None = None
    paid_units: Decimal | None = None
    adjudication_date: date | None = None
    remaining_patient_liability: Decimal | None = None


@dataclass(frozen=True)
class PriorPayerAdjudication:
    """What a payer earlier in the order decided about this claim, for the next payer (COB).

    ``coverage`` is the adjudicating payer's coverage (one of the claim's ``other_coverages``).
    ``claim_adjustments`` are the claim-level adjustments only: when ``lines`` are given, each
    line's own adjustments travel with the line. ``patient_responsibility`` None means the sum
    of the claim-level PR adjustments.
    """

    coverage: Coverage
    paid_amount: Decimal  # claim level, 835 CLP04
    adjudication_date: date  # the remittance (check or EFT) date
    claim_adjustments: tuple[PayerAdjustment, ...] = ()
    lines: tuple[LineAdjudication, ...] = ()
    patient_responsibility: Decimal | None = None  # 835 CLP05
    payer_claim_control_number: str | None = None  # 835 CLP07, the payer's number for the claim

    @property
    def payer(self) -> Payer:
        return self.coverage.payer


@dataclass(frozen=True)
class Claim:
    """A professional claim ready for the 837P writer."""

    patient_control_number: str  # CLM01, at most 20 characters
    patient: Patient
    coverage: Coverage  # the payer this claim is sent to
    billing_provider: Provider
    rendering_provider: Provider | None
    diagnoses: tuple[str, ...]
    lines: tuple[ServiceLine, ...]
    place_of_service: str
    frequency_code: str = "1"  # 1 original, 7 replacement, 8 void
    other_coverages: tuple[Coverage, ...] = ()  # 2320/2330 loops
    prior_authorization: str | None = None  # claim-level REF*G1
    payer_claim_control_number: str | None = None  # REF*F8, with frequency 7/8
    provider_signature_on_file: bool = True  # CLM06
    assignment: str = "A"  # CLM07
    benefits_assigned: str = "Y"  # CLM08
    release_of_information: str = "Y"  # CLM09
    findings: tuple[Finding, ...] = field(default=(), compare=False)
    # Earlier payers' adjudications (2320 CAS/AMT, 2430), one per adjudicating other coverage.
    prior_adjudications: tuple[PriorPayerAdjudication, ...] = ()

    @property
    def total_charge(self) -> Decimal:
        return sum((line.charge or Decimal(0) for line in self.lines), Decimal(0))

    @property
    def service_date(self) -> date:
        return min(line.service_date for line in self.lines)
