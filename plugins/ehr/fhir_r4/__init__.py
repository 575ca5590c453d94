"""FHIR R4 bundles from an EHR (US Core R4 conventions) as canonical encounters.

A built-in plugin, registered through the ``bhhub`` entry point exactly as a vendor's would be.
It reads Bundles of type collection, transaction, batch, searchset or document (fhir.resources'
R4B models, which read R4 content) and returns one ``bhhub.model.Encounter`` per finished
Encounter and per FHIR Claim (``as_billed``). What differs between EHRs (code systems,
identifier types, statuses, class → place of service, extension URLs) is in
``mappings/ehr/fhir_r4.toml``.

A payload is parsed once; the walk is dictionary lookups over the typed resources
(``references.BundleIndex``). A payload is returned whole or refused whole: one unusable
encounter refuses the bundle, with every problem named by resource id.

Modules: ``reader`` (bytes → Bundle, refusals), ``references`` (index and reference
resolution), ``fieldmap`` (the TOML as lookups), ``elements`` (FHIR datatypes), ``people``
(patient, coverage, payer), ``providers``, ``encounters``, ``claims``, ``authorizations``.
"""

from __future__ import annotations

import logging
from importlib import resources

from bhhub import hookimpl
from bhhub.errors import InputError
from bhhub.model import Encounter
from bhhub.types import IntakeContext, IntakeFormat

from bhhub.plugins.ehr.fhir_r4 import claims, encounters
from bhhub.plugins.ehr.fhir_r4.fieldmap import FieldMap, _build, _Table, load_field_map
from bhhub.plugins.ehr.fhir_r4.reader import claims_unrecognized, read_bundle, recognizes
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex

log = logging.getLogger(__name__)

FORMAT_NAME = "fhir-r4-bundle"
_MAX_NAMED = 5  # further problems listed by resource in a refusal

__all__ = ["FORMAT", "FORMAT_NAME", "MAPPING_FILE", "parse", "map_bundle", "recognizes", "validate_mapping",
           "bhhub_register_intake_formats"]

# The packaged field map, which the contract kit checks with validate_mapping as it would a vendor's.
MAPPING_FILE = resources.files("bhhub.mappings").joinpath("ehr/fhir_r4.toml")


def validate_mapping(table: dict) -> None:
    """Raise ``MappingError`` naming every problem in a FHIR field map (packaged or a practice's)."""
    _build(_Table(table))


def parse(content: bytes, context: IntakeContext) -> list[Encounter]:
    """Every billable encounter and claim in a FHIR R4 Bundle, or ``InputError`` saying why not."""
    fmap = load_field_map(context.mappings)
    bundle = read_bundle(content, fmap.bundle_types)
    try:
        return map_bundle(BundleIndex(bundle), fmap)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a gap in this reader must still quarantine cleanly
        log.error("fhir-r4-bundle could not map a bundle: %s", type(exc).__name__)  # no names: no PHI
        raise InputError(
            f"the FHIR R4 reader could not map this bundle ({type(exc).__name__})",
            fix="report it to the bhhub maintainers with the inbox item id; the file is kept",
        ) from exc


def map_bundle(index: BundleIndex, fmap: FieldMap) -> list[Encounter]:
    source_claims = [c for c in index.of_type("Claim") if claims.billable(fmap, c)]
    # A visit that a Claim in the same bundle bills is billed by that Claim, not twice.
    billed_by_claim = {id(e) for c in source_claims for e in claims.encounters_billed_by(index, c)}
    all_visits = index.of_type("Encounter")
    visits = [e for e in all_visits if id(e) not in billed_by_claim and encounters.billable(fmap, e)]
    if not visits and not source_claims:
        skipped = len(all_visits)  # none billed by a Claim: there are no Claims
        detail = (f"; {skipped} Encounter(s) skipped, status not {' or '.join(sorted(fmap.encounter_statuses))}"
                  if skipped else "")
        raise InputError(f"nothing to bill: no finished Encounter and no Claim in the bundle{detail}",
                         fix="export the day's finished encounters (with their patients, coverages and "
                             "charges) or the claims")
    encounters.check_charge_contexts(index, fmap)
    results: list[Encounter] = []
    problems: list[tuple[str, InputError]] = []
    jobs = [(r, encounters.map_encounter) for r in visits] + [(c, claims.map_claim) for c in source_claims]
    for resource, mapper in jobs:
        try:
            results.append(mapper(index, fmap, resource))
        except InputError as exc:
            problems.append((index.label(resource), exc))
    if problems:
        raise _refusal(problems)
    _check_unique_keys(results)
    return results


def _refusal(problems: list[tuple[str, InputError]]) -> InputError:
    """The first problem in full, the others by resource: the bundle is refused as a whole."""
    visit, first = problems[0]
    message = _message(first)
    if first.where != visit:
        message += f" (for {visit})"
    if len(problems) > 1:
        others = sorted({label for label, _ in problems[1:]} - {visit})
        if others:
            named = ", ".join(others[:_MAX_NAMED]) + (" ..." if len(others) > _MAX_NAMED else "")
            message += f"; {len(others)} more unusable in this bundle: {named}"
    refusal = InputError(message, where=first.where, fix=first.fix)
    refusal.__cause__ = first
    return refusal


def _message(error: InputError) -> str:
    """The bare message of an InputError (its text without the where prefix and fix suffix)."""
    text = str(error)
    if error.where and text.startswith(f"{error.where}: "):
        text = text[len(error.where) + 2:]
    if error.fix and text.endswith(f" (fix: {error.fix})"):
        text = text[: -len(error.fix) - 8]
    return text


def _check_unique_keys(results: list[Encounter]) -> None:
    seen: dict[str, str] = {}
    for encounter in results:
        other = seen.setdefault(encounter.key, encounter.source_ref)
        if other != encounter.source_ref:
            raise InputError(f"{other} and {encounter.source_ref} carry the same identifier",
                             where=encounter.source_ref,
                             fix="give each visit its own Encounter.identifier in the export")


FORMAT = IntakeFormat(
    name=FORMAT_NAME,
    description="FHIR R4 Bundle (US Core): encounters with coverage, providers, diagnoses, charges; or FHIR Claims",
    recognizes=recognizes,
    parse=parse,
    fallback=claims_unrecognized,
)


@hookimpl
def bhhub_register_intake_formats() -> list[IntakeFormat]:
    return [FORMAT]
