"""What the sandbox does with one uploaded file, as a real clearinghouse would (domain ref. 7).

An 837P is answered here; a 270 or 276 by ``inquiries`` (the same envelope checks, then a 999
and a 271 or 277).

    answer = answer_upload(content, rules, state, now)
    answer.outcome        # answered, duplicate, interchange_rejected or unreadable
    answer.replies        # (kind, bytes) pairs: ta1, 999, 277, 835, in the order they are sent

1. Content without a readable ISA (or whose ISA13 is not nine digits) cannot be answered: no TA1
   can name it. It is set aside and logged.
2. The envelope is checked (version, receiver, IEA, groups) and the interchange is rejected with
   a TA1 R naming the fault; a second copy of an interchange already answered (same sender and
   ISA13) gets a TA1 R 025 and nothing else.
3. Otherwise pyx12 checks the file against the 837P guide. The answer is a TA1 A when ISA14
   asked for one, a 999 (a set it rejects is not read further), a 277CA for each set the 999
   accepts (front-end edits claim by claim) and an 835 for the claims the 277CA accepted.

Nothing here touches files or the network: the server does that. Logs carry ids and counts only.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bhhub.errors import InputError
from bhhub.x12.segments import date8
from bhhub.x12.tokens import segments

from bhhub.plugins.clearinghouse.sandbox.inquiries import answer_inquiries
from bhhub.plugins.clearinghouse.sandbox.interchange import (
    BAD_CONTENT, DUPLICATE, NO_ERROR, Answer, envelope_fault, reject_interchange,
)
from bhhub.plugins.clearinghouse.sandbox.reader import Upload, read_837p, read_interchange_header
from bhhub.plugins.clearinghouse.sandbox.rules import DENIED, Rules, adjudicate, front_end_edits
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState
from bhhub.plugins.clearinghouse.sandbox.syntax import Findings, syntax_findings, transaction_findings
from bhhub.plugins.clearinghouse.sandbox.writers import (
    ClaimVerdict, Remittance, ReplyEnvelope, write_277ca, write_835, write_999, write_ta1,
)

log = logging.getLogger(__name__)

CLAIM_GUIDE = "005010X222A1"
VOID = "8"  # CLM05-3: a void is acknowledged, but the sandbox keeps no payments to reverse


def answer_upload(content: bytes, rules: Rules, state: SandboxState, now: datetime) -> Answer:
    """The replies to one upload; the state records the interchange and the control numbers used."""
    try:
        header = read_interchange_header(content)
    except InputError as exc:
        return Answer("unreadable", None, None, note=str(exc))
    if len(header.control_number) != 9 or not header.control_number.isdigit():
        return Answer("unreadable", None, header.sender_id, note="ISA13 is not nine digits; no TA1 can name it")
    if _functional_id(content) in ("HS", "HR"):
        return answer_inquiries(content, rules, state, now)
    upload = read_837p(content)
    envelope = upload.envelope
    fault = envelope_fault(envelope, upload.groups, upload.ends_with_iea, rules, {"HC": CLAIM_GUIDE})
    if fault is not None:
        return reject_interchange(envelope, rules, state, now, fault, "interchange_rejected")
    if state.seen(envelope.sender_id, envelope.control_number):
        return reject_interchange(envelope, rules, state, now, DUPLICATE, "duplicate")
    findings = syntax_findings(content)
    if findings is not None and (findings.interchange_codes or findings.unexplained):
        note = findings.interchange_codes[0] if findings.interchange_codes else BAD_CONTENT
        return reject_interchange(envelope, rules, state, now, note, "interchange_rejected")
    state.remember(envelope.sender_id, envelope.control_number)
    return _answered(upload, findings, rules, state, now)


def _functional_id(content: bytes) -> str:
    """GS01 of the first group ("" when there is none to read)."""
    try:
        for segment in segments(content):
            if segment.id == "GS":
                return segment[1]
            if segment.id in ("ST", "IEA"):
                break
    except InputError:
        pass
    return ""


def _answered(upload: Upload, findings: Findings | None, rules: Rules, state: SandboxState, now: datetime) -> Answer:
    envelope = upload.envelope
    application_receiver = upload.groups[0].application_sender

    def reply_envelope() -> ReplyEnvelope:
        return ReplyEnvelope.answering(envelope, rules, now, state.next_control_number(), application_receiver)

    replies: list[tuple[str, bytes]] = []
    if envelope.acknowledgment_requested:
        replies.append(("ta1", write_ta1(envelope, reply_envelope(), accepted=True, note_code=NO_ERROR)))
    replies.append(("999", write_999(upload.groups, findings, reply_envelope())))

    answered = []  # (transaction, verdicts) for each set the 999 accepted
    ordinal = 0
    for group_index, group in enumerate(upload.groups):
        group_findings = findings.group(group_index, group.control_number) if findings else None
        for index, transaction in enumerate(group.transactions):
            found = transaction_findings(group_findings, index, transaction.control_number)
            if found is not None and not found.accepted:
                ordinal += len(transaction.claims)
                continue
            verdicts = []
            for claim in transaction.claims:
                ordinal += 1
                problems = tuple(front_end_edits(claim, rules))
                number = None if problems else f"{rules.claim_number_prefix}{envelope.control_number}{ordinal:04d}"
                verdicts.append(ClaimVerdict(claim, problems, number))
            answered.append((transaction, verdicts))
    accepted = [v for _, verdicts in answered for v in verdicts if not v.problems]
    rejected = [v for _, verdicts in answered for v in verdicts if v.problems]
    if answered:
        replies.append(("277", write_277ca(answered, rules, reply_envelope())))

    remittances = _remittances(accepted, rules, envelope.control_number)
    if remittances:
        replies.append(("835", write_835(remittances, reply_envelope())))
    remitted = tuple(p.claim.patient_control_number for r in remittances for p in r.claims)
    state.record_claims(envelope.sender_id, claim_outcomes(accepted + rejected, remittances, rules, date8(now)))
    log.info("sandbox: interchange %s from %s answered: %d claims accepted, %d rejected, %d remitted",
             envelope.control_number, envelope.sender_id, len(accepted), len(rejected), len(remitted))
    return Answer("answered", envelope.control_number, envelope.sender_id, tuple(replies),
                  tuple(v.claim.patient_control_number for v in accepted),
                  tuple(v.claim.patient_control_number for v in rejected), remitted)


def _remittances(accepted: list[ClaimVerdict], rules: Rules, interchange: str) -> list[Remittance]:
    """One remittance per payer and payee (billing NPI), claims in the order they were sent."""
    grouped: dict[tuple[str, str], list] = {}
    for verdict in accepted:
        claim = verdict.claim
        payer = rules.payer(claim.payer_id)
        if claim.frequency_code == VOID or payer.pend:
            continue
        payment = adjudicate(claim, payer, rules, verdict.payer_claim_control_number)
        grouped.setdefault((claim.payer_id, claim.billing_provider.npi), []).append(payment)
    return [Remittance(rules.payer(payer_id), f"{rules.claim_number_prefix}{interchange}{n:03d}", tuple(payments))
            for n, ((payer_id, _), payments) in enumerate(grouped.items(), start=1)]


def claim_outcomes(verdicts: list[ClaimVerdict], remittances: list[Remittance], rules: Rules,
                   day: str) -> dict[str, dict]:
    """What became of each claim (CLM01 -> outcome), for the 277s answering status inquiries:
    the 277CA's rejection, the 835's payment or denial, or pending (accepted, not remitted)."""
    outcomes: dict[str, dict] = {}
    for verdict in verdicts:
        claim = verdict.claim
        charge = str(claim.total_charge or 0)
        if verdict.problems:
            first = verdict.problems[0]
            outcomes[claim.patient_control_number] = {
                "outcome": "rejected", "category": first.category, "status_code": first.code,
                "entity": first.entity, "charge": charge, "date": day}
        else:
            outcomes[claim.patient_control_number] = {
                "outcome": "pending", "category": "P1", "status_code": "20", "charge": charge, "date": day,
                "payer_claim_control_number": verdict.payer_claim_control_number}
    for remittance in remittances:
        for payment in remittance.claims:
            if payment.status == DENIED:
                outcome, category, code = "denied", "F2", _denial_status(payment, rules)
            elif payment.paid > 0:
                outcome, category, code = "paid", "F1", "65"  # 65: claim/line has been paid
            else:
                outcome, category, code = "finalized", "F4", "1"  # no payment; see the remittance advice
            outcomes[payment.claim.patient_control_number] = {
                "outcome": outcome, "category": category, "status_code": code, "charge": str(payment.charge),
                "paid": str(payment.paid), "date": day, "payment_method": "CHK", "check": remittance.trace_number,
                "payer_claim_control_number": payment.payer_claim_control_number}
    return outcomes


def _denial_status(payment, rules: Rules) -> str:
    """The 277 status code of the denial rule behind the first denied line (1 when none matches)."""
    for line in payment.lines:
        for adjustment in line.adjustments:
            for denial in rules.denials.values():
                if (denial.group, denial.reason) == (adjustment.group, adjustment.reason):
                    return denial.status_code
    return "1"
