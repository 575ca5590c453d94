"""What every upload's interchange gets, whatever it carries (837P, 270 or 276): the envelope
checks, the TA1 R that rejects it, and the ``Answer`` record the server acts on.

Shared by ``clearinghouse`` (837Ps, and the door for every upload) and ``inquiries`` (270s and
276s), which both answer through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from bhhub.plugins.clearinghouse.sandbox.reader import Interchange
from bhhub.plugins.clearinghouse.sandbox.rules import Rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState
from bhhub.plugins.clearinghouse.sandbox.writers import ReplyEnvelope, write_ta1

log = logging.getLogger(__name__)

NO_ERROR, DUPLICATE, BAD_CONTENT = "000", "025", "024"  # TA105 note codes


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


def envelope_fault(envelope: Interchange, groups, ends_with_iea: bool, rules: Rules,
                   guides: dict[str, str]) -> str | None:
    """The TA105 note code of what is wrong with the envelope, or None. ``guides``: the GS01 the
    file may carry and the GS08 each must name (every group of one kind: 837P, 270 or 276)."""
    if envelope.version != "00501":
        return "017"  # invalid interchange version
    if not rules.accepts_receiver(envelope.receiver_id):
        return "009"  # unknown interchange receiver id
    if not ends_with_iea:
        return "023"  # improper (premature) end of file
    if envelope.trailer_control_number != envelope.control_number:
        return "001"  # ISA13 and IEA02 differ
    if envelope.trailer_group_count != str(len(groups)):
        return "021"  # invalid number of included groups
    if not groups or any(guides.get(g.functional_id) != g.version for g in groups):
        return BAD_CONTENT  # 837P claims, 270 or 276 inquiries, one kind per file
    return None


def reject_interchange(envelope: Interchange, rules: Rules, state: SandboxState, now: datetime, note: str,
                       outcome: str) -> Answer:
    reply = ReplyEnvelope.answering(envelope, rules, now, state.next_control_number())
    log.info("sandbox: interchange %s from %s rejected, TA1 note %s", envelope.control_number, envelope.sender_id, note)
    return Answer(outcome, envelope.control_number, envelope.sender_id,
                  (("ta1", write_ta1(envelope, reply, accepted=False, note_code=note)),), note=note)
