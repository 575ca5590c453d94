"""The hub's built-in claim checks: what clearinghouses reject a professional claim for.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's. Each finding
names the claim or line and says how to fix it. Behavioral-health coding rules (time-based
codes, add-ons, same-day pairs, authorizations) live in their own rule pack.

Tables: ``mappings/rules/validity.toml`` (severities, place-of-service codes, EIN prefixes,
timely-filing warning window), ``mappings/rules/icd10cm_versions.toml`` (ICD-10-CM changes by
release, for the code set in effect on the date of service) and the filing windows by payer kind
and claim type in ``mappings/rules/filing_windows.toml`` (``bhhub.remittance.deadlines``). Date rules
ask :func:`today`, which tests replace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select

from bhhub import hookimpl
from bhhub.runtime import clock
from bhhub.coding.rules import claim_filing_indicator
from bhhub.common.identifiers import npi_is_valid, tin_is_valid
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, Person, Provider, Severity
from bhhub.remittance.deadlines import FilingWindows
from bhhub.store import schema
from bhhub.types import ClaimCheck

MAX_DIAGNOSES = 12  # HI01..HI12
MAX_LINES = 50  # 2400 repeat
MAX_POINTERS = 4  # SV107-1..4
MAX_CONTROL_NUMBER = 20  # CLM01 length receivers must keep
ICD10_START = date(2015, 10, 1)  # the ICD-10 compliance date (45 CFR 162.1002(c)(2)-(3))

VALIDITY = "rules/validity.toml"
ICD10CM_VERSIONS = "rules/icd10cm_versions.toml"
# NUCC taxonomy: ten characters, the last always X (e.g. 1041C0700X, 2084P0800X).
_TAXONOMY = re.compile(r"^[0-9]{3}[0-9A-Z]{6}X$")
_PACKAGED = MappingSet()  # the packaged tables, when a check runs without a hub (unit tests)


def today() -> date:
    """The date the date rules (future service, timely filing) measure from (``bhhub.runtime.clock``)."""
    return clock.today()


def _mappings(context: Any) -> MappingSet:
    mappings = getattr(context, "mappings", None)
    return mappings if isinstance(mappings, MappingSet) else _PACKAGED


def _validity(context: Any) -> Mapping[str, Any]:
    return _mappings(context).load(VALIDITY)


def _error(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def _warning(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


def check_providers(claim: Claim, context: Any = None) -> list[Finding]:
    """The providers' findings. Claims of one practice share a few providers: the answer is
    kept per (table, billing provider, rendering provider), the providers compared by value."""
    rules = _validity(context).get("provider", {})
    return list(_PROVIDERS.get(rules, (claim.billing_provider, claim.rendering_provider),
                               _provider_findings_of, claim, rules))


_PROVIDERS: IdentityMemo[tuple[Finding, ...]] = IdentityMemo(limit=10_000)


def _provider_findings_of(claim: Claim, rules: Mapping[str, Any]) -> tuple[Finding, ...]:
    return tuple(_provider_findings(claim, rules))


def _provider_findings(claim: Claim, rules: Mapping[str, Any]) -> Iterator[Finding]:
    billing = claim.billing_provider
    yield from _npi(billing, "billing provider")
    yield from _tin(billing.tin, rules)
    if billing.address is None:
        yield _error("provider.address", "billing provider has no address",
                     "add the practice's street address to its Organization")
    elif len(billing.address.postal_code) != 9:
        # TR3 2010AA note: a 9-digit ZIP (domain reference 5.2; widely enforced).
        yield _warning("provider.zip9", "billing provider ZIP code is not 9 digits",
                       "use the ZIP+4 of the practice's street address")
    rendering = claim.rendering_provider
    if rendering is not None:
        yield from _npi(rendering, "rendering provider")
        # 2310B (and its PRV) is sent only when the renderer is not the billing provider.
        if rendering.npi != billing.npi and not rendering.taxonomy:
            yield Finding("provider.taxonomy", _severity(rules.get("taxonomy_missing_severity", "warning")),
                          "rendering provider has no taxonomy code",
                          "add the clinician's NUCC taxonomy (PractitionerRole.specialty)")
    for role, provider in (("billing provider", billing), ("rendering provider", rendering)):
        if provider is not None and provider.taxonomy and not _TAXONOMY.match(provider.taxonomy):
            yield _error("provider.taxonomy_shape",
                         f"{role} taxonomy {provider.taxonomy!r} is not a NUCC code (10 characters ending in X)",
                         f"correct the {role}'s taxonomy, e.g. 1041C0700X (clinical social worker); "
                         "check it in NPPES")


def _tin(tin: str | None, rules: Mapping[str, Any]) -> Iterator[Finding]:
    fix = "add the practice's EIN to its Organization (urn:oid:2.16.840.1.113883.4.4)"
    if tin is None or not tin_is_valid(tin):
        yield _error("provider.tin", "billing provider has no valid tax id (9 digits)", fix)
    elif len(set(tin)) == 1:  # 000000000, 999999999 ...: placeholders the IRS never issues
        yield _error("provider.tin", f"billing provider tax id {tin} is a placeholder", fix)
    elif tin[:2] in rules.get("invalid_ein_prefixes", ()):
        # Never an EIN; may still be a sole proprietor's SSN, hence a warning.
        yield _warning("provider.tin_prefix",
                       f"billing provider tax id starts with {tin[:2]}, a prefix the IRS does not assign to EINs",
                       "check the EIN on the practice's IRS letter (CP 575); ignore if it is the owner's SSN")


def _npi(provider: Provider, role: str) -> Iterator[Finding]:
    if not npi_is_valid(provider.npi):
        yield _error("provider.npi", f"{role} NPI {provider.npi!r} fails the NPI check digit",
                     f"correct the {role}'s NPI in the EHR (check it in NPPES)")


def check_people(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    coverage = claim.coverage
    if not coverage.member_id.strip():
        yield _error("coverage.member_id", "no member id for the payer",
                     "add the subscriber id from the insurance card to the Coverage")
    if not coverage.payer.payer_id.strip():
        yield _error("coverage.payer_id", "no payer id", "add the payer's id (NIIP identifier)")
    if coverage.order > 1 and not any(o.order < coverage.order for o in claim.other_coverages):
        # A secondary claim needs the primary's adjudication (2320 AMT*D, CAS): bill the
        # primary first; the secondary claim is built from its 835.
        yield _error("coverage.primary_missing",
                     f"the only coverage sent is number {coverage.order} in order; the primary is unknown",
                     "add the patient's primary coverage to the export, or correct Coverage.order to 1 "
                     "if this is the primary plan")
    # DMG and N3/N4 are required for whoever is the patient: 2010BA when the patient is the
    # subscriber, else 2010CA.
    yield from _demographics(claim.patient, "patient")
    if not coverage.patient_is_subscriber and coverage.subscriber is None:
        yield _error("coverage.subscriber", "the patient is a dependent but the subscriber is unknown",
                     "add the subscriber (Patient or RelatedPerson) to the Coverage")
    elif coverage.patient_is_subscriber and coverage.subscriber is not None \
            and not _same_person(coverage.subscriber, claim.patient):
        # SBR02 18 puts the patient in 2010BA as the subscriber (TR3 2000B/2010BA); a coverage
        # whose relationship says "self" but names someone else as subscriber would send the
        # payer a subscriber it may not know by that member id. Which field is wrong cannot be
        # told here; the fields are named, never their values.
        yield _error("coverage.self_subscriber",
                     "the coverage says the patient is the subscriber (relationship self) but names another "
                     "person as subscriber (name or date of birth differ from the patient's)",
                     "correct the coverage in the EHR: the relationship (Coverage.relationship, IN1-17) if the "
                     "patient is a dependent, or the subscriber (Coverage.subscriber) if the patient holds "
                     "the policy")


def _same_person(one: Person, other: Person) -> bool:
    """The same person as far as a claim can tell: family and given names (ignoring case and
    spacing) and, when both are known, the birth date."""
    def names(person: Person) -> tuple[str, str]:
        return (" ".join(person.name.family.upper().split()), " ".join((person.name.given or "").upper().split()))
    if names(one) != names(other):
        return False
    return one.birth_date is None or other.birth_date is None or one.birth_date == other.birth_date


def _demographics(person: Person, role: str) -> Iterator[Finding]:
    if person.birth_date is None:
        yield _error(f"{role}.birth_date", f"{role} has no date of birth", f"add the {role}'s birth date")
    if person.address is None:
        yield _error(f"{role}.address", f"{role} has no address", f"add the {role}'s home address")
    elif not all(part.strip() for part in (person.address.line1, person.address.city, person.address.state,
                                           person.address.postal_code)):
        yield _error(f"{role}.address", f"{role}'s address lacks a street, city, state or ZIP code",
                     f"complete the {role}'s home address")
    if not person.name.family.strip():
        yield _error(f"{role}.name", f"{role} has no family name", f"add the {role}'s name")


def check_diagnoses(claim: Claim, context: Any = None) -> Iterator[Finding]:
    if not claim.diagnoses:
        yield _error("diagnosis.missing", "no diagnosis on the claim",
                     "add the encounter's ICD-10-CM diagnoses")
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        yield _error("diagnosis.too_many", f"{len(claim.diagnoses)} diagnoses; an 837P carries at most 12",
                     "keep the 12 most relevant diagnoses")
    earliest = min((line.service_date for line in claim.lines), default=None)
    if earliest is not None and earliest < ICD10_START:
        # 45 CFR 162.1002(c): ICD-10-CM from 2015-10-01; earlier services are coded in ICD-9-CM.
        yield _error("diagnosis.icd9_date_of_service",
                     f"the date of service {earliest.isoformat()} is before {ICD10_START.isoformat()}, when ICD-10-CM "
                     "replaced ICD-9-CM: ICD-10-CM diagnoses are not valid for it",
                     "check the date of service; a service before 2015-10-01 is billed with ICD-9-CM codes, "
                     "outside the hub")
        return
    versions = CodeSetChanges.of(_mappings(context))
    for position, code in enumerate(claim.diagnoses, start=1):
        yield from _code_findings(code, position, _dates_of(claim, position), versions)
    yield from _z_code_primary(claim, _validity(context).get("z_code_primary", {}))


@dataclass(frozen=True)
class CodeSetChanges:
    """The ICD-10-CM changes of ``icd10cm_versions.toml``, indexed: when each code was added, and
    when each deleted one stopped (with its replacements). simple-icd-10-cm answers for today."""

    added: Mapping[str, date]  # code -> first valid date of service
    deleted: Mapping[str, tuple[date, tuple[str, ...]]]  # code -> (first invalid date, replacements)
    predecessor: Mapping[str, str]  # new code -> the deleted code it replaced

    @classmethod
    def of(cls, mappings: MappingSet) -> CodeSetChanges:
        table = mappings.load(ICD10CM_VERSIONS)
        if _versions_cache and _versions_cache[0] is table:
            return _versions_cache[1]
        added: dict[str, date] = {}
        deleted: dict[str, tuple[date, tuple[str, ...]]] = {}
        predecessor: dict[str, str] = {}
        for release in table.get("release", []):
            effective = _as_date(release["effective"])
            for code in release.get("added", []):
                added.setdefault(_dotted(code), effective)
            for entry in release.get("deleted", []):
                replacements = tuple(_dotted(c) for c in entry.get("replaced_by", []))
                deleted[_dotted(entry["code"])] = (effective, replacements)
                for new in replacements:
                    predecessor.setdefault(new, _dotted(entry["code"]))
        changes = cls(added, deleted, predecessor)
        _versions_cache[:] = [table, changes]
        return changes


_versions_cache: list[Any] = []  # [table, CodeSetChanges]: the last table indexed


def _dates_of(claim: Claim, position: int) -> tuple[date, date] | None:
    """Earliest and latest date of service of the lines pointing at diagnosis ``position``
    (all lines when none does); None without lines."""
    lines = claim.lines
    if len(lines) == 1:  # most claims: one line, whatever it points at
        day = lines[0].service_date
        return day, day
    dates = [line.service_date for line in claim.lines if position in line.diagnosis_pointers]
    dates = dates or [line.service_date for line in claim.lines]
    return (min(dates), max(dates)) if dates else None


def _code_findings(code: str, position: int, dates: tuple[date, date] | None,
                   versions: CodeSetChanges) -> tuple[Finding, ...]:
    """``_icd10``'s findings, kept per code set, code, position and dates: claims share their
    diagnoses and dates, and the code set is asked once for each."""
    return _CODES.get(versions, (code, position, dates), _icd10_of, code, position, dates, versions)


_CODES: IdentityMemo[tuple[Finding, ...]] = IdentityMemo(limit=50_000)


def _icd10_of(code: str, position: int, dates: tuple[date, date] | None,
              versions: CodeSetChanges) -> tuple[Finding, ...]:
    return tuple(_icd10(code, position, dates, versions))


def _icd10(code: str, position: int, dates: tuple[date, date] | None, versions: CodeSetChanges) -> Iterator[Finding]:
    dotted = _dotted(code)
    if dates is not None:
        earliest, latest = dates
        added = versions.added.get(dotted)
        if added is not None and earliest < added:
            before = versions.predecessor.get(dotted)
            yield _error(
                "diagnosis.not_in_effect",
                f"diagnosis {position} ({code}) took effect on {added.isoformat()}; "
                f"it is not a valid ICD-10-CM code on the date of service {earliest.isoformat()}",
                f"use the code in effect on {earliest.isoformat()}" + (f", e.g. {before}" if before else ""),
            )
            return
        deleted = versions.deleted.get(dotted)
        if deleted is not None:
            ended, replacements = deleted
            if latest >= ended:
                yield _error(
                    "diagnosis.deleted",
                    f"diagnosis {position} ({code}) was deleted from ICD-10-CM on {ended.isoformat()}; "
                    f"it is not valid on the date of service {latest.isoformat()}",
                    "use one of its replacements: " + ", ".join(replacements),
                )
            return  # billable until then, though today's code set makes it a header
    # Otherwise: validity against the code set simple-icd-10-cm ships (the current release).
    # Imported here, at the first diagnosis checked: reading its table takes seconds, which a
    # command that checks no claim (a listing, --help) must not pay.
    import simple_icd_10_cm as icd

    if not icd.is_valid_item(code):
        yield _error("diagnosis.invalid", f"diagnosis {position} ({code}) is not an ICD-10-CM code",
                     "correct the diagnosis code in the EHR")
    elif not icd.is_leaf(code):
        leaves = [icd.add_dot(c) for c in icd.get_descendants(code) if icd.is_leaf(c)][:6]
        yield _error(
            "diagnosis.not_billable",
            f"diagnosis {position} ({code}) is a category, not a billable code",
            "use a billable code, e.g. " + ", ".join(leaves),
        )


def _z_code_primary(claim: Claim, rules: Mapping[str, Any]) -> Iterator[Finding]:
    # Domain reference 4.4: a Z-code first (Z63.0 couples' problems, Z71.x counseling) reads as a
    # non-covered service (CARC 11/50/96/167); some payers reject it outright.
    if not claim.diagnoses:
        return
    first = _dotted(claim.diagnoses[0])
    if not first.startswith("Z") or any(first.startswith(p) for p in rules.get("accepted_prefixes", ())):
        return
    rejecting = claim.coverage.payer.payer_id.strip() in rules.get("payers_rejecting_z_primary", ())
    severity = Severity.ERROR if rejecting else _severity(rules.get("severity", "warning"))
    only = len(claim.diagnoses) == 1
    yield Finding(
        "diagnosis.z_code_primary", severity,
        f"{claim.diagnoses[0]} is the {'only' if only else 'first-listed'} diagnosis; "
        f"{claim.coverage.payer.name or 'the payer'} {'rejects' if rejecting else 'often denies'} "
        "a claim whose primary diagnosis is a Z-code",
        ("add the mental-health diagnosis the service treated (F-code) and list it first"
         if only else "list the mental-health diagnosis (F-code) first; keep the Z-code as a secondary diagnosis"),
    )


def check_lines(claim: Claim, context: Any = None) -> Iterator[Finding]:
    validity = _validity(context)
    places = validity.get("place_of_service", {})
    frequencies = validity.get("claim", {}).get("frequency_codes", ["1", "7", "8"])
    if claim.frequency_code not in frequencies:
        yield _error("claim.frequency_code",
                     f"claim frequency code {claim.frequency_code!r} is not one of {', '.join(frequencies)}",
                     "send 1 for an original claim, 7 to replace or 8 to void an earlier one")
    if claim.place_of_service not in places:
        yield _error("claim.place_of_service",
                     f"place of service {claim.place_of_service!r} is not a CMS place-of-service code",
                     "use the two-digit code, e.g. 11 office, 02 or 10 telehealth")
    if not claim.lines:
        yield _error("claim.no_lines", "the claim has no service lines", "add the billed services")
    if len(claim.lines) > MAX_LINES:
        yield _error("claim.too_many_lines", f"{len(claim.lines)} lines; an 837P claim carries at most 50",
                     "split the services into two claims")
    if len(claim.patient_control_number) > MAX_CONTROL_NUMBER:
        yield _error("claim.control_number", "patient control number longer than 20 characters",
                     "shorten the claim's control number")
    now = today()  # asked once per claim, not per line
    birth = claim.patient.birth_date
    diagnoses = len(claim.diagnoses)
    for number, line in enumerate(claim.lines, start=1):
        if line.charge is not None and line.charge <= 0:
            yield _error("line.charge", f"line {number} ({line.procedure_code}) has no positive charge",
                         "set the charge or add the code to the fee schedule", number)
        if line.units <= 0:
            yield _error("line.units", f"line {number} has {line.units} units",
                         "bill at least one unit", number)
        if line.place_of_service is not None and line.place_of_service not in places:
            yield _error("line.place_of_service",
                         f"line {number} place of service {line.place_of_service!r} is not a CMS code",
                         "use the two-digit code, or leave it empty to use the claim's", number)
        service_date = line.service_date
        if service_date > now:
            yield _error("line.service_date_future",
                         f"line {number} is dated {service_date.isoformat()}, in the future",
                         "bill the service after it took place; correct the date if it is a typo", number)
        if birth is not None and service_date < birth:
            yield _error("line.service_date_before_birth",
                         # the birth date is the patient's: named, never quoted (STYLE 10)
                         f"line {number} is dated {service_date.isoformat()}, before the patient's date of birth",
                         "correct the date of service or the patient's birth date in the EHR", number)
        pointers = line.diagnosis_pointers
        if not pointers or len(pointers) > MAX_POINTERS or min(pointers) < 1 or max(pointers) > diagnoses:
            yield _error("line.diagnosis_pointer",
                         f"line {number} ({line.procedure_code}) points to diagnoses {list(pointers)} "
                         f"but the claim has {len(claim.diagnoses)}",
                         "point each line to one to four of the claim's diagnoses", number)


def check_timely_filing(claim: Claim, context: Any = None) -> Iterator[Finding]:
    # Domain reference 10.1: the window and what starts its clock depend on the payer's kind
    # (SBR09), its state (Medicaid) and the claim type; bhhub.remittance.deadlines answers from
    # mappings/rules/filing_windows.toml. A clock whose start is unknown yet is not judged.
    if not claim.lines:
        return
    mappings = _mappings(context)
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
    now = today()
    left = (last_day - now).days
    warn_within = int(_validity(context).get("timely_filing", {}).get("warn_within_days", 14))
    if left > warn_within:
        return
    rule = f"{payer.name or payer.payer_id} takes {_WHAT[claim_type]} {window.describe()} ({window.source})"
    if left < 0:
        yield _error(
            "filing.deadline_passed",
            f"{rule}: that was {start.isoformat()}, {(now - start).days} days ago, and the last day was "
            f"{last_day.isoformat()}",
            _LATE_FIX[claim_type],
        )
    else:
        yield _warning(
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


def _severity(name: str) -> Severity:
    return Severity(str(name).lower())


def _dotted(code: str) -> str:
    code = code.strip().upper()
    return code if "." in code or len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [
        ClaimCheck("core.providers", "billing and rendering provider NPI, tax id, address, taxonomy",
                   lambda c, ctx: list(check_providers(c, ctx))),
        ClaimCheck("core.people", "member id, payer id, patient and subscriber demographics",
                   lambda c, ctx: list(check_people(c, ctx))),
        ClaimCheck("core.diagnoses", "ICD-10-CM codes valid and billable on the date of service, at most 12, "
                   "no Z-code first", lambda c, ctx: list(check_diagnoses(c, ctx))),
        ClaimCheck("core.lines", "frequency, place of service, lines, charges, units, dates, diagnosis pointers",
                   lambda c, ctx: list(check_lines(c, ctx))),
        ClaimCheck("core.timely_filing", "the filing window for the payer's kind and the claim type, from the date "
                   "of service or the remittance it answers",
                   lambda c, ctx: list(check_timely_filing(c, ctx))),
    ]
