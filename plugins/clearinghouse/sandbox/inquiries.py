"""What the sandbox does with an uploaded 270 or 276: a 999, then a 271 or a 277 (005010X212).

1. The envelope is checked as an 837P's is (version, receiver, IEA, groups: every group HS with
   005010X279A1, or every group HR with 005010X212); a fault, or a second copy of an interchange
   already answered, gets a TA1 R and nothing else.
2. The sets are checked for structure (pyx12 has no usable map for these guides): SE present,
   SE02 = ST02, SE01 the count, each inquiry with its TRN and NM1*IL. The 999 accepts or rejects
   each set; a TA1 A comes first when ISA14 asked for one.
3. A 270's accepted sets are answered with a 271 from ``[eligibility]`` in the rules (the payer
   must be one the sandbox knows); a 276's with a 277 from what the state recorded about each
   claim when its 837P was answered (paid, denied, rejected, pending), or A4 not found.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bhhub.plugins.clearinghouse.sandbox.interchange import DUPLICATE, NO_ERROR, Answer, envelope_fault, \
    reject_interchange
from bhhub.plugins.clearinghouse.sandbox.inquiry_reader import FUNCTIONAL_IDS, read_inquiries
from bhhub.plugins.clearinghouse.sandbox.inquiry_writers import EligibilityAnswer, StatusAnswer, write_271, write_277
from bhhub.plugins.clearinghouse.sandbox.rules import Rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState
from bhhub.plugins.clearinghouse.sandbox.writers import ReplyEnvelope, write_999, write_ta1

log = logging.getLogger(__name__)


def answer_inquiries(content: bytes, rules: Rules, state: SandboxState, now: datetime) -> Answer:
    upload = read_inquiries(content)
    envelope = upload.envelope
    functional_id = upload.groups[0].functional_id if upload.groups else ""
    guides = {functional_id: FUNCTIONAL_IDS[functional_id]} if functional_id in FUNCTIONAL_IDS else {}
    fault = envelope_fault(envelope, upload.groups, upload.ends_with_iea, rules, guides)
    if fault is not None:
        return reject_interchange(envelope, rules, state, now, fault, "interchange_rejected")
    if state.seen(envelope.sender_id, envelope.control_number):
        return reject_interchange(envelope, rules, state, now, DUPLICATE, "duplicate")
    state.remember(envelope.sender_id, envelope.control_number)
    application_receiver = upload.groups[0].application_sender

    def reply_envelope() -> ReplyEnvelope:
        return ReplyEnvelope.answering(envelope, rules, now, state.next_control_number(), application_receiver)

    replies: list[tuple[str, bytes]] = []
    if envelope.acknowledgment_requested:
        replies.append(("ta1", write_ta1(envelope, reply_envelope(), accepted=True, note_code=NO_ERROR)))
    replies.append(("999", write_999(upload.groups, upload.findings(), reply_envelope())))
    accepted = [t for t in upload.transactions if t.accepted and t.questions]
    questions = sum(len(t.questions) for t in accepted)
    if functional_id == "HS":
        answered = [(t, [EligibilityAnswer(q, _coverage(q, rules)) for q in t.questions]) for t in accepted]
        if answered:
            replies.append(("271", write_271(answered, reply_envelope(), rules.eligibility.plan_begin)))
        kinds = [a.coverage.kind if a.coverage else "payer_unknown" for _, answers in answered for a in answers]
    else:
        answered = [(t, [StatusAnswer(q, state.claim(envelope.sender_id, q.patient_control_number))
                         for q in t.questions]) for t in accepted]
        if answered:
            replies.append(("277", write_277(answered, reply_envelope())))
        kinds = [a.outcome["outcome"] if a.outcome else "not_found" for _, answers in answered for a in answers]
    counts = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    log.info("sandbox: interchange %s from %s (%s) answered: %d inquiries %s", envelope.control_number,
             envelope.sender_id, functional_id, questions, counts)
    return Answer("answered", envelope.control_number, envelope.sender_id, tuple(replies),
                  note=", ".join(f"{n} {kind}" for kind, n in counts.items()))


def _coverage(question, rules: Rules):
    """The member's coverage profile; None when the payer is not one the sandbox answers for."""
    if rules.payer(question.payer.id) is None:
        return None
    return rules.eligibility.coverage_for(question.member_id)
