"""The denials a posted claim payment records: each adjustment the denial rules call a denial, with
who owes it, its next step and that step's last day; a visit denied for want of an authorization
gives its authorization use back.

Called by ``bhhub.remittance.posting.apply_posting`` for each claim payment it posts (not a
reversal), in the posting's transaction. Which adjustments are denials, and their categories,
are ``bhhub.remittance.denials``' rules.
"""

from __future__ import annotations

from decimal import Decimal

from bhhub.ledger.authorization_uses import release_for_denial
from bhhub.remittance.matching import remittance_ids
from bhhub.remittance.responsibility import patient_share
from bhhub.runtime.clock import today
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store import schema

_AUTHORIZATION_DENIALS = frozenset({"15", "197", "198"})
ZERO = Decimal(0)


def record_denials(session, rules, payment, row, claim, paid) -> list[schema.Denial]:
    from bhhub.remittance.deadlines import FilingWindows
    from bhhub.remittance.next_steps import ClaimClock, next_step

    has_secondary = bool(claim.other_coverage_ids)
    remit_date = payment.payment_date or today()
    mappings = rules.mappings if getattr(rules, "mappings", None) is not None else MappingSet()
    windows = FilingWindows.of(mappings)
    clock = None
    payer_id = None
    made = []
    for line, procedure, adjustment, remarks in _each_adjustment(paid):
        if adjustment.amount <= ZERO:
            continue
        payer_id = payer_id or tables_payer_id(session, mappings, payment, claim)
        found = rules.classify(adjustment.group, adjustment.reason, remarks, payer_id=payer_id,
                               has_secondary=has_secondary)
        if not found.is_denial:
            continue
        owes, action, action_text = patient_share(session, rules, payer_id, claim, row, procedure,
                                                  adjustment, remarks, found, has_secondary)
        # Every step with a window gets its last day, judged against the claim's own windows.
        clock = clock or ClaimClock.of(session, mappings, claim, remit_date, getattr(paid, "filing_indicator", None))
        step = next_step(windows, clock, found, action, action_text)
        action, action_text, deadline = step.action, step.text, step.deadline
        denial = schema.Denial(
            remit_claim_id=row.id, claim_id=claim.id, line=line, procedure_code=procedure,
            group_code=adjustment.group, reason_code=adjustment.reason, remark_codes=list(remarks),
            amount=adjustment.amount, category=found.category, action=action, action_text=action_text,
            deadline=deadline, status="open", patient_owes=owes)
        session.add(denial)
        made.append(denial)
        if adjustment.reason in _AUTHORIZATION_DENIALS:
            release_for_denial(session, claim.id, line, adjustment.reason)  # the visit was not used
    return made


def tables_payer_id(session, mappings, payment: schema.RemitPayment, claim: schema.Claim) -> str:
    """The payer id the denial and responsibility tables are read by for this claim payment: the
    hub's id of the payer that sent it (mappings/ rows are keyed by the claim payer ids the hub
    bills), the claim's own payer's when the 835 is from it, another coverage's on file for a
    crossover, and the 835's own id only when the hub knows the payer by no other (an 835 naming
    its payer by TRN03 alone would otherwise miss the payer's appeal window and CARC rows)."""
    from types import SimpleNamespace

    from bhhub.remittance.identity import payer_agrees

    sent_by = SimpleNamespace(payer_id=payment.payer_id, trace_originator=payment.payer_id,
                              payer_name=payment.payer_name)
    listed = remittance_ids(mappings)
    own = session.get(schema.Coverage, claim.coverage_id)
    coverages = [own, *(session.get(schema.Coverage, i) for i in (claim.other_coverage_ids or ()))]
    for coverage in coverages:
        if coverage is not None and payer_agrees(sent_by, coverage.payer.payer_id, coverage.payer.name,
                                                 listed.get(coverage.payer.payer_id, ())):
            return coverage.payer.payer_id
    return payment.payer_id


def _each_adjustment(paid):
    for adjustment in paid.adjustments:
        yield None, None, adjustment, tuple(paid.remarks)
    for number, service in enumerate(paid.services, start=1):
        for adjustment in service.adjustments:
            yield number, service.procedure_code, adjustment, tuple(service.remarks) or tuple(paid.remarks)
