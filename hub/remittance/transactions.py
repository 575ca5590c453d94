"""The 835 as a registered transaction: payments posted (``bhhub.remittance.posting``), each claim
payment posted, unmatched or quarantined, and each claim's status set from it.

Registered through ``bhhub_register_x12_transactions`` like any plugin's transaction. Any GS08
is taken: the posting's reader names a guide it cannot read.
"""

from __future__ import annotations

from bhhub import hookimpl
from bhhub.types import Applied, TransactionContext, X12Transaction


@hookimpl
def bhhub_register_x12_transactions() -> list[X12Transaction]:
    return [X12Transaction("835", "health care claim payment/advice (005010X221A1)", "835",
                           _whole_file, apply_835)]


def _whole_file(content: bytes) -> bytes:
    """The posting reads the 835 itself, with the inbox item's session at hand."""
    return content


def apply_835(context: TransactionContext, content: bytes) -> Applied:
    from bhhub.remittance.posting import post_835

    report = post_835(context.hub, context.session, context.item_id, content)
    applied = Applied("835", report.summary(), dict(report.statuses))
    applied.remittances = report.posted_payments
    return applied
