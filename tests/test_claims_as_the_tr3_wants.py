"""Fresh FHIR bundles and HL7 messages through the hub as a new user sends them, 837P out.

Each story is one rule of the 837P guide or of telehealth billing (domain reference 2 and 5),
checked in the file a clearinghouse would receive, which pyx12 also accepts:

- a telehealth visit is billed at the place the EHR says the patient was (02 or 10), with the
  payer's modifier for it, on the FHIR path and the HL7 path alike;
- the billing provider's taxonomy (2000A PRV*BI) comes through the FHIR path as through HL7;
- a dependent the payer knows by a member id of their own is billed as the subscriber (no
  2000C), and a dependent's 2010BA carries no subscriber address or birth date;
- an HL7 visit's authorization is the primary payer's, whatever order the IN1s come in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES
from bhhub.cli.main import main
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.types import IntakeContext
from bhhub.x12.validate import validate_x12
from bhhub.plugins.ehr.hl7v2 import parse as parse_hl7
from test_hl7v2_plugin import PRACTICE as SUNRISE

# The HL7 practice bills under an NPI of its own here (the FHIR fixtures' practice has 1234567893).
PRACTICE = SUNRISE.replace('npi = "1234567893"', 'npi = "1555555550"')
FHIR, HL7 = FIXTURES / "fhir", FIXTURES / "hl7v2"
CMS_POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NUCC = "http://nucc.org/provider-taxonomy"
MEMBER_NUMBER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}
# An EHR that sends the session type and the patient's place of service in a Z-segment.
ZTH_PLACE = """
[encounter]
minutes = ["ZTH-2"]
telehealth = ["ZTH-3"]
telehealth_video = ["VIDEO"]
telehealth_audio_only = ["PHONE"]
place_of_service = ["ZTH-4"]
"""


def bundle(name: str) -> dict:
    return json.loads((FHIR / name).read_text())


def entry(content: dict, rtype: str, rid: str) -> dict:
    return next(e["resource"] for e in content["entry"]
                if e["resource"]["resourceType"] == rtype and e["resource"].get("id") == rid)


def telehealth_with_patient_at_a_clinic() -> dict:
    content = bundle("telehealth-video-45min.json")
    content["entry"].append({"resource": {"resourceType": "Location", "id": "patient-site", "type": [
        {"coding": [{"system": CMS_POS, "code": "02"}]}]}})
    entry(content, "Encounter", "enc-2")["location"] = [{"location": {"reference": "Location/patient-site"}}]
    return content


def office_visit_of_a_typed_practice() -> dict:
    content = bundle("lcsw-office-90837.json")
    entry(content, "Organization", "practice")["type"] = [{"coding": [{"system": NUCC, "code": "261QM0801X"}]}]
    return content


def child_with_own_member_id() -> dict:
    content = bundle("child-on-parent-plan.json")
    entry(content, "Coverage", "cov-child")["identifier"] = [
        {"type": MEMBER_NUMBER, "system": "urn:example:payer:member", "value": "JUN3000"}]
    entry(content, "Encounter", "enc-4")["identifier"][0]["value"] = "V1004-OWN"  # another visit,
    entry(content, "Patient", "pat-child")["identifier"][0]["value"] = "MRN0001004-OWN"  # another child
    return content


def hl7_video_session_at(place: bytes) -> bytes:
    return (HL7 / "dft-p03-ztherapy-minutes.hl7").read_bytes().replace(b"ZTH|1|53", b"ZTH|1|53|VIDEO|" + place)


@pytest.fixture
def sent(hub_home: Path, tmp_path: Path):
    """The bundles and an HL7 message taken in with `bhhub intake`, exported with `bhhub export-837`."""
    folder = hub_home / "mappings" / "ehr"
    folder.mkdir(parents=True)
    (folder / "practices.toml").write_text(PRACTICE)
    (folder / "hl7v2.toml").write_text(ZTH_PLACE)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, content in [("telehealth-02.json", telehealth_with_patient_at_a_clinic()),
                          ("office.json", office_visit_of_a_typed_practice()),
                          ("child-own-id.json", child_with_own_member_id()),
                          ("child-dependent.json", bundle("child-on-parent-plan.json"))]:
        (inputs / name).write_text(json.dumps(content))
    (inputs / "video-02.hl7").write_bytes(hl7_video_session_at(b"02"))
    assert main(["--home", str(hub_home), "intake", str(inputs)]) == 0
    out = tmp_path / "batch.x12"
    assert main(["--home", str(hub_home), "export-837", "--out", str(out)]) == 0
    content = out.read_bytes()
    assert validate_x12(content) == []
    return [s.strip().split("*") for s in content.decode().split("~") if s.strip()]


def claim_of(segments: list[list[str]], member_id: str) -> list[list[str]]:
    """One claim's segments, from its subscriber HL to the next subscriber or provider HL."""
    il = next(i for i, s in enumerate(segments) if s[:2] == ["NM1", "IL"] and s[-1] == member_id)
    start = max(i for i in range(il) if segments[i][0] == "HL")
    end = next(i for i in range(il, len(segments))
               if (segments[i][0] == "HL" and segments[i][3] != "23") or segments[i][0] == "SE")
    return segments[start:end]


def subscriber_loop(claim: list[list[str]]) -> list[str]:
    """The segment ids of 2010BA, NM1*IL up to NM1*PR."""
    ids = [s[0] + ("*" + s[1] if s[0] == "NM1" else "") for s in claim]
    return ids[ids.index("NM1*IL"):ids.index("NM1*PR")]


def test_a_fhir_telehealth_visit_with_the_patient_at_a_clinic_is_billed_pos_02_with_95(sent):
    claim = claim_of(sent, "MEM1002")
    clm = next(s for s in claim if s[0] == "CLM")
    assert clm[5] == "02:B:1"  # not the payer's default home (10): the EHR said where the patient was
    assert [s[1] for s in claim if s[0] == "SV1"] == ["HC:90834:95"]


def test_an_hl7_telehealth_visit_with_the_patient_at_a_clinic_is_billed_pos_02_with_95(sent):
    claim = claim_of(sent, "W987654321")
    assert next(s for s in claim if s[0] == "CLM")[5] == "02:B:1"
    assert [s[1] for s in claim if s[0] == "SV1"] == ["HC:90837:95"]


def billing_provider_level(segments: list[list[str]], member_id: str) -> list[list[str]]:
    """The 2000A HL and 2010AA of the billing provider a claim is under."""
    il = next(i for i, s in enumerate(segments) if s[:2] == ["NM1", "IL"] and s[-1] == member_id)
    start = max(i for i in range(il) if segments[i][0] == "HL" and segments[i][3] == "20")
    return segments[start:start + 7]


def test_the_fhir_billing_organizations_taxonomy_goes_in_prv_bi(sent):
    level = billing_provider_level(sent, "MEM1001")
    assert level[1] == ["PRV", "BI", "PXC", "261QM0801X"]
    assert level[2][:4] == ["NM1", "85", "2", "SAMPLE BEHAVIORAL HEALTH PLLC"]


def test_a_child_with_their_own_member_id_is_billed_as_the_subscriber(sent):
    claim = claim_of(sent, "JUN3000")
    assert [s for s in claim if s[0] == "HL" and s[3] == "23"] == [] and ["PAT", "19"] not in claim
    assert claim[1][:3] == ["SBR", "P", "18"]
    assert next(s for s in claim if s[:2] == ["NM1", "IL"])[3:5] == ["FAKELY", "JUNIPER"]
    assert subscriber_loop(claim) == ["NM1*IL", "N3", "N4", "DMG"]
    assert ["DMG", "D8", "20150909", "F"] in claim  # the child's birth date, not the parent's


def test_a_child_on_the_parents_member_id_gets_the_patient_loop_and_no_parent_address(sent):
    claim = claim_of(sent, "MEM2000-02")
    assert [s[3] for s in claim if s[0] == "HL"] == ["22", "23"] and ["PAT", "19"] in claim
    assert claim[1][:3] == ["SBR", "P", ""]
    assert subscriber_loop(claim) == ["NM1*IL"]  # the parent's address and birth date are not sent
    assert [s for s in claim if s[0] == "DMG"] == [["DMG", "D8", "20150909", "F"]]  # 2010CA, the child


# --- HL7: the dependent's own member number and the primary's authorization ------------------------


def hl7_visits(content: bytes, tmp_path: Path) -> list:
    folder = tmp_path / "mappings" / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "practices.toml").write_text(PRACTICE)
    return list(parse_hl7(content, IntakeContext("test.hl7", MappingSet(override_dir=tmp_path / "mappings"))))


def with_field(content: bytes, segment: bytes, occurrence: int, field: int, value: bytes) -> bytes:
    """``content`` with field ``field`` of the ``occurrence``-th ``segment`` (0-based) set to ``value``."""
    lines = content.split(b"\r")
    found = [n for n, line in enumerate(lines) if line.startswith(segment + b"|")][occurrence]
    fields = lines[found].split(b"|")
    fields += [b""] * (field + 1 - len(fields))
    fields[field] = value
    lines[found] = b"|".join(fields)
    return b"\r".join(lines)


def test_an_hl7_dependent_with_their_own_member_number_is_the_subscriber(tmp_path):
    full = (HL7 / "dft-p03-v251-full.hl7").read_bytes()
    [dependent] = hl7_visits(full, tmp_path)
    assert (dependent.coverages[0].relationship, dependent.coverages[0].member_id) == ("19", "XOF123456789")
    [own] = hl7_visits(with_field(full, b"IN2", 0, 61, b"XOF123456789-02"), tmp_path)
    primary = own.coverages[0]
    assert (primary.relationship, primary.member_id, primary.subscriber) == ("18", "XOF123456789-02", None)
    # IN2-61 is read in the coverage's own IN1 group: the Medicaid coverage (no IN2) is unchanged.
    assert own.coverages[1].member_id == "MCD445566778"


def test_an_hl7_authorization_is_the_primary_payers_whatever_order_the_in1s_come_in(tmp_path):
    full = (HL7 / "dft-p03-v251-full.hl7").read_bytes()
    assert hl7_visits(full, tmp_path)[0].prior_authorization == "AUTH5566"  # BCBS, primary, first IN1
    # IN1-22 makes Medicaid (the second IN1) the primary: BCBS's AUTH5566 is not Medicaid's.
    swapped = with_field(with_field(full, b"IN1", 0, 22, b"2"), b"IN1", 1, 22, b"1")
    [visit] = hl7_visits(swapped, tmp_path)
    assert visit.coverages[0].payer.payer_id == "ILMCD"
    assert visit.prior_authorization is None


def test_hl7_lines_with_authorizations_of_their_own_carry_them(tmp_path):
    # An EHR that sends each charge's authorization in a Z-segment after its FT1.
    (tmp_path / "mappings" / "ehr").mkdir(parents=True)
    (tmp_path / "mappings" / "ehr" / "hl7v2.toml").write_text('[charge]\nprior_authorization = ["ZAU-1"]\n')
    full = (HL7 / "dft-p03-v251-full.hl7").read_bytes()
    first_ft1_group_end = full.index(b"\rFT1|2|")
    content = full[:first_ft1_group_end] + b"\rZAU|AUTH-THERAPY" + full[first_ft1_group_end:]
    [visit] = hl7_visits(content, tmp_path)
    assert [(s.procedure_code, s.prior_authorization) for s in visit.services] == [
        ("90837", "AUTH-THERAPY"), ("90785", None)]
    assert visit.prior_authorization == "AUTH5566"  # the visit's (the primary's IN1-14) for the others
