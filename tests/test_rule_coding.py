"""The behavioral-health coding rules (hub/scrub/coding_*.py, mappings/rules/coding.toml).

Each test bills what a practice might send and checks the finding a biller would see: its code,
severity, line, and that the fix names the right code or units. Section numbers are the domain
reference's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Address, Claim, Coverage, Patient, Payer, PersonName, Provider, ServiceLine, Severity
from bhhub.scrub import coding_rules
from bhhub.scrub.engine import scrub
from bhhub.types import ClaimCheck

DAY = date(2026, 3, 4)
GROUP = Provider(npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
                 taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "627010001"))
LCSW = Provider(npi="1999999984", name=PersonName("Smith", "Jane"), taxonomy="1041C0700X")
LPC = replace(LCSW, taxonomy="101YP2500X")
PSYCHOLOGIST = replace(LCSW, taxonomy="103TC0700X")
PSYCHIATRIST = replace(LCSW, taxonomy="2084P0800X")
PMHNP = replace(LCSW, taxonomy="363LP0808X")
COMMERCIAL = Payer("99999", "Sample Health Plan", "CI")
MEDICARE = Payer("MCR01", "Medicare Part B", "MB")
EXAMPLE_MEDICAID = Payer("EXAMPLE-MEDICAID", "Example State Medicaid", "MC")
PATIENT = Patient(name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
                  address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|1")


def line(code: str, minutes: int | None = None, units: int = 1, modifiers: tuple[str, ...] = (),
         on: date = DAY, place: str | None = None) -> ServiceLine:
    return ServiceLine(code, on, modifiers=modifiers, charge=Decimal("100"), units=Decimal(units),
                       minutes=minutes, place_of_service=place)


def claim(*lines: ServiceLine, clinician: Provider | None = LCSW, payer: Payer = COMMERCIAL,
          place: str = "11") -> Claim:
    return Claim(
        patient_control_number="PCN1", patient=PATIENT,
        coverage=Coverage(1, payer, "MEMBER123"), billing_provider=GROUP, rendering_provider=clinician,
        diagnoses=("F33.1",), lines=tuple(lines), place_of_service=place,
    )


CHECKS: list[ClaimCheck] = coding_rules.bhhub_register_claim_checks()


def findings(c: Claim, context=None):
    return scrub(c, CHECKS, context)


def only(c: Claim, code: str, context=None):
    """The one finding with ``code``; fails if there is not exactly one."""
    found = [f for f in findings(c, context) if f.code == code]
    assert len(found) == 1, findings(c, context)
    return found[0]


def assert_clean(c: Claim, context=None):
    assert findings(c, context) == []


# --- 1. psychotherapy time ---------------------------------------------------------------------

@pytest.mark.parametrize(("code", "minutes"), [
    ("90832", 16), ("90832", 37), ("90834", 38), ("90834", 52), ("90837", 53), ("90837", 75),
])
def test_minutes_in_the_codes_range_pass(code, minutes):
    assert_clean(claim(line(code, minutes)))


def test_52_minutes_supports_90834_not_90837():
    finding = only(claim(line("90837", 52)), "coding.time_mismatch")
    assert (finding.severity, finding.line) == (Severity.ERROR, 1)
    assert "90834" in finding.fix and "38-52" in finding.fix


@pytest.mark.parametrize(("billed", "minutes", "supported"), [
    ("90834", 37, "90832"), ("90832", 38, "90834"), ("90834", 53, "90837"),
])
def test_minutes_outside_the_billed_range_name_the_supported_code(billed, minutes, supported):
    assert f"bill {supported}" in only(claim(line(billed, minutes)), "coding.time_mismatch").fix


def test_the_addon_is_timed_like_its_standalone_code():
    c = claim(line("99214"), line("90838", 40), clinician=PSYCHIATRIST)
    finding = only(c, "coding.time_mismatch")
    assert finding.line == 2 and "bill 90836" in finding.fix


def test_15_minutes_is_not_billable_as_psychotherapy():
    finding = only(claim(line("90832", 15)), "coding.time_too_short")
    assert finding.severity == Severity.ERROR and finding.line == 1


def test_a_timed_code_without_minutes_is_a_warning():
    finding = only(claim(line("90834")), "coding.time_missing")
    assert finding.severity == Severity.WARNING


def test_family_psychotherapy_needs_26_minutes():
    assert only(claim(line("90847", 25)), "coding.time_too_short").line == 1
    assert_clean(claim(line("90847", 26)))


# --- 2. crisis -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("minutes", "addon_units"), [(30, 0), (74, 0), (75, 1), (104, 1), (105, 2), (134, 2), (135, 3)])
def test_crisis_minutes_give_the_90840_units(minutes, addon_units):
    lines = [line("90839", minutes)] + ([line("90840", units=addon_units)] if addon_units else [])
    assert_clean(claim(*lines))


def test_110_crisis_minutes_with_one_90840_names_two_units():
    finding = only(claim(line("90839", 110), line("90840", units=1)), "coding.crisis_units")
    assert finding.line == 2 and "90840 x 2" in finding.fix


def test_80_crisis_minutes_without_90840_is_an_error_on_the_90839_line():
    finding = only(claim(line("90839", 80)), "coding.crisis_units")
    assert finding.line == 1 and "90840 x 1" in finding.fix


def test_60_crisis_minutes_with_90840_says_to_remove_it():
    assert "remove 90840" in only(claim(line("90839", 60), line("90840")), "coding.crisis_units").fix


def test_25_minutes_is_not_a_crisis_session_but_90832():
    finding = only(claim(line("90839", 25)), "coding.time_mismatch")
    assert "bill 90832" in finding.fix


def test_90840_without_90839_is_an_error():
    finding = only(claim(line("90840", 40)), "coding.addon_without_primary")
    assert (finding.severity, finding.line) == (Severity.ERROR, 1) and "90839" in finding.message


def test_90839_twice_on_one_day_is_an_error():
    assert only(claim(line("90839", 60), line("90839", 40)), "coding.same_day_pair").line == 2


# --- 3. add-ons ----------------------------------------------------------------------------------------

def test_90833_with_an_em_the_same_day_passes():
    assert_clean(claim(line("99214"), line("90833", 30), clinician=PSYCHIATRIST))


def test_90833_without_an_em_the_same_day_is_an_error():
    finding = only(claim(line("90833", 30), clinician=PSYCHIATRIST), "coding.addon_without_primary")
    assert finding.line == 1 and "90832" in finding.fix


def test_90833_with_an_em_on_another_day_is_an_error():
    c = claim(line("99214", on=date(2026, 3, 3)), line("90833", 30), clinician=PSYCHIATRIST)
    assert only(c, "coding.addon_without_primary").line == 2


@pytest.mark.parametrize("primary", ["90791", "90832", "90853"])
def test_90785_with_an_allowed_primary_passes(primary):
    minutes = 30 if primary == "90832" else None
    assert_clean(claim(line(primary, minutes), line("90785")))


@pytest.mark.parametrize("other", ["90847", "99213"])
def test_90785_with_family_therapy_or_an_em_alone_has_no_primary(other):
    c = claim(line(other, 50 if other == "90847" else None), line("90785"),
              clinician=PSYCHIATRIST if other == "99213" else LCSW)
    assert only(c, "coding.addon_without_primary").line == 2


def test_90785_on_a_crisis_date_is_a_same_day_pair_and_has_no_primary():
    codes = {f.code for f in findings(claim(line("90839", 60), line("90785")))}
    assert {"coding.same_day_pair", "coding.addon_without_primary"} <= codes


def test_testing_addon_96131_needs_96130():
    assert only(claim(line("96131")), "coding.addon_without_primary").line == 1
    assert_clean(claim(line("96130"), line("96131")))


# --- 4. same-day pairs -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "second"), [
    (line("90791"), line("90834", 45)),
    (line("90792"), line("99214")),
    (line("90839", 60), line("90834", 45)),
    (line("90834", 45), line("99213")),
    (line("90834", 45), line("90832", 20)),
    (line("90846", 50), line("90847", 50)),
])
def test_codes_not_billed_together_the_same_day_name_both(first, second):
    finding = only(claim(first, second, clinician=PSYCHIATRIST), "coding.same_day_pair")
    assert finding.severity == Severity.ERROR
    assert first.procedure_code in finding.message and second.procedure_code in finding.message
    assert finding.fix


def test_individual_and_family_therapy_same_day_need_59_or_xe_on_the_family_code():
    finding = only(claim(line("90834", 45), line("90847", 50)), "coding.same_day_pair")
    assert finding.line == 2 and "59" in finding.fix and "XE" in finding.fix
    assert_clean(claim(line("90834", 45), line("90847", 50, modifiers=("XE",))))


def test_the_same_codes_on_different_days_are_not_a_pair():
    assert_clean(claim(line("90791"), line("90834", 45, on=date(2026, 3, 11))))


# --- 5. units --------------------------------------------------------------------------------------------

def test_90837_billed_with_two_units_is_an_error():
    finding = only(claim(line("90837", 60, units=2)), "coding.units")
    assert finding.fix == "bill 1 unit"


def test_two_units_of_psychotherapy_in_partial_hospitalization_pass():
    assert_clean(claim(line("90837", 60, units=2), place="52"))


@pytest.mark.parametrize(("minutes", "units"), [(8, 1), (22, 1), (23, 2), (37, 2), (38, 3), (60, 4)])
def test_h0004_units_follow_the_8_minute_rule_by_default(minutes, units):
    assert_clean(claim(line("H0004", minutes, units=units)))


def test_h2019_45_minutes_billed_as_2_units_names_3():
    finding = only(claim(line("H2019", 45, units=2)), "coding.units")
    assert finding.line == 1 and finding.fix == "bill 3 units"


def test_h0004_under_8_minutes_is_not_a_unit():
    assert only(claim(line("H0004", 7)), "coding.time_too_short").severity == Severity.ERROR


def test_a_payer_with_full_units_only_pays_whole_15_minutes():
    c = claim(line("T1017", 40, units=3, modifiers=("HO",)), payer=EXAMPLE_MEDICAID, clinician=LPC)
    assert only(c, "coding.units").fix == "bill 2 units"


# --- 6. provider type --------------------------------------------------------------------------------------

def test_an_lcsw_may_not_bill_90792():
    finding = only(claim(line("90792")), "coding.provider_type")
    assert finding.severity == Severity.ERROR and "1041C0700X" in finding.message and "90791" in finding.fix


@pytest.mark.parametrize("clinician", [LPC, PSYCHOLOGIST])
def test_a_non_prescriber_may_not_bill_an_em(clinician):
    assert only(claim(line("99213"), clinician=clinician), "coding.provider_type").line == 1


@pytest.mark.parametrize("clinician", [PSYCHIATRIST, PMHNP])
def test_prescribers_may_bill_90792(clinician):
    assert_clean(claim(line("90792"), clinician=clinician))


def test_a_prescriber_only_code_without_a_taxonomy_is_a_warning():
    finding = only(claim(line("90792"), clinician=replace(LCSW, taxonomy=None)), "coding.provider_type_unknown")
    assert finding.severity == Severity.WARNING


# --- 7. telehealth ------------------------------------------------------------------------------------------

def test_gt_on_a_medicare_professional_claim_is_an_error():
    finding = only(claim(line("90834", 45, modifiers=("GT",)), payer=MEDICARE, place="10"), "coding.telehealth_modifier")
    assert "GT" in finding.message and "remove GT" in finding.fix


def test_gt_for_a_commercial_payer_is_left_to_the_payers_telehealth_rule(tmp_path):
    # The packaged commercial rule wants 95 for video; a payer whose rule says GT gets GT.
    (tmp_path / "payers.toml").write_text('[payer."99999".telehealth]\nvideo_modifier = "GT"\n')
    wants_gt = SimpleNamespace(mappings=MappingSet(override_dir=tmp_path))
    assert_clean(claim(line("90834", 45, modifiers=("GT",)), place="02"), wants_gt)
    finding = only(claim(line("90834", 45, modifiers=("GT",)), place="02"), "coding.telehealth_modifier")
    assert "GT" in finding.message and "bill 95 instead" in finding.fix


def test_medicare_audio_only_outside_the_home_is_an_error():
    finding = only(claim(line("90834", 45, modifiers=("93",)), payer=MEDICARE, place="02"), "coding.telehealth_place")
    assert "POS 10" in finding.fix


def test_medicare_audio_only_to_the_home_passes():
    assert_clean(claim(line("90834", 45, modifiers=("93",)), payer=MEDICARE, place="10"))


def test_medicare_telehealth_modifier_with_office_pos_from_2024_is_an_error():
    c = claim(line("90834", 45, modifiers=("95",)), payer=MEDICARE, place="11")
    assert only(c, "coding.telehealth_place").line == 1
    # Before 2024 Medicare's instruction was the in-person POS with 95.
    assert_clean(claim(line("90834", 45, modifiers=("95",), on=date(2023, 6, 1)), payer=MEDICARE, place="11"))


def test_audio_video_and_audio_only_on_one_line_contradict():
    assert only(claim(line("90834", 45, modifiers=("95", "93")), place="10"), "coding.telehealth_modifier")


def test_commercial_video_visit_with_95_at_home_passes():
    assert_clean(claim(line("90837", 60, modifiers=("95",)), place="10"))


# Every session modifier on a line is checked against the place of service and the payer's
# telehealth rule (mappings/payers.toml), whether the coding stage added it or the EHR sent it.

RHC = replace(GROUP, taxonomy="261QR1300X")


def with_billing(c: Claim, provider: Provider) -> Claim:
    return replace(c, billing_provider=provider)


def test_an_ehr_sent_95_on_a_traditional_medicare_video_line_is_an_error_naming_it():
    finding = only(claim(line("90834", 45, modifiers=("95",)), payer=MEDICARE, place="10"),
                   "coding.telehealth_modifier")
    assert finding.line == 1 and "95" in finding.message and "POS 10" in finding.message
    assert finding.fix.startswith("remove it")


def test_fq_from_a_practice_that_is_no_rhc_or_fqhc_is_an_error():
    finding = only(claim(line("90834", 45, modifiers=("FQ",)), place="10"), "coding.telehealth_modifier")
    assert "FQ" in finding.message and "rural health clinics and FQHCs" in finding.message


def test_fq_and_93_are_both_accepted_from_an_rhc_billing_medicare_audio_only():
    assert_clean(with_billing(claim(line("90834", 45, modifiers=("FQ",)), payer=MEDICARE, place="10"), RHC))
    assert_clean(with_billing(claim(line("90834", 45, modifiers=("93",)), payer=MEDICARE, place="10"), RHC))


def test_95_on_an_in_person_office_line_is_an_error():
    finding = only(claim(line("90834", 45, modifiers=("95",)), place="11"), "coding.telehealth_modifier")
    assert "in-person" in finding.message and "POS 11" in finding.message


def test_gt_with_95_on_one_line_is_one_error_keeping_the_payers_modifier():
    finding = only(claim(line("90834", 45, modifiers=("GT", "95")), place="02"), "coding.telehealth_modifier")
    assert "GT and 95" in finding.message and finding.fix.startswith("keep 95")


def test_a_payer_whose_rule_bills_telehealth_at_the_office_takes_95_there(tmp_path):
    (tmp_path / "payers.toml").write_text('[payer."99999".telehealth]\nbill_place_of_service = "11"\n')
    assert_clean(claim(line("90834", 45, modifiers=("95",)), place="11"),
                 SimpleNamespace(mappings=MappingSet(override_dir=tmp_path)))


# --- 8. licensure modifiers ----------------------------------------------------------------------------------

def test_the_example_medicaid_payer_requires_a_licensure_modifier_for_an_lcsw():
    finding = only(claim(line("90834", 45), payer=EXAMPLE_MEDICAID), "coding.licensure_modifier")
    assert finding.severity == Severity.ERROR and "AJ" in finding.fix and "HO" in finding.fix


def test_the_licensure_modifier_present_passes():
    assert_clean(claim(line("90834", 45, modifiers=("AJ",)), payer=EXAMPLE_MEDICAID))


def test_a_commercial_payer_needs_no_licensure_modifier():
    assert_clean(claim(line("90834", 45)))


# --- 9. deleted codes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "replacement"), [
    ("90806", "90834"), ("90801", "90791"), ("90862", "99212"), ("96101", "96130"), ("96118", "96132"),
    ("99354", "90837"), ("99201", "99202"),
])
def test_a_deleted_code_names_its_replacement(code, replacement):
    finding = only(claim(line(code)), "coding.deleted_code")
    assert finding.severity == Severity.ERROR and replacement in finding.fix


def test_a_code_before_its_deletion_date_is_not_flagged_as_deleted():
    c = claim(line("96101", on=date(2018, 12, 31)))
    assert [f for f in findings(c) if f.code == "coding.deleted_code"] == []


# --- the table, overrides and the plugin ---------------------------------------------------------------------------

def test_no_message_names_the_patient():
    c = claim(line("90837", 52), line("90833", 30), line("90792"), line("H0004", 45, units=1))
    for finding in findings(c):
        for phi in ("Doe", "John", "MEMBER123", "1980"):
            assert phi not in finding.message + finding.fix


def test_a_practice_override_changes_a_payers_rounding(tmp_path: Path):
    overrides = tmp_path / "mappings" / "rules"
    overrides.mkdir(parents=True)
    (overrides / "coding.toml").write_text(
        '[[payer_rules.payer."99999"]]\neffective = 2020-01-01\ntime_unit_rounding = "full_units"\n')

    class PracticeHub:
        mappings = MappingSet(override_dir=tmp_path / "mappings")

    c = claim(line("H0004", 40, units=3))
    assert_clean(c)  # packaged default: the 8-minute rule, 40 minutes = 3 units
    assert only(c, "coding.units", context=PracticeHub()).fix == "bill 2 units"


def test_a_broken_rule_entry_is_reported_and_the_other_rules_still_run(tmp_path: Path):
    overrides = tmp_path / "mappings" / "rules"
    overrides.mkdir(parents=True)
    # A practice's same-day pair without "first": that rule cannot run, the others must.
    (overrides / "coding.toml").write_text(
        '[[same_day_pairs]]\neffective = 2020-01-01\nid = "broken"\nsecond = ["90837"]\nkeep = "x"\n')

    class PracticeHub:
        mappings = MappingSet(override_dir=tmp_path / "mappings")

    c = claim(line("90837", 45), line("90833", 20))
    codes = {f.code for f in findings(c, PracticeHub())}
    assert {"scrub.check_failed", "coding.time_mismatch", "coding.addon_without_primary"} <= codes
    failed = only(c, "scrub.check_failed", context=PracticeHub())
    assert "coding.same_day_pairs" in failed.message and failed.severity == Severity.WARNING


def test_every_rule_table_entry_has_an_effective_date():
    table = MappingSet().load("rules/coding.toml")
    sections = [v for k, v in table.items() if k != "payer_rules"]
    payer = table["payer_rules"]
    sections += [payer["default"], *payer["claim_filing_indicator"].values(), *payer["payer"].values()]
    for entries in sections:
        assert all("effective" in entry for entry in entries)


def test_the_example_payer_entry_is_marked_as_an_example():
    table = MappingSet().load("rules/coding.toml")
    assert all(e.get("example") for e in table["payer_rules"]["payer"]["EXAMPLE-MEDICAID"])


def test_the_plugin_registers_through_the_hub_like_any_other():
    from bhhub.runtime.plugin_host import build_plugin_host

    host = build_plugin_host(entry_points=[], extra=[("coding_rules", coding_rules)])
    [check] = host.hooks.claim_checks()  # the nine rules run as one pass over the claim
    assert check.name == "coding"
    findings = check.check(claim(line("90837", 45), line("90833", 20)), None)
    assert {"coding.time_mismatch", "coding.addon_without_primary"} <= {f.code for f in findings}
