"""What an 835 says about each claim, at claim level: enough to set a claim's status.

This is not remittance posting (line-level amounts, balancing, matching by lines, PLB: the
remittance work). It reads, per payment (ST/SE): the payer, the trace number and the amount; and
per CLP: the patient control number, the claim status code, charge, paid, patient
responsibility, the payer's claim control number and every CAS adjustment (claim and line level),
so the hub can say "paid", "partially paid", "denied" or "reversed" as soon as the 835 arrives.
No names, member ids or dates of birth are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from hub.errors import InputError
from hub.x12.tokens import Segment, segments

# CLP02 claim status codes (X12 external code list 1029 as used by 005010X221A1).
PROCESSED_AS = {"1": "primary", "2": "secondary", "3": "tertiary", "19": "primary, forwarded",
                "20": "secondary, forwarded", "21": "tertiary, forwarded"}
DENIED, REVERSAL, NOT_OUR_CLAIM, PREDETERMINATION = "4", "22", "23", "25"


@dataclass(frozen=True)
class Adjustment:
    group: str  # CO, OA, PI, PR
    reason: str  # CARC
    amount: Decimal
    procedure_code: str | None = None  # the SVC line it came with; None at claim level


@dataclass(frozen=True)
class ClaimPayment:
    patient_control_number: str  # CLP01 = the CLM01 the hub sent
    status_code: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal  # CLP05
    payer_claim_control_number: str  # CLP07
    adjustments: tuple[Adjustment, ...] = ()
    segment_number: int = 0

    @property
    def outcome(self) -> str:
        """denied, reversed, paid, partially_paid or not_ours (the hub's vocabulary)."""
        if self.status_code == REVERSAL:
            return "reversed"
        if self.status_code == NOT_OUR_CLAIM:
            return "not_ours"
        if self.status_code == DENIED or (self.paid == 0 and self.patient_responsibility == 0):
            return "denied"
        billed_less_contract = self.charge - sum((a.amount for a in self.adjustments if a.group == "CO"),
                                                 Decimal(0))
        if self.paid + self.patient_responsibility >= billed_less_contract:
            return "paid"
        return "partially_paid"

    @property
    def denial_reasons(self) -> tuple[str, ...]:
        """``GROUP-CARC`` of each adjustment that is not a contractual write-down or patient share."""
        return tuple(dict.fromkeys(f"{a.group}-{a.reason}" for a in self.adjustments
                                   if not (a.group == "CO" and a.reason == "45") and a.group != "PR"))


@dataclass(frozen=True)
class Payment:
    payer_id: str  # TRN03 (payer's TIN-based id) or the N1*PR id
    payer_name: str
    trace_number: str  # TRN02
    amount: Decimal  # BPR02
    claims: tuple[ClaimPayment, ...] = field(default=())


def read_claim_payments(data: bytes) -> list[Payment]:
    """One ``Payment`` per 835 transaction set; ``InputError`` naming the segment if malformed."""
    payments: list[Payment] = []
    current: dict | None = None
    claim: dict | None = None
    procedure: str | None = None
    for segment in segments(data):
        sid = segment.id
        if sid == "ST":
            if segment[1] != "835":
                raise InputError(f"{segment}: transaction set {segment[1] or '?'} is not an 835")
            current, claim, procedure = {"payer_id": "", "payer_name": "", "trace": "", "amount": Decimal(0),
                                         "claims": []}, None, None
        elif current is None:
            continue
        elif sid == "BPR":
            current["amount"] = _amount(segment, 2)
        elif sid == "TRN":
            current["trace"] = segment[2]
            current["payer_id"] = current["payer_id"] or segment[3]
        elif sid == "N1" and segment[1] == "PR":
            current["payer_name"] = segment[2]
            if segment[4]:
                current["payer_id"] = segment[4]
        elif sid == "REF" and segment[1] == "2U" and claim is None:
            current["payer_id"] = segment[2]
        elif sid == "CLP":
            claim = _finish(current, claim)
            if not segment[1] or not segment[2]:
                raise InputError(f"{segment}: a CLP needs the patient control number and the status code")
            claim = {"segment": segment, "adjustments": []}
            procedure = None
        elif sid == "SVC":
            procedure = segment.component(1, 2) or None
        elif sid == "CAS":
            if claim is None:
                raise InputError(f"{segment}: a CAS outside any claim (CLP)")
            for position in range(2, 19, 3):
                if segment[position]:
                    claim["adjustments"].append(Adjustment(segment[1], segment[position],
                                                           _amount(segment, position + 1), procedure))
        elif sid == "SE":
            _finish(current, claim)
            payments.append(Payment(current["payer_id"], current["payer_name"], current["trace"],
                                    current["amount"], tuple(current["claims"])))
            current, claim = None, None
    if current is not None:
        raise InputError("the 835 ends before its SE segment (the file is cut short)")
    return payments


def _finish(current: dict, claim: dict | None) -> None:
    if claim is not None:
        segment: Segment = claim["segment"]
        current["claims"].append(ClaimPayment(
            patient_control_number=segment[1], status_code=segment[2], charge=_amount(segment, 3),
            paid=_amount(segment, 4), patient_responsibility=_amount(segment, 5),
            payer_claim_control_number=segment[7], adjustments=tuple(claim["adjustments"]),
            segment_number=segment.number,
        ))
    return None


def _amount(segment: Segment, position: int) -> Decimal:
    value = segment[position]
    if not value:
        return Decimal(0)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InputError(f"{segment}: element {position} is not an amount") from None
