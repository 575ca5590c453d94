"""Claim status answers as registered transactions: the 277, and the 999 answering a 276 file.

- **277** claim status (005010X212, told from the 277CA by GS08) answers 276 questions by trace
  number (or names the sent claim by REF*EJ). The claim follows where the hub's vocabulary has
  the state and the 277 may move it: accepted (A2, pending, more information requested) and
  rejected (A3/A6/A7/A8) while in flight. Finalized answers (paid, denied, no payment) never
  move it: only an 835 posts money and denials. Rejected, denied, not found, no payment and
  information requested are alerts, one per claim. Registered for any guide, so a claim-status
  group under another GS08 reaches the reader, which names the guide it reads; the 277CA
  (X214, ``bhhub.acknowledgments.transactions``) names its guide and so wins its own files.
- A **999** group answering a 276 (GS01 HR) acknowledges or rejects that inquiry file; rejected,
  its questions fail with the 999's reason.
"""

from __future__ import annotations

from sqlalchemy import select

from bhhub import hookimpl
from bhhub.acknowledgments import standing
from bhhub.claims.build import set_status
from bhhub.errors import InputError
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.types import Applied, TransactionContext, X12Transaction

# The 277's status word (mappings/x12/claim_status.toml) -> the claim status it may move a claim
# to, and from which statuses. Finalized words are absent on purpose: only an 835 adjudicates.
_IN_FLIGHT = set(standing.IN_FLIGHT)
_FOLLOWS = {
    "accepted": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "pending": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "information_requested": (ClaimStatus.ACCEPTED, _IN_FLIGHT),
    "rejected": (ClaimStatus.REJECTED, _IN_FLIGHT | {ClaimStatus.ACCEPTED.value}),
}
# Answers a person must act on: one alert per claim while the answer stands.
STATUS_ALERTS = ("rejected", "denied", "not_found", "finalized_no_payment", "information_requested")


@hookimpl
def bhhub_register_x12_transactions() -> list[X12Transaction]:
    from bhhub.claimstatus.x277 import read_277

    return [
        X12Transaction("277", "claim status response (005010X212)", "277", read_277, apply_277),
        X12Transaction("999-276", "999 groups acknowledging a 276 claim status inquiry", "999", None,
                       apply_999_to_276, guides=("X231",), answers="HR"),
    ]


def apply_277(context: TransactionContext, results) -> Applied:
    from bhhub.claimstatus import store as status_store

    session, item_id = context.session, context.item_id
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


def apply_999_to_276(context: TransactionContext, group) -> list[str]:
    """One 999 group about 276 files: the notes for the 999's summary."""
    from bhhub.acknowledgments.transactions import apply_999_to_inquiries
    from bhhub.claimstatus import store

    return apply_999_to_inquiries(context, group, "276", store, schema.ClaimStatusCheck)
