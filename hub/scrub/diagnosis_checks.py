"""The built-in diagnosis check (``core.diagnoses``, registered by ``bhhub.scrub.core``): at most
12 diagnoses, each an ICD-10-CM code valid and billable on its lines' dates of service, and no
Z-code listed first.

The code set in effect on a date comes from ``mappings/rules/icd10cm_versions.toml`` (ICD-10-CM
changes by release, ``CodeSetChanges``); otherwise simple-icd-10-cm answers for the current
release, imported at the first diagnosis checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, Severity
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.scrub.core_common import error, mappings_for, severity_of, validity_table

MAX_DIAGNOSES = 12  # HI01..HI12
ICD10_START = date(2015, 10, 1)  # the ICD-10 compliance date (45 CFR 162.1002(c)(2)-(3))
ICD10CM_VERSIONS = "rules/icd10cm_versions.toml"


def check_diagnoses(claim: Claim, context: Any = None) -> Iterator[Finding]:
    if not claim.diagnoses:
        yield error("diagnosis.missing", "no diagnosis on the claim",
                     "add the encounter's ICD-10-CM diagnoses")
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        yield error("diagnosis.too_many", f"{len(claim.diagnoses)} diagnoses; an 837P carries at most 12",
                     "keep the 12 most relevant diagnoses")
    earliest = min((line.service_date for line in claim.lines), default=None)
    if earliest is not None and earliest < ICD10_START:
        # 45 CFR 162.1002(c): ICD-10-CM from 2015-10-01; earlier services are coded in ICD-9-CM.
        yield error("diagnosis.icd9_date_of_service",
                     f"the date of service {earliest.isoformat()} is before {ICD10_START.isoformat()}, when ICD-10-CM "
                     "replaced ICD-9-CM: ICD-10-CM diagnoses are not valid for it",
                     "check the date of service; a service before 2015-10-01 is billed with ICD-9-CM codes, "
                     "outside the hub")
        return
    versions = CodeSetChanges.of(mappings_for(context))
    for position, code in enumerate(claim.diagnoses, start=1):
        yield from _code_findings(code, position, _dates_of(claim, position), versions)
    yield from _z_code_primary(claim, validity_table(context).get("z_code_primary", {}))


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
            yield error(
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
                yield error(
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
        yield error("diagnosis.invalid", f"diagnosis {position} ({code}) is not an ICD-10-CM code",
                     "correct the diagnosis code in the EHR")
    elif not icd.is_leaf(code):
        leaves = [icd.add_dot(c) for c in icd.get_descendants(code) if icd.is_leaf(c)][:6]
        yield error(
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
    severity = Severity.ERROR if rejecting else severity_of(rules.get("severity", "warning"))
    only = len(claim.diagnoses) == 1
    yield Finding(
        "diagnosis.z_code_primary", severity,
        f"{claim.diagnoses[0]} is the {'only' if only else 'first-listed'} diagnosis; "
        f"{claim.coverage.payer.name or 'the payer'} {'rejects' if rejecting else 'often denies'} "
        "a claim whose primary diagnosis is a Z-code",
        ("add the mental-health diagnosis the service treated (F-code) and list it first"
         if only else "list the mental-health diagnosis (F-code) first; keep the Z-code as a secondary diagnosis"),
    )


def _dotted(code: str) -> str:
    code = code.strip().upper()
    return code if "." in code or len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
