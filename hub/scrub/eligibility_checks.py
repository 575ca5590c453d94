"""Claim checks against the payer's own eligibility answers (271s and payer portals).

A built-in plugin like ``bhhub.scrub.ledger_checks``. A claim is judged by the payer's newest
answered check (by the date the payer made it, BHT04) for its payer and member about its own
patient (dependents may share the subscriber's member id: a 2000D answer is about a dependent, a
2000C one about the subscriber) whose date of service is within ``window_days`` of the claim's
(``mappings/rules/eligibility.toml``). A benefit counts only on its dates (2100C/D and 2110 DTP),
at its places (2115 III) and in its network (EB12):

    eligibility.inactive          error    the payer said coverage is inactive on that day
    eligibility.carve_out         error    mental health is administered by another payer: bill that one
    eligibility.visits_exhausted  error    no covered visits remain
    eligibility.not_covered       error    a line's service is not covered (EB01 I) or excluded (E) on a
                                           service type its code falls under (``[[service_types]]``);
                                  warning  when the same service type is also said active (unclear)
    eligibility.auth_required     error    the payer requires an authorization (EB11 Y, or its MSG says so)
                                           and no active authorization in the ledger covers the day (the
                                           answer feeds the ledger's gate: its codes and count are then the
                                           authorization checks' to judge); one required under a condition
                                           only when the claim meets it: a visit past the count (the
                                           member's visits this plan year in the hub's claims), a code named
    eligibility.auth_condition    warning  an authorization required under a condition the hub cannot read

and by the payer's refusals of the question since its last answer about a day in the same window
(a refusal of the subscriber's data, AAA at 2100A-C, concerns every claim carrying that subscriber;
an AAA inside a benefit loop, 2110C/D, the claims for that benefit's services):

    eligibility.identity          error    the payer did not recognise the member as asked (AAA 72, 75,
                                           73, 58, 71...): correct the field the fix names
    eligibility.rejected          warning  refused for another reason (the provider, the dates asked);
                                           "ask again later" (42, 79, 80) is nothing

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

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub import hookimpl
from bhhub.eligibility import codes as eligibility_codes
from bhhub.eligibility import refusals, store
from bhhub.eligibility.benefit_entries import DatePeriod, in_effect, limits_before
from bhhub.eligibility.service_benefits import benefits_from_json
from bhhub.eligibility.service_types import PLAN
from bhhub.eligibility.conditions import AuthRule
from bhhub.eligibility.coverage import coverage
from bhhub.eligibility.service_types import ServiceTypes
from bhhub.ledger import authorization_matching
from bhhub.model import Claim, Finding, Severity
from bhhub.store import schema
from bhhub.types import ClaimCheck

TABLE = "rules/eligibility.toml"
DEFAULT_WINDOW_DAYS = 30
_CACHE_KEY = "eligibility_answers"
AUTH_REQUIRED = "eligibility.auth_required"
AUTH_CONDITION = "eligibility.auth_condition"
_AUTHORIZATION = (AUTH_REQUIRED, AUTH_CONDITION)


def window_days(mappings) -> int:
    return int(mappings.load(TABLE).get("checks", {}).get("window_days", DEFAULT_WINDOW_DAYS))


def check_eligibility(claim: Claim, context: Any) -> list[Finding]:
    if context is None or not claim.lines:
        return []  # no service, no date to check coverage on: claim.no_lines says what to fix
    payer_id, member_id = claim.coverage.payer.payer_id, claim.coverage.member_id
    service_date = claim.service_date
    answers = [a for a in _answers(context, payer_id, member_id) if _concerns(a, claim)]
    if not answers:
        return []
    # The answers about a day near the visit, the payer's newest first.
    window = window_days(context.mappings)
    answers = [a for a in answers if abs((a.service_date - service_date).days) <= window]
    findings = _refusal_findings(answers, payer_id, context.mappings)
    answer = next((a for a in answers if a.state == store.ANSWERED), None)
    if answer is not None:
        place = claim.place_of_service
        benefits = _benefits(context, answer)
        findings += findings_for(answer, payer_id, service_date, place_of_service=place, benefits=benefits)
        if not any(f.code == "eligibility.inactive" for f in findings):
            findings += _not_covered_findings(context, claim, answer, payer_id)
            findings += _condition_findings(context, claim, answer, payer_id, benefits)
            findings += _benefit_refusal_findings(context, claim, answer, payer_id, benefits)
    if any(f.code in _AUTHORIZATION for f in findings) and _authorized(context, payer_id, member_id, service_date):
        findings = [f for f in findings if f.code not in _AUTHORIZATION]  # the ledger holds one for the day
    return findings


def _concerns(answer, claim: Claim) -> bool:
    """Whether an answer speaks about this claim's patient. A refusal of the subscriber's data
    (AAA at 2100A-C) concerns every claim carrying that subscriber; anything else only the
    patient it describes: the one it was matched to, or, unmatched (a member id dependents
    share), the claims of a patient in the same place (2000C the subscriber, 2000D a dependent)."""
    response = answer.response or {}
    if answer.state != store.ANSWERED and any(
            (r.get("loop") or "")[-1:] in ("A", "B", "C") for r in response.get("rejections") or ()):
        return True
    if answer.patient_key is not None:
        return answer.patient_key == claim.patient.key
    role = response.get("patient")
    return role is None or role == ("subscriber" if claim.coverage.patient_is_subscriber else "dependent")


def _per(answer, payer_id: str) -> str:
    return f"per payer {payer_id}'s answer of {store.said_on(answer)}"


def findings_for(answer, payer_id: str, service_date: date, *, place_of_service: str | None = None,
                 benefits: dict | None = None) -> list[Finding]:
    """What one answered check says about any claim of the member with this date of service
    (at this place of service)."""
    response = answer.response or {}
    per = _per(answer, payer_id)
    if answer.active is False and not _covered_until(response, service_date):
        return [Finding(
            "eligibility.inactive", Severity.ERROR,
            f"coverage inactive on {answer.service_date} {per}",
            "verify the patient's coverage and update the insurance in the EHR (then send the visit again), "
            "or bill the patient")]
    if benefits is None:
        benefits = benefits_from_json(response)
    ended = _not_in_effect(response, benefits, service_date)
    if ended is not None:
        return [Finding(
            "eligibility.inactive", Severity.ERROR,
            f"coverage not in effect on the date of service {service_date}: the payer's dates for it "
            f"{ended} {per}",
            "verify the patient's coverage on that day and update the insurance in the EHR (then send the visit "
            "again), or bill the patient")]
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
    if _auth_always(summary, benefits, place_of_service, service_date):
        findings.append(_auth_required(
            f"the payer requires an authorization for outpatient mental health {per}, and none on file "
            f"covers {service_date}"))
    return findings


def _auth_always(summary: dict, benefits: dict, place_of_service: str | None, service_date: date) -> bool:
    """An authorization required for every visit: a MSG saying so without condition, or EB11 Y on
    the most specific mental-health service type that says, counting only the benefits that apply
    to a visit in network at this place on this day (EB12, 2115 III, 2110 DTP)."""
    if summary.get("auth_required") is True and (summary.get("sources") or {}).get("auth_required") == "MSG":
        return True
    for stc in eligibility_codes.mental_health_preference():
        if stc in benefits:
            said = benefits[stc].auth_required_for(place_of_service, service_date)
            if said is not None:
                return said
    return False


def _not_in_effect(response: dict, benefits: dict, service_date: date) -> str | None:
    """How the answer's dates leave out the day ("ended 2026-10-31", "do not include it"), or None.
    The patient's dates (2100C/D DTP: plan, eligibility) bound everything; when every active
    benefit (EB01 1-5) has dates of its own (2110 DTP), one of them must include the day."""
    level = []
    for found in (response.get("coverage_dates") or {}).values():
        try:
            level.append(DatePeriod.from_json(found))
        except (KeyError, TypeError, ValueError):
            continue
    active = [e for b in benefits.values() for e in b.entries if e.active]
    if in_effect(level, service_date) and (not active or any(in_effect(e.dates, service_date) for e in active)):
        return None
    dates = level if not in_effect(level, service_date) else [d for e in active for d in e.dates]
    ended = limits_before(dates, service_date)
    return f"ended {ended}" if ended is not None else "do not include it"


def _auth_required(message: str) -> Finding:
    return Finding(AUTH_REQUIRED, Severity.ERROR, message,
                   "get the authorization from the payer and enter it (`bhhub auth add`, or `bhhub auth import`); "
                   "the claim is checked again when it is entered")


# --- not covered ------------------------------------------------------------------------------------


def _not_covered_findings(context: Any, claim: Claim, answer, payer_id: str) -> list[Finding]:
    """EB01 I or E on a service type a line's code falls under (domain reference 8.3)."""
    types = _service_types(context)
    benefits = _benefits(context, answer)
    findings = []
    for number, line in enumerate(claim.lines, start=1):
        # "30" (the plan as a whole) last: EB*I on 30 alone is every service not covered.
        service_types = (*types.of(line.procedure_code), PLAN)
        covered, said = coverage(benefits, service_types, procedure_code=line.procedure_code,
                                 place_of_service=line.place_of_service or claim.place_of_service,
                                 service_date=line.service_date or claim.service_date,
                                 inactive_refuses=answer.active is not False)
        if said is None:
            continue
        what = {"E": "excluded from the plan", "I": "not covered"}.get(said.benefit_code, "not covered (inactive)")
        note = f" (the payer's note: {said.messages[0][:120]})" if said.messages else ""
        where = f"line {number} ({line.procedure_code})"
        if covered is False:
            findings.append(Finding(
                "eligibility.not_covered", Severity.ERROR,
                f"{where}: {said.describe()} is {what} {_per(answer, payer_id)}{note}",
                "confirm the benefit with the payer; bill another coverage the patient has, or the patient if "
                "they agreed in writing to pay for a service their plan does not cover; if the payer confirms it "
                "is covered, record that with `bhhub override CLAIM eligibility.not_covered --line N --reason ...`",
                number))
        else:
            findings.append(Finding(
                "eligibility.not_covered", Severity.WARNING,
                f"{where}: payer {payer_id} says {said.describe()} is both active and {what}{note}",
                "ask the payer whether this service is covered for the patient before billing", number))
    return findings


# --- authorizations required under a condition -------------------------------------------------------


def _condition_findings(context: Any, claim: Claim, answer, payer_id: str, benefits: dict) -> list[Finding]:
    """An authorization the payer requires only for some visits (past a count, for some codes):
    an error when the claim meets the condition, a warning when the condition cannot be read."""
    summary = (answer.response or {}).get("mental_health") or {}
    if _auth_always(summary, benefits, claim.place_of_service, claim.service_date):
        return []  # required for every visit: said already
    types = _service_types(context)
    per = _per(answer, payer_id)
    findings: dict[str, Finding] = {}
    for rule in (AuthRule.from_json(r) for r in summary.get("auth_conditions") or ()):
        lines = [line for line in claim.lines if types.under(line.procedure_code, rule.service_types)
                 and (not rule.procedure_codes or line.procedure_code in rule.procedure_codes)]
        if not lines:
            continue
        codes = ", ".join(dict.fromkeys(line.procedure_code for line in lines))
        if not rule.readable:
            findings.setdefault(AUTH_CONDITION, Finding(
                AUTH_CONDITION, Severity.WARNING,
                f"the payer requires an authorization under a condition the hub cannot read "
                f"({rule.message[:160]!r}) {per}; none on file covers {claim.service_date}",
                "read the payer's condition; if this visit meets it, get the authorization and enter it "
                "(`bhhub auth add`)"))
            continue
        first_day = min(line.service_date for line in lines)
        if rule.after_visits is not None:
            visit, since = _visit_number(context, claim, rule, first_day, types)
            if visit <= rule.after_visits:
                continue
            findings[AUTH_REQUIRED] = _auth_required(
                f"this is visit {visit} since {since} ({codes}); the payer requires an authorization after visit "
                f"{rule.after_visits} {per}, and none on file covers {first_day}")
        else:
            findings[AUTH_REQUIRED] = _auth_required(
                f"the payer requires an authorization for {codes} {per}, and none on file covers {first_day}")
    return list(findings.values())


def _visit_number(context: Any, claim: Claim, rule: AuthRule, day: date, types: ServiceTypes) -> tuple[int, date]:
    """Which visit of the plan year ``day`` is: 1 + the other days the member (this patient) had a
    visit the rule is about, from the year's first day to the day before, in the hub's claims
    (every claim but voided ones: the visit happened whatever its claim's fate)."""
    from bhhub.scrub.ledger_checks import plan_year

    first, _ = plan_year(day, rule.period_start)
    c, s, cov, payer, patient = schema.Claim, schema.ServiceLine, schema.Coverage, schema.Payer, schema.Patient
    voided = select(c.patient_control_number).where(c.frequency_code == "8")
    query = (select(s.service_date, s.procedure_code).distinct()
             .select_from(c).join(s, s.claim_id == c.id).join(cov, cov.id == c.coverage_id)
             .join(payer, payer.id == cov.payer_id).join(patient, patient.id == c.patient_id)
             .where(payer.payer_id == claim.coverage.payer.payer_id, cov.member_id == claim.coverage.member_id,
                    patient.key == claim.patient.key, c.status != "void",
                    c.patient_control_number != claim.patient_control_number,
                    c.patient_control_number.not_in(voided), s.service_date >= first, s.service_date < day))
    shared = getattr(context, "connection", None)
    if shared is not None:
        rows = shared.execute(query).all()
    else:
        with context.store.engine.connect() as connection:
            rows = connection.execute(query).all()
    days = {when for when, code in rows if types.under(code, rule.service_types)
            and (not rule.procedure_codes or code in rule.procedure_codes)}
    return len(days) + 1, first


# --- the payer refused the question ---------------------------------------------------------------


def _refusal_findings(answers: list, payer_id: str, mappings) -> list[Finding]:
    """The payer's refusals since its last answer (and any on that answer), newest first: one
    finding for those about the member's identity, one for the others."""
    kinds: dict[bool, dict[str, tuple[refusals.Reason, date]]] = {True: {}, False: {}}
    for answer in answers:
        for reason in refusals.reasons(answer.response, mappings):
            kinds[reason.identity].setdefault(reason.code, (reason, answer.service_date))
        if answer.state == store.ANSWERED:
            break  # the payer answered after anything older: that is its word now
    findings = []
    for identity, found in kinds.items():
        if not found:
            continue
        reasons = [reason for reason, _ in found.values()]
        asked = next(iter(found.values()))[1]
        said = "; ".join(r.describe() for r in reasons)
        follow = "; ".join(dict.fromkeys(r.follow_up for r in reasons if r.follow_up))
        refused = f"payer {payer_id} refused the eligibility question about {asked}: {said}" + (
            f" (the payer says: {follow})" if follow else "")
        if identity:
            fields = " and ".join(dict.fromkeys(r.field for r in reasons))
            findings.append(Finding(
                "eligibility.identity", Severity.ERROR,
                f"{refused}; a claim with the same member data would be rejected",
                f"check {fields} against the insurance card and correct it in the EHR (then send the visit again), "
                "and ask again with `bhhub eligibility check`"))
        else:
            findings.append(Finding(
                "eligibility.rejected", Severity.WARNING, refused,
                "correct what the reason names (the provider's identifiers, the dates asked) and ask again with "
                "`bhhub eligibility check`"))
    return findings


def _benefit_refusal_findings(context: Any, claim: Claim, answer, payer_id: str, benefits: dict) -> list[Finding]:
    """An AAA inside a benefit loop (2110C/D): the payer could not answer about that benefit, for a
    reason that concerns the claims for its services (a member id it does not know is an error,
    as above the benefit loops; another reason a warning)."""
    types = _service_types(context)
    rejections: list[dict] = []
    about: list[str] = []
    for stc, found in benefits.items():
        for entry in found.entries:
            if not entry.rejections or not any(types.under(line.procedure_code, entry.service_types)
                                               for line in claim.lines):
                continue
            rejections += [r.to_json() for r in entry.rejections]
            about.append(stc)
    if not rejections:
        return []
    reasons = refusals.reasons_of(rejections, context.mappings)
    what = ", ".join(f"{eligibility_codes.describe('service_type', s)} ({s})" for s in dict.fromkeys(about))
    findings = []
    for identity in (True, False):
        chosen = [r for r in reasons if r.identity == identity]
        if not chosen:
            continue
        said = "; ".join(r.describe() for r in chosen)
        refused = f"payer {payer_id} could not answer about {what} in its answer of {store.said_on(answer)}: {said}"
        if identity:
            fields = " and ".join(dict.fromkeys(r.field for r in chosen))
            findings.append(Finding(
                "eligibility.identity", Severity.ERROR, f"{refused}; a claim with the same member data would be rejected",
                f"check {fields} against the insurance card and correct it in the EHR (then send the visit again), "
                "and ask again with `bhhub eligibility check`"))
        else:
            findings.append(Finding(
                "eligibility.rejected", Severity.WARNING, refused,
                "correct what the reason names and ask again with `bhhub eligibility check`"))
    return findings


# --- reading -----------------------------------------------------------------------------------------


def _authorized(context: Any, payer_id: str, member_id: str, service_date: date) -> bool:
    """An active authorization in the ledger for this member covers the day (its codes and count
    are the authorization checks' to judge)."""
    def covering(session: Session) -> bool:
        return any(a.start_date <= service_date <= a.end_date
                   for a in authorization_matching.candidates(session, payer_id, member_id))

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


_TYPES: tuple[dict, ServiceTypes] | None = None


def _service_types(context: Any) -> ServiceTypes:
    """The ``[[service_types]]`` table, worked out once per loaded table."""
    global _TYPES
    table = context.mappings.load(TABLE)
    if _TYPES is None or _TYPES[0] is not table:
        _TYPES = (table, ServiceTypes.from_mappings(context.mappings))
    return _TYPES[1]


def _benefits(context: Any, answer) -> dict:
    """The answer's benefits as typed records; read once per answer when checking many claims."""
    cache = getattr(context, "cache", None)
    if cache is None:
        return benefits_from_json(answer.response or {})
    kept = cache.setdefault("eligibility_benefits", {})
    if answer.id not in kept:
        kept[answer.id] = benefits_from_json(answer.response or {})
    return kept[answer.id]


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
                       "coverage active, services covered, not carved out, visits left, authorization rules and "
                       "the member's identity, per the payer's latest eligibility answer", check_eligibility)]
