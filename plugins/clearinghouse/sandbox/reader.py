"""Reading an uploaded 837P (005010X222A1) into the few records a clearinghouse acts on.

    upload = read_837p(content)          # InputError when there is no readable ISA
    upload.envelope.control_number       # ISA13
    for group in upload.groups:          # GS/GE
        for transaction in group.transactions:   # ST/SE
            for claim in transaction.claims:     # loop 2300, with its 2000A/2000B context
                claim.patient_control_number, claim.lines[0].charge, claim.first_position

Nothing here decides whether the file is valid: pyx12 does (``syntax``), and the reader is
tolerant so that a rejected file can still be answered (a number or date it cannot read is
``None``). Positions count segments from the transaction's ST (= 1), as 999 IK302 does.
Member ids and names are kept for the 277CA and 835 only; they are left out of ``repr`` so a
stray log line cannot carry them (no PHI in logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from bhhub.errors import InputError
from bhhub.x12.envelope import Delimiters
from bhhub.x12.tokens import Segment, segments


@dataclass(frozen=True)
class Interchange:
    """ISA and IEA of the upload, values without their fixed-width padding."""

    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    version: str  # ISA12
    control_number: str  # ISA13
    acknowledgment_requested: bool  # ISA14 = 1
    usage_indicator: str  # ISA15
    delimiters: Delimiters
    trailer_group_count: str | None = None  # IEA01; None when the IEA is missing
    trailer_control_number: str | None = None  # IEA02


@dataclass(frozen=True)
class ServiceLine:
    """Loop 2400: LX, SV1, DTP*472, REF*G1, REF*6R."""

    number: str  # LX01
    position: int
    qualifier: str = "HC"  # SV101-1
    procedure_code: str = ""
    modifiers: tuple[str, ...] = ()
    charge: Decimal | None = None  # SV102
    unit_basis: str = "UN"  # SV103
    units: Decimal | None = None  # SV104
    service_date: date | None = None  # DTP*472, the first day of a range
    service_date_end: date | None = None
    prior_authorization: str | None = None  # line REF*G1
    control_number: str | None = None  # REF*6R


@dataclass(frozen=True)
class BillingProvider:
    """Loop 2000A/2010AA."""

    npi: str  # NM109
    entity_type: str  # NM102: 1 person, 2 organisation
    last_or_organization_name: str  # NM103
    first_name: str  # NM104
    tax_id: str | None  # REF*EI or REF*SY


@dataclass(frozen=True)
class Claim:
    """Loop 2300 with what a payer needs from the loops above it and the lines below it."""

    patient_control_number: str  # CLM01
    first_position: int  # the claim's 2000B HL (or its CLM, for a second claim in one 2000B)
    claim_position: int  # the CLM segment
    last_position: int  # its last segment before the next HL or the SE
    total_charge: Decimal | None  # CLM02
    place_of_service: str  # CLM05-1
    frequency_code: str  # CLM05-3
    billing_provider: BillingProvider
    payer_id: str  # 2010BB NM109
    payer_name: str  # 2010BB NM103
    payer_responsibility: str  # SBR01: P, S, T ...
    claim_filing_indicator: str  # SBR09
    member_id: str = field(repr=False)  # 2010BA NM109
    patient_last_name: str = field(repr=False)  # 2010CA NM103, else 2010BA
    patient_first_name: str = field(repr=False)
    prior_authorization: str | None  # 2300 REF*G1
    rendering_npi: str | None  # 2310B NM109
    diagnoses: tuple[str, ...]  # HI, as sent (no dot)
    lines: tuple[ServiceLine, ...]

    def service_period(self) -> tuple[date, date] | None:
        """First and last date of service over the lines; None when no line has a date."""
        days = [d for line in self.lines for d in (line.service_date, line.service_date_end) if d]
        return (min(days), max(days)) if days else None


@dataclass(frozen=True)
class Transaction:
    """ST/SE: one 837 transaction set."""

    control_number: str  # ST02
    set_id: str  # ST01
    guide: str  # ST03
    batch_reference: str  # BHT03
    submitter_name: str  # 1000A NM103
    submitter_id: str  # 1000A NM109
    submitter_entity_type: str  # 1000A NM102
    claims: tuple[Claim, ...]
    segment_count: int  # ST through SE (or the end of the file)

    def claim_at(self, position: int) -> Claim | None:
        """The claim whose loops hold the segment at ``position`` (ST = 1), if any."""
        for claim in self.claims:
            if claim.first_position <= position <= claim.last_position:
                return claim
        return None


@dataclass(frozen=True)
class Group:
    """GS/GE."""

    functional_id: str  # GS01
    application_sender: str  # GS02
    application_receiver: str  # GS03
    control_number: str  # GS06
    version: str  # GS08
    transactions: tuple[Transaction, ...]
    trailer_transaction_count: str | None  # GE01


@dataclass(frozen=True)
class Upload:
    envelope: Interchange
    groups: tuple[Group, ...]
    ends_with_iea: bool

    def claims(self) -> list[Claim]:
        return [c for g in self.groups for t in g.transactions for c in t.claims]


def read_interchange_header(content: bytes) -> Interchange:
    """The ISA alone; ``InputError`` when the content does not start with a readable one."""
    first = next(iter(segments(content)))
    return _interchange(first)


def read_837p(content: bytes) -> Upload:
    """Every group, transaction and claim of an 837P; ``InputError`` without a readable ISA."""
    all_segments = iter(segments(content))
    envelope = _interchange(next(all_segments))
    groups: list[Group] = []
    group_header: Segment | None = None
    group_transactions: list[Transaction] = []
    transaction: _TransactionReader | None = None
    trailer: Segment | None = None
    last_id = "ISA"
    for segment in all_segments:
        last_id = segment.id
        if segment.id == "GS":
            group_header, group_transactions = segment, []
        elif segment.id == "ST":
            transaction = _TransactionReader(segment)
        elif segment.id == "SE" and transaction is not None:
            group_transactions.append(transaction.finish(segment))
            transaction = None
        elif segment.id == "GE" and group_header is not None:
            groups.append(_group(group_header, group_transactions, segment[1]))
            group_header = None
        elif segment.id == "IEA":
            trailer = segment
        elif transaction is not None:
            transaction.add(segment)
    if transaction is not None:  # cut short: keep what was read, pyx12 reports the damage
        group_transactions.append(transaction.finish(None))
    if group_header is not None:
        groups.append(_group(group_header, group_transactions, None))
    if trailer is not None:
        envelope = _with_trailer(envelope, trailer)
    return Upload(envelope, tuple(groups), ends_with_iea=last_id == "IEA")


def _interchange(isa: Segment) -> Interchange:
    if isa.id != "ISA":
        raise InputError("not an X12 interchange: it does not start with an ISA segment")
    return Interchange(
        sender_qualifier=isa[5].strip(), sender_id=isa[6].strip(), receiver_qualifier=isa[7].strip(),
        receiver_id=isa[8].strip(), date=isa[9], time=isa[10], version=isa[12], control_number=isa[13],
        acknowledgment_requested=isa[14] == "1", usage_indicator=isa[15], delimiters=isa.delimiters,
    )


def _with_trailer(envelope: Interchange, iea: Segment) -> Interchange:
    values = {name: getattr(envelope, name) for name in envelope.__dataclass_fields__}
    values.update(trailer_group_count=iea[1], trailer_control_number=iea[2])
    return Interchange(**values)


def _group(gs: Segment, transactions: list[Transaction], trailer_count: str | None) -> Group:
    return Group(gs[1], gs[2], gs[3], gs[6], gs[8], tuple(transactions), trailer_count)


@dataclass
class _ClaimDraft:
    header: dict
    lines: list[dict] = field(default_factory=list)
    last_position: int = 0


class _TransactionReader:
    """Walks one transaction set, keeping the loop context a claim inherits (domain ref. 5.2)."""

    def __init__(self, st: Segment):
        self.st = st
        self.bht_reference = ""
        self.submitter = ("", "", "2")
        self.billing: BillingProvider | None = None
        self.billing_fields: dict = {}
        self.subscriber: dict = {}
        self.subscriber_start = 0
        self.loop = "header"  # header, 2000A, 2000B, 2000C, 2300, 2320, 2400
        self.claims: list[_ClaimDraft] = []
        self.count = 1

    def position(self, segment: Segment) -> int:
        return segment.number - self.st.number + 1

    def add(self, segment: Segment) -> None:
        self.count += 1
        position = self.position(segment)
        sid = segment.id
        if self.claims and self.loop in ("2300", "2320", "2400") and sid != "HL":
            self.claims[-1].last_position = position
        if sid == "BHT":
            self.bht_reference = segment[3]
        elif sid == "HL":
            self._hierarchy(segment, position)
        elif sid == "NM1":
            self._name(segment)
        elif sid == "REF":
            self._reference(segment)
        elif sid == "SBR" and self.loop == "2000B":
            self.subscriber.update(responsibility=segment[1], filing=segment[9])
        elif sid == "SBR" and self.loop in ("2300", "2320"):
            self.loop = "2320"  # other subscriber: its NM1s are not this claim's parties
        elif sid == "CLM":
            self._claim(segment, position)
        elif sid == "HI" and self.loop == "2300":
            self.claims[-1].header["diagnoses"] += [
                segment.component(i, 2) for i in range(1, 13) if segment.component(i, 2)]
        elif sid == "LX" and self.claims:
            self.loop = "2400"
            self.claims[-1].lines.append({"number": segment[1], "position": position})
        elif sid == "SV1" and self.loop == "2400":
            self._service(segment)
        elif sid == "DTP" and self.loop == "2400" and segment[1] == "472":
            first, last = _period(segment[2], segment[3])
            self.claims[-1].lines[-1].update(service_date=first, service_date_end=last)

    def _hierarchy(self, hl: Segment, position: int) -> None:
        level = hl[3]
        if level == "20":
            self.loop, self.billing_fields = "2000A", {}
            self.billing = None
        elif level == "22":
            self.loop, self.subscriber, self.subscriber_start = "2000B", {}, position
        elif level == "23":
            self.loop = "2000C"
        else:
            self.loop = "other"

    def _name(self, nm1: Segment) -> None:
        entity = nm1[1]
        if self.loop == "header" and entity == "41":
            self.submitter = (nm1[3], nm1[9], nm1[2] or "2")
        elif self.loop == "2000A" and entity == "85":
            self.billing_fields.update(npi=nm1[9], entity_type=nm1[2], name=nm1[3], first=nm1[4])
        elif self.loop == "2000B" and entity == "IL":
            self.subscriber.update(member_id=nm1[9], last=nm1[3], first=nm1[4])
        elif self.loop == "2000B" and entity == "PR":
            self.subscriber.update(payer_id=nm1[9], payer_name=nm1[3])
        elif self.loop == "2000C" and entity == "QC":
            self.subscriber.update(patient_last=nm1[3], patient_first=nm1[4])
        elif self.loop == "2300" and entity == "82":
            self.claims[-1].header["rendering_npi"] = nm1[9]

    def _reference(self, ref: Segment) -> None:
        if self.loop == "2000A" and ref[1] in ("EI", "SY"):
            self.billing_fields["tax_id"] = ref[2]
        elif self.loop == "2300" and ref[1] == "G1":
            self.claims[-1].header["prior_authorization"] = ref[2]
        elif self.loop == "2400" and ref[1] == "G1":
            self.claims[-1].lines[-1]["prior_authorization"] = ref[2]
        elif self.loop == "2400" and ref[1] == "6R":
            self.claims[-1].lines[-1]["control_number"] = ref[2]

    def _claim(self, clm: Segment, position: int) -> None:
        starts_subscriber = not self.claims or self.claims[-1].header["subscriber_start"] != self.subscriber_start
        self.loop = "2300"
        subscriber = self.subscriber
        self.claims.append(_ClaimDraft(header={
            "patient_control_number": clm[1],
            "first_position": self.subscriber_start if starts_subscriber else position,
            "subscriber_start": self.subscriber_start,
            "claim_position": position,
            "total_charge": _decimal(clm[2]),
            "place_of_service": clm.component(5, 1),
            "frequency_code": clm.component(5, 3),
            "billing_provider": BillingProvider(
                npi=self.billing_fields.get("npi", ""), entity_type=self.billing_fields.get("entity_type", "2"),
                last_or_organization_name=self.billing_fields.get("name", ""),
                first_name=self.billing_fields.get("first", ""), tax_id=self.billing_fields.get("tax_id")),
            "payer_id": subscriber.get("payer_id", ""),
            "payer_name": subscriber.get("payer_name", ""),
            "payer_responsibility": subscriber.get("responsibility", ""),
            "claim_filing_indicator": subscriber.get("filing", ""),
            "member_id": subscriber.get("member_id", ""),
            "patient_last_name": subscriber.get("patient_last", subscriber.get("last", "")),
            "patient_first_name": subscriber.get("patient_first", subscriber.get("first", "")),
            "prior_authorization": None,
            "rendering_npi": None,
            "diagnoses": [],
        }, last_position=position))

    def _service(self, sv1: Segment) -> None:
        procedure = sv1.components(1)
        self.claims[-1].lines[-1].update(
            qualifier=procedure[0] if procedure else "", procedure_code=procedure[1] if len(procedure) > 1 else "",
            modifiers=tuple(m for m in procedure[2:6] if m), charge=_decimal(sv1[2]), unit_basis=sv1[3],
            units=_decimal(sv1[4]))

    def finish(self, se: Segment | None) -> Transaction:
        count = self.count + (1 if se is not None else 0)
        claims = []
        for draft in self.claims:
            header = dict(draft.header)
            header.pop("subscriber_start")
            header["diagnoses"] = tuple(header["diagnoses"])
            claims.append(Claim(**header, last_position=draft.last_position,
                                lines=tuple(ServiceLine(**line) for line in draft.lines)))
        name, identifier, entity_type = self.submitter
        return Transaction(self.st[2], self.st[1], self.st[3], self.bht_reference, name, identifier, entity_type,
                           tuple(claims), count)


def _decimal(value: str) -> Decimal | None:
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _date(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _period(qualifier: str, value: str) -> tuple[date | None, date | None]:
    """DTP D8 (one day) or RD8 (CCYYMMDD-CCYYMMDD)."""
    if qualifier == "RD8" and "-" in value:
        first, _, last = value.partition("-")
        return _date(first), _date(last)
    day = _date(value)
    return day, day
