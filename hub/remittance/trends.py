"""The revenue-cycle figures over time: ``bhhub ar --trend``, and the workspace's A/R page.

Each month's figures are ``bhhub.remittance.ar``'s own (``ar_report``: the same rules and
``FORMULAS``), computed from what the store had recorded by the end of that month: claims batched,
277CAs, 835s posted and denials worked by then, each by the time the hub recorded it. A claim
denied in a month first counts in that month's denial rate; the rates cover every claim known by
then, as ``bhhub ar`` does today. The last point, the month so far, is ``bhhub ar --as-of``'s
report itself (everything recorded now).
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date

from bhhub.runtime.clock import today

TREND_FIGURES = ("days_in_ar", "clean_claim_rate", "denial_rate_count", "denial_rate_dollars",
                 "net_collection_rate", "total_ar")


def month_ends(as_of: date, months: int) -> list[date]:
    """The last ``months`` month ends, oldest first; the current month's is ``as_of`` itself
    (the month so far)."""
    points = [as_of]
    year, month = as_of.year, as_of.month
    for _ in range(months - 1):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        points.append(date(year, month, monthrange(year, month)[1]))
    return points[::-1]


def monthly_figures(session, *, months: int = 12, as_of: date | None = None) -> list[dict]:
    """One dict per month end, oldest first: ``month`` (YYYY-MM), ``as_of`` (the month's last day,
    or ``as_of`` for the month so far), ``figures`` (``ar_report``'s figures as known then: rates
    are fractions 0..1 or None with nothing to divide by, days_in_ar in days) and the aging by
    payer (``aging_by_payer``: payer -> bucket -> insurance, patient, claims)."""
    return _months(session, months, as_of or today())[0]


def _months(session, months: int, as_of: date) -> tuple[list[dict], list[int]]:
    out, report = report_and_months(session, months=months, as_of=as_of)
    # every claim a month counts is known by the last one
    return out, [b.claim_id for b in report.claims]


def report_and_months(session, *, months: int = 12, as_of: date | None = None):
    """``monthly_figures`` and, from the same read, the month so far's report, which is ``ar_report``
    as of ``as_of`` (``bhhub ar``): one read of every claim and one computation of its balances
    fewer than asking for both (the workspace's overview shows both)."""
    from bhhub.remittance.ar import _Facts, ar_report

    as_of = as_of or today()

    if months < 1:
        raise ValueError("months must be at least 1")
    facts = _Facts.read(session)  # one read; each month is computed from it
    out, report = [], None
    for end in month_ends(as_of, months):
        # The month so far is `bhhub ar --as-of` itself (everything known now), so the trend's
        # last point and the A/R page agree; a past month end is what was known by then.
        report = ar_report(session, end, facts=facts, known_by=None if end == as_of else end)
        out.append({"month": f"{end:%Y-%m}", "as_of": end, "figures": report.figures,
                    "aging_by_payer": report.aging["by_payer"]})
    return out, report


def trend_report(hub, session, *, months: int = 12, as_of: date | None = None) -> dict:
    """What ``bhhub ar --trend --json`` prints: ``months`` (``monthly_figures``, oldest first)
    and ``formulas`` (``bhhub.remittance.ar.FORMULAS``). Audited as a read of the claims'."""
    from bhhub.remittance.ar import FORMULAS

    as_of = as_of or today()
    data, claim_ids = _months(session, months, as_of)
    hub.audit(session, "ar_trend", "claim", claim_ids, f"{months} months to {as_of}")
    return {"as_of": as_of, "months": data, "formulas": FORMULAS}
