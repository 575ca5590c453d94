"""Where the patient was decides the place of service of a telehealth visit (domain reference 2).

POS 02 is telehealth with the patient somewhere other than home, POS 10 with the patient at
home, and they are paid differently, so when the EHR says which it was the hub bills that; the
payer's default is only for a visit whose EHR does not say. The payer table
(``mappings/payers.toml``) supplies what the payer wants with that place: 95 or no modifier for
video, 93 for audio only, and FQ only on a rural health clinic's or FQHC's claim.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bhhub.coding.engine import code_encounter
from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Address, Coverage, Encounter, Patient, Payer, PersonName, Provider, ServiceLine

DAY = date(2026, 3, 4)
GROUP = Provider(npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
                 taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "627010001"))
RHC = replace(GROUP, taxonomy="261QR1300X")
FQHC = replace(GROUP, taxonomy="261QF0400X")
LCSW = Provider(npi="1999999984", name=PersonName("Smith", "Jane"), taxonomy="1041C0700X")
COMMERCIAL = Payer("99999", "Sample Health Plan", "CI")
MEDICARE = Payer("MCR01", "Medicare Part B", "MB")
PATIENT = Patient(name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
                  address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|1")


def visit(place: str | None = None, *, virtual: bool = True, audio_only: bool = False, billing: Provider = GROUP,
          lines: tuple[ServiceLine, ...] | None = None, as_billed: bool = False) -> Encounter:
    return Encounter(
        key="test|visit|1", source_ref="Encounter/1", service_date=DAY, patient=PATIENT,
        coverages=(Coverage(1, COMMERCIAL, "MEM1"),), billing_provider=billing, rendering_provider=LCSW,
        diagnoses=("F33.1",),
        services=lines if lines is not None else (ServiceLine("90834", DAY, charge=Decimal("120")),),
        place_of_service=place, virtual=virtual, audio_only=audio_only, as_billed=as_billed,
    )


def coded(encounter: Encounter, payer: Payer = COMMERCIAL, mappings: MappingSet | None = None):
    result = code_encounter(encounter, payer, mappings or MappingSet())
    return result.place_of_service, [line.modifiers for line in result.lines]


def practice(tmp_path: Path, payers_toml: str) -> MappingSet:
    (tmp_path / "payers.toml").write_text(payers_toml)
    return MappingSet(override_dir=tmp_path)


# --- the patient's location, when the EHR says it, wins over the payer's default ------------------


def test_a_video_visit_with_the_patient_at_a_clinic_is_billed_pos_02():
    assert coded(visit("02")) == ("02", [("95",)])


def test_a_video_visit_with_the_patient_at_home_is_billed_pos_10():
    assert coded(visit("10")) == ("10", [("95",)])


def test_a_video_visit_whose_ehr_does_not_say_where_the_patient_was_takes_the_payers_default():
    assert coded(visit(None)) == ("10", [("95",)])


def test_an_office_place_on_a_video_visit_says_nothing_about_the_patient():
    # 11 on a virtual visit is the clinician's office or a practice default: the payer's rule decides.
    assert coded(visit("11")) == ("10", [("95",)])


def test_a_visit_the_ehr_places_at_pos_02_is_telehealth_without_a_virtual_flag():
    assert coded(visit("02", virtual=False)) == ("02", [("95",)])


def test_lines_that_all_say_where_the_patient_was_tell_the_claims_place():
    lines = tuple(ServiceLine(code, DAY, charge=Decimal("100"), place_of_service="02") for code in ("90834", "90785"))
    assert coded(visit(None, lines=lines)) == ("02", [("95",), ("95",)])


def test_the_payers_default_place_is_used_only_when_the_ehr_is_silent(tmp_path):
    pos_02_payer = practice(tmp_path, '[payer."99999".telehealth]\nplace_of_service = "02"\n')
    assert coded(visit(None), mappings=pos_02_payer) == ("02", [("95",)])
    assert coded(visit("10"), mappings=pos_02_payer) == ("10", [("95",)])


def test_an_office_visit_keeps_its_place_and_gets_no_telehealth_modifier():
    assert coded(visit("11", virtual=False)) == ("11", [()])
    assert coded(visit(None, virtual=False)) == ("11", [()])


def test_a_claim_taken_as_billed_keeps_its_place_and_modifiers():
    lines = (ServiceLine("90834", DAY, ("GT",), Decimal("120")),)
    assert coded(visit("02", lines=lines, as_billed=True)) == ("02", [("GT",)])


# --- what the payer wants with that place -------------------------------------------------------------


@pytest.mark.parametrize("place", ["02", "10"])
def test_medicare_video_needs_no_95_at_either_place(place):
    assert coded(visit(place), MEDICARE) == (place, [()])


@pytest.mark.parametrize("place", ["02", "10"])
def test_audio_only_gets_93_from_commercial_payers_and_medicare(place):
    assert coded(visit(place, audio_only=True)) == (place, [("93",)])
    assert coded(visit(place, audio_only=True), MEDICARE) == (place, [("93",)])


def test_a_payer_can_want_95_only_when_the_patient_is_at_home(tmp_path):
    mappings = practice(tmp_path, '[payer."99999".telehealth.place."02"]\nvideo_modifier = ""\n')
    assert coded(visit("02"), mappings=mappings) == ("02", [()])
    assert coded(visit("10"), mappings=mappings) == ("10", [("95",)])


def test_a_payer_that_bills_telehealth_as_an_office_visit_gets_pos_11_with_95(tmp_path):
    mappings = practice(tmp_path, '[payer."99999".telehealth]\nbill_place_of_service = "11"\n')
    assert coded(visit("02"), mappings=mappings) == ("11", [("95",)])


# --- FQ only on a rural health clinic's or FQHC's claim ---------------------------------------------


@pytest.mark.parametrize("clinic", [RHC, FQHC])
def test_audio_only_at_an_rhc_or_fqhc_gets_fq_from_medicare(clinic):
    assert coded(visit("10", audio_only=True, billing=clinic), MEDICARE) == ("10", [("FQ",)])


def test_audio_only_at_a_group_practice_gets_93_from_medicare_never_fq():
    assert coded(visit("10", audio_only=True), MEDICARE) == ("10", [("93",)])


def test_a_practice_can_name_its_billing_npi_as_an_rhc_or_fqhc(tmp_path):
    mappings = practice(tmp_path, f'[telehealth]\nrhc_fqhc_npis = ["{GROUP.npi}"]\n')
    assert coded(visit("10", audio_only=True), MEDICARE, mappings) == ("10", [("FQ",)])


def test_fq_configured_as_an_ordinary_audio_only_modifier_is_refused(tmp_path):
    mappings = practice(tmp_path, '[payer."99999".telehealth]\naudio_only_modifier = "FQ"\n')
    with pytest.raises(MappingError, match="FQ.*rhc_fqhc_audio_only_modifier"):
        coded(visit("10", audio_only=True), mappings=mappings)


def test_a_misspelt_telehealth_key_is_refused_with_the_nearest_one(tmp_path):
    mappings = practice(tmp_path, '[payer."99999".telehealth]\nvideo_modifer = ""\n')
    with pytest.raises(MappingError, match="video_modifer.*video_modifier"):
        coded(visit("10"), mappings=mappings)
