"""Each claim billed as its own visit says, through `bhhub intake` and `bhhub export-837`.

- Two visits of one practice billed under one NPI but different taxonomies each go under a
  2000A loop with their own PRV*BI (the loop is grouped by every field it carries, not the NPI).
- A coverage whose relationship says "self" but names another person as subscriber is an error
  naming the fields, never their values: 2010BA would describe the wrong subscriber.
- Session modifiers the EHR sent are checked like the ones the hub adds (95 to Traditional
  Medicare is an error, not billed).
- No patient value (name, birth date, member id, address) appears in any finding a biller reads.

Every 837P written here passes pyx12.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from sqlalchemy import select

from conftest import FIXTURES
from bhhub.cli.main import main
from bhhub.store import schema
from bhhub.x12.validate import validate_x12

NUCC = "http://nucc.org/provider-taxonomy"
CPT = "http://www.ama-assn.org/go/cpt"
CMS_POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
BASE = json.loads((FIXTURES / "fhir" / "lcsw-office-90837.json").read_text())


def resource(content: dict, rtype: str) -> dict:
    return next(e["resource"] for e in content["entry"] if e["resource"]["resourceType"] == rtype)


def visit(n: int) -> dict:
    """The office visit of fixture lcsw-office-90837, as patient and visit number ``n``."""
    content = copy.deepcopy(BASE)
    resource(content, "Patient")["identifier"][0]["value"] = f"MRN-EACH-{n}"
    resource(content, "Encounter")["identifier"][0]["value"] = f"V-EACH-{n}"
    resource(content, "Coverage")["subscriberId"] = f"MEMEACH{n}"
    return content


def billed_as(content: dict, taxonomy: str) -> dict:
    resource(content, "Organization")["type"] = [{"coding": [{"system": NUCC, "code": taxonomy}]}]
    return content


def intake(home: Path, folder: Path, bundles: dict[str, dict]) -> None:
    folder.mkdir()
    for name, content in bundles.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    assert main(["--home", str(home), "intake", str(folder)]) == 0


def exported(home: Path, out: Path) -> list[list[str]]:
    assert main(["--home", str(home), "export-837", "--out", str(out)]) == 0
    content = out.read_bytes()
    assert validate_x12(content) == []
    return [s.strip().split("*") for s in content.decode().split("~") if s.strip()]


def findings_of(home: Path) -> dict[str, list[tuple[str, str, str]]]:
    """member id -> (code, message, fix) of each finding on that member's claim."""
    from bhhub.runtime.app import Hub

    with Hub.open(home) as hub, hub.store.session() as session:
        rows = session.execute(select(schema.Coverage.member_id, schema.Finding.code, schema.Finding.message,
                                      schema.Finding.fix)
                               .join(schema.Claim, schema.Claim.id == schema.Finding.claim_id)
                               .join(schema.Coverage, schema.Coverage.id == schema.Claim.coverage_id)).all()
    found: dict[str, list] = {}
    for member, code, message, fix in rows:
        found.setdefault(member, []).append((code, message, fix))
    return found


def test_claims_of_one_npi_with_two_taxonomies_each_go_under_their_own_prv_bi(hub_home, tmp_path):
    intake(hub_home, tmp_path / "in", {"mh": billed_as(visit(1), "261QM0801X"),
                                       "rhc": billed_as(visit(2), "261QR1300X")})
    segments = exported(hub_home, tmp_path / "b.x12")
    under: dict[str, str] = {}
    taxonomy = None
    for segment in segments:
        if segment[:2] == ["PRV", "BI"]:
            taxonomy = segment[3]
        elif segment[:2] == ["NM1", "IL"]:
            under[segment[-1]] = taxonomy
    assert under == {"MEMEACH1": "261QM0801X", "MEMEACH2": "261QR1300X"}
    assert len([s for s in segments if s[0] == "HL" and s[3] == "20"]) == 2


def test_a_self_coverage_naming_another_subscriber_is_an_error_naming_fields_not_values(hub_home, tmp_path):
    content = visit(3)
    coverage = resource(content, "Coverage")
    coverage["subscriber"] = {"reference": "RelatedPerson/holder"}
    content["entry"].append({"resource": {
        "resourceType": "RelatedPerson", "id": "holder", "patient": {"reference": "Patient/pat-1"},
        "name": [{"family": "Holderbyname", "given": ["Hollis"]}], "gender": "male", "birthDate": "1951-02-03"}})
    intake(hub_home, tmp_path / "in", {"self-other": content, "plain": visit(4)})
    found = findings_of(hub_home)
    [(code, message, fix)] = [f for f in found["MEMEACH3"] if f[0] == "coverage.self_subscriber"]
    assert "relationship" in message and "subscriber" in message and "Coverage.relationship" in fix
    assert not any(value in message + fix for value in ("Holderbyname", "Hollis", "1951", "Testpatient"))
    assert "MEMEACH4" not in found  # a self coverage whose subscriber is the patient is clean


def test_an_ehr_sent_95_to_traditional_medicare_is_held_with_a_finding_naming_it(hub_home, tmp_path):
    content = visit(5)
    resource(content, "Organization")  # the practice
    payer = next(e["resource"] for e in content["entry"] if e["resource"].get("id") == "payer-commercial")
    payer["identifier"][0]["value"], payer["name"] = "00431", "MEDICARE PART B"
    resource(content, "Coverage")["type"]["coding"][0]["code"] = "1"  # SOPT 1: Medicare
    resource(content, "Coverage")["subscriberId"] = "1EG4TE5MK73"
    encounter = resource(content, "Encounter")
    encounter["class"]["code"] = "VR"
    content["entry"].append({"resource": {"resourceType": "Location", "id": "home",
                                          "type": [{"coding": [{"system": CMS_POS, "code": "10"}]}]}})
    encounter["location"] = [{"location": {"reference": "Location/home"}}]
    resource(content, "ChargeItem")["extension"] = [
        {"url": "http://example.org/fhir/StructureDefinition/chargeitem-modifier", "valueCode": "95"}]
    intake(hub_home, tmp_path / "in", {"mcr": content})
    [(code, message, fix)] = [f for f in findings_of(hub_home)["1EG4TE5MK73"]
                              if f[0] == "coding.telehealth_modifier"]
    assert "95" in message and "POS 10" in message and fix.startswith("remove it")


# --- no patient value in any finding --------------------------------------------------------------

FAMILY, GIVEN, STREET, MEMBER = "Canarywhistle", "Pipistrelle", "987 Canaryvale Rd", "CANARY7731"


def canary_visits() -> dict[str, dict]:
    """Visits of a patient with canary values, each broken so that many checks speak."""
    def canary(n: int, birth: str = "1977-07-17") -> dict:
        content = visit(n)
        patient = resource(content, "Patient")
        patient["name"] = [{"family": FAMILY, "given": [GIVEN]}]
        patient["birthDate"] = birth
        patient["address"][0]["line"] = [STREET]
        resource(content, "Coverage")["subscriberId"] = f"{MEMBER}{n}"
        return content

    unborn = canary(11, birth="2030-01-01")  # dated before birth
    bad_code = canary(12)
    resource(bad_code, "ChargeItem")["code"]["coding"][0]["code"] = "90834"  # 53 minutes: 90837
    resource(bad_code, "ChargeItem")["extension"] = [
        {"url": "http://example.org/fhir/StructureDefinition/chargeitem-modifier", "valueCode": "FQ"}]
    other_holder = canary(13)
    resource(other_holder, "Coverage")["subscriber"] = {"reference": "RelatedPerson/holder"}
    other_holder["entry"].append({"resource": {
        "resourceType": "RelatedPerson", "id": "holder", "patient": {"reference": "Patient/pat-1"},
        "name": [{"family": f"{FAMILY}son", "given": [GIVEN]}], "gender": "male", "birthDate": "1950-05-05"}})
    return {"unborn": unborn, "bad-code": bad_code, "other-holder": other_holder}


def test_no_patient_value_appears_in_any_finding(hub_home, tmp_path):
    intake(hub_home, tmp_path / "in", canary_visits())
    found = [f for claims in findings_of(hub_home).values() for f in claims]
    codes = {code for code, _, _ in found}
    # the checks did speak about these claims
    assert {"line.service_date_before_birth", "coverage.self_subscriber", "coding.telehealth_modifier"} <= codes
    canaries = (FAMILY, GIVEN, STREET, "Canaryvale", MEMBER, "1977-07-17", "19770717", "2030-01-01", "1950-05-05")
    for code, message, fix in found:
        for value in canaries:
            assert value.lower() not in (message + " " + fix).lower(), (code, value)
