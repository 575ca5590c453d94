"""The files the sandbox answers with: TA1, 999 (005010X231A1), 277CA (005010X214), 835 (005010X221A1).

Each writer returns one whole interchange as bytes, addressed back to the upload's sender, under
the sandbox's own control number (ISA13 = GS06; ST02 counts the sets inside it). Segments go
through ``bhhub.x12.segments.SegmentList`` as the 837P writer's do: free text is cleaned for X12,
identifiers are echoed exactly. Shapes follow the domain reference, sections 6 and 7.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bhhub.x12.envelope import Delimiters
from bhhub.x12.segments import SegmentList, date8, decimal_text, money, text, time4

from bhhub.plugins.clearinghouse.sandbox.reader import Claim, Group, Interchange, Transaction
from bhhub.plugins.clearinghouse.sandbox.rules import ClaimPayment, PayerRules, Rules, Status
from bhhub.plugins.clearinghouse.sandbox.syntax import Findings, transaction_findings

ACK_GUIDE = "005010X231A1"
CLAIM_ACK_GUIDE = "005010X214"
REMITTANCE_GUIDE = "005010X221A1"
ACCEPTED = Status("A2", "20")  # accepted into the adjudication system: accepted for processing
RECEIVED = "19"  # entity acknowledges receipt of claim
_DELIMITERS = Delimiters()


@dataclass(frozen=True)
class ReplyEnvelope:
    """Who answers whom, when, under which control number."""

    sender_id: str  # the clearinghouse (ISA06/GS02)
    receiver_qualifier: str  # the upload's ISA05
    receiver_id: str  # the upload's ISA06
    application_receiver: str  # the upload's GS02
    usage_indicator: str  # the upload's ISA15
    created_at: datetime
    control_number: int

    @classmethod
    def answering(cls, upload: Interchange, rules: Rules, created_at: datetime, control_number: int,
                  application_receiver: str | None = None) -> ReplyEnvelope:
        return cls(rules.clearinghouse_id, upload.sender_qualifier or "ZZ", upload.sender_id,
                   application_receiver or upload.sender_id, upload.usage_indicator or "T", created_at,
                   control_number)


@dataclass(frozen=True)
class ClaimVerdict:
    """The 277CA's word on one claim: accepted with a payer claim number, or the problems."""

    claim: Claim
    problems: tuple[Status, ...]
    payer_claim_control_number: str | None


# --- envelope ----------------------------------------------------------------------------------


def _interchange(envelope: ReplyEnvelope, functional_id: str | None, guide: str,
                 body: Callable[[SegmentList], int]) -> bytes:
    """ISA, a GS (when ``functional_id``), what ``body`` writes (it returns its set count), GE, IEA."""
    out = SegmentList(_DELIMITERS)
    when = envelope.created_at
    control = f"{envelope.control_number:09d}"
    out.add_fixed("ISA", "00", " " * 10, "00", " " * 10, "ZZ", _safe(envelope.sender_id).ljust(15)[:15],
                  envelope.receiver_qualifier, _safe(envelope.receiver_id).ljust(15)[:15], when.strftime("%y%m%d"),
                  time4(when), _DELIMITERS.repetition, "00501", control, "0", envelope.usage_indicator,
                  _DELIMITERS.component)
    if functional_id is None:
        body(out)
        out.add("IEA", "0", control)
        return out.to_bytes()
    out.add("GS", functional_id, _safe(envelope.sender_id), _safe(envelope.application_receiver), date8(when),
            time4(when), str(envelope.control_number), "X", guide)
    count = body(out)
    out.add("GE", str(count), str(envelope.control_number))
    out.add("IEA", "1", control)
    return out.to_bytes()


class _TransactionSet:
    """ST ... SE: counts its own segments for SE01."""

    def __init__(self, out: SegmentList, set_id: str, number: int, guide: str | None):
        self.out, self.control = out, f"{number:04d}"
        self.start = len(out)
        out.add("ST", set_id, self.control, guide)

    def close(self) -> None:
        self.out.add("SE", str(len(self.out) - self.start + 1), self.control)


# --- TA1 ---------------------------------------------------------------------------------------


def write_ta1(upload: Interchange, envelope: ReplyEnvelope, accepted: bool, note_code: str) -> bytes:
    """An interchange acknowledgment: TA104 A or R, TA105 the note code (000 no error, 025 duplicate)."""
    def body(out: SegmentList) -> int:
        out.add("TA1", upload.control_number, upload.date, upload.time, "A" if accepted else "R", note_code)
        return 0
    return _interchange(envelope, None, "", body)


# --- 999 ---------------------------------------------------------------------------------------


def write_999(groups: Sequence[Group], findings: Findings | None, envelope: ReplyEnvelope) -> bytes:
    """One 999 set per functional group: AK2/IK5 per transaction, IK3/CTX/IK4 for each error."""
    def body(out: SegmentList) -> int:
        for index, group in enumerate(groups):
            group_findings = findings.group(index, group.control_number) if findings else None
            st = _TransactionSet(out, "999", index + 1, ACK_GUIDE)
            out.add("AK1", group.functional_id, group.control_number, group.version)
            accepted = 0
            for position, transaction in enumerate(group.transactions):
                found = transaction_findings(group_findings, position, transaction.control_number)
                out.add("AK2", transaction.set_id, transaction.control_number, transaction.guide or None)
                if found is not None and not found.accepted:
                    _errors_of(out, transaction, found.segments)
                    out.add("IK5", "R", *found.codes)
                else:
                    accepted += 1
                    out.add("IK5", "A")
            received = len(group.transactions)
            group_codes = group_findings.codes if group_findings else ()
            if accepted == received:
                outcome = "E" if group_codes else "A"  # E: accepted, but errors were noted
            else:
                outcome = "R" if accepted == 0 else "P"  # P: partially accepted
            declared = group.trailer_transaction_count if (group.trailer_transaction_count or "").isdigit() else None
            out.add("AK9", outcome, declared or str(received), str(received), str(accepted), *group_codes[:5])
            st.close()
        return len(groups)
    return _interchange(envelope, "FA", ACK_GUIDE, body)


def _errors_of(out: SegmentList, transaction: Transaction, segment_errors) -> None:
    for error in segment_errors:
        claim = transaction.claim_at(error.position)
        for code in error.codes:
            out.add("IK3", _safe(error.segment_id)[:3], str(error.position), error.loop_id, code)
            if claim is not None:
                # The business unit the error is in, so a biller finds the claim (X231A1 CTX).
                out.add("CTX", ("CLM01", _safe(claim.patient_control_number)))
            if code != "8":
                continue
            for element in error.elements:
                out.add("IK4", (str(element.element), _number(element.component), _number(element.repetition)),
                        element.data_element, element.code, _bad_value(element.bad_value, element.code))


def _number(value: int | None) -> str | None:
    return str(value) if value else None


def _bad_value(value: str | None, code: str) -> str | None:
    """IK404: a copy of the bad data, not for missing elements, without delimiters, at most 99."""
    if not value or code in ("1", "2", "I9"):
        return None
    return _safe(value)[:99].strip() or None


# --- 277CA -------------------------------------------------------------------------------------


def write_277ca(answered: Sequence[tuple[Transaction, Sequence[ClaimVerdict]]], rules: Rules,
                envelope: ReplyEnvelope) -> bytes:
    """One 277CA per accepted 837 set: source, receiver (batch totals), providers, claims."""
    when = envelope.created_at
    day = date8(when)

    def body(out: SegmentList) -> int:
        for number, (transaction, verdicts) in enumerate(answered, start=1):
            st = _TransactionSet(out, "277", number, CLAIM_ACK_GUIDE)
            reference = f"{rules.claim_number_prefix}{envelope.control_number:09d}{number:04d}"
            out.add("BHT", "0085", "08", reference, day, time4(when), "TH")
            out.add("HL", "1", None, "20", "1")
            out.add("NM1", "AY", "2", text(rules.clearinghouse_name, _DELIMITERS, 60), None, None, None, None, "46",
                    _safe(rules.clearinghouse_id))
            out.add("TRN", "1", reference)
            out.add("DTP", "050", "D8", day)  # received
            out.add("DTP", "009", "D8", day)  # processed
            out.add("HL", "2", "1", "21", "1")
            out.add("NM1", "41", transaction.submitter_entity_type if transaction.submitter_entity_type in ("1", "2")
                    else "2", text(transaction.submitter_name, _DELIMITERS, 60) or "SUBMITTER", None, None, None,
                    None, "46", _safe(transaction.submitter_id) or "UNKNOWN")
            out.add("TRN", "2", _safe(transaction.batch_reference) or "0")
            _totals(out, verdicts, ("AY", day), "90", "AA")
            hl = 2
            for provider_verdicts in _by_billing_provider(verdicts):
                hl += 1
                provider_hl = hl
                provider = provider_verdicts[0].claim.billing_provider
                out.add("HL", str(provider_hl), "2", "19", "1")
                organization = provider.entity_type != "1"
                out.add("NM1", "85", "2" if organization else "1",
                        text(provider.last_or_organization_name, _DELIMITERS, 60) or "BILLING PROVIDER",
                        None if organization else text(provider.first_name, _DELIMITERS, 35) or None,
                        None, None, None, "XX", _safe(provider.npi) or "0000000000")
                out.add("TRN", "1", "0")
                _totals(out, provider_verdicts, ("85", None), "QA", "QC")
                for verdict in provider_verdicts:
                    hl += 1
                    _claim_status(out, verdict, hl, provider_hl, day)
            st.close()
        return len(answered)
    return _interchange(envelope, "HN", CLAIM_ACK_GUIDE, body)


def _by_billing_provider(verdicts: Sequence[ClaimVerdict]) -> list[list[ClaimVerdict]]:
    grouped: dict[str, list[ClaimVerdict]] = {}
    for verdict in verdicts:
        grouped.setdefault(verdict.claim.billing_provider.npi, []).append(verdict)
    return list(grouped.values())


def _totals(out: SegmentList, verdicts: Sequence[ClaimVerdict], status: tuple[str, str | None],
            accepted_qualifier: str, rejected_qualifier: str) -> None:
    """2200B/2200C: STC (received), QTY accepted/rejected counts, AMT accepted/rejected charges."""
    entity, day = status
    accepted = [v for v in verdicts if not v.problems]
    rejected = [v for v in verdicts if v.problems]
    out.add("STC", ("A1", RECEIVED, entity), day, "WQ", money(_charges(verdicts)))
    if accepted:
        out.add("QTY", accepted_qualifier, str(len(accepted)))
    if rejected:
        out.add("QTY", rejected_qualifier, str(len(rejected)))
    if accepted:
        out.add("AMT", "YU", money(_charges(accepted)))
    if rejected:
        out.add("AMT", "YY", money(_charges(rejected)))


def _charges(verdicts: Sequence[ClaimVerdict]) -> Decimal:
    return sum((v.claim.total_charge or Decimal(0) for v in verdicts), Decimal(0))


def _claim_status(out: SegmentList, verdict: ClaimVerdict, hl: int, parent: int, day: str) -> None:
    """2000D/2200D: the patient, TRN02 = CLM01, one STC per finding (or acceptance), REF*1K."""
    claim = verdict.claim
    out.add("HL", str(hl), str(parent), "PT")
    out.add("NM1", "QC", "1", text(claim.patient_last_name, _DELIMITERS, 60) or "UNKNOWN",
            text(claim.patient_first_name, _DELIMITERS, 35) or None, None, None, None, "MI",
            _safe(claim.member_id) or "UNKNOWN")
    out.add("TRN", "2", _safe(claim.patient_control_number))
    charge = money(claim.total_charge or Decimal(0))
    for status in verdict.problems or (ACCEPTED,):
        out.add("STC", status.composite(), day, "U" if verdict.problems else "WQ", charge)
    if verdict.payer_claim_control_number and not verdict.problems:
        out.add("REF", "1K", verdict.payer_claim_control_number)
    period = claim.service_period()
    if period is None:
        out.add("DTP", "472", "D8", day)
    elif period[0] == period[1]:
        out.add("DTP", "472", "D8", date8(period[0]))
    else:
        out.add("DTP", "472", "RD8", f"{date8(period[0])}-{date8(period[1])}")


# --- 835 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remittance:
    """One payer's payment to one payee: one 835 transaction set."""

    payer: PayerRules
    trace_number: str  # TRN02
    claims: tuple[ClaimPayment, ...]


def write_835(remittances: Sequence[Remittance], envelope: ReplyEnvelope) -> bytes:
    """One 835 set per payer and payee; BPR02 = the sum of CLP04 (no provider-level adjustments)."""
    when = envelope.created_at
    day = date8(when)

    def body(out: SegmentList) -> int:
        for number, remittance in enumerate(remittances, start=1):
            st = _TransactionSet(out, "835", number, None)
            total = sum((c.paid for c in remittance.claims), Decimal(0))
            payer = remittance.payer
            if total > 0:
                out.add("BPR", "C", money(total), "C", "CHK", *([None] * 11), day)
            else:  # nothing to pay: the remittance is a notification only
                out.add("BPR", "H", money(total), "C", "NON", *([None] * 11), day)
            out.add("TRN", "1", remittance.trace_number, "1" + _safe(payer.tax_id)[:9].rjust(9, "0"))
            out.add("DTM", "405", day)
            _payer_and_payee(out, payer, remittance.claims[0].claim)
            out.add("LX", "1")
            for payment in remittance.claims:
                _claim_payment(out, payment, day)
            st.close()
        return len(remittances)
    return _interchange(envelope, "HP", REMITTANCE_GUIDE, body)


def _payer_and_payee(out: SegmentList, payer: PayerRules, claim: Claim) -> None:
    """1000A N1*PR, N3, N4, PER*BL; 1000B N1*PE with the billing NPI, REF*TJ with its tax id."""
    d = _DELIMITERS
    out.add("N1", "PR", text(payer.name, d, 60) or payer.payer_id)
    address = payer.address
    out.add("N3", text(address.get("street", "PO BOX 1000"), d, 55))
    out.add("N4", text(address.get("city", "SPRINGFIELD"), d, 30), text(address.get("state", "IL"), d, 2),
            _safe(address.get("postal_code", "62703")))
    contact = payer.edi_contact
    out.add("PER", "BL", text(contact.get("name", "EDI SUPPORT"), d, 60), "TE",
            re.sub(r"\D", "", contact.get("phone", "5555550199")))
    provider = claim.billing_provider
    name = " ".join(p for p in (provider.first_name, provider.last_or_organization_name) if p) \
        if provider.entity_type == "1" else provider.last_or_organization_name
    out.add("N1", "PE", text(name, d, 60) or "PAYEE", "XX", _safe(provider.npi))
    if provider.tax_id and provider.tax_id.isdigit():
        out.add("REF", "TJ", provider.tax_id)


def _claim_payment(out: SegmentList, payment: ClaimPayment, day: str) -> None:
    """2100 CLP, NM1*QC, DTM*050; 2110 SVC, DTM*472, CAS, REF*6R, AMT*B6, LQ*HE per line."""
    claim = payment.claim
    out.add("CLP", _safe(claim.patient_control_number), payment.status, money(payment.charge), money(payment.paid),
            money(payment.patient_responsibility), payment.filing_indicator, payment.payer_claim_control_number,
            claim.place_of_service or None, claim.frequency_code or None)
    out.add("NM1", "QC", "1", text(claim.patient_last_name, _DELIMITERS, 60) or None,
            text(claim.patient_first_name, _DELIMITERS, 35) or None, None, None, None,
            "MI" if claim.member_id else None, _safe(claim.member_id) or None)
    out.add("DTM", "050", day)  # claim received
    for line_payment in payment.lines:
        line = line_payment.line
        procedure = (line.qualifier or "HC", line.procedure_code, *line.modifiers)
        units = line.units if line.units is not None else Decimal(1)
        out.add("SVC", procedure, money(line_payment.charge), money(line_payment.paid), None,
                None if units == 1 else decimal_text(units))
        if line.service_date is not None:
            out.add("DTM", "472", date8(line.service_date))
        by_group: dict[str, list] = {}
        for adjustment in line_payment.adjustments:
            by_group.setdefault(adjustment.group, []).append(adjustment)
        for group, adjustments in by_group.items():
            # Up to six reason/amount/quantity triplets per CAS (domain reference 6.3).
            for start in range(0, len(adjustments), 6):
                triplets = [v for a in adjustments[start:start + 6] for v in (a.reason, money(a.amount), None)]
                out.add("CAS", group, *triplets)
        if line.control_number:
            out.add("REF", "6R", _safe(line.control_number))
        if line_payment.allowed is not None:
            out.add("AMT", "B6", money(line_payment.allowed))
        if line_payment.remark:
            out.add("LQ", "HE", line_payment.remark)


def _safe(value: str | None) -> str:
    """An echoed identifier without our delimiters (an upload may have used other ones)."""
    if not value:
        return ""
    return "".join("-" if c in _DELIMITERS or not c.isascii() or not c.isprintable() else c for c in value)
