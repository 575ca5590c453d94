"""Claim checks against the store's ledgers: authorizations, plan-year session limits, enrollment.

A built-in plugin like ``bhhub.scrub.core``. The context is the hub: each check opens a short
read session of its own; without a hub (a claim checked on its own) there is nothing to check
against and no finding. Which payer needs an authorization for which codes, session limits and
warning thresholds are data: ``mappings/rules/authorization.toml``.

Counting: uses recorded by other claims (``authorization_uses``, made when a claim goes out),
never by an earlier revision of this claim, which this one replaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bhhub import hookimpl
from bhhub.ledger import authorization_matching, authorization_uses
from bhhub.ledger import authorizations as ledger
from bhhub.ledger import credentialing
from bhhub.ledger.authorization_matching import BilledClaim
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, Severity
from bhhub.store import schema
from bhhub.types import ClaimCheck

TABLE = "rules/authorization.toml"
# A claim in one of these states holds a plan-year visit (denied, rejected, void ones do not).
COUNTED = ("ready", "batched", "submitted", "accepted", "paid", "partially_paid")


@dataclass(frozen=True)
class PayerRules:
    requires: frozenset[str] | None  # codes needing authorization; empty: every code; None: none
    visits_remaining: int
    days_before_end: int
    session_limit: dict | None


_RULES: IdentityMemo[PayerRules] = IdentityMemo(limit=10_000)


def payer_rules(table: dict, payer_id: str) -> PayerRules:
    """The table's rules for ``payer_id`` (worked out once per table and payer)."""
    return _RULES.get(table, payer_id, _payer_rules, table, payer_id)


def _payer_rules(table: dict, payer_id: str) -> PayerRules:
    """The table's rules for ``payer_id``: the all-payer codes plus the payer's own entry."""
    warnings = table.get("warnings", {})
    entry = table.get("payers", {}).get(payer_id, {})
    everyone = set(table.get("all_payers", {}).get("requires_authorization", []))
    own = entry.get("requires_authorization")
    if own is not None and not own:
        requires: frozenset[str] | None = frozenset()  # every code
    elif everyone or own:
        requires = frozenset(everyone | set(own or ()))
    else:
        requires = None
    return PayerRules(requires, int(entry.get("visits_remaining", warnings.get("visits_remaining", 2))),
                      int(entry.get("days_before_end", warnings.get("days_before_end", 21))),
                      entry.get("session_limit"))


def _needs_authorization(rules: PayerRules, code: str) -> bool:
    return rules.requires is not None and (not rules.requires or code in rules.requires)


def _error(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def _warning(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


# --- authorizations and session limits ---------------------------------------------------------


def _billed(claim: Claim) -> BilledClaim:
    """The claim as the ledger sees it, made once for both ledger checks of the same claim."""
    if _LAST[0] is not claim:
        _LAST[:] = [claim, BilledClaim.from_model(claim)]
    return _LAST[1]


_LAST: list = [None, None]


def check_authorizations(claim: Claim, context: Any) -> list[Finding]:
    if context is None:
        return []
    rules = payer_rules(context.mappings.load(TABLE), claim.coverage.payer.payer_id)
    if not rules.session_limit and (rules.requires is None or (
            rules.requires and not any(l.procedure_code in rules.requires for l in claim.lines))):
        return []  # nothing this payer asks for on these codes: the ledger's view is not needed
    billed = _billed(claim)
    needing = [l for l in billed.lines if _needs_authorization(rules, l.procedure_code)]
    if not needing and not rules.session_limit:
        return []
    with _session(context) as session:
        findings = list(_authorization_findings(session, billed, rules, {l.number for l in needing}))
        if rules.session_limit:
            findings += _limit_findings(session, billed, rules.session_limit)
    return findings


def _session(context: Any) -> Session:
    """A session on the caller's open transaction when there is one (intake, a ledger change
    re-checking its claims): the check sees what that transaction wrote, and closing the
    session neither commits nor rolls it back. Otherwise a short session of its own."""
    connection = getattr(context, "connection", None)
    return Session(bind=connection) if connection is not None else context.store.session()


def _authorization_findings(session, billed: BilledClaim, rules: PayerRules, needing: set[int]) -> Iterator[Finding]:
    if not needing:
        return
    authorizations = authorization_matching.candidates(session, billed.payer_id, billed.member_id)
    others = authorization_uses.used(session, [a.id for a in authorizations], excluding_pcn=billed.patient_control_number)
    matches = authorization_matching.match_lines(billed, authorizations, others)
    needs = authorization_matching.line_needs(matches)
    taken: dict[int, Decimal] = {}
    last_line: dict[int, tuple] = {}
    for m in matches:
        line = m.line
        a = m.authorization
        if a is not None:
            taken[a.id] = taken.get(a.id, Decimal(0)) + needs[line.number]
        if line.number not in needing:
            continue
        number = line.authorization_number or billed.authorization_number
        if a is None and m.near is not None:
            yield _error("auth.outside_dates",
                         f"line {line.number} ({line.procedure_code}) on {line.service_date} is outside authorization "
                         f"{m.near.number} ({m.near.start_date} to {m.near.end_date})",
                         "request an extension or a new authorization from the payer and enter it "
                         "(`bhhub auth add`), or correct the date of service", line.number)
        elif a is None:
            named = f" {number}" if number else ""
            yield _error("auth.missing",
                         f"line {line.number} ({line.procedure_code}) needs a prior authorization{named} and none "
                         f"on file covers it (payer, member, code, rendering provider)",
                         "enter the payer's authorization with `bhhub auth add`, or correct the authorization "
                         "number on the claim", line.number)
        else:
            total = others.get(a.id, Decimal(0)) + taken[a.id]
            if needs[line.number] and total > a.quantity:
                yield _error("auth.exhausted",
                             f"line {line.number} ({line.procedure_code}) would be {a.unit_type[:-1]} {ledger.count_text(total)} of "
                             f"{ledger.count_text(a.quantity)} on authorization {a.number}",
                             "request more visits from the payer (concurrent review) before billing", line.number)
            else:
                last_line[a.id] = (a, line, a.quantity - total)
    for a, line, left in last_line.values():
        # Whichever comes first: few visits left, or the end date near (domain reference 9.3).
        days_left = (a.end_date - line.service_date).days
        reasons = []
        if left <= rules.visits_remaining:
            reasons.append(f"{ledger.count_text(left)} {a.unit_type} left after this claim")
        if days_left <= rules.days_before_end:
            reasons.append(f"it ends {a.end_date}, {days_left} days after this service")
        if reasons:
            yield _warning("auth.nearly_used", f"authorization {a.number}: " + " and ".join(reasons),
                           "ask the payer for the next block of visits now", line.number)


def plan_year(day: date, start: str) -> tuple[date, date]:
    """The plan year (first day, last day) containing ``day``; ``start`` is "MM-DD"."""
    month, dom = (int(p) for p in start.split("-"))
    begins = date(day.year, month, dom)
    if begins > day:
        begins = date(day.year - 1, month, dom)
    following = date(begins.year + 1, month, dom)
    return begins, date.fromordinal(following.toordinal() - 1)


def _limit_findings(session, billed: BilledClaim, limit: dict) -> list[Finding]:
    codes = set(limit.get("procedure_codes", []))
    visits = int(limit["visits"])
    warn = int(limit.get("visits_remaining", 1))
    days = sorted({l.service_date for l in billed.lines if not codes or l.procedure_code in codes})
    if not days:
        return []
    first, last = plan_year(days[0], str(limit.get("plan_year_start", "01-01")))
    days = [d for d in days if d <= last]
    c, s, cov, payer = schema.Claim, schema.ServiceLine, schema.Coverage, schema.Payer
    voided = select(c.patient_control_number).where(c.frequency_code == "8")
    query = (select(c.patient_control_number, s.service_date).distinct()
             .select_from(c).join(s, s.claim_id == c.id).join(cov, cov.id == c.coverage_id)
             .join(payer, payer.id == cov.payer_id)
             .where(payer.payer_id == billed.payer_id, cov.member_id == billed.member_id,
                    c.status.in_(COUNTED), c.patient_control_number != billed.patient_control_number,
                    c.patient_control_number.not_in(voided), s.service_date.between(first, last)))
    if codes:
        query = query.where(s.procedure_code.in_(codes))
    before = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    total = before + len(days)
    if total > visits:
        return [_error("limit.exceeded",
                       f"this claim makes visit {total} of the {visits} the plan pays from {first} to {last}",
                       "confirm the benefit with the payer; bill the patient only if they were told in advance "
                       "(plan rules), or send to the next payer")]
    if visits - total <= warn:
        return [_warning("limit.nearly_reached",
                         f"visit {total} of the {visits} the plan pays from {first} to {last}",
                         "tell the patient how many covered visits remain this plan year")]
    return []


# --- credentialing ---------------------------------------------------------------------------------


def check_credentialing(claim: Claim, context: Any) -> list[Finding]:
    if context is None or not claim.lines:
        return []  # no service, no date to be enrolled on: claim.no_lines says what to fix
    days = sorted({l.service_date for l in claim.lines})
    npi = (claim.rendering_provider or claim.billing_provider).npi  # as the ledger reads the claim
    payer_id = claim.coverage.payer.payer_id
    records, keeps_registry = _enrollments(context, npi, payer_id)
    if not keeps_registry:
        return []
    who = f"provider {npi} with payer {payer_id}"
    if not records:
        return [_warning("credentialing.unknown", f"the enrollment registry knows nothing of {who}",
                         "record the enrollment (`bhhub credentialing add` or `import`) so claims are checked")]
    findings = []
    for day in days:
        record = credentialing.on_date(records, day)
        if record is None:
            spans = ", ".join(f"{r.status} {r.effective_date or '…'} to {r.end_date or '…'}"
                              for r in sorted(records, key=lambda r: r.effective_date or date.min))
            findings.append(_error("credentialing.not_enrolled", f"{who} has no enrollment on {day} ({spans})",
                                   "bill for dates within the enrollment, or record its new dates"))
        elif record.status != "enrolled":
            findings.append(_error(
                "credentialing.not_enrolled",
                f"{who} is {record.status.replace('_', ' ')} on {day} "
                f"(from {record.effective_date or 'always'} to {record.end_date or 'open'})",
                "hold the claim until the payer loads the provider, or bill under an enrolled clinician "
                "if the payer allows"))
        elif not record.in_network:
            findings.append(_warning("credentialing.out_of_network", f"{who} is out of network on {day}",
                                     "the patient's out-of-network benefits apply; tell the patient"))
    return findings


def _enrollments(context: Any, npi: str, payer_id: str) -> tuple[list, bool]:
    """This provider's enrollments with this payer, and whether the practice keeps a registry at
    all (one that keeps none is not told so on every claim). Checking many claims at once
    (a ``BulkContext``), the whole registry is read once."""
    cache = getattr(context, "cache", None)
    if cache is None:
        shared = getattr(context, "connection", None)
        memo = getattr(context, "memo", None)
        if shared is not None and memo is not None:  # intake: the registry read once per transaction
            registry = memo.get("enrollments")
            if registry is None:
                registry = memo["enrollments"] = {}
                for record in shared.execute(select(_E)):
                    registry.setdefault((record.npi, record.payer_id), []).append(record)
            return registry.get((npi, payer_id), []), bool(registry)
        if shared is not None:  # one claim: two indexed reads, on the caller's connection
            return _enrollments_on(shared, npi, payer_id)
        with context.store.engine.connect() as connection:
            return _enrollments_on(connection, npi, payer_id)
    registry = cache.get("enrollments")
    if registry is None:
        registry = cache["enrollments"] = {}
        with context.store.session() as session:
            for record in session.scalars(select(schema.Enrollment)):
                registry.setdefault((record.npi, record.payer_id), []).append(record)
    return registry.get((npi, payer_id), []), bool(registry)


_E = schema.Enrollment.__table__
# Built once: the pair's enrollments, and whether the registry holds anything at all.
_PAIR = select(_E).where(_E.c.npi == bindparam("npi"), _E.c.payer_id == bindparam("payer_id"))
_ANY = select(_E.c.id).limit(1)


def _enrollments_on(connection, npi: str, payer_id: str) -> tuple[list, bool]:
    records = connection.execute(_PAIR, {"npi": npi, "payer_id": payer_id}).all()
    return records, bool(records) or connection.execute(_ANY).first() is not None


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [
        ClaimCheck("ledger.authorizations", "prior authorization on file, in its dates and count; plan-year limits",
                   check_authorizations),
        ClaimCheck("ledger.credentialing", "rendering provider enrolled with the payer on the date of service",
                   check_credentialing),
    ]
