"""The built-in timely-filing check (``core.timely_filing``, registered by ``bhhub.scrub.core``):
an error once the payer's filing window has passed, a warning within the validity table's
``timely_filing.warn_within_days`` of its last day.

The window and what starts its clock depend on the payer's kind (SBR09), its state (Medicaid)
and the claim type (domain reference 10.1); ``bhhub.remittance.deadlines`` answers from
``mappings/rules/filing_windows.toml``. A clock counting from a remittance reads the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select

from bhhub.coding.rules import claim_filing_indicator
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding
from bhhub.remittance.deadlines import FilingWindows
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.scrub import core_common
from bhhub.scrub.core_common import error, mappings_for, validity_table, warning
from bhhub.store import schema


def check_timely_filing(claim: Claim, context: Any = None) -> Iterator[Finding]:
    # Domain reference 10.1: the window and what starts its clock depend on the payer's kind
    # (SBR09), its state (Medicaid) and the claim type; bhhub.remittance.deadlines answers from
    # mappings/rules/filing_windows.toml. A clock whose start is unknown yet is not judged.
    if not claim.lines:
        return
    mappings = mappings_for(context)
    claim_type = _claim_type(claim)
    payer = claim.coverage.payer
    address = claim.billing_provider.address
    windows = FilingWindows.of(mappings)
    state = address.state if address is not None else None
    # A scrub asks the same few questions many times.
    window = _WINDOWS.get(windows, (claim_type, payer.payer_id, payer.claim_filing_indicator, state),
                          _window_of, windows, mappings, claim_type, payer, state)
    start = _clock_start(claim, window.anchor, context) if window is not None else None
    if window is None or start is None:
        return
    last_day = _LAST_DAYS.get(window, start, window.last_day, start)
    now = core_common.today()
    left = (last_day - now).days
    warn_within = int(validity_table(context).get("timely_filing", {}).get("warn_within_days", 14))
    if left > warn_within:
        return
    rule = f"{payer.name or payer.payer_id} takes {_WHAT[claim_type]} {window.describe()} ({window.source})"
    if left < 0:
        yield error(
            "filing.deadline_passed",
            f"{rule}: that was {start.isoformat()}, {(now - start).days} days ago, and the last day was "
            f"{last_day.isoformat()}",
            _LATE_FIX[claim_type],
        )
    else:
        yield warning(
            "filing.deadline_near",
            f"{rule}: counting from {start.isoformat()}, the last day is {last_day.isoformat()}, in {left} days",
            f"send this claim before {last_day.isoformat()}; keep its 999/277CA acceptance as proof",
        )


_WINDOWS: IdentityMemo[Any] = IdentityMemo(limit=10_000)  # per windows table and question: its window
_LAST_DAYS: IdentityMemo[date] = IdentityMemo(limit=50_000)  # per window and start: claims share their dates


def _window_of(windows: FilingWindows, mappings: MappingSet, claim_type: str, payer: Any, state: str | None) -> Any:
    return windows.window(claim_type, payer_id=payer.payer_id, state=state,
                          filing_indicator=payer.claim_filing_indicator or claim_filing_indicator(mappings, payer))


_WHAT = {"original": "claims", "replacement": "corrected claims", "void": "voids",
         "secondary": "secondary claims"}
_PROOF = "bill only with proof of timely filing (an earlier submission's 999/277CA acceptance) or a delay reason " \
         "(CLM20), and appeal a CO-29 denial with it; without proof, write it off (the patient may not be billed)"
_LATE_FIX = {
    "original": _PROOF,
    "secondary": _PROOF,
    "replacement": "ask the payer whether it still reopens the claim (or appeal instead, within the appeal window); "
                   "if not, the original adjudication stands",
    "void": "ask the payer to reopen or recoup the claim by phone or letter; a late void may be refused",
}


def _claim_type(claim: Claim) -> str:
    if claim.frequency_code == "7":
        return "replacement"
    if claim.frequency_code == "8":
        return "void"
    return "secondary" if claim.coverage.order > 1 else "original"


def _clock_start(claim: Claim, anchor: str, context: Any) -> date | None:
    if anchor == "service_date":
        return claim.service_date  # the first date of service (Medicare Part B: the "from" date)
    if anchor == "primary_remittance":
        dates = [a.adjudication_date for a in claim.prior_adjudications if a.coverage.order < claim.coverage.order]
        return max(dates) if dates else None
    if anchor == "remittance":
        return _remittance_date(claim, context)
    return None


_r, _pay = schema.RemitClaim, schema.RemitPayment
# The latest 835 posted for the claim (not a reversal): what a correction or void answers.
_LAST_REMITTANCE = (
    select(func.max(_pay.payment_date)).select_from(_r).join(_pay, _pay.id == _r.payment_id)
    .where(_r.patient_control_number == bindparam("pcn"), _r.state == "posted", _r.status_code != "22")
)


def _remittance_date(claim: Claim, context: Any) -> date | None:
    if getattr(context, "store", None) is None:
        return None
    parameters = {"pcn": claim.patient_control_number}
    shared = getattr(context, "connection", None)  # intake's own transaction
    if shared is not None:
        return shared.execute(_LAST_REMITTANCE, parameters).scalar()
    with context.store.engine.connect() as connection:
        return connection.execute(_LAST_REMITTANCE, parameters).scalar()
