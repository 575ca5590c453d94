"""Expected-output goldens: what each golden must parse into, field by field.

A golden ``day-export.csv`` may have a sibling ``day-export.csv.expected.json``: a list, one
object per encounter in the order ``parse`` returns them, of the canonical fields a claim is
made from (``expected_of``): the patient, the coverages, the billing and rendering providers,
the diagnoses in order, and each service line's code, modifiers, units, charge, date and
diagnosis pointers. Money and units are decimal strings, dates ISO, absent values ``null``.
The kit compares them exactly and names every field that differs, so a value read from the
wrong column, a silent default or a dropped diagnosis fails although the claim is still
"ready".

Write one from what the plugin reads today, then check every value against the export by hand
before committing it (it is the specification, not a snapshot)::

    python -m bhhub.testing.expected my_plugin tests/goldens/day-export.csv [--mappings DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

SUFFIX = ".expected.json"


def expected_path(golden: Path) -> Path:
    return golden.with_name(golden.name + SUFFIX)


def is_expected_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def _text(value: Any) -> Any:
    if isinstance(value, (Decimal, date)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


def _address(address: Any) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"line1": address.line1, "line2": address.line2, "city": address.city, "state": address.state,
            "postal_code": address.postal_code}


def _person(person: Any) -> dict[str, Any] | None:
    if person is None:
        return None
    name = person.name
    return {"family": name.family, "given": name.given, "middle": name.middle,
            "birth_date": _text(person.birth_date), "gender": person.gender, "address": _address(person.address)}


def _provider(provider: Any) -> dict[str, Any] | None:
    if provider is None:
        return None
    name = provider.name
    return {"npi": provider.npi, "organization_name": provider.organization_name,
            "family": name.family if name else None, "given": name.given if name else None,
            "tin": provider.tin, "taxonomy": provider.taxonomy, "address": _address(provider.address)}


def expected_of(encounter: Any) -> dict[str, Any]:
    """The canonical fields of one encounter, as an expected file holds them."""
    return {
        "key": encounter.key,
        "service_date": _text(encounter.service_date),
        "patient": {**_person(encounter.patient), "key": encounter.patient.key},
        "coverages": [{
            "order": c.order, "payer_id": c.payer.payer_id, "payer_name": c.payer.name, "member_id": c.member_id,
            "relationship": c.relationship, "subscriber": _person(c.subscriber), "group_number": c.group_number,
        } for c in encounter.coverages],
        "billing_provider": _provider(encounter.billing_provider),
        "rendering_provider": _provider(encounter.rendering_provider),
        "diagnoses": list(encounter.diagnoses),
        "lines": [{
            "procedure_code": line.procedure_code, "modifiers": list(line.modifiers), "units": _text(line.units),
            "charge": _text(line.charge), "service_date": _text(line.service_date),
            "diagnosis_pointers": list(line.diagnosis_pointers), "place_of_service": line.place_of_service,
            "minutes": line.minutes, "prior_authorization": line.prior_authorization,
        } for line in encounter.services],
        "place_of_service": encounter.place_of_service,
        "virtual": encounter.virtual,
        "audio_only": encounter.audio_only,
        "minutes": encounter.minutes,
        "prior_authorization": encounter.prior_authorization,
    }


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every place ``actual`` differs from ``expected``: ``"encounter 1 lines/0/units: expected
    '2', got '1'"``-style paths, each key and list position named."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            where = f"{path}/{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: expected {expected[key]!r}, the plugin gives no such field")
            elif key not in expected:
                found.append(f"{where}: not in the expected file (regenerate it: the kit knows this field)")
            else:
                found += differences(expected[key], actual[key], where)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = [d for n, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}/{n}")]
        if len(expected) != len(actual):
            found.append(f"{path}: expected {len(expected)} item(s) {expected!r}, got {len(actual)} {actual!r}"
                         if all(not isinstance(x, (dict, list)) for x in expected + actual)
                         else f"{path}: expected {len(expected)} item(s), got {len(actual)}")
        return found
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def write_expected(plugin: object, golden: Path | str, mappings_dir: Path | str | None = None) -> Path:
    """Write ``golden``'s expected file from what ``plugin`` reads today; returns its path."""
    from bhhub.runtime.mapping_tables import MappingSet
    from bhhub.types import IntakeContext

    golden = Path(golden)
    formats = [f for impl in _hook_impls(plugin) for f in impl() or ()]
    content = golden.read_bytes()
    fmt = next((f for f in formats if f.recognizes(content)), None)
    if fmt is None:
        raise SystemExit(f"no format of {plugin!r} recognizes {golden}")
    context = IntakeContext(golden.name, MappingSet(override_dir=Path(mappings_dir) if mappings_dir else None))
    records = [expected_of(e) for e in fmt.parse(content, context)]
    path = expected_path(golden)
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _hook_impls(plugin: object) -> Sequence:
    hook = getattr(plugin, "bhhub_register_intake_formats", None)
    return [hook] if hook is not None else []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bhhub.testing.expected",
                                     description="write each golden's expected file from what the plugin reads "
                                                 "today; check every value by hand before committing it")
    parser.add_argument("module", help="the plugin's module, e.g. csv_practice_export")
    parser.add_argument("goldens", nargs="+", type=Path)
    parser.add_argument("--mappings", type=Path, help="a practice's mappings/ folder the goldens need")
    args = parser.parse_args(argv)
    plugin = importlib.import_module(args.module)
    for golden in args.goldens:
        print(f"wrote {write_expected(plugin, golden, args.mappings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
