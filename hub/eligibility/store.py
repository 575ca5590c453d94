"""Eligibility checks in the store: each question to a payer and its answer, kept as history.

    ask(session, ...) -> EligibilityCheck              a question, state requested, a fresh trace number
    answer(session, row, response, inbox_item_id)      the payer's answer to that question
    fail(session, row, reason)                         no answer (a portal timed out, the payer refused)
    record_271(session, response, inbox_item_id, n)    a 271's answer: to its question (by TRN), or kept
                                                       as an answer no one here asked for (source x12)
    latest(session, payer_id, member_id)               the newest answered check, and ``previous`` the one before
    history(session, patient_id=None)                  every check, newest first

Rows are never overwritten by a later answer: a second, different answer to a question
already answered is a row of its own, so the history shows both. The same answer again
(the same 271 content in another envelope) changes nothing.

An answer whose request the payer refused outright (AAA above the benefit loops: member not
found, payer unable to respond) with no coverage stated is ``failed`` with the AAA reasons and
the response kept: it says nothing about coverage, but its reasons may be about what every
claim carries too (the member id, name, date of birth), so the scrubber and the change
detection read such refusals (``refusal``) beside the answered checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bhhub.runtime.clock import today
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import SELF
from bhhub.store import schema
from bhhub.store.repo import next_counter
from bhhub.store.schema import utcnow

REQUESTED, ANSWERED, FAILED = "requested", "answered", "failed"
SOURCE_X12 = "x12"
TRACE_COUNTER = "eligibility_trace"
TRACE_PREFIX = "BHE"  # BHE000000042: the hub's own trace numbers (270 TRN02, portal calls)


def new_trace_number(session: Session) -> str:
    """A trace number never handed out before (a counter, so concurrent writers never share one)."""
    return f"{TRACE_PREFIX}{next_counter(session, TRACE_COUNTER):09d}"


def ask(session: Session, *, patient_id: int | None, payer_id: str, member_id: str, service_date: date,
        service_types: tuple[str, ...], source: str, reason: str, trace_number: str | None = None,
        requested_at: datetime | None = None) -> schema.EligibilityCheck:
    """Record a question (state requested); the caller commits it."""
    row = schema.EligibilityCheck(
        trace_number=trace_number or new_trace_number(session), patient_id=patient_id, payer_id=payer_id,
        member_id=member_id, service_date=service_date, service_types=list(service_types), source=source,
        reason=reason, state=REQUESTED, requested_at=requested_at or utcnow())
    session.add(row)
    session.flush()
    return row


def answer(session: Session, row: schema.EligibilityCheck, response: EligibilityResponse,
           inbox_item_id: int | None = None) -> schema.EligibilityCheck:
    """Record the payer's answer on ``row`` (answered, or failed when the payer refused the request)."""
    row.response = response.to_json()
    row.active = response.active
    row.inbox_item_id = inbox_item_id
    row.answered_at = utcnow()
    if refused(response):
        row.state, row.error = FAILED, "; ".join(r.describe() for r in response.rejections)[:2000]
    else:
        row.state = ANSWERED
        row.error = "; ".join(r.describe() for r in response.rejections)[:2000] or None
    session.flush()
    return row


def fail(session: Session, row: schema.EligibilityCheck, reason: str) -> schema.EligibilityCheck:
    row.state, row.error, row.answered_at = FAILED, reason[:2000], utcnow()
    session.flush()
    return row


def refusal(row) -> bool:
    """A failed check that holds the payer's refusal (its AAA reasons), not a portal's failure."""
    return row.state == FAILED and bool((row.response or {}).get("rejections"))


def refused(response: EligibilityResponse) -> bool:
    """The payer could not answer the request at all (an AAA above the benefit loops) and
    stated no coverage: the answer says nothing about the member's coverage."""
    return response.rejected and response.active is None


@dataclass(frozen=True)
class Recorded:
    """What recording one 271 response did."""

    row: schema.EligibilityCheck | None  # None: a repeat, or nothing to keep it under
    matched: bool  # it answered a question the hub asked (by trace number)
    repeat: bool = False


def record_271(session: Session, response: EligibilityResponse, inbox_item_id: int, index: int) -> Recorded:
    """A 271's answer about one patient, matched to the question by the trace number echoed
    (2000C/D TRN02). Unmatched answers, and second answers to a question already answered,
    are kept as checks of their own (source ``x12``)."""
    asked = _asked(session, response)
    if asked is None and not response.member_id:
        return Recorded(None, matched=False)  # no question of ours, no member to keep it under
    if asked is not None and asked.state == REQUESTED:
        return Recorded(answer(session, asked, response, inbox_item_id), matched=True)
    json = response.to_json()
    if asked is not None and asked.response == json:
        return Recorded(None, matched=True, repeat=True)
    if asked is None and _same_answer_on_file(session, response, json):
        return Recorded(None, matched=False, repeat=True)
    patient_id = asked.patient_id if asked is not None else _patient_of(session, response)
    row = schema.EligibilityCheck(
        # Not the payer's trace: it may repeat, and the hub's own numbers must stay unique.
        trace_number=f"271:{inbox_item_id}:{index}", patient_id=patient_id, payer_id=response.payer_id,
        member_id=response.member_id, service_date=_service_date(response, asked),
        service_types=list(response.benefits), source=SOURCE_X12,
        reason=asked.reason if asked is not None else "unsolicited", state=REQUESTED,
        requested_at=asked.requested_at if asked is not None else utcnow())
    session.add(row)
    session.flush()
    return Recorded(answer(session, row, response, inbox_item_id), matched=asked is not None)


def _asked(session: Session, response: EligibilityResponse) -> schema.EligibilityCheck | None:
    numbers = [t.number for t in response.traces if t.number]
    if not numbers:
        return None
    check = schema.EligibilityCheck
    return session.scalar(select(check).where(check.trace_number.in_(numbers)).order_by(check.id).limit(1))


def _same_answer_on_file(session: Session, response: EligibilityResponse, json: dict) -> bool:
    """An unsolicited answer identical to one kept already (the same 271 in another envelope)."""
    check = schema.EligibilityCheck
    rows = session.scalars(select(check.response).where(
        check.payer_id == response.payer_id, check.member_id == response.member_id,
        check.source == SOURCE_X12, check.state != REQUESTED))
    return any(r == json for r in rows)


def _patient_of(session: Session, response: EligibilityResponse) -> int | None:
    """The one patient this answer describes among those whose coverage has this payer and member
    id; None when none or several remain.

    Dependents without an id of their own share the subscriber's (005010X279A1 puts such a
    dependent in 2000D): a 2000C answer is about the subscriber (relationship 18), a 2000D one
    about a dependent, told apart by the family name and birth date the 271 gives (2100D NM1,
    DMG), which are compared here and kept nowhere."""
    if not response.member_id:
        return None
    cov, payer, patient = schema.Coverage, schema.Payer, schema.Patient
    rows = session.execute(
        select(cov.patient_id, cov.relationship_code, patient.family_name, patient.birth_date)
        .join(payer, payer.id == cov.payer_id).join(patient, patient.id == cov.patient_id)
        .where(payer.payer_id == response.payer_id, cov.member_id == response.member_id)).all()
    candidates = {r.patient_id: r for r in rows}
    who = response.identity
    # A dependent with an id of their own may be answered in 2000C: an agreeing birth date says
    # who it is whatever the loop; otherwise the loop does (2000C the subscriber, 2000D a dependent).
    born = {k: r for k, r in candidates.items()
            if who is not None and who.birth_date is not None and r.birth_date == who.birth_date}
    if born:
        candidates = born
    elif response.patient is not None:
        subscriber = response.patient == "subscriber"
        candidates = {k: r for k, r in candidates.items() if (r.relationship_code == SELF) == subscriber}
    if len(candidates) > 1 and who is not None and who.family_name:
        candidates = {k: r for k, r in candidates.items()
                      if (r.family_name or "").strip().upper() == who.family_name.strip().upper()}
    return next(iter(candidates)) if len(candidates) == 1 else None


def _service_date(response: EligibilityResponse, asked: schema.EligibilityCheck | None) -> date:
    if asked is not None:
        return asked.service_date
    dates = response.coverage_dates
    for qualifier in ("291", "307", "472"):  # plan, eligibility, service: the day the answer is about
        if qualifier in dates and dates[qualifier].end is None:
            return dates[qualifier].start
    return today()


# --- reading ----------------------------------------------------------------------------------------


def latest(session: Session, payer_id: str, member_id: str, *, patient_id: int | None = None,
           before: schema.EligibilityCheck | None = None,
           refusals: bool = False) -> schema.EligibilityCheck | None:
    """The newest answered check for this payer and member (older than ``before`` when given);
    with ``refusals``, the payer's refusals count too (``refusal``).

    With ``patient_id``, checks about another patient are left out: dependents without an id
    of their own share the subscriber's member id, and one may be covered while another is not.
    """
    check = schema.EligibilityCheck
    states = (ANSWERED, FAILED) if refusals else (ANSWERED,)
    query = select(check).where(check.payer_id == payer_id, check.member_id == member_id, check.state.in_(states))
    if patient_id is not None:
        query = query.where((check.patient_id == patient_id) | check.patient_id.is_(None))
    if before is not None:
        query = query.where(check.id != before.id, check.answered_at <= before.answered_at)
    query = query.order_by(check.answered_at.desc(), check.id.desc())
    if not refusals:
        return session.scalar(query.limit(1))
    return next((row for row in session.scalars(query) if row.state == ANSWERED or refusal(row)), None)


def previous(session: Session, row: schema.EligibilityCheck, *,
             refusals: bool = False) -> schema.EligibilityCheck | None:
    """The answered check for the same payer, member (and patient) before ``row``; with
    ``refusals``, the payer's last word before it, an answer or a refusal."""
    return latest(session, row.payer_id, row.member_id, patient_id=row.patient_id, before=row, refusals=refusals)


def history(session: Session, patient_id: int | None = None, limit: int | None = None) -> list[schema.EligibilityCheck]:
    check = schema.EligibilityCheck
    query = select(check)
    if patient_id is not None:
        query = query.where(check.patient_id == patient_id)
    query = query.order_by(func.coalesce(check.answered_at, check.requested_at).desc(), check.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def asked_since(session: Session, since: datetime) -> set[tuple[str, str, int | None]]:
    """(payer id, member id, patient id) asked about since ``since`` and not failed: a question
    waiting for its 271 counts, so a sweep does not ask twice."""
    check = schema.EligibilityCheck
    rows = session.execute(select(check.payer_id, check.member_id, check.patient_id).where(
        check.requested_at >= since, check.state != FAILED)).all()
    return {(r.payer_id, r.member_id, r.patient_id) for r in rows}


_CHECKS, _PATIENTS = schema.EligibilityCheck.__table__, schema.Patient.__table__
# The payer's word on a member: answered checks, and failed ones that kept the payer's response
# (its refusal, with the AAA reasons); a portal's timeout keeps none.
_ANSWERS = (
    select(_CHECKS.c.payer_id, _CHECKS.c.member_id, _CHECKS.c.id, _CHECKS.c.state, _CHECKS.c.service_date,
           _CHECKS.c.answered_at, _CHECKS.c.active, _CHECKS.c.response, _PATIENTS.c.key.label("patient_key"))
    .select_from(_CHECKS.outerjoin(_PATIENTS, _PATIENTS.c.id == _CHECKS.c.patient_id))
    .where(_CHECKS.c.state.in_((ANSWERED, FAILED)))
)
_NEWEST_FIRST = (_CHECKS.c.answered_at.desc(), _CHECKS.c.id.desc())


# Built once: intake runs it for every claim (a statement built per call costs more than the query).
_ANSWERS_FOR = (_ANSWERS.where(_CHECKS.c.payer_id == bindparam("payer_id"), _CHECKS.c.member_id == bindparam("member_id"))
                .order_by(*_NEWEST_FIRST))


def said_on(row) -> date:
    """The day the payer made an answer: its 271's BHT04; else the day it came (a portal's)."""
    created = (row.response or {}).get("created")
    if created:
        try:
            return date.fromisoformat(created)
        except ValueError:
            pass
    return row.answered_at.date() if row.answered_at else row.service_date


def _payers_order(rows) -> list:
    """Newest first by the payer's own date (an older 271 that arrives late does not replace a
    newer one), then by arrival."""
    return sorted(rows, key=lambda r: (said_on(r), r.answered_at.timestamp() if r.answered_at else 0.0, r.id), reverse=True)


def answers_for(connection, payer_id: str, member_id: str) -> list:
    """The answered checks and the payer's refusals of one payer and member, newest first (by
    ``said_on``), with the patient's key (``state`` tells them apart)."""
    return _payers_order(r for r in connection.execute(_ANSWERS_FOR, {"payer_id": payer_id, "member_id": member_id})
                         if r.state == ANSWERED or refusal(r))


def all_answers(connection) -> dict[tuple[str, str], list]:
    """Every answered check and refusal, by payer and member, newest first: what a bulk scrub reads once."""
    found: dict[tuple[str, str], list] = {}
    for r in connection.execute(_ANSWERS.order_by(*_NEWEST_FIRST)):
        if r.state == ANSWERED or refusal(r):
            found.setdefault((r.payer_id, r.member_id), []).append(r)
    return {key: _payers_order(rows) for key, rows in found.items()}
