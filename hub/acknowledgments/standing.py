"""Where a claim stands after its acknowledgments: the deciding answer to its current
submission (``bhhub.acknowledgments.precedence``) moves it, never an answer to an earlier submission.

A claim rejected, fixed and sent again (``bhhub resubmit``: a new batch) starts a new
acknowledgment cycle, so only answers recorded against its current batch count. A TA1 or 999
names its batch by control numbers. A 277CA names it when the sender echoes the 837's BHT03
(``BATCH`` + ST02, ``bhhub.x12.envelope``) in 2200B TRN02; when it does not, and the claim has
been sent more than once, an answer dated before its current batch was made is about an
earlier submission and is kept in the history only.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import date
from typing import Iterable

from sqlalchemy import and_, bindparam, func, or_, select

from bhhub.acknowledgments.precedence import CLEARINGHOUSE, PAYER, STATUS_FOR, Answer, deciding
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.one_of import one_of
from bhhub.acknowledgments.codes import NOT_FOUND, OUTCOMES, RECEIVED, REJECTED

# Statuses an acknowledgment may move a claim out of; an 835's outcome (paid, denied, ...) is
# final for acknowledgments, and a claim not sent has nothing to acknowledge.
ACKNOWLEDGEABLE = frozenset({ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value,
                             ClaimStatus.ACCEPTED.value, ClaimStatus.REJECTED.value})
IN_FLIGHT = frozenset({ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value})
FILE_LEVEL = ("TA1", "999")  # verdicts on a whole interchange or transaction set


def answer_of(row: schema.Acknowledgment) -> Answer | None:
    """What a stored acknowledgment says about the claim; None when it decides nothing."""
    outcome = row.outcome
    if outcome is None:  # stored before outcomes were kept: by its code and verdict
        outcome = OUTCOMES.get(row.code or "") if row.kind == "277CA" else (RECEIVED if row.accepted else REJECTED)
    if outcome is None:
        return None
    effective = row.effective_on or (row.at.date() if row.at else date.min)
    return Answer(outcome=outcome, source=row.source if row.source in (CLEARINGHOUSE, PAYER) else CLEARINGHOUSE,
                  effective_on=effective, kind=row.kind, code=row.code or "", detail=row.detail or "",
                  about_this_claim=row.claim_id is not None)


def answers(session, claim: schema.Claim) -> list[Answer]:
    """Every answer to the claim's current submission: its own, and its file's TA1/999 verdicts."""
    if claim.batch_id is None:
        return []
    session.flush()
    ack = schema.Acknowledgment
    rows = session.scalars(select(ack).where(
        ack.batch_id == claim.batch_id,
        or_(ack.claim_id == claim.id, and_(ack.claim_id.is_(None), ack.kind.in_(FILE_LEVEL)))))
    return [a for a in map(answer_of, rows) if a is not None]


def standing(session, claim: schema.Claim) -> Answer | None:
    """The answer that decides the claim's current submission, if any has come."""
    return deciding(answers(session, claim))


def acknowledgment_json(session, claim: schema.Claim) -> dict | None:
    """The deciding answer to the claim's current submission, for listings."""
    return _answer_json(standing(session, claim))


def acknowledgments_json(session, claims) -> dict[int, dict | None]:
    """claim id -> ``acknowledgment_json`` for many claims in two queries (a listing's page).

    ``claims`` need only ``id`` and ``batch_id`` (rows of a Core select will do)."""
    sent = [c for c in claims if c.batch_id is not None]
    found: dict[int, dict | None] = {c.id: None for c in claims}
    if not sent:
        return found
    conn = session.connection()
    ids = [c.id for c in sent]
    # two queries, not one with OR: each then takes its index (claim_id; batch_id), where the OR
    # made SQLite read every answer to the batches the page's claims were in. Consecutive ids
    # (an unfiltered page) are asked for as their range: no list of hundreds of ids to bind.
    own = (conn.execute(_OWN_ANSWERS_BETWEEN, {"low": ids[0], "high": ids[-1]})
           if ids == sorted(ids) and ids[-1] - ids[0] < 2 * len(ids) else conn.execute(_OWN_ANSWERS, {"ids": ids}))
    files = conn.execute(_FILE_ANSWERS, {"batches": sorted({c.batch_id for c in sent})})
    # named tuples: ``answer_of`` reads nine fields of each, by name, which SQLAlchemy's Row is slow at
    rows = sorted(map(_AnswerRow._make, [*own.all(), *files.all()]), key=lambda row: row.id)
    # the same rule as ``answers``: its own answers to its current batch, and that file's
    # verdicts; each answer ranked once (a file's verdict is every one of its claims')
    by_claim: dict[tuple[int, int | None], list[tuple[tuple, Answer]]] = {}
    for row in rows:
        answer = answer_of(row)
        if answer is not None:
            by_claim.setdefault((row.batch_id, row.claim_id), []).append((answer.rank(), answer))
    no_answers: list = []
    for claim in sent:
        mine = by_claim.get((claim.batch_id, claim.id), no_answers) + by_claim.get((claim.batch_id, None), no_answers)
        # ``deciding``: the first of the highest rank
        found[claim.id] = _answer_json(max(mine, key=_rank)[1]) if mine else None
    return found


def _rank(ranked: tuple[tuple, Answer]) -> tuple:
    return ranked[0]


_ack = schema.Acknowledgment
_ANSWERS = select(  # what ``answer_of`` reads, no ORM objects
    _ack.id, _ack.batch_id, _ack.claim_id, _ack.kind, _ack.accepted, _ack.code, _ack.detail, _ack.at, _ack.outcome,
    _ack.source, _ack.effective_on)
_AnswerRow = namedtuple("_AnswerRow", [column.key for column in _ANSWERS.selected_columns])
_OWN_ANSWERS = _ANSWERS.where(one_of(_ack.claim_id, "ids"))
_OWN_ANSWERS_BETWEEN = _ANSWERS.where(_ack.claim_id.between(bindparam("low"), bindparam("high")))
_FILE_ANSWERS = _ANSWERS.where(one_of(_ack.batch_id, "batches"), _ack.claim_id.is_(None),
                               _ack.kind.in_(FILE_LEVEL))


def _answer_json(answer: Answer | None) -> dict | None:
    if answer is None:
        return None
    return {"outcome": answer.outcome, "source": answer.source, "kind": answer.kind, "code": answer.code,
            "effective_on": answer.effective_on.isoformat(), "detail": answer.detail}


def not_found(session, claim: schema.Claim) -> bool:
    """In flight, and the deciding answer to its submission is "not found" (277CA A4)."""
    answer = standing(session, claim) if claim.status in IN_FLIGHT else None
    return answer is not None and answer.outcome == NOT_FOUND


def settle(session, claim: schema.Claim, reason: str | None = None,
           applied: Iterable[schema.Acknowledgment] = ()) -> str | None:
    """Move the claim where its deciding answer puts it; the new status, or None if it stays.

    ``reason`` is the history's reason when the deciding answer is one of ``applied`` (the
    rows just stored); otherwise the deciding answer describes itself.
    """
    from bhhub.claims.build import set_status

    if claim.batch_id is None or claim.status not in ACKNOWLEDGEABLE:
        return None
    answer = standing(session, claim)
    target = STATUS_FOR.get(answer.outcome) if answer else None
    if target is None or claim.status == target.value:
        return None
    if target is ClaimStatus.SUBMITTED and claim.status in IN_FLIGHT:
        return None  # not found keeps an in-flight claim where it is
    just_now = {answer_of(row) for row in applied}
    text = reason if reason and answer in just_now else answer.describe()
    if answer.outcome == NOT_FOUND:
        text = f"not found by {answer.source}: investigate; {text}"
    set_status(session, claim, target, text)
    return target.value


def claim_answered(session, patient_control_number: str, batch_reference: str,
                   effective_on: date) -> tuple[schema.Claim | None, int | None]:
    """(claim, batch) a 277CA's claim loop answers: the batch is the submission it is about,
    None for an earlier submission that cannot be told apart."""
    claims = session.scalars(select(schema.Claim).where(
        schema.Claim.patient_control_number == patient_control_number, schema.Claim.batch_id.is_not(None))
        .order_by(schema.Claim.id.desc())).all()
    if not claims:
        return None, None
    echoed = _batch_by_reference(session, batch_reference)
    if echoed is not None:
        for claim in claims:  # any revision: a replaced claim's answers stay with it
            if claim.batch_id == echoed.id:
                return claim, echoed.id
    latest = claims[0]
    if echoed is not None and echoed.id < latest.batch_id:
        return latest, echoed.id  # the batch it was in before it was sent again
    current = session.get(schema.Batch, latest.batch_id)
    if _times_batched(session, latest) > 1 and current.created_at and effective_on < current.created_at.date():
        return latest, None
    return latest, latest.batch_id


def _batch_by_reference(session, reference: str) -> schema.Batch | None:
    """The 837P batch whose BHT03 ("BATCH" + ST02) a 277CA echoes; None if not one of ours."""
    number = reference[len("BATCH"):] if reference.upper().startswith("BATCH") else ""
    if not number.isdigit():
        return None
    found = session.scalars(select(schema.Batch).where(
        schema.Batch.kind == "837P",
        func.ltrim(schema.Batch.transaction_control_number, "0") == (number.lstrip("0") or "0"))).all()
    return found[0] if len(found) == 1 else None


def _times_batched(session, claim: schema.Claim) -> int:
    event = schema.ClaimStatusEvent
    return session.scalar(select(func.count()).select_from(event).where(
        event.claim_id == claim.id, event.status == ClaimStatus.BATCHED.value)) or 0

