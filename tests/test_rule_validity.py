"""Code validity and timely filing: what the built-in checks (bhhub.scrub.core and siblings) reject a claim for.

Claims are built directly; "today" is fixed at 2026-11-29 so the date rules are deterministic.
Payer-specific behaviour comes from a practice's override tables, as in production.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Address, Claim, Coverage, Finding, Patient, Payer, PersonName, Provider, ServiceLine, Severity
from bhhub.scrub import core, core_common, diagnosis_checks
from bhhub.scrub.engine import scrub

TODAY = date(2026, 11, 29)
DOS = date(2026, 11, 2)

PRACTICE = Provider(
    npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
    taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "627010001"),
)
LCSW = Provider(npi="1999999984", name=PersonName("Smith", "Jane"), taxonomy="1041C0700X")
PATIENT = Patient(
    name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
    address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|1",
)
PLAN = Payer("99999", "Sample Health Plan", "CI")


def claim(*diagnoses: str, on: date = DOS, **changes) -> Claim:
    """An LCSW's 60-minute office session; clean unless ``changes`` break it."""
    built = Claim(
        patient_control_number="PCN1",
        patient=PATIENT,
        coverage=Coverage(order=1, payer=PLAN, member_id="MEMBER123"),
        billing_provider=PRACTICE,
        rendering_provider=LCSW,
        diagnoses=diagnoses or ("F33.1",),
        lines=(ServiceLine("90837", on, charge=Decimal("180.00")),),
        place_of_service="11",
    )
    return replace(built, **changes)


def findings(c: Claim, context=None) -> list[Finding]:
    return scrub(c, core.bhhub_register_claim_checks(), context)


def only(c: Claim, code: str, context=None) -> Finding:
    [found] = [f for f in findings(c, context) if f.code == code]
    return found


def codes(c: Claim, context=None) -> set[str]:
    return {f.code for f in findings(c, context)}


def practice(tmp_path, files: dict[str, str]):
    """A hub-like context whose mapping tables carry the practice's overrides."""
    for name, text in files.items():
        path = tmp_path / "mappings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return SimpleNamespace(mappings=MappingSet(override_dir=tmp_path / "mappings"))


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(core_common, "today", lambda: TODAY)


def test_the_base_claim_is_clean():
    assert findings(claim()) == []


# ---- 1. ICD-10-CM by date of service ---------------------------------------------------------

@pytest.mark.parametrize(("code", "on", "in_effect_on", "fix"), [
    ("F43.81", date(2022, 6, 1), "2022-10-01", "e.g. F43.8"),  # prolonged grief, FY2023
    ("F01.511", date(2022, 9, 30), "2022-10-01", "e.g. F01.51"),  # dementia severity, FY2023
    ("F10.130", date(2021, 11, 5), "2022-10-01", ""),  # abuse with withdrawal, FY2023
    ("Z59.10", date(2023, 3, 31), "2023-04-01", "e.g. Z59.1"),  # the April 2023 update
    ("F50.810", date(2024, 9, 30), "2024-10-01", "e.g. F50.81"),  # binge eating severity, FY2025
    ("Z59.861", date(2025, 9, 30), "2025-10-01", "e.g. Z59.86"),  # financial insecurity, FY2026
])
def test_a_code_added_later_is_not_in_effect_for_an_earlier_date_of_service(code, on, in_effect_on, fix):
    found = only(claim(code, on=on), "diagnosis.not_in_effect")
    assert found.severity == Severity.ERROR and found.line is None
    assert in_effect_on in found.message and code in found.message
    assert fix in found.fix


@pytest.mark.parametrize(("code", "release"), [
    ("F42.3", date(2016, 10, 1)),   # FY2017: hoarding disorder (DSM-5 alignment)
    ("F32.81", date(2016, 10, 1)),  # FY2017: premenstrual dysphoric disorder
    ("F50.81", date(2016, 10, 1)),  # FY2017: binge eating (itself deleted in FY2025)
    ("F68.A", date(2018, 10, 1)),   # FY2019: factitious disorder imposed on another
    ("F32.A", date(2021, 10, 1)),   # FY2022: depression, unspecified
    ("Z91.51", date(2021, 10, 1)),  # FY2022: personal history of suicidal behavior
    ("Z59.41", date(2021, 10, 1)),  # FY2022: food insecurity
    ("Z59.811", date(2021, 10, 1)), # FY2022: housing instability, housed
    ("F10.90", date(2022, 10, 1)),  # FY2023: alcohol use, unspecified, uncomplicated
    ("F78.A1", date(2022, 10, 1)),  # FY2023
])
def test_codes_are_invalid_before_the_release_that_added_them_and_valid_from_it(code, release):
    found = only(claim(code, on=release - timedelta(days=1)), "diagnosis.not_in_effect")
    assert release.isoformat() in found.message
    assert not {"diagnosis.not_in_effect", "diagnosis.deleted", "diagnosis.not_billable",
                "diagnosis.invalid"} & codes(claim(code, on=release))


def test_f32_a_in_september_2021_is_invalid():
    found = only(claim("F32.A", on=date(2021, 9, 15)), "diagnosis.not_in_effect")
    assert found.severity == Severity.ERROR and "2021-10-01" in found.message


@pytest.mark.parametrize(("code", "release", "replacements"), [
    ("F42", date(2016, 10, 1), "F42.2, F42.3"),        # FY2017: OCD became a category
    ("F32.8", date(2016, 10, 1), "F32.81, F32.89"),
    ("Z91.5", date(2021, 10, 1), "Z91.51, Z91.52"),    # FY2022
    ("Z59.0", date(2021, 10, 1), "Z59.00, Z59.01"),
    ("Z59.8", date(2021, 10, 1), "Z59.811"),
    ("F78", date(2022, 10, 1), "F78.A1, F78.A9"),      # FY2023
])
def test_codes_deleted_in_earlier_releases_are_valid_until_then_and_invalid_after(code, release, replacements):
    assert not {"diagnosis.deleted", "diagnosis.not_billable", "diagnosis.invalid"} & codes(
        claim(code, on=release - timedelta(days=1)))
    found = only(claim(code, on=release), "diagnosis.deleted")
    assert replacements in found.fix


def test_a_date_of_service_before_icd_10_is_refused_as_icd_9_territory():
    found = only(claim("F33.1", on=date(2015, 9, 30)), "diagnosis.icd9_date_of_service")
    assert found.severity == Severity.ERROR and "ICD-9-CM" in found.message and "2015-10-01" in found.message
    assert "diagnosis.icd9_date_of_service" not in codes(claim("F33.1", on=date(2015, 10, 1)))


def test_f43_81_is_not_billable_for_a_2022_date_of_service():
    assert "diagnosis.not_in_effect" in codes(claim("F43.81", on=date(2022, 9, 30)))


@pytest.mark.parametrize(("code", "on"), [
    ("F43.81", date(2022, 10, 1)),  # the day it took effect
    ("F50.810", DOS),
    ("Z59.861", DOS),
    ("F43.8", date(2022, 9, 30)),  # billable until FY2023 made it a header
    ("F50.81", date(2024, 9, 30)),
    ("Z59.86", date(2025, 9, 30)),  # added FY2023, deleted FY2026: valid in between
])
def test_a_code_in_effect_on_its_date_of_service_passes(code, on):
    assert not {"diagnosis.not_in_effect", "diagnosis.deleted", "diagnosis.not_billable",
                "diagnosis.invalid"} & codes(claim(code, on=on))


@pytest.mark.parametrize(("code", "on", "replacements"), [
    ("F43.8", date(2022, 10, 1), "F43.81, F43.89"),
    ("F03.91", date(2023, 1, 10), "F03.911, F03.918"),
    ("Z91.14", date(2023, 4, 1), "Z91.141, Z91.148"),
    ("F50.2", date(2024, 10, 1), "F50.20, F50.21"),
    ("Z59.86", DOS, "Z59.861, Z59.868, Z59.869"),
])
def test_a_deleted_code_used_after_its_end_is_an_error_with_its_replacements(code, on, replacements):
    found = only(claim(code, on=on), "diagnosis.deleted")
    assert found.severity == Severity.ERROR and found.line is None
    assert replacements in found.fix
    assert "diagnosis.not_billable" not in codes(claim(code, on=on))  # one finding, the telling one


def test_the_date_that_counts_is_that_of_the_lines_pointing_at_the_diagnosis():
    lines = (ServiceLine("90837", date(2022, 9, 30), charge=Decimal(180), diagnosis_pointers=(1,)),
             ServiceLine("90837", date(2022, 10, 3), charge=Decimal(180), diagnosis_pointers=(2,)))
    c = claim("F33.1", "F43.81", lines=lines)
    assert "diagnosis.not_in_effect" not in codes(c)
    assert "diagnosis.not_in_effect" in codes(replace(c, diagnoses=("F43.81", "F33.1")))


def test_a_category_is_still_not_billable_with_billable_suggestions():
    found = only(claim("F41"), "diagnosis.not_billable")
    assert found.severity == Severity.ERROR and "F41.1" in found.fix


def test_the_version_table_agrees_with_the_code_set_simple_icd_10_cm_ships():
    import simple_icd_10_cm as icd

    changes = diagnosis_checks.CodeSetChanges.of(MappingSet())
    deleted_again = set(changes.deleted)  # e.g. Z59.86: added FY2023, a header since FY2026
    for code in changes.added:
        assert icd.is_valid_item(code) and (icd.is_leaf(code) or code in deleted_again), code
    for code, (_, replacements) in changes.deleted.items():
        assert not (icd.is_valid_item(code) and icd.is_leaf(code)), code
        assert all(icd.is_leaf(r) or r in deleted_again for r in replacements), code


# ---- 2. Z-code first -------------------------------------------------------------------------

def test_z63_0_alone_is_flagged_as_a_warning_by_default():
    found = only(claim("Z63.0"), "diagnosis.z_code_primary")
    assert found.severity == Severity.WARNING and found.line is None
    assert "only" in found.message and "F-code" in found.fix


def test_z63_0_alone_is_flagged_for_a_payer_that_rejects_z_primary(tmp_path):
    context = practice(tmp_path, {"rules/validity.toml":
                                  '[z_code_primary]\npayers_rejecting_z_primary = ["99999"]\n'})
    found = only(claim("Z63.0"), "diagnosis.z_code_primary", context)
    assert found.severity == Severity.ERROR and "rejects" in found.message


@pytest.mark.parametrize(("diagnoses", "flagged"), [
    (("Z63.0", "F43.23"), True),  # Z first, F second: reorder
    (("F43.23", "Z63.0"), False),  # Z as secondary is fine
    (("Z13.31",), False),  # depression screening: accepted first (table)
    (("R45.851",), False),  # an R-code is not a Z-code
])
def test_a_z_code_is_flagged_only_when_first_listed(diagnoses, flagged):
    assert ("diagnosis.z_code_primary" in codes(claim(*diagnoses))) is flagged


# ---- 3. Diagnosis pointers -------------------------------------------------------------------

@pytest.mark.parametrize("pointers", [(), (2,), (0,), (1, 1, 1, 1, 1)])
def test_every_line_points_at_an_existing_diagnosis(pointers):
    c = claim(lines=(ServiceLine("90837", DOS, charge=Decimal(180), diagnosis_pointers=pointers),))
    found = only(c, "line.diagnosis_pointer")
    assert (found.severity, found.line) == (Severity.ERROR, 1)


# ---- 4. Providers ----------------------------------------------------------------------------

@pytest.mark.parametrize(("tin", "code", "severity"), [
    ("12345678", "provider.tin", Severity.ERROR),  # 8 digits
    ("12-3456789", "provider.tin", Severity.ERROR),  # dash
    ("000000000", "provider.tin", Severity.ERROR),
    ("111111111", "provider.tin", Severity.ERROR),
    ("071234567", "provider.tin_prefix", Severity.WARNING),  # 07: never an EIN prefix
])
def test_a_tax_id_of_the_wrong_shape_is_flagged(tin, code, severity):
    found = only(claim(billing_provider=replace(PRACTICE, tin=tin)), code)
    assert found.severity == severity and found.line is None


def test_a_tax_id_of_nine_digits_with_an_issued_prefix_passes():
    issued = claim(billing_provider=replace(PRACTICE, tin="461234567"))
    assert not {"provider.tin", "provider.tin_prefix"} & codes(issued)


def test_an_npi_failing_its_check_digit_is_an_error():
    assert only(claim(rendering_provider=replace(LCSW, npi="1999999985")), "provider.npi").severity == Severity.ERROR


def test_a_rendering_provider_without_taxonomy_is_a_warning_by_default_and_an_error_when_the_table_says(tmp_path):
    c = claim(rendering_provider=replace(LCSW, taxonomy=None))
    assert only(c, "provider.taxonomy").severity == Severity.WARNING
    strict = practice(tmp_path, {"rules/validity.toml": '[provider]\ntaxonomy_missing_severity = "error"\n'})
    assert only(c, "provider.taxonomy", strict).severity == Severity.ERROR


@pytest.mark.parametrize("taxonomy", ["1041C0700", "1041C07000", "1041c0700x", "1041C0700XX"])
def test_a_taxonomy_that_is_not_ten_characters_ending_in_x_is_an_error(taxonomy):
    found = only(claim(rendering_provider=replace(LCSW, taxonomy=taxonomy)), "provider.taxonomy_shape")
    assert found.severity == Severity.ERROR and "NPPES" in found.fix


# ---- 5. Claim-level clearinghouse rejects ----------------------------------------------------

@pytest.mark.parametrize(("changes", "code", "line"), [
    ({"frequency_code": "2"}, "claim.frequency_code", None),
    ({"frequency_code": ""}, "claim.frequency_code", None),
    ({"place_of_service": "00"}, "claim.place_of_service", None),
    ({"place_of_service": "1"}, "claim.place_of_service", None),
    ({"lines": (ServiceLine("90837", DOS, charge=Decimal(180), place_of_service="98"),)}, "line.place_of_service", 1),
    ({"lines": (ServiceLine("90837", DOS, charge=Decimal(0)),)}, "line.charge", 1),
    ({"lines": (ServiceLine("90837", DOS, charge=Decimal(180), units=Decimal(0)),)}, "line.units", 1),
    ({"lines": (ServiceLine("90837", TODAY + timedelta(days=1), charge=Decimal(180)),)},
     "line.service_date_future", 1),
    ({"patient": replace(PATIENT, birth_date=date(2026, 11, 3))}, "line.service_date_before_birth", 1),
    ({"patient": replace(PATIENT, address=None)}, "patient.address", None),
    ({"patient": replace(PATIENT, address=Address("200 Oak Ave", "", "IL", "62702"))}, "patient.address", None),
])
def test_a_claim_a_clearinghouse_would_reject_is_an_error(changes, code, line):
    found = only(claim(**changes), code)
    assert (found.severity, found.line) == (Severity.ERROR, line)
    assert found.fix


@pytest.mark.parametrize("changes", [
    {"frequency_code": "7", "payer_claim_control_number": "ICN1"},
    {"place_of_service": "10"},
    {"place_of_service": "53"},
    {"lines": (ServiceLine("90837", TODAY, charge=Decimal(180)),)},  # a session billed the same day
    {"patient": replace(PATIENT, birth_date=DOS)},  # seen on the day of birth
])
def test_a_claim_within_the_rules_passes(changes):
    assert findings(claim(**changes)) == []


# ---- 6. Timely filing ------------------------------------------------------------------------
# The default limit is 90 days from the first date of service (mappings/remittance/denials.toml).

@pytest.mark.parametrize(("days_ago", "code", "severity"), [
    (60, None, None),
    (75, None, None),  # 15 days left
    (76, "filing.deadline_near", Severity.WARNING),  # 14 days left
    (90, "filing.deadline_near", Severity.WARNING),  # the last day
    (91, "filing.deadline_passed", Severity.ERROR),
    (400, "filing.deadline_passed", Severity.ERROR),
])
def test_timely_filing_is_measured_from_the_first_date_of_service(days_ago, code, severity):
    found = [f for f in findings(claim(on=TODAY - timedelta(days=days_ago))) if f.code.startswith("filing.")]
    assert [(f.code, f.severity, f.line) for f in found] == ([(code, severity, None)] if code else [])


def test_a_passed_deadline_says_to_bill_only_with_proof_of_timely_filing():
    found = only(claim(on=TODAY - timedelta(days=120)), "filing.deadline_passed")
    assert "proof of timely filing" in found.fix and "appeal" in found.fix
    assert "2026-10-30" in found.message  # 2026-08-01 + 90 days


def test_the_payers_own_limit_comes_from_the_denial_table(tmp_path):
    context = practice(tmp_path, {"remittance/denials.toml":
                                  '[payer."99999"]\nprofile = "medicare_part_b"\n'})
    c = claim(on=TODAY - timedelta(days=120))
    assert "filing.deadline_passed" not in codes(c, context)  # 365 days
    assert only(claim(on=TODAY - timedelta(days=360)), "filing.deadline_near", context).severity == Severity.WARNING


def test_the_warning_window_is_configurable(tmp_path):
    context = practice(tmp_path, {"rules/validity.toml": "[timely_filing]\nwarn_within_days = 30\n"})
    assert "filing.deadline_near" in codes(claim(on=TODAY - timedelta(days=65)), context)


def test_replacement_claims_are_not_held_to_the_original_filing_limit():
    c = claim(on=TODAY - timedelta(days=200), frequency_code="7", payer_claim_control_number="ICN1")
    assert not {f.code for f in findings(c)} & {"filing.deadline_passed", "filing.deadline_near"}


def test_the_day_rules_count_from_is_bhhub_today_when_set(monkeypatch):
    from datetime import date

    from bhhub.runtime import clock
    from bhhub.errors import ConfigError

    monkeypatch.setenv("BHHUB_TODAY", "2027-03-01")
    assert clock.today() == date(2027, 3, 1)
    monkeypatch.delenv("BHHUB_TODAY")
    assert clock.today() == date.today()
    monkeypatch.setenv("BHHUB_TODAY", "tomorrow")
    with pytest.raises(ConfigError, match="BHHUB_TODAY"):
        clock.today()
