"""A denial's next step with its deadline, judged against the claim's own filing window.

Every next step that sends the payer something has a window (domain reference 10.1, 6.8): a
corrected claim or void (``replacement``/``void``), an appeal, a resubmission, the claim to the
next payer (``secondary``). Which window applies, and what starts its clock, is
``bhhub.remittance.deadlines``' answer for this claim: its payer's own row, else its kind (the claim
filing indicator, SBR09), the practice's state for Medicaid, else the default.

A denial rule may name the window that decides whether its step is still possible (``window``)
and what to do once it has closed (``expired_action``): a timely-filing denial of a claim that
is still within its filing window is not written off but sent again or appealed before the last
day; only past it does the write-off stand. The decision is the hub's clock's (``bhhub.runtime.clock``),
both when the 835 posts and when the worklist is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from bhhub.runtime.clock import today
from bhhub.remittance.deadlines import FilingWindows, Window
from bhhub.store import schema

# The window each action must meet when the rule names none. The others (write off, bill the
# patient, check eligibility, review) send the payer nothing, or a claim to a payer not known yet.
ACTION_WINDOWS = {
    "corrected_claim": "replacement",
    "void": "void",
    "appeal": "appeal",
    "resubmit_with_info": "replacement",  # more for a claim the payer adjudicated: from its remittance
    "bill_secondary": "secondary",
}


@dataclass(frozen=True)
class NextStep:
    action: str
    text: str
    deadline: date | None


@dataclass(frozen=True)
class ClaimClock:
    """What a claim's windows count from, and whose windows they are."""

    payer_id: str | None
    filing_indicator: str | None
    state: str | None
    service_date: date | None
    remittance: date | None        # the 835 that denied it
    first_remittance: date | None  # the claim's first adjudication (what a late appeal appealed)
    next_payer_id: str | None = None
    next_filing_indicator: str | None = None

    @classmethod
    def of(cls, session, mappings, claim: schema.Claim, remittance: date | None,
           clp_filing_indicator: str | None = None) -> ClaimClock:
        from bhhub.coding.rules import claim_filing_indicator

        payer = session.get(schema.Coverage, claim.coverage_id).payer
        provider = session.get(schema.Provider, claim.billing_provider_id)
        state = (provider.address or {}).get("state") if provider is not None else None
        dates = [line.service_date for line in claim.lines if line.service_date] or [claim.service_date]
        r, p = schema.RemitClaim, schema.RemitPayment
        first = session.scalar(select(func.min(p.payment_date)).select_from(r).join(p, p.id == r.payment_id)
                               .where(r.claim_id == claim.id, r.state == "posted", r.status_code != "22"))
        next_payer = None
        if claim.other_coverage_ids:
            next_payer = session.get(schema.Coverage, claim.other_coverage_ids[0]).payer
        billed = claim_filing_indicator(mappings, payer)
        if billed == "CI" and clp_filing_indicator:  # "CI" is the guess when nobody said: CLP06 knows
            billed = clp_filing_indicator
        return cls(
            payer_id=payer.payer_id,
            filing_indicator=billed,
            state=state, service_date=min(dates), remittance=remittance,
            first_remittance=min(d for d in (first, remittance) if d) if (first or remittance) else None,
            next_payer_id=next_payer.payer_id if next_payer is not None else None,
            next_filing_indicator=claim_filing_indicator(mappings, next_payer) if next_payer is not None else None)

    def start(self, anchor: str, *, judged: bool) -> date | None:
        if anchor == "service_date":
            return self.service_date
        if anchor == "remittance":
            # A rule's own window judges the claim since its first adjudication (CO-286: the
            # appeal was of the first denial); the step's window runs from this remittance.
            return self.first_remittance if judged else self.remittance
        if anchor == "primary_remittance":
            return self.remittance
        return None  # appeal_decision: the hub does not see appeal decisions


def next_step(windows: FilingWindows, clock: ClaimClock, found, action: str, action_text: str,
              on: date | None = None) -> NextStep:
    """The step to take on ``on`` (the hub's today): ``action`` with the last day of its window,
    or the rule's ``expired_action`` once the window it names has closed. ``found`` is the
    denial table's Classification; ``action`` may differ from its own (a patient-share rule)."""
    on = on or today()
    own = action == found.action
    claim_type = (found.window if own else None) or ACTION_WINDOWS.get(action)
    if claim_type is None:
        return NextStep(action, action_text, None)
    window, start = _window(windows, clock, claim_type, judged=own and found.window is not None)
    if window is None or start is None:
        return NextStep(action, action_text, None)
    last_day = window.last_day(start)
    rule = f"{window.describe()}, {window.source}"
    if on <= last_day:
        return NextStep(action, f"{action_text} Last day: {last_day.isoformat()} ({rule}).", last_day)
    if own and found.expired_action:
        return NextStep(found.expired_action,
                        f"{found.expired_action_text} The window closed on {last_day.isoformat()} ({rule}).", None)
    return NextStep(action, f"{action_text} Its window closed on {last_day.isoformat()} ({rule}): ask the payer "
                            f"whether it still accepts it.", last_day)


def _window(windows: FilingWindows, clock: ClaimClock, claim_type: str, *, judged: bool) -> tuple[Window | None, date | None]:
    payer_id, indicator = clock.payer_id, clock.filing_indicator
    if claim_type == "secondary" and clock.next_payer_id:
        payer_id, indicator = clock.next_payer_id, clock.next_filing_indicator  # the next payer's window
    window = windows.window(claim_type, payer_id=payer_id, filing_indicator=indicator, state=clock.state)
    if window is None:
        return None, None
    return window, clock.start(window.anchor, judged=judged)


def on_worklist(rules, denial: schema.Denial, payer_id: str | None, has_secondary: bool,
                on: date | None = None) -> NextStep:
    """The stored next step of an open ``denial`` as of ``on``: once its last day has passed, the
    rule's ``expired_action`` (a timely-filing denial is written off only now), or the same step
    marked late. ``payer_id`` is the claim's payer id (mappings/ rows are keyed by it)."""
    on = on or today()
    step = NextStep(denial.action, denial.action_text, denial.deadline)
    if denial.status != "open" or denial.deadline is None or on <= denial.deadline:
        return step
    found = rules.classify(denial.group_code, denial.reason_code, denial.remark_codes, payer_id=payer_id,
                           has_secondary=has_secondary)
    last_day = denial.deadline.isoformat()
    if found.expired_action and denial.action == found.action:
        return NextStep(found.expired_action, f"{found.expired_action_text} The window closed on {last_day}.", None)
    return NextStep(denial.action, f"{denial.action_text} That day has passed: ask the payer whether it still "
                                   f"accepts it.", denial.deadline)
