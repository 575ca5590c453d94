"""Claim status checks in the store: each 276 question about a claim and the 277's answer.

    ask(session, claim_id, source, reason) -> ClaimStatusCheck       state requested, a fresh trace number
    record_277(session, result, inbox_item_id, index) -> Recorded     a 277's claim status, to its question
                                                                     (by TRN02 and REF*EJ) or to the sent
                                                                     claim it names (source x12)
    history(session, claim_id=None)                                  every check, newest first

As with eligibility, answers are history: a second, different answer is a row of its own, and
the same answer again changes nothing. Following 005010X212's matching rule
(``bhhub.claimstatus.matching``), an answer that carries the question's trace number but names
another claim (REF*EJ) does not answer that question.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.claimstatus.records import ClaimStatusResult
from bhhub.store import schema
from bhhub.store.repo import next_counter
from bhhub.store.schema import utcnow

REQUESTED, ANSWERED, FAILED = "requested", "answered", "failed"
SOURCE_X12 = "x12"
TRACE_COUNTER = "claim_status_trace"
TRACE_PREFIX = "BHS"
# The 277 says the request itself could not be answered (E family, or an AAA only).
REQUEST_ERRORS = frozenset({"error"})


def new_trace_number(session: Session) -> str:
    return f"{TRACE_PREFIX}{next_counter(session, TRACE_COUNTER):09d}"


def ask(session: Session, claim_id: int, *, source: str, trace_number: str | None = None) -> schema.ClaimStatusCheck:
    row = schema.ClaimStatusCheck(trace_number=trace_number or new_trace_number(session), claim_id=claim_id,
                                  source=source, state=REQUESTED, requested_at=utcnow())
    session.add(row)
    session.flush()
    return row


def result_json(result: ClaimStatusResult) -> dict[str, Any]:
    """The result as plain JSON: codes, amounts (text), dates (ISO); ids only, no names."""
    data = dataclasses.asdict(result)
    data["other_segments"] = len(result.other_segments)  # kept in the inbox item's bytes; may hold PHI
    data["category"] = result.category
    data["description"] = result.describe()
    return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def answer(session: Session, row: schema.ClaimStatusCheck, result: ClaimStatusResult,
           inbox_item_id: int | None = None) -> schema.ClaimStatusCheck:
    row.response = result_json(result)
    row.status = result.status
    row.inbox_item_id = inbox_item_id
    row.answered_at = utcnow()
    if result.status in REQUEST_ERRORS:
        row.state, row.error = FAILED, result.describe()[:2000]
    else:
        row.state, row.error = ANSWERED, None
    session.flush()
    return row


def fail(session: Session, row: schema.ClaimStatusCheck, reason: str) -> schema.ClaimStatusCheck:
    row.state, row.error, row.answered_at = FAILED, reason[:2000], utcnow()
    session.flush()
    return row


@dataclass(frozen=True)
class Recorded:
    row: schema.ClaimStatusCheck | None  # None: nothing to record (a repeat, or no claim found)
    matched: bool  # answered a question the hub asked
    claim: schema.Claim | None = None
    repeat: bool = False


def record_277(session: Session, result: ClaimStatusResult, inbox_item_id: int, index: int) -> Recorded:
    """One claim-level status of a 277 (``result.level == "claim"``)."""
    asked = _asked(session, result)
    claim = session.get(schema.Claim, asked.claim_id) if asked is not None else None
    if asked is not None and result.patient_control_number not in (None, claim.patient_control_number):
        asked, claim = None, None  # the payer found another claim: not the answer to this question
    if claim is None and result.patient_control_number:
        claim = claim_by_pcn(session, result.patient_control_number)
    if claim is None:
        return Recorded(None, matched=False)
    if asked is not None and asked.state == REQUESTED:
        return Recorded(answer(session, asked, result, inbox_item_id), matched=True, claim=claim)
    json = result_json(result)
    if _same_answer_on_file(session, claim.id, json):
        return Recorded(None, matched=asked is not None, claim=claim, repeat=True)
    row = schema.ClaimStatusCheck(trace_number=f"277:{inbox_item_id}:{index}", claim_id=claim.id,
                                  source=SOURCE_X12, state=REQUESTED, requested_at=utcnow())
    session.add(row)
    session.flush()
    return Recorded(answer(session, row, result, inbox_item_id), matched=asked is not None, claim=claim)


def _asked(session: Session, result: ClaimStatusResult) -> schema.ClaimStatusCheck | None:
    if not result.trace_number:
        return None
    check = schema.ClaimStatusCheck
    return session.scalar(select(check).where(check.trace_number == result.trace_number).limit(1))


def _same_answer_on_file(session: Session, claim_id: int, json: dict) -> bool:
    check = schema.ClaimStatusCheck
    rows = session.scalars(select(check.response).where(check.claim_id == claim_id, check.state != REQUESTED))
    return any(r == json for r in rows)


def claim_by_pcn(session: Session, pcn: str) -> schema.Claim | None:
    """The latest revision with this CLM01 that has been sent (a status is about a sent claim)."""
    c = schema.Claim
    return session.scalar(select(c).where(c.patient_control_number == pcn, c.batch_id.is_not(None))
                          .order_by(c.id.desc()).limit(1))


def waiting(session: Session) -> list[schema.ClaimStatusCheck]:
    """Questions still waiting for their 277."""
    check = schema.ClaimStatusCheck
    return list(session.scalars(select(check).where(check.state == REQUESTED).order_by(check.id)))


def history(session: Session, claim_id: int | None = None, limit: int | None = None) -> list[schema.ClaimStatusCheck]:
    check = schema.ClaimStatusCheck
    query = select(check)
    if claim_id is not None:
        query = query.where(check.claim_id == claim_id)
    query = query.order_by(check.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))
