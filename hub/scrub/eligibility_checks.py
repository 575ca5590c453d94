"""Claim checks against the payer's own eligibility answers (271s and payer portals).

A built-in plugin like ``hub.scrub.ledger_checks``. A claim is judged by the newest answered
check for its payer and member (and patient: dependents may share the subscriber's member id)
whose date of service is within ``window_days`` of the claim's (``mappings/rules/eligibility.toml``):

    eligibility.inactive          error    the payer said coverage is inactive on that day
    eligibility.carve_out         error    mental health is administered by another payer: bill that one
    eligibility.visits_exhausted  error    no covered visits remain
    eligibility.auth_required     error    the payer requires an authorization (EB11 Y, or its MSG says so)
                                           and no active authorization in the ledger covers the day (the
                                           answer feeds the ledger's gate: its codes and count are then the
                                           authorization checks' to judge)

No check on file, or only failed ones, is no finding: the hub does not know, and says nothing.
An inactive answer whose eligibility end date (DTP*357) is on or after the claim's date of
service does not hold the claim: it was covered that day.

Reads through the caller's transaction (``context.connection``) when given; a ``BulkContext``
reads every answered check once into ``context.cache``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from hub import hookimpl
from hub.eligibility import store
from hub.ledger import authorizations as ledger
from hub.model import Claim, Finding, Severity
from hub.types import ClaimCheck

TABLE = "rules/eligibility.toml"
DEFAULT_WINDOW_DAYS = 30
_CACHE_KEY = "eligibility_answers"
AUTH_REQUIRED = "eligibility.auth_required"


def window_days(mappings) -> int:
    return int(mappings.load(TABLE).get("checks", {}).get("window_days", DEFAULT_WINDOW_DAYS))


def check_eligibility(claim: Claim, context: Any) -> list[Finding]:
    if context is None:
        return []
    payer_id, member_id = claim.coverage.payer.payer_id, claim.coverage.member_id
    answers = _answers(context, payer_id, member_id)
    if not answers:
        return []
    service_date = claim.service_date
    window = window_days(context.mappings)
    answer = next((a for a in answers
                   if abs((a.service_date - service_date).days) <= window
                   and (a.patient_key is None or a.patient_key == claim.patient.key)), None)
    if answer is None:
        return []
    findings = findings_for(answer, payer_id, service_date)
    if any(f.code == AUTH_REQUIRED for f in findings) and _authorized(context, payer_id, member_id, service_date):
        findings = [f for f in findings if f.code != AUTH_REQUIRED]  # the ledger holds one for the day
    return findings


def findings_for(answer, payer_id: str, service_date: date) -> list[Finding]:
    """What one answered check says about a claim with this date of service."""
    response = answer.response or {}
    answered = answer.answered_at.date() if answer.answered_at else answer.service_date
    per = f"per payer {payer_id}'s answer of {answered}"
    if answer.active is False and not _covered_until(response, service_date):
        return [Finding(
            "eligibility.inactive", Severity.ERROR,
            f"coverage inactive on {answer.service_date} {per}",
            "verify the patient's coverage and update the insurance in the EHR (then send the visit again), "
            "or bill the patient")]
    summary = response.get("mental_health") or {}
    findings = []
    carve_out = summary.get("carve_out")
    if carve_out and carve_out.get("payer_id") != payer_id:
        who = carve_out.get("payer_name") or "another payer"
        if carve_out.get("payer_id"):
            who += f" (payer id {carve_out['payer_id']})"
        findings.append(Finding(
            "eligibility.carve_out", Severity.ERROR,
            f"mental health benefits are administered by {who}, not payer {payer_id}, {per}",
            f"bill {who}: add that coverage in the EHR, check eligibility with it (`bhhub eligibility check`), "
            "and send the visit again (a claim sent here is denied, CARC 109)"))
    remaining = _number(summary.get("visits_remaining"))
    if remaining is not None and remaining <= 0:
        allowed = _number(summary.get("visits_allowed"))
        of = f" of {allowed.normalize():f}" if allowed is not None else ""
        findings.append(Finding(
            "eligibility.visits_exhausted", Severity.ERROR,
            f"no covered mental-health visits remain (0{of}) {per}",
            "ask the payer for more visits or an authorization, bill the next payer, or bill the patient "
            "if they were told in advance (plan rules)"))
    if summary.get("auth_required") is True:
        findings.append(Finding(
            AUTH_REQUIRED, Severity.ERROR,
            f"the payer requires an authorization for outpatient mental health {per}, and none on file "
            f"covers {service_date}",
            "get the authorization from the payer and enter it (`bhhub auth add`, or `bhhub auth import`); "
            "the claim is checked again when it is entered"))
    return findings


def _authorized(context: Any, payer_id: str, member_id: str, service_date: date) -> bool:
    """An active authorization in the ledger for this member covers the day (its codes and count
    are the authorization checks' to judge)."""
    def covering(session: Session) -> bool:
        return any(a.start_date <= service_date <= a.end_date
                   for a in ledger.candidates(session, payer_id, member_id))

    shared = getattr(context, "connection", None)
    if shared is not None:
        with Session(bind=shared) as session:
            return covering(session)
    with context.store.session() as session:
        return covering(session)


def _covered_until(response: dict, service_date: date) -> bool:
    """The answer gives an eligibility end date (DTP*357) on or after ``service_date``."""
    end = (response.get("coverage_dates") or {}).get("357")
    if not end:
        return False
    try:
        last = date.fromisoformat(end.get("end") or end["start"])
    except (KeyError, TypeError, ValueError):
        return False
    return service_date <= last


def _number(text: Any) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None


def _answers(context: Any, payer_id: str, member_id: str) -> list:
    cache = getattr(context, "cache", None)
    if cache is not None:  # many claims: every answered check, read once
        answers = cache.get(_CACHE_KEY)
        if answers is None:
            with context.store.engine.connect() as connection:
                answers = cache[_CACHE_KEY] = store.all_answers(connection)
        return answers.get((payer_id, member_id), [])
    shared = getattr(context, "connection", None)
    if shared is not None:  # inside intake's or a change's transaction: see what it wrote
        return store.answers_for(shared, payer_id, member_id)
    with context.store.engine.connect() as connection:
        return store.answers_for(connection, payer_id, member_id)


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("eligibility.answers",
                       "coverage active, not carved out, visits left and authorization rules, per the payer's "
                       "latest eligibility answer", check_eligibility)]
