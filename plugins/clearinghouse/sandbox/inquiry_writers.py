"""The sandbox's answers to inquiries: 271 (005010X279A1) to a 270, 277 (005010X212) to a 276.

Written by the sandbox itself, as ``writers`` are, never by the hub's X12 code: the hub reads
these with its own readers, and the two must agree without sharing a line. One answer set per
inquiry set, the hierarchy echoed (payer, receiver, provider, subscriber, dependent), the
inquiry's trace number in TRN*2 and, in a 277, its REF*EJ (the claim's CLM01).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bhhub.x12.segments import SegmentList, date8, money, text, time4

from bhhub.plugins.clearinghouse.sandbox.eligibility import Coverage
from bhhub.plugins.clearinghouse.sandbox.inquiry_reader import ELIGIBILITY_GUIDE, STATUS_GUIDE, InquiryTransaction, Party, \
    Question
from bhhub.plugins.clearinghouse.sandbox.writers import _DELIMITERS, ReplyEnvelope, _interchange, _safe, _TransactionSet

PLAN_COVERAGE = "30"  # health benefit plan coverage
MENTAL_HEALTH = "MH"
NOT_FOUND = ("N", "75", "C")  # AAA: not a valid request, subscriber/insured not found, correct and resubmit
PAYER_UNKNOWN = ("N", "79", "C")  # 2100A AAA: invalid participant identification


@dataclass(frozen=True)
class EligibilityAnswer:
    question: Question
    coverage: Coverage | None  # None: the payer is not one the sandbox answers for


@dataclass(frozen=True)
class StatusAnswer:
    question: Question
    outcome: dict | None  # what the state recorded for the claim; None: never received


# --- 271 -----------------------------------------------------------------------------------------


def write_271(answered: Sequence[tuple[InquiryTransaction, Sequence[EligibilityAnswer]]], envelope: ReplyEnvelope,
              plan_begin) -> bytes:
    when = envelope.created_at

    def body(out: SegmentList) -> int:
        for number, (transaction, answers) in enumerate(answered, start=1):
            st = _TransactionSet(out, "271", number, ELIGIBILITY_GUIDE)
            # BHT02 11: a response; BHT03 echoes the 270's reference.
            out.add("BHT", "0022", "11", _safe(transaction.reference) or st.control, date8(when), time4(when))
            hl = 0
            for payer_answers in _grouped(answers, lambda a: (a.question.payer.id, a.question.payer.name)):
                hl += 1
                payer_hl = hl
                known = payer_answers[0].coverage is not None
                out.add("HL", str(payer_hl), None, "20", "1")
                _name(out, payer_answers[0].question.payer, "PR", "PI")
                if not known:
                    out.add("AAA", *PAYER_UNKNOWN[:1], None, *PAYER_UNKNOWN[1:])
                for receiver_answers in _grouped(payer_answers, lambda a: _key(a.question.receiver)):
                    hl += 1
                    receiver_hl = hl
                    out.add("HL", str(receiver_hl), str(payer_hl), "21", "1")
                    _name(out, receiver_answers[0].question.receiver or Party("1P"), "1P", "XX")
                    for answer in receiver_answers:
                        hl = _eligibility(out, answer, receiver_hl, hl, plan_begin)
            st.close()
        return len(answered)
    return _interchange(envelope, "HB", ELIGIBILITY_GUIDE, body)


def _eligibility(out: SegmentList, answer: EligibilityAnswer, parent: int, hl: int, plan_begin) -> int:
    question, coverage = answer.question, answer.coverage
    found = coverage is not None and coverage.kind != "not_found"
    dependent = question.dependent is not None and found
    hl += 1
    subscriber_hl = hl
    out.add("HL", str(subscriber_hl), str(parent), "22", "1" if dependent else "0")
    if not dependent:
        _trace(out, question)
    _name(out, question.subscriber, "IL", "MI")
    if coverage is None:
        return hl
    if not found:
        out.add("AAA", NOT_FOUND[0], None, *NOT_FOUND[1:])
        return hl
    if dependent:
        hl += 1
        out.add("HL", str(hl), str(subscriber_hl), "23", "0")
        _trace(out, question)
        _name(out, question.dependent, "03", None)
    _benefits(out, question, coverage, plan_begin)
    return hl


def _benefits(out: SegmentList, question: Question, coverage: Coverage, plan_begin) -> None:
    """2100C/D dates, then the 2110C/D benefit loops the coverage profile says."""
    asked = question.service_types or (PLAN_COVERAGE,)
    # Asked only 30, a payer must still say whether mental health is covered (TR3 1.4.7.1).
    mental = tuple(t for t in asked if t != PLAN_COVERAGE) or (MENTAL_HEALTH,)
    if coverage.kind == "inactive":
        out.add("DTP", "357", "D8", date8(coverage.ended))  # eligibility end
        _eb(out, "6", asked)
        return
    if coverage.group_number:
        out.add("REF", "6P", _safe(coverage.group_number))
    if plan_begin is not None:
        out.add("DTP", "346", "D8", date8(plan_begin))  # plan begin
    plan = text(coverage.plan, _DELIMITERS, 50) or None
    if coverage.kind == "carve_out":
        _eb(out, "1", (PLAN_COVERAGE,), coverage.insurance_type, plan)
        _eb(out, "U", mental)
        out.add("MSG", text(f"BEHAVIORAL HEALTH BENEFITS ADMINISTERED BY {coverage.carve_out_name}", _DELIMITERS, 264))
        out.add("LS", "2120")
        out.add("NM1", "PR", "2", text(coverage.carve_out_name, _DELIMITERS, 60), None, None, None, None, "PI",
                _safe(coverage.carve_out_payer_id))
        if coverage.carve_out_phone:
            out.add("PER", "IC", None, "TE", _safe(coverage.carve_out_phone))
        out.add("LE", "2120")
        return
    _eb(out, "1", asked, coverage.insurance_type, plan)
    auth = "Y" if coverage.auth_required else "N"
    if coverage.copay is not None:
        _eb(out, "B", mental, period="27", amount=money(coverage.copay), auth=auth, network="Y")
    if coverage.coinsurance_percent is not None:
        fraction = (coverage.coinsurance_percent / 100).normalize()
        _eb(out, "A", mental, percent=_fraction(fraction), auth=auth, network="Y")
    if coverage.deductible is not None:
        _eb(out, "C", mental, period="23", amount=money(coverage.deductible), network="Y")
    if coverage.deductible_remaining is not None:
        _eb(out, "C", mental, period="29", amount=money(coverage.deductible_remaining), network="Y")
    # Visit limits in HSD (HSD05 23 calendar year, 29 remaining), as the guide's HSD carries them.
    if coverage.visits_allowed is not None:
        _eb(out, "F", mental, auth=auth, network="Y")
        out.add("HSD", "VS", str(coverage.visits_allowed), None, None, "23", "1")
    if coverage.visits_remaining is not None:
        _eb(out, "F", mental, auth=auth, network="Y")
        out.add("HSD", "VS", str(coverage.visits_remaining), None, None, "29")


def _eb(out: SegmentList, code: str, service_types: Sequence[str], insurance_type: str | None = None,
        plan: str | None = None, *, period: str | None = None, amount: str | None = None, percent: str | None = None,
        auth: str | None = None, network: str | None = None) -> None:
    """EB01-EB12; EB03 repeats with the repetition separator, which ``SegmentList.add`` refuses
    inside a value, so the codes are checked here and joined after."""
    codes = [c for c in service_types if c.isalnum()]
    out.add("EB", code, "IND", "EBSERVICETYPES", insurance_type, plan, period, amount, percent, None, None, auth,
            network)
    out.segments[-1] = out.segments[-1].replace("EBSERVICETYPES", _DELIMITERS.repetition.join(codes), 1)


def _fraction(value: Decimal) -> str:
    """EB08 as X12 writes a decimal: .2, not 0.2."""
    rendered = format(value, "f")
    return rendered[1:] if rendered.startswith("0.") else rendered


def _trace(out: SegmentList, question: Question) -> None:
    """TRN*2: the inquiry's own trace (TRN*1 in the 270), echoed as a referenced trace."""
    out.add("TRN", "2", _safe(question.trace_number) or "0", _safe(question.trace_originator) or None)


# --- 277 (claim status) --------------------------------------------------------------------------


def write_277(answered: Sequence[tuple[InquiryTransaction, Sequence[StatusAnswer]]], envelope: ReplyEnvelope) -> bytes:
    when = envelope.created_at
    day = date8(when)

    def body(out: SegmentList) -> int:
        for number, (transaction, answers) in enumerate(answered, start=1):
            st = _TransactionSet(out, "277", number, STATUS_GUIDE)
            # BHT02 08 status; BHT06 DG response (a 277CA says TH).
            out.add("BHT", "0010", "08", _safe(transaction.reference) or st.control, day, time4(when), "DG")
            hl = 0
            for payer_answers in _grouped(answers, lambda a: (a.question.payer.id, a.question.payer.name)):
                hl += 1
                payer_hl = hl
                out.add("HL", str(payer_hl), None, "20", "1")
                _name(out, payer_answers[0].question.payer, "PR", "PI")
                for receiver_answers in _grouped(payer_answers, lambda a: _key(a.question.receiver)):
                    hl += 1
                    receiver_hl = hl
                    out.add("HL", str(receiver_hl), str(payer_hl), "21", "1")
                    _name(out, receiver_answers[0].question.receiver or Party("41"), "41", "46")
                    for provider_answers in _grouped(receiver_answers, lambda a: _key(a.question.provider)):
                        hl += 1
                        provider_hl = hl
                        out.add("HL", str(provider_hl), str(receiver_hl), "19", "1")
                        _name(out, provider_answers[0].question.provider or Party("1P"), "1P", "XX")
                        for answer in provider_answers:
                            hl = _claim_status(out, answer, provider_hl, hl, day)
            st.close()
        return len(answered)
    return _interchange(envelope, "HN", STATUS_GUIDE, body)


def _claim_status(out: SegmentList, answer: StatusAnswer, parent: int, hl: int, day: str) -> int:
    question, outcome = answer.question, answer.outcome
    hl += 1
    dependent = question.dependent is not None
    out.add("HL", str(hl), str(parent), "22", "1" if dependent else "0")
    _name(out, question.subscriber, "IL", "MI")
    if dependent:
        hl += 1
        out.add("HL", str(hl), str(hl - 1), "23")
        _name(out, question.dependent, "QC", None)
    out.add("TRN", "2", _safe(question.trace_number) or "0")
    charge = _amount(outcome["charge"]) if outcome else _amount(question.total_charge)
    if outcome is None:  # never received: not found in the adjudication system
        out.add("STC", ("A4", "35"), day, None, charge)
    elif outcome["category"].startswith("F"):
        paid = _amount(outcome.get("paid", "0"))
        decided = outcome.get("date") or day
        if outcome["category"] == "F1":
            out.add("STC", (outcome["category"], outcome["status_code"]), decided, None, charge, paid, decided,
                    outcome.get("payment_method") or "CHK", decided, _safe(outcome.get("check")) or None)
        else:
            out.add("STC", (outcome["category"], outcome["status_code"]), decided, None, charge, paid, decided)
    else:  # rejected up front (the 277CA's code) or pending
        composite = (outcome["category"], outcome["status_code"], outcome.get("entity") or None)
        out.add("STC", composite, outcome.get("date") or day, None, charge)
    if outcome and outcome.get("payer_claim_control_number"):
        out.add("REF", "1K", _safe(outcome["payer_claim_control_number"]))
    out.add("REF", "EJ", _safe(question.patient_control_number) or "0")
    qualifier, period = question.service_period
    if qualifier in ("D8", "RD8") and period:
        out.add("DTP", "472", qualifier, _safe(period))
    return hl


def _amount(value: str | None) -> str:
    try:
        return money(Decimal(value or "0"))
    except ArithmeticError:
        return "0"


# --- shared --------------------------------------------------------------------------------------


def _name(out: SegmentList, party: Party, entity: str, default_qualifier: str | None) -> None:
    """An NM1 echoing the inquiry's party: person (NM102 1) or organisation, with its id."""
    person = party.entity_type == "1"
    identifier = _safe(party.id)
    qualifier = (party.id_qualifier or default_qualifier) if identifier else None
    out.add("NM1", entity, "1" if person else "2", text(party.name, _DELIMITERS, 60) or "UNKNOWN",
            (text(party.first_name, _DELIMITERS, 35) or None) if person else None, None, None, None,
            qualifier, identifier or None)


def _key(party: Party | None) -> tuple:
    return (party.entity, party.id_qualifier, party.id, party.name) if party else ()


def _grouped(items: Sequence, key) -> list[list]:
    groups: dict[object, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())
