"""The EHR contract kit (bhhub.testing.ehr) fails the plugins vendors got wrong, each for its own
fault and saying what it is, and passes bhhub's own readers and the example plugin.

The broken plugins are small modules in tests/contract_plugins/, each the correct
``good_visits`` reader with one fault; their goldens (with an expected-output file and a refused
export) are in tests/contract_plugins/goldens/.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import bhhub.plugins.ehr.fhir_r4 as fhir_r4
import bhhub.plugins.ehr.hl7v2 as hl7v2
from conftest import FIXTURES
from contract_plugins import (
    any_json, builtin_name, dropped_diagnoses, good_visits, keyerror_reader, no_mapping_file, silent_fallback,
    swallowed_errors,
)
from contract_plugins.visits import GOLDENS
from bhhub import hookimpl
from bhhub.testing import ContractFailure, ehr
from bhhub.testing.common import check_mapping_file
from bhhub.testing.expected import expected_of

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "csv_practice_export"


def kit_failures(plugin, goldens=GOLDENS, **options) -> dict[str, str]:
    """The kit's failures on ``plugin``, by check name (it must fail)."""
    with pytest.raises(ContractFailure) as failed:
        ehr.check_plugin(plugin, goldens, check_import=False, **options)
    failures: dict[str, str] = {}
    for part in str(failed.value).split("\n- ")[1:]:
        name, _, message = part.partition(": ")
        failures[name] = message
    return failures


def test_a_plugin_that_keeps_the_contract_passes_every_check():
    results = ehr.check_plugin(good_visits, GOLDENS, check_import=False)
    assert results["goldens match their expected files"] == {"compared": ["two-visits.json"],
                                                             "without expected file": []}
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 2
    assert results["recognizes only its own format"] > 20 and results["bad input is refused, never skipped"] > 50


def test_a_reader_raising_key_error_on_a_missing_key_fails():
    failures = kit_failures(keyerror_reader)
    assert list(failures) == ["malformed input raises only hub errors"]
    message = failures["malformed input raises only hub errors"]
    assert "parse raised KeyError (not a bhhub.errors.HubError)" in message and "removed" in message


def test_a_recognizer_that_claims_any_json_fails():
    failures = kit_failures(any_json)
    assert list(failures) == ["recognizes only its own format"]
    assert "kit-any-json.recognizes claims a FHIR R4 bundle" in failures["recognizes only its own format"]
    # every kind of foreign JSON counts, not only the built-in's sample
    fmt = ehr.check_registers_formats(any_json)
    from bhhub.testing.samples import foreign_payloads

    claimed = [s.label for s in foreign_payloads() if fmt[0].recognizes(s.content)]
    assert any(label.startswith("random JSON") for label in claimed)
    with pytest.raises(ContractFailure, match="claims NDJSON, which is not its format"):  # its own sample aside
        ehr.check_recognizes_only_its_format([type(fmt[0])(**{**fmt[0].__dict__, "name": "fhir-r4-bundle"})])


def test_every_builtin_format_has_a_sample_it_recognizes_and_the_other_builtins_refuse():
    from bhhub.runtime.plugin_host import build_plugin_host
    from bhhub.testing.common import builtin_entry_points
    from bhhub.testing.samples import foreign_payloads

    builtins = build_plugin_host(builtin_entry_points()).hooks.intake_formats()
    samples = foreign_payloads()
    for fmt in builtins:
        own = [s for s in samples if s.owner == fmt.name]
        assert own, f"bhhub.testing.samples has no sample of the built-in format {fmt.name}"
        assert all(fmt.recognizes(s.content) for s in own)
        assert not any(fmt.recognizes(s.content) for s in samples if s.owner != fmt.name)


def test_a_silent_fallback_value_fails_against_the_expected_file():
    failures = kit_failures(silent_fallback)
    assert list(failures) == ["goldens match their expected files"]
    assert "two-visits.json encounter 1 lines/1/units: expected '2', got '1'" in \
        failures["goldens match their expected files"]


def test_a_dropped_diagnosis_fails_against_the_expected_file():
    failures = kit_failures(dropped_diagnoses)
    assert list(failures) == ["goldens match their expected files"]
    message = failures["goldens match their expected files"]
    assert "encounter 1 diagnoses: expected 2 item(s) ['F33.1', 'F41.1'], got 1 ['F33.1']" in message
    assert "encounter 2 diagnoses" in message


def test_goldens_without_any_expected_file_fail(tmp_path):
    shutil.copytree(GOLDENS, tmp_path / "goldens", ignore=shutil.ignore_patterns("*.expected.json"))
    failures = kit_failures(good_visits, tmp_path / "goldens")
    assert list(failures) == ["goldens match their expected files"]
    assert "no golden has an expected file" in failures["goldens match their expected files"]


def test_a_reader_swallowing_errors_fails_when_no_refused_golden_exists(tmp_path):
    shutil.copytree(GOLDENS, tmp_path / "goldens", ignore=shutil.ignore_patterns("refused"))
    failures = kit_failures(swallowed_errors, tmp_path / "goldens")
    assert list(failures) == ["bad input is refused, never skipped"]
    assert "no golden in refused/" in failures["bad input is refused, never skipped"]
    # and the kit's own damaged copies show it skipping, refused golden or not
    formats = ehr.check_registers_formats(swallowed_errors)
    with pytest.raises(ContractFailure, match=r"as 1 record\(s\) instead of 2, without an error: a visit was left out"):
        ehr.check_refuses_rather_than_skips(formats, ehr.golden_files(GOLDENS), [Path("any")])
    # the correct reader needs a refused golden too: the rule is the kit's, not this plugin's
    assert list(kit_failures(good_visits, tmp_path / "goldens")) == ["bad input is refused, never skipped"]


def test_a_plugin_that_ships_no_mapping_file_fails():
    failures = kit_failures(no_mapping_file)
    assert list(failures) == ["mapping file loads"]
    assert "has validate_mapping but declares no MAPPING_FILE" in failures["mapping file loads"]


def test_no_mapping_at_all_fails_unless_declared_and_is_then_reported_not_passed():
    class Bare:
        pass

    with pytest.raises(ContractFailure, match="declares no MAPPING_FILE"):
        check_mapping_file(Bare(), required=True)
    assert check_mapping_file(Bare(), required=False) is None  # the caller reports "not checked"


def test_an_empty_mapping_file_or_one_without_a_validator_fails(tmp_path):
    class Shipped:
        MAPPING_FILE = tmp_path / "mapping.toml"

    Shipped.MAPPING_FILE.write_text("# nothing yet\n")
    with pytest.raises(ContractFailure, match="is empty"):
        check_mapping_file(Shipped(), required=True)
    Shipped.MAPPING_FILE.write_text("[fields]\nmember_id = 'Member'\n")
    with pytest.raises(ContractFailure, match="no validate_mapping"):
        check_mapping_file(Shipped(), required=True)


def test_a_plugin_named_like_a_builtin_fails(tmp_path):
    failures = kit_failures(builtin_name, entry_point=builtin_name.ENTRY_POINT)
    assert list(failures) == ["entry point"]
    assert "'hl7v2' is bhhub's built-in plugin's" in failures["entry point"]


def test_a_plugin_whose_format_name_is_a_builtins_fails():
    class Impostor:
        @hookimpl
        def bhhub_register_intake_formats(self):
            return [type(good_visits.FORMAT)(**{**good_visits.FORMAT.__dict__, "name": "hl7v2"})]

    with pytest.raises(ContractFailure, match="'hl7v2' is already registered by 'hl7v2'"):
        ehr.check_registers_formats(Impostor())


# --- the rule is not tailored to the fixtures: bhhub's readers and the example pass ----------


def _goldens(tmp_path: Path, source: Path, names: list[str], expected: Path) -> Path:
    folder = tmp_path / "goldens"
    folder.mkdir()
    for name in names:
        shutil.copy(source / name, folder / name)
        shutil.copy(expected / f"{name}.expected.json", folder / f"{name}.expected.json")
    return folder


def test_the_builtin_fhir_plugin_passes_the_kit(tmp_path):
    goldens = _goldens(tmp_path, FIXTURES / "fhir",
                       ["lcsw-office-90837.json", "primary-secondary.json", "telehealth-video-45min.json"],
                       FIXTURES / "contract" / "fhir")
    (goldens / "refused").mkdir()
    shutil.copy(FIXTURES / "fhir" / "bad-no-coverage.json", goldens / "refused")
    results = ehr.check_plugin(fhir_r4, goldens, entry_point="fhir_r4")
    assert results["goldens match their expected files"]["without expected file"] == []
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 3
    assert results["mapping file loads"]["bundle"]  # its packaged field map, validated


def test_the_builtin_hl7v2_plugin_passes_the_kit(tmp_path):
    contract = FIXTURES / "contract" / "hl7v2"
    goldens = _goldens(tmp_path, FIXTURES / "hl7v2", ["dft-p03-v23-minimal.hl7", "dft-p03-v251-full.hl7"], contract)
    shutil.copytree(contract / "refused", goldens / "refused")
    results = ehr.check_plugin(hl7v2, goldens, entry_point="hl7v2", mappings_dir=contract / "mappings")
    assert results["goldens match their expected files"]["compared"] == ["dft-p03-v23-minimal.hl7",
                                                                         "dft-p03-v251-full.hl7"]
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 2


def test_the_example_csv_plugin_passes_the_kit(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import csv_practice_export

    try:
        results = ehr.check_plugin(csv_practice_export, EXAMPLE / "tests" / "goldens", check_import=False)
    finally:
        sys.modules.pop("csv_practice_export", None)
    assert results["goldens match their expected files"]["compared"] == ["day-export.csv"]
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 3


def test_an_expected_file_holds_every_canonical_claim_field():
    [first, _] = good_visits.FORMAT.parse((GOLDENS / "two-visits.json").read_bytes(), None)
    fields = expected_of(first)
    assert {"patient", "coverages", "billing_provider", "rendering_provider", "diagnoses", "lines"} <= set(fields)
    assert set(fields["lines"][0]) >= {"procedure_code", "modifiers", "units", "charge", "service_date",
                                       "diagnosis_pointers"}


# --- a name a built-in or an installed plugin has is refused, and reported at load ------------


def _installed(where: Path, distribution: str, entry_points: dict[str, str]) -> Path:
    """A distribution "installed" in ``where`` (its dist-info), declaring bhhub entry points."""
    info = where / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bhhub]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return where


@pytest.mark.parametrize("name", ["fhir_r4", "hl7v2", "fhir-r4", "sftp", "sandbox", "core_checks"])
def test_plugin_new_refuses_a_builtin_plugins_name(name, tmp_path, capsys):
    from bhhub.cli.main import main

    assert main(["plugin", "new", "ehr", name, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is taken by bhhub's built-in plugin" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_plugin_new_refuses_an_installed_plugins_name_and_accepts_a_free_one(tmp_path, monkeypatch, capsys):
    from bhhub.cli.main import main

    monkeypatch.syspath_prepend(str(_installed(tmp_path / "site", "bhhub-acme-notes",
                                               {"acme_notes": "contract_plugins.good_visits"})))
    assert main(["plugin", "new", "ehr", "acme-notes", "--out", str(tmp_path / "out")]) == 2
    assert "taken by the installed plugin from bhhub-acme-notes 'acme_notes'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["plugin", "new", "ehr", "acme_notes_two", "--out", str(tmp_path / "out")]) == 0


def test_the_hub_reports_a_plugin_installed_under_a_builtins_name_and_loads_the_builtin(tmp_path, monkeypatch,
                                                                                        capsys):
    from bhhub.cli.main import main
    from bhhub.runtime.plugin_host import build_plugin_host

    monkeypatch.syspath_prepend(str(_installed(tmp_path / "site", "bhhub-renamed",
                                               {"hl7v2": "contract_plugins.builtin_name"})))
    host = build_plugin_host()
    assert host.infos["hl7v2"].distribution == "bhhub" and host.manager.get_plugin("hl7v2") is hl7v2
    [problem] = [p for p in host.problems if "bhhub-renamed" in p]
    assert "'hl7v2' from bhhub-renamed is already taken by bhhub's built-in plugin; not loaded" in problem
    assert main(["plugins"]) == 0  # no hub needed
    assert "already taken by bhhub's built-in plugin" in capsys.readouterr().out
