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
- **277CA** answers each claim by its CLM01, with the most decisive of its statuses: A0/A1
  received (the claim stays where it is), A2/A5 accepted, A4 not found (stays in flight; an alert
  says to investigate), A3/A6/A7/A8 rejected with the STC reason.
- Every TA1, 999 and 277CA answer is kept with what it means, who gave it (clearinghouse or
  payer) and its date, and the claim's status is decided by precedence over all answers to its
  current submission (``bhhub.acknowledgments``), so the order files arrive in does not matter and a receipt
  never undoes a rejection. Claims a file rejects or the payer cannot find are one alert per file.
- **835** payments are posted (``bhhub.remittance.posting``): each claim payment posted, unmatched or
  quarantined; each claim's status set from it.
- **271** (005010X279A1) answers eligibility questions by the trace number echoed (TRN02); an
  answer no one here asked for is kept too. What changed since the member's previous answer
  raises alerts and re-checks their unsent claims (``bhhub.eligibility.effects``).
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
from datetime import date, datetime

from sqlalchemy import select

from bhhub.acknowledgments import precedence, standing
from bhhub.claims.build import set_status
from bhhub.errors import InputError
from bhhub.exchange.alerts import claims_refused, clear_alert, raise_alert
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.schema import utcnow
from bhhub.runtime.clock import today
from bhhub.acknowledgments.codes import ACCEPTED, NOT_FOUND, RECEIVED, REJECTED
from bhhub.x12.recognize import Recognized

log = logging.getLogger(__name__)

_RECEIVED, _ACCEPTED, _NOT_FOUND, _REJECTED = RECEIVED, ACCEPTED, NOT_FOUND, REJECTED
_CLEARINGHOUSE = precedence.CLEARINGHOUSE
# Where a claim stands when a file's word on it holds (for the alerts and the hook).
_STANDS_AS = {RECEIVED: {ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value},
              ACCEPTED: {ClaimStatus.ACCEPTED.value}, NOT_FOUND: {ClaimStatus.SUBMITTED.value, ClaimStatus.BATCHED.value},
              REJECTED: {ClaimStatus.REJECTED.value}}


# Transmission states (bhhub.exchange.outbound keeps the same names).
UPLOADED, ACKNOWLEDGED, REJECTED = "uploaded", "acknowledged", "rejected"

# Where a claim may go from where it is: a late or repeated response never moves it backwards.
_IN_FLIGHT = set(standing.IN_FLIGHT)

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
    from bhhub.acknowledgments.ta1 import read_ta1

    applied = Applied("TA1", "")
    notes = []
    on = _file_date(content)
    for ack in read_ta1(content):
        batch, transmission = _batch_by_isa13(session, recognized, ack.interchange_control_number)
        accepted = ack.accepted or ack.duplicate
        row = schema.Acknowledgment(
            inbox_item_id=item_id, kind="TA1", batch_id=batch.id, accepted=accepted,
            code=f"{ack.result.value}/{ack.note.value}", detail=ack.describe(),
            outcome=_RECEIVED if accepted else _REJECTED, source=_CLEARINGHOUSE, effective_on=on)
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


def _apply_999(session, item_id: int, recognized: Recognized, content: bytes) -> Applied:
    from bhhub.acknowledgments.x999 import read_999

    applied = Applied("999", "")
    notes = []
    on = _file_date(content)
    for group in read_999(content):
        if group.functional_id in INQUIRY_GROUPS:
            notes += _apply_999_to_inquiries(session, item_id, recognized, group, on)
            continue
        if group.functional_id != "HC":
            notes.append(f"a 999 for a {group.functional_id} group (not claims): kept, nothing to update")
            continue
        for transaction in group.transactions:
            batch, transmission, accepted, detail, file_row = _record_999(
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
                        outcome=_RECEIVED if accepted else _REJECTED, source=_CLEARINGHOUSE, effective_on=on))
            session.add_all(rows)
            if accepted:
                _acknowledge(session, transmission, transaction, detail)
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


# --- 277CA -----------------------------------------------------------------------------------------


def _apply_277ca(session, item_id: int, content: bytes) -> Applied:
    """Each claim's answer is stored against the submission it is about; the claim then stands
    where the deciding answer to its current submission puts it (``bhhub.acknowledgments``)."""
    from bhhub.acknowledgments.x277ca import read_277ca

    applied = Applied("277CA", "")
    acks = read_277ca(content)
    on = _file_date(content)
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
            accepted=ack.outcome in (_RECEIVED, _ACCEPTED), code=deciding.category if deciding else ack.category,
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
    for outcome in (_REJECTED, _NOT_FOUND):
        if said.get(outcome):
            claims_refused(session, "277CA", item_id, outcome, by, said[outcome])
    if said.get(_ACCEPTED):
        applied.notify.append(("277CA", "", True, said[_ACCEPTED]))
    if said.get(_REJECTED):
        applied.notify.append(("277CA", "", False, said[_REJECTED]))
    counts = [f"{len(said.get(o, []))} {precedence.SAID[o]}" for o in (_ACCEPTED, _REJECTED)]
    counts += [f"{len(said[o])} {precedence.SAID[o]}" for o in (_RECEIVED, _NOT_FOUND) if said.get(o)]
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


def _record_999(session, item_id: int, recognized: Recognized, group, transaction, on: date):
    """(batch, transmission, accepted, detail, row) of the file a 999 transaction answers, with
    the acknowledgment (row) stored against the batch."""
    batch, transmission = _batch_by_group(session, recognized, group.group_control_number,
                                          transaction.control_number)
    accepted = transaction.accepted and group.result.value not in ("R", "M", "W", "X")
    detail = transaction.describe()
    row = schema.Acknowledgment(inbox_item_id=item_id, kind="999", batch_id=batch.id,
                                accepted=accepted, code=transaction.result.value, detail=detail,
                                outcome=_RECEIVED if accepted else _REJECTED, source=_CLEARINGHOUSE, effective_on=on)
    session.add(row)
    return batch, transmission, accepted, detail, row


def _acknowledge(session, transmission, transaction, detail: str) -> None:
    """An accepting 999: the transmission, if still on its way, is acknowledged."""
    if transmission is not None and transmission.state in (UPLOADED, "uploading", "ready"):
        transmission.state, transmission.acknowledged_at = ACKNOWLEDGED, utcnow()
        _history(session, transmission, ACKNOWLEDGED, f"999 {transaction.result.value}: {detail}")


def _apply_999_to_inquiries(session, item_id: int, recognized: Recognized, group, on: date) -> list[str]:
    """A 999 for a 270 or 276 file: its transmission acknowledged, or rejected with its questions."""
    from bhhub.claimstatus import store as status_store
    from bhhub.eligibility import store as eligibility_store

    kind = INQUIRY_GROUPS[group.functional_id]
    notes = []
    for transaction in group.transactions:
        batch, transmission, accepted, detail, _ = _record_999(session, item_id, recognized, group, transaction, on)
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
    from bhhub.eligibility import effects
    from bhhub.eligibility import store as eligibility
    from bhhub.eligibility.x271 import read_271

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
            applied.claims[change["patient_control_number"]] = change["to"]
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
    from bhhub.claimstatus import store as status_store
    from bhhub.claimstatus.x277 import read_277

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
    from bhhub.claimstatus import store as status_store

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
    from bhhub.claimstatus import store as status_store

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
    from bhhub.remittance.posting import post_835

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
                         per_claim: dict[str, str] | None = None, rows=(), alert: tuple[str, int] | None = None) -> None:
    """A rejecting TA1 or 999: the transmission is rejected, and each of its claims stands where
    precedence puts it (a payer's acceptance of the same submission outranks it); one alert
    names the claims left rejected."""
    if transmission is not None:
        clear_alert(session, f"ack_missing:transmission:{transmission.id}")
    if transmission is not None and transmission.state != REJECTED:
        transmission.state = REJECTED
        transmission.acknowledged_at = utcnow()
        _history(session, transmission, REJECTED, reason)
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
        claims_refused(session, alert[0], alert[1], _REJECTED, "the clearinghouse", rejected)


def _file_date(content: bytes) -> date:
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


def _history(session, transmission, state: str, detail: str) -> None:
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=state, detail=detail[:2000]))
