"""Denial categories and next actions for 835 adjustments, from mappings/remittance/denials.toml.

Each adjustment is what a payer really sends: a CAS group code, a CARC and the RARCs in LQ*HE
(domain reference 6.3, 6.6, 6.7). Practice overrides are written where a practice keeps them,
under a hub home's mappings/ folder.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from bhhub.errors import InputError, MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.remittance.deadlines import FilingWindows
from bhhub.remittance.denials import ACTIONS, CATEGORIES, DENIALS, DenialRules, table_problems

DOMAIN_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "docs" / "domain-reference.md"


@pytest.fixture(scope="module")
def rules() -> DenialRules:
    return DenialRules.load(MappingSet())


def rules_with_override(tmp_path: Path, toml: str) -> DenialRules:
    """The packaged table with a practice's override in ``<home>/mappings/remittance/denials.toml``."""
    home = tmp_path / "home"
    (home / "mappings" / "remittance").mkdir(parents=True)
    (home / "mappings" / DENIALS).write_text(toml, encoding="utf-8")
    return DenialRules.load(MappingSet(override_dir=home / "mappings"))


def test_shipped_table_has_no_problems():
    assert table_problems(MappingSet().load(DENIALS)) == []


# (group, CARC, RARCs) as payers send them -> (category, is_denial, action)
REALISTIC = [
    ("CO", "27", (), "eligibility", True, "check_eligibility"),           # retro-terminated member
    ("CO", "197", (), "authorization", True, "appeal"),                   # psych testing without auth
    ("CO", "15", ("M62",), "authorization", True, "corrected_claim"),      # REF*G1 typo
    ("CO", "4", (), "coding", True, "corrected_claim"),                    # missing HO/HP/AJ modifier
    ("CO", "97", ("N20",), "coding", True, "corrected_claim"),             # 90785 bundled
    ("CO", "16", ("N290",), "missing_data", True, "corrected_claim"),      # rendering NPI missing
    ("CO", "252", (), "missing_data", True, "resubmit_with_info"),         # treatment plan requested
    ("CO", "29", (), "timely_filing", True, "appeal"),
    ("OA", "18", (), "duplicate", True, "none"),                           # original resent, not a 7
    ("CO", "50", ("N115",), "medical_necessity", True, "appeal"),          # Medicare LCD
    ("CO", "151", ("N362",), "medical_necessity", True, "appeal"),         # weekly 90837 over policy
    ("PR", "119", ("N362",), "benefit_limit", True, "bill_patient"),       # annual visit limit used up
    ("CO", "109", (), "coordination_of_benefits", True, "check_eligibility"),  # behavioral carve-out
    ("OA", "23", (), "coordination_of_benefits", False, "none"),           # secondary's view of the primary
    ("CO", "185", ("N95",), "enrollment", True, "corrected_claim"),        # clinician not loaded yet
    ("CO", "170", ("N95",), "enrollment", True, "write_off"),              # counselor billing a prescriber code
    ("CO", "45", (), "contractual", False, "write_off"),
    ("CO", "253", (), "contractual", False, "write_off"),                  # Medicare sequestration
    ("PR", "3", (), "patient_responsibility", False, "bill_patient"),
    ("CO", "A1", ("N130",), "other", True, "review"),
]


@pytest.mark.parametrize("group, carc, remarks, category, is_denial, action", REALISTIC,
                         ids=[f"{g}-{c}{'+' + '+'.join(r) if r else ''}" for g, c, r, *_ in REALISTIC])
def test_each_adjustment_lands_in_its_category_with_its_next_action(rules, group, carc, remarks, category,
                                                                    is_denial, action):
    result = rules.classify(group, carc, remarks)
    assert (result.category, result.is_denial, result.action) == (category, is_denial, action)
    assert result.action_text.strip() and "(not in the table)" not in result.carc_description
    assert all("(not in the table)" not in text for text in result.rarc_descriptions)


def test_the_realistic_cases_reach_every_category():
    assert {case[3] for case in REALISTIC} == set(CATEGORIES)


def test_a_remark_code_refines_the_plain_carc(rules):
    plain = rules.classify("CO", "16")
    assert plain.category == "missing_data"

    authorization = rules.classify("CO", "16", ["M62"])
    assert authorization.category == "authorization"
    assert "REF*G1" in authorization.action_text

    rendering = rules.classify("CO", "16", ["N290"])
    assert rendering.category == "missing_data" and "2310B" in rendering.action_text

    unprocessable = rules.classify("CO", "16", ["MA130"])  # Medicare: no appeal rights, new claim
    assert unprocessable.action == "resubmit_with_info" and plain.action == "corrected_claim"

    assert rules.classify("CO", "198").action == "appeal"
    assert rules.classify("CO", "198", ["N54"]).action == "corrected_claim"  # code differs from the auth
    assert rules.classify("CO", "29").action == "appeal"
    # No appeal allowed: send it again while the claim's filing window is open, else write it off.
    no_appeal = rules.classify("CO", "29", ["N211"])
    assert (no_appeal.action, no_appeal.window, no_appeal.expired_action) == ("resubmit_with_info", "original", "write_off")


def test_the_first_remark_with_a_refinement_decides(rules):
    # N130 refines nothing on CARC 16; M62 and N290 both do, and the payer's order decides.
    assert rules.classify("CO", "16", ["N130", "M62"]).category == "authorization"
    assert rules.classify("CO", "16", ["N290", "M62"]).category == "missing_data"
    assert rules.classify("CO", "16", ["M62", "N290"]).category == "authorization"


def test_pr_and_co_of_the_same_carc_call_for_different_actions(rules):
    for carc in ("96", "204", "119", "242"):
        co, pr = rules.classify("CO", carc), rules.classify("PR", carc)
        assert co.action == "write_off", carc       # contractual obligation: the patient may not be billed
        assert pr.action == "bill_patient", carc    # patient responsibility
        assert co.category == pr.category and co.is_denial and pr.is_denial
    # CO-45 is the contractual write-down; PR-45 is an out-of-network balance the patient owes.
    co, pr = rules.classify("CO", "45"), rules.classify("PR", "45")
    assert (co.category, co.action) == ("contractual", "write_off")
    assert (pr.category, pr.action, pr.is_denial) == ("patient_responsibility", "bill_patient", False)


def test_a_pr_denial_without_its_own_pr_rule_goes_to_the_patient(rules):
    # PR-50: the patient signed an advance notice, so the payer made them liable.
    assert rules.classify("CO", "50").action == "appeal"
    pr = rules.classify("PR", "50")
    assert (pr.category, pr.is_denial, pr.action) == ("medical_necessity", True, "bill_patient")
    assert rules.classify("PR", "50", has_secondary=True).action == "bill_secondary"


def test_cost_share_goes_to_the_secondary_payer_first_when_there_is_one(rules):
    for carc in ("1", "2", "3"):
        alone = rules.classify("PR", carc)
        with_secondary = rules.classify("PR", carc, has_secondary=True)
        assert (alone.category, alone.is_denial, alone.action) == ("patient_responsibility", False, "bill_patient")
        assert with_secondary.action == "bill_secondary" and "2320" in with_secondary.action_text
    assert rules.classify("PR", "96", has_secondary=True).action == "bill_secondary"
    assert rules.classify("CO", "96", has_secondary=True).action == "write_off"


def test_crossover_remark_means_the_secondary_already_has_the_claim(rules):
    crossed = rules.classify("PR", "2", ["MA18"], has_secondary=True)
    assert crossed.action == "none" and "crossover" in crossed.action_text


def test_payer_override_beats_the_default(tmp_path):
    rules = rules_with_override(tmp_path, """
[payer."77027"]
name = "A Medicaid MCO"
[payer."77027".carc."197"]
action = "write_off"
action_text = "This plan grants no retro-authorizations: write it off."
[payer."77027".carc."16".remark.N290]
action = "resubmit_with_info"
action_text = "This plan wants a new claim with the rendering NPI."
[payer."77027".carc."16"]
category = "missing_data"
action = "corrected_claim"
action_text = "This plan's generic CARC 16 text."
""")
    assert rules.classify("CO", "197", payer_id="77027").action == "write_off"
    assert rules.classify("CO", "197", payer_id="87726").action == "appeal"
    assert rules.classify("CO", "197").action == "appeal"
    assert rules.classify("CO", "16", ["N290"], payer_id="77027").action == "resubmit_with_info"
    assert rules.classify("CO", "16", ["N290"]).action == "corrected_claim"
    # The payer's plain CARC 16 rule does not undo the default, more specific M62 refinement.
    assert rules.classify("CO", "16", ["M62"], payer_id="77027").category == "authorization"
    assert rules.classify("CO", "16", payer_id="77027").action_text == "This plan's generic CARC 16 text."


def test_a_payer_may_classify_a_carc_the_table_lacks(tmp_path):
    rules = rules_with_override(tmp_path, """
[payer."87726".carc."P7"]
description = "Billed code not in the jurisdiction fee schedule."
category = "coding"
action = "corrected_claim"
action_text = "Rebill with the fee schedule's code."
""")
    assert rules.classify("CO", "P7", payer_id="87726").category == "coding"
    assert rules.classify("CO", "P7").category == "other"


def test_appeal_deadline_counts_days_from_the_remittance_date(tmp_path, rules):
    assert rules.appeal_deadline(None, date(2026, 1, 15)) == date(2026, 7, 14)  # default 180 days
    assert rules.classify("CO", "50").appeal_deadline_days == 180
    assert rules.classify("CO", "4").appeal_deadline_days is None  # not an appeal

    configured = rules_with_override(tmp_path, """
[payer."01112"]
profile = "medicare_part_b"
[payer."77027"]
appeal_days = 60
[payer."77028"]
profile = "medicare_part_b"
timely_filing_days = 180
""")
    assert configured.appeal_deadline("01112", date(2026, 1, 15)) == date(2026, 5, 15)   # redetermination 120
    assert configured.appeal_deadline("01112", date(2028, 1, 15)) == date(2028, 5, 14)   # leap February
    assert configured.appeal_deadline("77027", date(2026, 12, 15)) == date(2027, 2, 13)
    assert configured.classify("CO", "50", payer_id="01112").appeal_deadline_days == 120
    assert configured.timely_filing_days("01112") == 365
    assert configured.timely_filing_days("77028") == 180  # the payer beats its profile
    assert configured.timely_filing_days("77027") == 90   # the default
    assert configured.timely_filing_days(None) == 90


def test_no_appeal_deadline_when_none_is_configured(tmp_path):
    rules = rules_with_override(tmp_path, "")
    assert rules.appeal_deadline("anyone", date(2026, 1, 15)) == date(2026, 7, 14)
    stripped = DenialRules({"defaults": {}, "carc": {"50": {"description": "x", "category": "medical_necessity",
                                                            "action": "appeal", "action_text": "Appeal."}}})
    assert stripped.timely_filing_days(None) is None
    assert stripped.classify("CO", "50").appeal_deadline_days is None
    # the windows (mappings/rules/filing_windows.toml) answer even for a table built by hand
    assert stripped.appeal_deadline(None, date(2026, 1, 15)) == date(2026, 7, 14)
    assert FilingWindows({}).window("appeal", payer_id=None, filing_indicator=None) is None


def test_the_appeal_deadline_follows_the_payers_kind_from_the_remittances_filing_indicator(tmp_path, rules):
    # Medicare redetermination: 120 days (42 CFR 405.942); commercial: the 180-day default
    assert rules.appeal_deadline("00431", date(2026, 12, 1), "MB") == date(2027, 3, 31)
    assert rules.appeal_deadline("87726", date(2026, 12, 1), "12") == date(2027, 5, 30)
    # a payer's own row (old style, in this table) still wins over its kind
    configured = rules_with_override(tmp_path, '[payer."00431"]\nappeal_days = 60\n')
    assert configured.appeal_deadline("00431", date(2026, 12, 1), "MB") == date(2027, 1, 30)


def test_an_unknown_carc_is_sent_for_review_without_crashing(rules):
    result = rules.classify("CO", "999", ["ZZ99"])
    assert (result.category, result.is_denial, result.action) == ("other", True, "review")
    assert result.carc_description == "CARC 999 (not in the table)"
    assert result.rarc_descriptions == ("RARC ZZ99 (not in the table)",)
    assert "999" in result.action_text and result.appeal_deadline_days is None
    assert "review" in ACTIONS


def test_codes_are_read_regardless_of_case_and_spaces(rules):
    assert rules.classify(" co ", " b7 ", [" n95 "]).category == "enrollment"


def test_a_4010_group_code_is_an_input_error(rules):
    with pytest.raises(InputError, match="CR"):
        rules.classify("CR", "45")


def test_a_malformed_override_reports_every_problem_at_once(tmp_path):
    with pytest.raises(MappingError) as caught:
        rules_with_override(tmp_path, """
[defaults]
appeal_days = "six months"

[carc."16"]
category = "paperwork"

[carc."50"]
action = "complain"

[carc."96".group.OI]
action = "write_off"
action_text = "Write it off."

[carc."4"]
acton = "corrected_claim"

[payer."77027"]
timely_filing_days = 90.5
profile = "medicaid"
""")
    message = str(caught.value)
    for problem in ("defaults.appeal_days: 'six months'", "'paperwork' is not a category",
                    "'complain' is not an action", "carc.\"50\": the override sets action without action_text",
                    "'OI' is not a 5010 CAS group code", "acton: unknown key",
                    "timely_filing_days: 90.5", "no [profile.medicaid]"):
        assert problem in message, problem
    assert message.count(";") >= 7
    assert str(tmp_path / "home" / "mappings" / DENIALS) in message


def test_a_rule_judged_by_a_window_must_name_a_real_window_and_say_what_to_do_once_it_closes(tmp_path):
    with pytest.raises(MappingError) as caught:
        rules_with_override(tmp_path, """
[carc."29"]
window = "initial"
action = "appeal"
action_text = "Appeal it."
expired_action = "shred"
""")
    message = str(caught.value)
    for problem in ("'initial' is not a claim type of rules/filing_windows.toml", "'shred' is not an action",
                    "sets expired_action without expired_action_text"):
        assert problem in message, problem


def _markdown_table(section: str) -> list[list[str]]:
    """Rows (cells, stripped of markdown emphasis) of the first table under ``### {section}``."""
    if not DOMAIN_REFERENCE.is_file():
        pytest.skip(f"{DOMAIN_REFERENCE} not present")
    text = DOMAIN_REFERENCE.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(section)}\b.*?$(.*?)(?=^### |\Z)", text, re.M | re.S)
    assert match, f"section {section} not found in the domain reference"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip().replace("*", "") for cell in row.strip("|").split("|")] for row in rows[2:]]


# Domain reference 6.6 "Category" column -> the categories it may land in here.
REFERENCE_CATEGORIES = {
    "patient responsibility": {"patient_responsibility"},
    "coding": {"coding"},
    "coding / medical necessity": {"coding", "medical_necessity"},
    "coding (bundling)": {"coding"},
    "authorization": {"authorization"},
    "authorization / referral": {"authorization"},
    "front-end / data": {"missing_data"},
    "documentation": {"missing_data"},
    "duplicate": {"duplicate"},
    "cob": {"coordination_of_benefits"},
    "eligibility": {"eligibility"},
    "eligibility / cob": {"eligibility", "coordination_of_benefits"},
    "timely filing": {"timely_filing"},
    "contractual": {"contractual"},
    "contractual (not a denial)": {"contractual"},
    "medical necessity": {"medical_necessity"},
    "benefit / coverage": {"benefit_limit"},
    "benefit limit": {"benefit_limit"},
    "provider / credentialing": {"enrollment"},
    "network": {"enrollment"},
}


def test_shipped_table_covers_every_carc_in_domain_reference_6_6(rules):
    rows = _markdown_table("6.6")
    covered = 0
    for cells in rows:
        codes = [code.strip() for code in cells[0].split("/")]
        group = cells[2].split("/")[0].split()[0]  # the usual group code, e.g. "OA (CO for some WC)"
        expected = REFERENCE_CATEGORIES.get(cells[3].lower())
        for code in codes:
            result = rules.classify(group, code)
            assert "(not in the table)" not in result.carc_description, f"CARC {code} is missing"
            if expected is not None:
                assert result.category in expected, f"CARC {code}: {result.category} vs {cells[3]!r}"
            covered += 1
    assert covered >= 30  # the section lists over thirty codes: a parse that finds none must not pass


def test_shipped_table_describes_every_rarc_in_domain_reference_6_7(rules):
    codes = [cells[0] for cells in _markdown_table("6.7")]
    assert len(codes) >= 15
    described = rules.classify("CO", "16", codes).rarc_descriptions
    assert [text for text in described if "(not in the table)" in text] == []
