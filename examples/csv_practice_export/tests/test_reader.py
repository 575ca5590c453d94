"""The CSV reader beyond the contract: visits from rows, another tool's export by mapping only,
refusals that name the row and column but never the patient."""

from pathlib import Path

import pytest

from bhhub.errors import InputError, MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.types import IntakeContext

from csv_practice_export import FORMAT
from csv_practice_export.mapping import packaged_table, validate_mapping

GOLDENS = Path(__file__).parent / "goldens"
DAY = (GOLDENS / "day-export.csv").read_bytes()


def parse(content: bytes, override_dir=None):
    return FORMAT.parse(content, IntakeContext("test", MappingSet(override_dir=override_dir)))


def test_the_rows_of_one_visit_become_one_encounter_with_a_line_per_service():
    therapy, telehealth, psychiatry = parse(DAY)
    assert [line.procedure_code for line in psychiatry.services] == ["99214", "90833"]
    assert psychiatry.diagnoses == ("F33.1", "F43.10")
    assert [line.diagnosis_pointers for line in psychiatry.services] == [(1,), (1, 2)]
    assert psychiatry.source_ref == "row 4-5" and psychiatry.patient.address.postal_code == "627041234"
    assert therapy.services[0].charge == 180 and therapy.diagnoses == ("F33.1", "F41.1")
    assert telehealth.virtual and telehealth.place_of_service == "10" and telehealth.services[0].charge is None
    assert telehealth.diagnoses == ("F41.1",)  # the dot restored


ANOTHER_TOOL = b"""\
Visit Date;Patient ID;Last Name;First Name;Birth Date;Gender;Street;City;St;Zip;Ins Code;Insurance;Policy #;Provider NPI;Provider;Proc;Mods;Mins;Dx;Fee
2026-11-02;P-77;Testpatient;Alpha;1985-03-14;F;12 Elm St;Springfield;IL;62704;87726;SAMPLE COMMERCIAL;MEM1001;1999999984;Clinician, Casey;90837;;55;F33.1;180.00
"""

ANOTHER_TOOL_MAPPING = """\
[csv]
delimiter = ";"
date_format = "%Y-%m-%d"

[columns]
service_date = "Visit Date"
chart_number = "Patient ID"
patient_last = "Last Name"
patient_first = "First Name"
birth_date = "Birth Date"
sex = "Gender"
street = "Street"
city = "City"
state = "St"
postal_code = "Zip"
payer_id = "Ins Code"
payer_name = "Insurance"
member_id = "Policy #"
rendering_npi = "Provider NPI"
rendering_name = "Provider"
procedure_code = "Proc"
modifiers = "Mods"
minutes = "Mins"
diagnoses = "Dx"
charge = "Fee"
rendering_taxonomy = "Provider Taxonomy"
place_of_service = "Place"

[recognize]
header_has = ["Patient ID", "Visit Date", "Proc", "Provider NPI"]
"""


def test_another_tools_export_needs_only_a_mapping(tmp_path, monkeypatch):
    (tmp_path / "mappings" / "ehr").mkdir(parents=True)
    (tmp_path / "mappings" / "ehr" / "csv_practice_export.toml").write_text(ANOTHER_TOOL_MAPPING)
    assert not FORMAT.recognizes(ANOTHER_TOOL)
    monkeypatch.setenv("BHHUB_HOME", str(tmp_path))
    assert FORMAT.recognizes(ANOTHER_TOOL)
    [visit] = parse(ANOTHER_TOOL, override_dir=tmp_path / "mappings")
    assert visit.services[0].procedure_code == "90837" and visit.coverages[0].member_id == "MEM1001"
    with pytest.raises(InputError, match="the header has no column 'Date of Service'"):
        parse(ANOTHER_TOOL)  # without the mapping, the columns are not found


def test_a_refused_row_is_named_by_row_and_column_never_by_value():
    with pytest.raises(InputError) as refused:
        parse((GOLDENS / "refused" / "impossible-date.csv").read_bytes())
    message = str(refused.value)
    assert "row 2" in message and "'Date of Service'" in message
    assert "11/31/2026" not in message and "Testpatient" not in message


def test_a_visit_whose_rows_disagree_on_the_member_id_is_refused():
    damaged = DAY.replace(b"1245319599,\"Prescriber, Dana\",2084P0800X,90833,,30,F33.1 F43.10",
                          b"1245319599,\"Prescriber, Dana\",2084P0800X,90833,,30,F33.1 F43.10").replace(
        b"MEM1003,1245319599,\"Prescriber, Dana\",2084P0800X,90833", b"MEM9999,1245319599,\"Prescriber, Dana\",2084P0800X,90833")
    with pytest.raises(InputError, match="row 5: has another payer or member id than row 4"):
        parse(damaged)


def test_a_broken_mapping_is_refused_with_every_problem_named():
    table = packaged_table() | {"csv": {"delimiter": ";;"}, "billing_provider": {"npi": "1234567890"}}
    with pytest.raises(MappingError) as refused:
        validate_mapping(table)
    message = str(refused.value)
    assert "delimiter must be one character" in message and "npi is not a valid NPI" in message
    assert "tin is missing" in message
