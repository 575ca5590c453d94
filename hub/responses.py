"""Applying what clearinghouses and payers send back: TA1, 999, 277CA, 835, 271 and 277 claim status.

Called by the inbox for every stored X12 payload, inside the transaction that marks the item
processed, so a response is applied exactly once: the same file downloaded again is a duplicate
in the inbox and never reaches this module twice.

- **TA1** answers an interchange (ISA13). Rejected: the transmission and its claims are rejected
  and may be sent again. Note 025 (duplicate interchange) means the clearinghouse already has
  that ISA13: the resend after a lost connection found the first copy, which stands; harmless.
- **999** answers the 837's functional group (GS06) and transaction (ST02). Accepted (A, E):
  the transmission is acknowledged. Rejected (R, M, W, X): it and its claims are rejected, with
  the 999's error locations kept for the biller (per claim where the 999 names the CLM01).
- **277CA** answers each claim by its CLM01: A1/A2 accepted into adjudication, A3/A4/A6/A7/A8
  rejected with the STC reason.
- **835** payments are posted (``hub.remit.posting``): each claim payment posted, unmatched or
  quarantined; each claim's status set from it.
- **271** (005010X279A1) answers eligibility questions by the trace number echoed (TRN02); an
  answer no one here asked for is kept too. What changed since the member's previous answer
  raises alerts and re-checks their unsent claims (``hub.eligibility.effects``).
- **277** claim status (005010X212, told from the 277CA by GS08) answers 276 questions by trace
  number (or names the sent claim by REF*EJ). The claim follows where the hub's vocabulary has
  the state and the 277 may move it: accepted (A2, pending, more information requested) and
  rejected (A3/A6/A7/A8) while in flight. Finalized answers (paid, denied, no payment) never
  move it: only an 835 posts money and denials. Rejected, denied, not found, no payment and
  information requested are alerts, one per claim.
- A **999** answering a 270 or 276 group acknowledges or rejects that inquiry file; rejected,
  its questions fail with the 999's reason.

A response that names nothing the hub sent is quarantined with a reason; nothing is guessed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from hub.claims import set_status
from hub.errors import InputError
from hub.exchange.alerts import clear_alert, raise_alert
from hub.model import ClaimStatus
from hub.store import schema
from hub.store.schema import utcnow
from hub.x12.recognize import Recognized

log = logging.getLogger(__name__)


# Transmission states (hub.exchange.outbound keeps the same names).
UPLOADED, ACKNOWLEDGED, REJECTED = "uploaded", "acknowledged", "rejected"

# Where a claim may go from where it is: a late or repeated response never moves it backwards.
_IN_FLIGHT = {ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value}
_ACKNOWLEDGEABLE = _IN_FLIGHT | {ClaimStatus.ACCEPTED.value, ClaimStatus.REJECTED.value}

KINDS = ("TA1", "999", "277CA", "835", "271", "277")
INQUIRY_GROUPS = {"HS": "270", "HR": "276"}  # GS01 of the inquiry files a 999 may answer


@dataclass
class Applied:
    """What one response did, for the intake report."""

    kind: str
    summary: str
    claims: dict[str, str] = field(default_factory=dict)  # patient control number -> new status
    notify: list[tuple] = field(default_factory=list)  # acknowledgment hook calls, after commit
    remittances: list[tuple] = field(default_factory=list)  # (payer, trace, pcns) posted, for the hook


def apply(hub, session, item_id: int, recognized: Recognized, content: bytes) -> Applied:
    if recognized.kind == "TA1":
        return _apply_ta1(session, item_id, recognized, content)
    if recognized.kind == "999":
        return _apply_999(session, item_id, recognized, content)
    if recognized.kind == "277CA":
        return _apply_277ca(session, item_id, content)
    if recognized.kind == "835":
        return _apply_835(hub, session, item_id, content)
    if recognized.kind == "271":
        return _apply_271(hub, session, item_id, content)
    if recognized.kind == "277":
        return _apply_277(hub, session, item_id, content)
    what = (f"an X12 {recognized.kind} file" if recognized.kind != "X12"
            else "an X12 interchange of a kind bhhub does not know")
    raise InputError(
        f"{what} (GS08 {recognized.version or 'absent'}): the hub does not read this kind yet",
        fix="it is kept in the inbox; `bhhub inbox retry` it once a plugin or release reads it",
    )


# --- TA1 -------------------------------------------------------------------------------------------


def _apply_ta1(session, item_id: int, recognized: Recognized, content: bytes) -> Applied:
    from hub.x12.acks import read_ta1

    applied = Applied("TA1", "")
    notes = []
    for ack in read_ta1(content):
        batch, transmission = _batch_by_isa13(session, recognized, ack.interchange_control_number)
        session.add(schema.Acknowledgment(
            inbox_item_id=item_id, kind="TA1", batch_id=batch.id, accepted=ack.accepted or ack.duplicate,
            code=f"{ack.result.value}/{ack.note.value}", detail=ack.describe()))
        if ack.duplicate:
            notes.append(f"ISA13 {batch.interchange_control_number}: duplicate of an interchange the "
                         f"clearinghouse already has (a resend found the first copy); nothing changes")
        elif not ack.accepted:
            _reject_transmission(session, transmission, batch, f"TA1 rejected the file: {ack.describe()}", applied)
            notes.append(f"ISA13 {batch.interchange_control_number} rejected: {ack.note.description}")
        else:
            notes.append(f"ISA13 {batch.interchange_control_number} received by the clearinghouse")
        applied.notify.append(("TA1", batch.interchange_control_number, ack.accepted or ack.duplicate,
                               list(applied.claims)))
    applied.summary = "; ".join(notes) or "an empty TA1"
    return applied


# --- 999 -------------------------------------------------------------------------------------------


def _apply_999(session, item_id: int, recognized: Recognized, content: bytes) -> Applied:
    from hub.x12.acks import read_999

    applied = Applied("999", "")
    notes = []
    for group in read_999(content):
        if group.functional_id in INQUIRY_GROUPS:
            notes += _apply_999_to_inquiries(session, item_id, recognized, group)
            continue
        if group.functional_id != "HC":
            notes.append(f"a 999 for a {group.functional_id} group (not claims): kept, nothing to update")
            continue
        for transaction in group.transactions:
            batch, transmission, accepted, detail = _record_999(session, item_id, recognized, group, transaction)
            claims_named = {}
            for error in transaction.errors:
                if error.claim_reference:
                    claims_named.setdefault(error.claim_reference, []).append(error.describe())
            for pcn, errors in claims_named.items():
                claim = _claim_in_batch(session, batch.id, pcn)
                if claim is not None:
                    session.add(schema.Acknowledgment(
                        inbox_item_id=item_id, kind="999", batch_id=batch.id, claim_id=claim.id,
                        accepted=accepted, code=transaction.result.value, detail="; ".join(errors)))
            if accepted:
                _acknowledge(session, transmission, transaction, detail)
                note = f"ISA13 {batch.interchange_control_number}: the 837 was accepted" + (
                    "" if transaction.result.value == "A" else f" ({transaction.result.description})")
            else:
                reason = f"999 rejected the 837 ({transaction.result.description})"
                if claims_named:
                    reason += f"; errors in claims {', '.join(sorted(claims_named))}"
                _reject_transmission(session, transmission, batch, f"{reason}: {detail}", applied,
                                     per_claim={pcn: "; ".join(e) for pcn, e in claims_named.items()})
                note = f"ISA13 {batch.interchange_control_number}: {reason}"
            if transmission is not None:
                clear_alert(session, f"ack_missing:transmission:{transmission.id}")
            notes.append(note)
            applied.notify.append(("999", batch.interchange_control_number, accepted,
                                   [c.patient_control_number for c in _claims_of(session, batch.id)]))
    applied.summary = "; ".join(notes) or "a 999 acknowledging nothing"
    return applied


# --- 277CA -----------------------------------------------------------------------------------------


def _apply_277ca(session, item_id: int, content: bytes) -> Applied:
    from hub.x12.acks import read_277ca

    applied = Applied("277CA", "")
    acks = read_277ca(content)
    unknown = []
    accepted_pcns, rejected_pcns = [], []
    for ack in acks:
        claim = _claim_by_pcn(session, ack.patient_control_number)
        if claim is None:
            unknown.append(ack.patient_control_number)
            continue
        session.add(schema.Acknowledgment(
            inbox_item_id=item_id, kind="277CA", batch_id=claim.batch_id, claim_id=claim.id,
            accepted=ack.accepted, code=ack.category, detail=ack.describe(),
            payer_claim_control_number=ack.payer_claim_control_number))
        if ack.payer_claim_control_number and not claim.payer_claim_control_number:
            claim.payer_claim_control_number = ack.payer_claim_control_number
        if claim.status not in _ACKNOWLEDGEABLE:
            continue  # already adjudicated (an 835 came first): the history keeps the 277CA
        if ack.rejected:
            set_status(session, claim, ClaimStatus.REJECTED, f"277CA: {ack.describe()}")
            applied.claims[claim.patient_control_number] = ClaimStatus.REJECTED.value
            rejected_pcns.append(claim.patient_control_number)
        elif ack.accepted:
            set_status(session, claim, ClaimStatus.ACCEPTED, f"277CA: {ack.describe()}")
            applied.claims[claim.patient_control_number] = ClaimStatus.ACCEPTED.value
            accepted_pcns.append(claim.patient_control_number)
    if acks and len(unknown) == len(acks):
        raise InputError(
            f"a 277CA about {len(acks)} claims, none of which the hub sent (patient control numbers not found)",
            fix="check that the file is for this practice and this hub; it is kept in the inbox",
        )
    if accepted_pcns:
        applied.notify.append(("277CA", "", True, accepted_pcns))
    if rejected_pcns:
        applied.notify.append(("277CA", "", False, rejected_pcns))
    applied.summary = (f"277CA: {len(accepted_pcns)} accepted, {len(rejected_pcns)} rejected"
                       + (f", {len(unknown)} not found" if unknown else ""))
    return applied


def _record_999(session, item_id: int, recognized: Recognized, group, transaction):
    """(batch, transmission, accepted, detail) of the file a 999 transaction answers, with the
    acknowledgment stored against the batch."""
    batch, transmission = _batch_by_group(session, recognized, group.group_control_number,
                                          transaction.control_number)
    accepted = transaction.accepted and group.result.value not in ("R", "M", "W", "X")
    detail = transaction.describe()
    session.add(schema.Acknowledgment(inbox_item_id=item_id, kind="999", batch_id=batch.id,
                                      accepted=accepted, code=transaction.result.value, detail=detail))
    return batch, transmission, accepted, detail


def _acknowledge(session, transmission, transaction, detail: str) -> None:
    """An accepting 999: the transmission, if still on its way, is acknowledged."""
    if transmission is not None and transmission.state in (UPLOADED, "uploading", "ready"):
        transmission.state, transmission.acknowledged_at = ACKNOWLEDGED, utcnow()
        _history(session, transmission, ACKNOWLEDGED, f"999 {transaction.result.value}: {detail}")


def _apply_999_to_inquiries(session, item_id: int, recognized: Recognized, group) -> list[str]:
    """A 999 for a 270 or 276 file: its transmission acknowledged, or rejected with its questions."""
    from hub.claimstatus import store as status_store
    from hub.eligibility import store as eligibility_store

    kind = INQUIRY_GROUPS[group.functional_id]
    notes = []
    for transaction in group.transactions:
        batch, transmission, accepted, detail = _record_999(session, item_id, recognized, group, transaction)
        if transmission is not None:
            clear_alert(session, f"ack_missing:transmission:{transmission.id}")
        if accepted:
            _acknowledge(session, transmission, transaction, detail)
            notes.append(f"ISA13 {batch.interchange_control_number}: the {kind} was accepted")
            continue
        reason = f"999 rejected the {kind} ({transaction.result.description}): {detail}"
        if transmission is not None and transmission.state != REJECTED:
            transmission.state, transmission.acknowledged_at = REJECTED, utcnow()
            _history(session, transmission, REJECTED, reason)
        model = eligibility_store if kind == "270" else status_store
        table = schema.EligibilityCheck if kind == "270" else schema.ClaimStatusCheck
        waiting = session.scalars(select(table).where(table.batch_id == batch.id, table.state == model.REQUESTED))
        failed = [model.fail(session, row, reason) for row in waiting]
        notes.append(f"ISA13 {batch.interchange_control_number}: {reason}; {len(failed)} question(s) failed")
    return notes


# --- 271 eligibility answers -------------------------------------------------------------------------


def _apply_271(hub, session, item_id: int, content: bytes) -> Applied:
    from hub.eligibility import effects
    from hub.eligibility import store as eligibility
    from hub.eligibility.x271 import read_271

    responses = read_271(content)
    applied = Applied("271", "")
    counts = {"answered": 0, "unsolicited": 0, "refused": 0, "repeat": 0, "unknown": 0}
    news = []
    for index, response in enumerate(responses, start=1):
        recorded = eligibility.record_271(session, response, item_id, index)
        if recorded.repeat:
            counts["repeat"] += 1
            continue
        if recorded.row is None:
            counts["unknown"] += 1
            continue
        row = recorded.row
        if row.state == eligibility.FAILED:
            counts["refused"] += 1
        else:
            counts["answered" if recorded.matched else "unsolicited"] += 1
        changed = effects.apply_answer(hub, session, row)
        if changed.raised:
            news.append(f"check {row.id}: {', '.join(f.replace('_', ' ') for f in changed.raised)}")
        for change in (changed.rescrubbed or {}).get("changed", []):
            applied.claims[change["claim"]] = change["to"]
    if responses and counts["unknown"] == len(responses):
        raise InputError(f"a 271 about {len(responses)} patient(s), none with a trace number the hub gave or a "
                         "member id to keep the answer under",
                         fix="check that the file is for this practice; it is kept in the inbox")
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    applied.summary = "271: " + (", ".join(parts) or "no patients") + (f"; changes: {'; '.join(news)}" if news else "")
    return applied


# --- 277 claim status (005010X212) ------------------------------------------------------------------

# The 277's status word (mappings/x12/claim_status.toml) -> the claim status it may move a claim
# to, and from which statuses. Finalized words are absent on purpose: only an 835 adjudicates.
_FOLLOWS = {
    "accepted": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "pending": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "information_requested": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "rejected": (ClaimStatus.REJECTED, _IN_FLIGHT | {ClaimStatus.ACCEPTED.value}),
}
# Answers a person must act on: one alert per claim while the answer stands.
STATUS_ALERTS = ("rejected", "denied", "not_found", "finalized_no_payment", "information_requested")


def _apply_277(hub, session, item_id: int, content: bytes) -> Applied:
    from hub.claimstatus import store as status_store
    from hub.claimstatus.x277 import read_277

    results = read_277(content)
    applied = Applied("277", "")
    counts = {"answered": 0, "unsolicited": 0, "repeat": 0, "unknown": 0, "refusals": 0}
    statuses: dict[str, int] = {}
    for index, result in enumerate(results, start=1):
        if result.level != "claim":
            failed = _refuse_waiting(session, result, item_id)
            counts["refusals" if failed else "unknown"] += 1
            continue
        recorded = status_store.record_277(session, result, item_id, index)
        if recorded.claim is None:
            counts["unknown"] += 1
            continue
        if recorded.repeat:
            counts["repeat"] += 1
            continue
        counts["answered" if recorded.matched else "unsolicited"] += 1
        statuses[result.status] = statuses.get(result.status, 0) + 1
        _claim_follows(session, recorded.claim, recorded.row, result, applied)
    if results and counts["unknown"] == len(results):
        raise InputError(f"a 277 claim status response about {len(results)} claim(s) or level(s), none of which "
                         "the hub asked about or sent (trace numbers and patient control numbers not found)",
                         fix="check that the file is for this practice and this hub; it is kept in the inbox")
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    said = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(statuses.items()))
    applied.summary = "277: " + (", ".join(parts) or "nothing") + (f" ({said})" if said else "")
    return applied


def _claim_follows(session, claim: schema.Claim, check: schema.ClaimStatusCheck, result, applied: Applied) -> None:
    """Move the claim where the 277 may, keep the payer's claim number, and alert on bad news."""
    from hub.claimstatus import store as status_store

    if result.payer_claim_control_number and not claim.payer_claim_control_number:
        claim.payer_claim_control_number = result.payer_claim_control_number
    if check.state != status_store.ANSWERED:
        return
    target = _FOLLOWS.get(result.status)
    if target is not None and claim.status in target[1] and claim.status != target[0].value:
        set_status(session, claim, target[0], f"277 claim status: {result.describe()}")
        applied.claims[claim.patient_control_number] = target[0].value
    pcn = claim.patient_control_number
    for status in STATUS_ALERTS:
        key = f"claim_status_{status}:claim:{pcn}"
        if status == result.status:
            raise_alert(session, key, "claim_status",
                        f"claim {pcn}: payer {result.payer_id or '?'} answered the status inquiry "
                        f"{status.replace('_', ' ')} (status check {check.id}): {result.describe()}")
        else:
            clear_alert(session, key)


def _refuse_waiting(session, result, item_id: int) -> int:
    """A refusal above the claims (receiver, provider, subscriber): every waiting question it
    covers fails with its reason. How many did."""
    from hub.claimstatus import store as status_store

    check, claim, coverage, payer = schema.ClaimStatusCheck, schema.Claim, schema.Coverage, schema.Payer
    query = (select(check, payer.payer_id, coverage.member_id, claim.billing_provider_id)
             .join(claim, claim.id == check.claim_id).join(coverage, coverage.id == claim.coverage_id)
             .join(payer, payer.id == coverage.payer_id).where(check.state == status_store.REQUESTED))
    reason = f"277 refused the request: {result.describe()}"
    failed = 0
    for row, payer_id, member_id, provider_id in session.execute(query).all():
        if result.payer_id and result.payer_id != payer_id:
            continue
        if result.level in ("provider", "subscriber", "dependent") and result.provider_id:
            provider = session.get(schema.Provider, provider_id)
            if result.provider_id not in {provider.npi, provider.tin} - {None, ""}:
                continue
        if result.level in ("subscriber", "dependent") and result.member_id != member_id:
            continue
        status_store.fail(session, row, reason)
        row.inbox_item_id, row.status, row.response = item_id, result.status, status_store.result_json(result)
        failed += 1
    return failed


# --- 835 (claim outcomes only; posting is remittance's) ---------------------------------------------


def _apply_835(hub, session, item_id: int, content: bytes) -> Applied:
    from hub.remit.posting import post_835

    report = post_835(hub, session, item_id, content)
    applied = Applied("835", report.summary(), dict(report.statuses))
    applied.remittances = report.posted_payments
    return applied


# --- helpers ---------------------------------------------------------------------------------------


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


def _claim_by_pcn(session, pcn: str) -> schema.Claim | None:
    """The latest revision of the claim with this CLM01 that has been sent."""
    return session.scalar(select(schema.Claim).where(schema.Claim.patient_control_number == pcn,
                                                     schema.Claim.batch_id.is_not(None))
                          .order_by(schema.Claim.id.desc()).limit(1))


def _reject_transmission(session, transmission, batch, reason: str, applied: Applied,
                         per_claim: dict[str, str] | None = None) -> None:
    if transmission is not None:
        clear_alert(session, f"ack_missing:transmission:{transmission.id}")
    if transmission is not None and transmission.state != REJECTED:
        transmission.state = REJECTED
        transmission.acknowledged_at = utcnow()
        _history(session, transmission, REJECTED, reason)
    for claim in _claims_of(session, batch.id):
        if claim.status in _IN_FLIGHT or claim.status == ClaimStatus.ACCEPTED.value:
            specific = (per_claim or {}).get(claim.patient_control_number)
            set_status(session, claim, ClaimStatus.REJECTED, f"{reason}" + (f" (this claim: {specific})" if specific else ""))
            applied.claims[claim.patient_control_number] = ClaimStatus.REJECTED.value


def _history(session, transmission, state: str, detail: str) -> None:
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=state, detail=detail[:2000]))
