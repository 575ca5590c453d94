"""What the sandbox does with one uploaded file, as a real clearinghouse would (domain ref. 7).

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
from dataclasses import dataclass, field
from datetime import datetime

from hub.errors import InputError

from plugins.clearinghouse.sandbox.reader import Interchange, Upload, read_837p, read_interchange_header
from plugins.clearinghouse.sandbox.rules import Rules, adjudicate, front_end_edits
from plugins.clearinghouse.sandbox.state import SandboxState
from plugins.clearinghouse.sandbox.syntax import Findings, syntax_findings, transaction_findings
from plugins.clearinghouse.sandbox.writers import (
    ClaimVerdict, Remittance, ReplyEnvelope, write_277ca, write_835, write_999, write_ta1,
)

log = logging.getLogger(__name__)

CLAIM_GUIDE = "005010X222A1"
NO_ERROR, DUPLICATE, BAD_CONTENT = "000", "025", "024"
VOID = "8"  # CLM05-3: a void is acknowledged, but the sandbox keeps no payments to reverse


@dataclass(frozen=True)
class Answer:
    outcome: str  # answered | duplicate | interchange_rejected | unreadable
    interchange_control_number: str | None  # the upload's ISA13
    sender_id: str | None  # the upload's ISA06
    replies: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)  # (ta1 | 999 | 277 | 835, content)
    accepted_claims: tuple[str, ...] = ()  # CLM01s the 277CA accepted
    rejected_claims: tuple[str, ...] = ()  # CLM01s the 277CA rejected
    remitted_claims: tuple[str, ...] = ()  # CLP01s in the 835
    note: str = ""


def answer_upload(content: bytes, rules: Rules, state: SandboxState, now: datetime) -> Answer:
    """The replies to one upload; the state records the interchange and the control numbers used."""
    try:
        header = read_interchange_header(content)
    except InputError as exc:
        return Answer("unreadable", None, None, note=str(exc))
    if len(header.control_number) != 9 or not header.control_number.isdigit():
        return Answer("unreadable", None, header.sender_id, note="ISA13 is not nine digits; no TA1 can name it")
    upload = read_837p(content)
    envelope = upload.envelope
    fault = _envelope_fault(upload, rules)
    if fault is not None:
        return _rejected(envelope, rules, state, now, fault, "interchange_rejected")
    if state.seen(envelope.sender_id, envelope.control_number):
        return _rejected(envelope, rules, state, now, DUPLICATE, "duplicate")
    findings = syntax_findings(content)
    if findings is not None and (findings.interchange_codes or findings.unexplained):
        note = findings.interchange_codes[0] if findings.interchange_codes else BAD_CONTENT
        return _rejected(envelope, rules, state, now, note, "interchange_rejected")
    state.remember(envelope.sender_id, envelope.control_number)
    return _answered(upload, findings, rules, state, now)


def _envelope_fault(upload: Upload, rules: Rules) -> str | None:
    """The TA105 note code of what is wrong with the envelope, or None."""
    envelope = upload.envelope
    if envelope.version != "00501":
        return "017"  # invalid interchange version
    if not rules.accepts_receiver(envelope.receiver_id):
        return "009"  # unknown interchange receiver id
    if not upload.ends_with_iea:
        return "023"  # improper (premature) end of file
    if envelope.trailer_control_number != envelope.control_number:
        return "001"  # ISA13 and IEA02 differ
    if envelope.trailer_group_count != str(len(upload.groups)):
        return "021"  # invalid number of included groups
    if not upload.groups or any(g.functional_id != "HC" or g.version != CLAIM_GUIDE for g in upload.groups):
        return BAD_CONTENT  # this clearinghouse takes 837P claims only
    return None


def _rejected(envelope: Interchange, rules: Rules, state: SandboxState, now: datetime, note: str,
              outcome: str) -> Answer:
    reply = ReplyEnvelope.answering(envelope, rules, now, state.next_control_number())
    log.info("sandbox: interchange %s from %s rejected, TA1 note %s", envelope.control_number, envelope.sender_id, note)
    return Answer(outcome, envelope.control_number, envelope.sender_id,
                  (("ta1", write_ta1(envelope, reply, accepted=False, note_code=note)),), note=note)


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
        if claim.frequency_code == VOID:
            continue
        payer = rules.payer(claim.payer_id)
        payment = adjudicate(claim, payer, rules, verdict.payer_claim_control_number)
        grouped.setdefault((claim.payer_id, claim.billing_provider.npi), []).append(payment)
    return [Remittance(rules.payer(payer_id), f"{rules.claim_number_prefix}{interchange}{n:03d}", tuple(payments))
            for n, ((payer_id, _), payments) in enumerate(grouped.items(), start=1)]
