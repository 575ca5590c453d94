"""Applying the acknowledgments of what the hub sent: TA1, 999 and 277CA, registered through
``bhhub_register_x12_transactions`` like any plugin's transaction.

- **TA1** answers an interchange (ISA13). Rejected: the transmission and its claims are rejected
  and may be sent again. Note 025 (duplicate interchange) means the clearinghouse already has
  that ISA13: the resend after a lost connection found the first copy, which stands; harmless.
- **999** answers the 837's functional group (GS06) and transaction (ST02). Accepted (A, E):
  the transmission is acknowledged. Rejected (R, M, W, X): it and its claims are rejected, with
  the 999's error locations kept for the biller (per claim where the 999 names the CLM01).
  A 999's groups about other files (270s, 276s) go to the registration that ``answers`` their
  GS01 (``bhhub.eligibility.transactions``, ``bhhub.claimstatus.transactions``).
- **277CA** answers each claim by its CLM01, with the most decisive of its statuses: A0/A1
  received (the claim stays where it is), A2/A5 accepted, A4 not found (stays in flight; an alert
  says to investigate), A3/A6/A7/A8 rejected with the STC reason.
- Every answer is kept with what it means, who gave it (clearinghouse or payer) and its date, and
  the claim's status is decided by precedence over all answers to its current submission
  (``bhhub.acknowledgments.standing``), so the order files arrive in does not matter and a receipt never
  undoes a rejection. Claims a file rejects or the payer cannot find are one alert per file.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from bhhub import hookimpl
from bhhub.acknowledgments import precedence, standing
from bhhub.errors import InputError
from bhhub.exchange.alerts import claims_refused, clear_alert
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.schema import utcnow
from bhhub.runtime.clock import today
from bhhub.types import Applied, TransactionContext, X12Transaction
from bhhub.acknowledgments.codes import ACCEPTED, NOT_FOUND, RECEIVED, REJECTED
from bhhub.acknowledgments.ta1 import read_ta1
from bhhub.acknowledgments.x277ca import read_277ca
from bhhub.acknowledgments.x999 import read_999
from bhhub.x12.recognize import Recognized

_CLEARINGHOUSE = precedence.CLEARINGHOUSE
# Where a claim stands when a file's word on it holds (for the alerts and the hook).
_STANDS_AS = {RECEIVED: {ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value},
              ACCEPTED: {ClaimStatus.ACCEPTED.value}, NOT_FOUND: {ClaimStatus.SUBMITTED.value, ClaimStatus.BATCHED.value},
              REJECTED: {ClaimStatus.REJECTED.value}}

# Transmission states (bhhub.exchange.outbound keeps the same names).
UPLOADED, ACKNOWLEDGED, TRANSMISSION_REJECTED = "uploaded", "acknowledged", "rejected"


@hookimpl
def bhhub_register_x12_transactions() -> list[X12Transaction]:
    return [
        X12Transaction("TA1", "interchange acknowledgment of an 837", "TA1", read_ta1, apply_ta1),
        X12Transaction("999", "implementation acknowledgment (005010X231A1)", "999", read_999, apply_999,
                       guides=("X231",)),
        X12Transaction("277CA", "claim acknowledgment (005010X214)", "277", read_277ca, apply_277ca,
                       guides=("X214",)),
    ]


# --- TA1 -------------------------------------------------------------------------------------------


def apply_ta1(context: TransactionContext, acks) -> Applied:
    session, item_id = context.session, context.item_id
    applied = Applied("TA1", "")
    notes = []
    on = file_date(context.content)
    for ack in acks:
        batch, transmission = _batch_by_isa13(session, context.recognized, ack.interchange_control_number)
        accepted = ack.accepted or ack.duplicate
        row = schema.Acknowledgment(
            inbox_item_id=item_id, kind="TA1", batch_id=batch.id, accepted=accepted,
            code=f"{ack.result.value}/{ack.note.value}", detail=ack.describe(),
            outcome=RECEIVED if accepted else REJECTED, source=_CLEARINGHOUSE, effective_on=on)
        session.add(row)
        if ack.duplicate:
            notes.append(f"ISA13 {batch.interchange_control_number}: duplicate of an interchange the "
                         f"clearinghouse already has (a resend found the first copy); nothing changes")
        elif not ack.accepted:
            _reject_transmission(session, transmission, batch, f"TA1 rejected the file: {ack.describe()}", applied,
                                 rows=[row], alert=("TA1", item_id))
            notes.append(f"ISA13 {batch.interchange_control_number} rejected: {ack.note.description}")
        else:
            notes.append(f"ISA13 {batch.interchange_control_number} received by the clearinghouse")
        applied.notify.append(("TA1", batch.interchange_control_number, ack.accepted or ack.duplicate,
                               list(applied.claims)))
    applied.summary = "; ".join(notes) or "an empty TA1"
    return applied


# --- 999 -------------------------------------------------------------------------------------------


def apply_999(context: TransactionContext, groups) -> Applied:
    session, item_id, recognized = context.session, context.item_id, context.recognized
    applied = Applied("999", "")
    notes = []
    on = file_date(context.content)
    for group in groups:
        answering = context.hub.x12_transactions.answering("999", group.functional_id)
        if answering is not None:
            notes += answering.apply(context, group)
            continue
        if group.functional_id != "HC":
            notes.append(f"a 999 for a {group.functional_id} group (not claims): kept, nothing to update")
            continue
        for transaction in group.transactions:
            batch, transmission, accepted, detail, file_row = record_999(
                session, item_id, recognized, group, transaction, on)
            claims_named = {}
            for error in transaction.errors:
                if error.claim_reference:
                    claims_named.setdefault(error.claim_reference, []).append(error.describe())
            rows = []
            for pcn, errors in claims_named.items():
                claim = _claim_in_batch(session, batch.id, pcn)
                if claim is not None:
                    rows.append(schema.Acknowledgment(
                        inbox_item_id=item_id, kind="999", batch_id=batch.id, claim_id=claim.id,
                        accepted=accepted, code=transaction.result.value, detail="; ".join(errors),
                        outcome=RECEIVED if accepted else REJECTED, source=_CLEARINGHOUSE, effective_on=on))
            session.add_all(rows)
            if accepted:
                acknowledge(session, transmission, transaction, detail)
                note = f"ISA13 {batch.interchange_control_number}: the 837 was accepted" + (
                    "" if transaction.result.value == "A" else f" ({transaction.result.description})")
            else:
                reason = f"999 rejected the 837 ({transaction.result.description})"
                if claims_named:
                    reason += f"; errors in claims {', '.join(sorted(claims_named))}"
                _reject_transmission(session, transmission, batch, f"{reason}: {detail}", applied,
                                     per_claim={pcn: "; ".join(e) for pcn, e in claims_named.items()},
                                     rows=rows + [file_row], alert=("999", item_id))
                note = f"ISA13 {batch.interchange_control_number}: {reason}"
            if transmission is not None:
                clear_alert(session, f"ack_missing:transmission:{transmission.id}")
            notes.append(note)
            applied.notify.append(("999", batch.interchange_control_number, accepted,
                                   [c.patient_control_number for c in _claims_of(session, batch.id)]))
    applied.summary = "; ".join(notes) or "a 999 acknowledging nothing"
    return applied


def record_999(session, item_id: int, recognized: Recognized, group, transaction, on: date):
    """(batch, transmission, accepted, detail, row) of the file a 999 transaction answers, with
    the acknowledgment (row) stored against the batch."""
    batch, transmission = _batch_by_group(session, recognized, group.group_control_number,
                                          transaction.control_number)
    accepted = transaction.accepted and group.result.value not in ("R", "M", "W", "X")
    detail = transaction.describe()
    row = schema.Acknowledgment(inbox_item_id=item_id, kind="999", batch_id=batch.id,
                                accepted=accepted, code=transaction.result.value, detail=detail,
                                outcome=RECEIVED if accepted else REJECTED, source=_CLEARINGHOUSE, effective_on=on)
    session.add(row)
    return batch, transmission, accepted, detail, row


def acknowledge(session, transmission, transaction, detail: str) -> None:
    """An accepting 999: the transmission, if still on its way, is acknowledged."""
    if transmission is not None and transmission.state in (UPLOADED, "uploading", "ready"):
        transmission.state, transmission.acknowledged_at = ACKNOWLEDGED, utcnow()
        history(session, transmission, ACKNOWLEDGED, f"999 {transaction.result.value}: {detail}")


def apply_999_to_inquiries(context: TransactionContext, group, kind: str, store, table) -> list[str]:
    """A 999 for a 270 or 276 group: its transmission acknowledged, or rejected with its
    questions (rows of ``table`` still ``store.REQUESTED``, failed by ``store.fail``)."""
    session, item_id = context.session, context.item_id
    on = file_date(context.content)
    notes = []
    for transaction in group.transactions:
        batch, transmission, accepted, detail, _ = record_999(session, item_id, context.recognized, group,
                                                              transaction, on)
        if transmission is not None:
            clear_alert(session, f"ack_missing:transmission:{transmission.id}")
        if accepted:
            acknowledge(session, transmission, transaction, detail)
            notes.append(f"ISA13 {batch.interchange_control_number}: the {kind} was accepted")
            continue
        reason = f"999 rejected the {kind} ({transaction.result.description}): {detail}"
        if transmission is not None and transmission.state != TRANSMISSION_REJECTED:
            transmission.state, transmission.acknowledged_at = TRANSMISSION_REJECTED, utcnow()
            history(session, transmission, TRANSMISSION_REJECTED, reason)
        waiting = session.scalars(select(table).where(table.batch_id == batch.id, table.state == store.REQUESTED))
        failed = [store.fail(session, row, reason) for row in waiting]
        notes.append(f"ISA13 {batch.interchange_control_number}: {reason}; {len(failed)} question(s) failed")
    return notes


# --- 277CA -----------------------------------------------------------------------------------------


def apply_277ca(context: TransactionContext, acks) -> Applied:
    """Each claim's answer is stored against the submission it is about; the claim then stands
    where the deciding answer to its current submission puts it (``bhhub.acknowledgments``)."""
    session, item_id = context.session, context.item_id
    applied = Applied("277CA", "")
    on = file_date(context.content)
    unknown, earlier = [], []
    said: dict[str, list[str]] = {}  # outcome -> claims this file said it of, where it stands
    sources = set()
    for ack in acks:
        deciding = ack.deciding_status
        effective = (deciding.date if deciding else None) or on
        claim, batch_id = standing.claim_answered(session, ack.patient_control_number, ack.batch_reference, effective)
        if claim is None:
            unknown.append(ack.patient_control_number)
            continue
        source = _source_of(session, ack, claim)
        sources.add(f"the {source} {ack.information_source}".rstrip())
        row = schema.Acknowledgment(
            inbox_item_id=item_id, kind="277CA", batch_id=batch_id, claim_id=claim.id,
            accepted=ack.outcome in (RECEIVED, ACCEPTED), code=deciding.category if deciding else ack.category,
            detail=ack.describe(), payer_claim_control_number=ack.payer_claim_control_number,
            outcome=ack.outcome, source=source, effective_on=effective)
        session.add(row)
        if ack.payer_claim_control_number and not claim.payer_claim_control_number:
            claim.payer_claim_control_number = ack.payer_claim_control_number
        if batch_id != claim.batch_id:
            earlier.append(claim.patient_control_number)
            continue  # about a submission before the current one: kept in the history only
        moved = standing.settle(session, claim, f"277CA: {ack.describe()} (from the {source})", [row])
        if moved:
            applied.claims[claim.patient_control_number] = moved
        if ack.outcome is not None and claim.status in _STANDS_AS[ack.outcome]:
            said.setdefault(ack.outcome, []).append(claim.patient_control_number)
    if acks and len(unknown) == len(acks):
        raise InputError(
            f"a 277CA about {len(acks)} claims, none of which the hub sent (patient control numbers not found)",
            fix="check that the file is for this practice and this hub; it is kept in the inbox",
        )
    by = ", ".join(sorted(sources)) or "the clearinghouse"
    for outcome in (REJECTED, NOT_FOUND):
        if said.get(outcome):
            claims_refused(session, "277CA", item_id, outcome, by, said[outcome])
    if said.get(ACCEPTED):
        applied.notify.append(("277CA", "", True, said[ACCEPTED]))
    if said.get(REJECTED):
        applied.notify.append(("277CA", "", False, said[REJECTED]))
    counts = [f"{len(said.get(o, []))} {precedence.SAID[o]}" for o in (ACCEPTED, REJECTED)]
    counts += [f"{len(said[o])} {precedence.SAID[o]}" for o in (RECEIVED, NOT_FOUND) if said.get(o)]
    counts += [f"{len(earlier)} about an earlier submission (kept only)"] if earlier else []
    applied.summary = "277CA: " + ", ".join(counts) + (f", {len(unknown)} unknown claims" if unknown else "")
    return applied


def _source_of(session, ack, claim: schema.Claim) -> str:
    """Who gave a 277CA: its 2100A NM101 (PR payer, AY clearinghouse); otherwise the payer when
    its NM109 is the claim's payer id."""
    if ack.information_source_kind:
        return ack.information_source_kind
    coverage = session.get(schema.Coverage, claim.coverage_id)
    payer_id = coverage.payer.payer_id if coverage is not None else None
    return precedence.PAYER if payer_id and ack.information_source_id == payer_id else precedence.CLEARINGHOUSE


# --- which batch an acknowledgment answers -----------------------------------------------------------


def _batch_by_isa13(session, recognized: Recognized, isa13: str):
    """The batch a TA1 answers: its ISA13, sent by the hub's sender id (the TA1's receiver)."""
    query = select(schema.Batch).where(schema.Batch.interchange_control_number == isa13.zfill(9))
    candidates = session.scalars(query).all()
    mine = [b for b in candidates if b.sender_id.strip() == recognized.receiver_id] or candidates
    if len(mine) != 1:
        raise InputError(
            f"a TA1 for interchange {isa13}, which matches {len(mine) or 'no'} batch(es) the hub sent"
            + (f" as {recognized.receiver_id}" if recognized.receiver_id else ""),
            fix="check that the file is for this practice (its receiver id) and this hub",
        )
    return mine[0], _transmission_of(session, mine[0].id)


def _batch_by_group(session, recognized: Recognized, group_number: str, transaction_number: str):
    query = select(schema.Batch).where(schema.Batch.group_control_number == (group_number.lstrip("0") or "0"))
    candidates = [b for b in session.scalars(query)
                  if not transaction_number or b.transaction_control_number.lstrip("0") == transaction_number.lstrip("0")]
    mine = [b for b in candidates if b.sender_id.strip() == recognized.receiver_id] or candidates
    if len(mine) != 1:
        raise InputError(
            f"a 999 for group {group_number}, transaction {transaction_number}, which matches "
            f"{len(mine) or 'no'} batch(es) the hub sent",
            fix="check that the file is for this practice (its receiver id) and this hub",
        )
    return mine[0], _transmission_of(session, mine[0].id)


def _transmission_of(session, batch_id: int) -> schema.Transmission | None:
    return session.scalar(select(schema.Transmission).where(schema.Transmission.batch_id == batch_id))


def _claims_of(session, batch_id: int) -> list[schema.Claim]:
    return list(session.scalars(select(schema.Claim).where(schema.Claim.batch_id == batch_id)
                                .order_by(schema.Claim.id)))


def _claim_in_batch(session, batch_id: int, pcn: str) -> schema.Claim | None:
    return session.scalar(select(schema.Claim).where(schema.Claim.batch_id == batch_id,
                                                     schema.Claim.patient_control_number == pcn))


def _reject_transmission(session, transmission, batch, reason: str, applied: Applied,
                         per_claim: dict[str, str] | None = None, rows=(), alert: tuple[str, int] | None = None) -> None:
    """A rejecting TA1 or 999: the transmission is rejected, and each of its claims stands where
    precedence puts it (a payer's acceptance of the same submission outranks it); one alert
    names the claims left rejected."""
    if transmission is not None:
        clear_alert(session, f"ack_missing:transmission:{transmission.id}")
    if transmission is not None and transmission.state != TRANSMISSION_REJECTED:
        transmission.state = TRANSMISSION_REJECTED
        transmission.acknowledged_at = utcnow()
        history(session, transmission, TRANSMISSION_REJECTED, reason)
    rejected = []
    for claim in _claims_of(session, batch.id):
        specific = (per_claim or {}).get(claim.patient_control_number)
        moved = standing.settle(session, claim, f"{reason}" + (f" (this claim: {specific})" if specific else ""),
                                rows)
        if moved:
            applied.claims[claim.patient_control_number] = moved
        if claim.status == ClaimStatus.REJECTED.value:
            rejected.append(claim.patient_control_number)
    if alert is not None and rejected:
        claims_refused(session, alert[0], alert[1], REJECTED, "the clearinghouse", rejected)


def file_date(content: bytes) -> date:
    """The date a response file speaks for: GS04 of its first group, else ISA09, else today."""
    from bhhub.x12.tokens import segments

    found = None
    for segment in segments(content):
        if segment.id == "ISA":
            found = _parsed(segment[9].strip(), "%y%m%d")
        elif segment.id == "GS":
            found = _parsed(segment[4], "%Y%m%d") or found
            break
        elif segment.id != "TA1":
            break
    return found or today()


def _parsed(text: str, pattern: str) -> date | None:
    try:
        return datetime.strptime(text, pattern).date()
    except ValueError:
        return None


def history(session, transmission, state: str, detail: str) -> None:
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=state, detail=detail[:2000]))
