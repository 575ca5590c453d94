"""Eligibility answers as registered transactions: the 271, and the 999 answering a 270 file.

- **271** (005010X279A1) answers eligibility questions by the trace number echoed (TRN02); an
  answer no one here asked for is kept too. What changed since the member's previous answer
  raises alerts and re-checks their unsent claims (``bhhub.eligibility.effects``). Any GS08 is
  taken: the reader names a guide it cannot read.
- A **999** group answering a 270 (GS01 HS) acknowledges or rejects that inquiry file; rejected,
  its questions fail with the 999's reason.
"""

from __future__ import annotations

from bhhub import hookimpl
from bhhub.errors import InputError
from bhhub.types import Applied, TransactionContext, X12Transaction


@hookimpl
def bhhub_register_x12_transactions() -> list[X12Transaction]:
    from bhhub.eligibility.x271 import read_271

    return [
        X12Transaction("271", "eligibility benefit response (005010X279A1)", "271", read_271, apply_271),
        X12Transaction("999-270", "999 groups acknowledging a 270 eligibility inquiry", "999", None,
                       apply_999_to_270, guides=("X231",), answers="HS"),
    ]


def apply_271(context: TransactionContext, responses) -> Applied:
    from bhhub.eligibility import effects
    from bhhub.eligibility import store as eligibility

    hub, session, item_id = context.hub, context.session, context.item_id
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


def apply_999_to_270(context: TransactionContext, group) -> list[str]:
    """One 999 group about 270 files: the notes for the 999's summary."""
    from bhhub.acknowledgments.transactions import apply_999_to_inquiries
    from bhhub.eligibility import store
    from bhhub.store import schema

    return apply_999_to_inquiries(context, group, "270", store, schema.EligibilityCheck)
