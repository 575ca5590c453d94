"""The FHIR R4 EHR plugin: bundles as EHRs export them, in; canonical encounters, out.

Fixtures are in tests/fixtures/fhir (synthetic people, NPIs that pass the check digit). Bad
variants are made by editing a good fixture in the test, so each test says what it broke.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import official_visit_bundle

from bhhub.errors import InputError, MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Encounter
from bhhub.types import IntakeContext
from bhhub.plugins.ehr.fhir_r4 import FORMAT, bhhub_register_intake_formats, parse, recognizes
from bhhub.plugins.ehr.fhir_r4.reader import claims_unrecognized

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fhir"
PACKAGED_MAP = Path(__file__).resolve().parent.parent / "mappings" / "ehr" / "fhir_r4.toml"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


def read(content: bytes | dict, mappings: MappingSet | None = None) -> list[Encounter]:
    if isinstance(content, dict):
        content = json.dumps(content).encode()
    return list(parse(content, IntakeContext("test.json", mappings or MappingSet())))


def refusal(content: bytes | dict, mappings: MappingSet | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        read(content, mappings)
    return caught.value


def resource(bundle: dict, rtype: str, rid: str) -> dict:
    return next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == rtype and e["resource"].get("id") == rid)


def drop(bundle: dict, rtype: str, rid: str) -> dict:
    bundle["entry"] = [e for e in bundle["entry"]
                       if not (e["resource"]["resourceType"] == rtype and e["resource"].get("id") == rid)]
    return bundle


OFFICE_PHI = ("Testpatient", "Alpha", "MEM1001", "1985-03-14", "MRN0001001")


def assert_no_phi(error: InputError, phi=OFFICE_PHI) -> None:
    text = f"{error} {error.where} {error.fix}"
    assert not [p for p in phi if p in text], text


# --- the format ---------------------------------------------------------------------------


def test_the_plugin_registers_one_format_named_fhir_r4_bundle():
    assert bhhub_register_intake_formats() == [FORMAT]
    assert FORMAT.name == "fhir-r4-bundle"


@pytest.mark.parametrize("content", [
    b'{"resourceType": "Bundle", "type": "collection"}',
    b'\xef\xbb\xbf \n {"resourceType": "Bundle"',  # BOM, whitespace, truncated
    b'{"resourceType": "Patient", "id": "p1"}',
])
def test_json_naming_a_resource_type_is_recognised(content):
    assert recognizes(content) and claims_unrecognized(content)


@pytest.mark.parametrize("content", [b'{"foo": 1}', b"[1, 2]"])
def test_other_json_is_left_to_other_plugins_then_claimed_to_be_refused_with_a_reason(content):
    assert not recognizes(content) and claims_unrecognized(content)


@pytest.mark.parametrize("content", [
    b"ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *",
    b"MSH|^~\\&|EHR|CLINIC|HUB|BILLING|202610050900||DFT^P03|1|P|2.5.1\r",
    b"patient,cpt,minutes\n1,90837,53\n",
    b"",
])
def test_other_formats_are_left_to_other_plugins(content):
    assert not recognizes(content)


# --- encounters as the EHR recorded them -------------------------------------------------


def test_lcsw_office_session_maps_patient_payer_providers_diagnoses_and_charge():
    [visit] = read(raw("lcsw-office-90837.json"))
    assert visit.key == "fhir:Encounter|urn:example:ehr:visit|V1001"
    assert visit.source_ref == "Encounter/enc-1"
    assert visit.service_date == date(2026, 10, 5)
    assert visit.patient.key == "fhir:MR|urn:example:ehr:mrn|MRN0001001"
    assert (visit.patient.name.family, visit.patient.name.given, visit.patient.name.middle) == (
        "Testpatient", "Alpha", "Quinn")
    assert (visit.patient.birth_date, visit.patient.gender) == (date(1985, 3, 14), "F")
    assert visit.patient.address.postal_code == "62704"
    [coverage] = visit.coverages
    assert (coverage.order, coverage.payer.payer_id, coverage.payer.name) == (
        1, "87726", "SAMPLE COMMERCIAL HEALTH PLAN")
    assert coverage.payer.claim_filing_indicator == "CI"  # SOPT 5, private insurance
    assert (coverage.member_id, coverage.group_number, coverage.plan_name) == ("MEM1001", "GRP-100", "SAMPLE PPO GOLD")
    assert coverage.relationship == "18" and coverage.subscriber is None
    billing = visit.billing_provider
    assert (billing.npi, billing.tin, billing.organization_name) == (
        "1234567893", "123456789", "SAMPLE BEHAVIORAL HEALTH PLLC")
    assert (billing.address.line2, billing.address.postal_code) == ("Suite 200", "627010001")
    assert (visit.rendering_provider.npi, visit.rendering_provider.taxonomy) == ("1999999984", "1041C0700X")
    assert visit.diagnoses == ("F33.1", "F41.1")
    [line] = visit.services
    assert (line.procedure_code, line.units, line.charge) == ("90837", Decimal(1), Decimal("180.00"))
    assert (line.diagnosis_pointers, line.service_date, line.source_ref) == (
        (1, 2), date(2026, 10, 5), "ChargeItem/ci-1")
    assert visit.minutes == 53
    assert visit.place_of_service == "11"  # class AMB → office, from the field map
    assert not visit.virtual and not visit.audio_only and not visit.as_billed


def test_the_same_bundle_sent_again_gives_the_same_keys():
    first, again = read(raw("lcsw-office-90837.json")), read(raw("lcsw-office-90837.json"))
    assert [(e.key, e.patient.key) for e in first] == [(e.key, e.patient.key) for e in again]


def test_without_identifiers_the_keys_fall_back_to_type_and_id():
    bundle = load("lcsw-office-90837.json")
    del resource(bundle, "Encounter", "enc-1")["identifier"]
    del resource(bundle, "Patient", "pat-1")["identifier"]
    [visit] = read(bundle)
    assert (visit.key, visit.patient.key) == ("fhir:Encounter/enc-1", "fhir:Patient/pat-1")


def test_the_date_of_service_is_the_date_as_written_not_shifted_to_utc():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Encounter", "enc-1")["period"] = {"start": "2026-10-05T23:30:00-05:00"}
    [visit] = read(bundle)
    assert visit.service_date == date(2026, 10, 5)  # 2026-10-06 in UTC


def test_telehealth_video_visit_leaves_coding_and_place_of_service_to_the_hub():
    [visit] = read(raw("telehealth-video-45min.json"))
    assert visit.virtual and not visit.audio_only
    assert visit.place_of_service is None  # the payer's telehealth rule decides 02 or 10
    assert visit.services == () and visit.minutes == 45
    assert visit.diagnoses == ("F41.1",)  # sent as F411: the dot is restored


CMS_POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


def at_location(bundle: dict, encounter_id: str, *places: str) -> dict:
    """The visit held at Locations typed with these CMS places of service, in this order."""
    for n, place in enumerate(places):
        bundle["entry"].append({"resource": {"resourceType": "Location", "id": f"loc-{n}", "type": [
            {"coding": [{"system": CMS_POS, "code": place}]}]}})
    resource(bundle, "Encounter", encounter_id)["location"] = [
        {"location": {"reference": f"Location/loc-{n}"}} for n in range(len(places))]
    return bundle


@pytest.mark.parametrize("place", ["02", "10"])
def test_a_telehealth_visits_location_tells_the_hub_where_the_patient_was(place):
    [visit] = read(at_location(load("telehealth-video-45min.json"), "enc-2", place))
    assert visit.virtual and visit.place_of_service == place


def test_of_a_telehealth_visits_locations_the_one_telling_where_the_patient_was_is_passed_on():
    # The clinician's clinic (11) is listed first, the patient's location (02) after it.
    [visit] = read(at_location(load("telehealth-video-45min.json"), "enc-2", "11", "02"))
    assert visit.place_of_service == "02"


def test_a_place_of_service_extension_the_field_map_names_is_read(tmp_path):
    url = "http://example.org/fhir/StructureDefinition/encounter-place-of-service"
    (tmp_path / "ehr").mkdir()
    (tmp_path / "ehr" / "fhir_r4.toml").write_text(f'[encounter]\nplace_of_service_extensions = ["{url}"]\n')
    bundle = load("telehealth-video-45min.json")
    resource(bundle, "Encounter", "enc-2")["extension"] = [
        {"url": url, "valueCoding": {"system": CMS_POS, "code": "02"}}]
    assert read(bundle)[0].place_of_service is None  # not named in the packaged map
    [visit] = read(bundle, MappingSet(override_dir=tmp_path))
    assert visit.place_of_service == "02"


def test_an_office_visits_location_wins_over_its_class():
    [visit] = read(at_location(load("lcsw-office-90837.json"), "enc-1", "53"))
    assert visit.place_of_service == "53"  # community mental health center, not AMB's 11


def test_audio_only_session_is_flagged_and_timed_from_its_period():
    [visit] = read(raw("audio-only-phone.json"))
    assert visit.virtual and visit.audio_only
    assert visit.minutes == 40  # 14:00 to 14:40, no Encounter.length
    assert visit.coverages[0].payer.claim_filing_indicator == "MB"  # SOPT 1, Medicare


def test_child_on_a_parents_plan_names_the_parent_as_subscriber():
    [visit] = read(raw("child-on-parent-plan.json"))
    [coverage] = visit.coverages
    assert coverage.relationship == "19" and not coverage.patient_is_subscriber
    assert (coverage.subscriber.name.family, coverage.subscriber.name.given) == ("Fakely", "Harper")
    assert (coverage.subscriber.birth_date, coverage.subscriber.gender) == (date(1983, 1, 20), "F")
    assert (coverage.member_id, coverage.group_number) == ("MEM2000-02", "GRP-200")
    assert visit.rendering_provider.taxonomy == "101YP2500X"
    [line] = visit.services
    assert line.modifiers == ("HA",) and line.minutes == 45  # from the extensions the field map names


MEMBER_NUMBER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}


def test_a_child_with_a_member_id_of_their_own_is_the_subscriber_on_the_claim():
    # US Core Coverage: subscriberId is the subscriber's id, identifier typed MB the member's own.
    # A dependent the payer knows by their own id is billed as the subscriber (TR3 2000C).
    bundle = load("child-on-parent-plan.json")
    resource(bundle, "Coverage", "cov-child")["identifier"] = [
        {"type": MEMBER_NUMBER, "system": "urn:example:payer:member", "value": "JUN3000"}]
    [coverage] = read(bundle)[0].coverages
    assert (coverage.relationship, coverage.member_id, coverage.subscriber) == ("18", "JUN3000", None)
    assert coverage.patient_is_subscriber and coverage.group_number == "GRP-200"


def test_a_child_whose_member_number_is_the_subscribers_id_stays_a_dependent():
    bundle = load("child-on-parent-plan.json")
    resource(bundle, "Coverage", "cov-child")["identifier"] = [
        {"type": MEMBER_NUMBER, "system": "urn:example:payer:member", "value": "MEM2000-02"}]
    [coverage] = read(bundle)[0].coverages
    assert (coverage.relationship, coverage.member_id) == ("19", "MEM2000-02")
    assert coverage.subscriber.name.given == "Harper"


def test_psychiatrist_em_with_addon_keeps_both_lines_their_pointers_and_taxonomy():
    [visit] = read(raw("psychiatrist-em-addon.json"))
    assert [(s.procedure_code, s.charge, s.diagnosis_pointers) for s in visit.services] == [
        ("99214", Decimal("210.00"), (1, 2)), ("90833", Decimal("95.00"), (2,))]
    assert (visit.rendering_provider.npi, visit.rendering_provider.taxonomy) == ("1111111112", "2084P0800X")


def test_crisis_session_bills_the_addon_in_units():
    [visit] = read(raw("crisis-90839-90840.json"))
    assert [(s.procedure_code, s.units, s.charge) for s in visit.services] == [
        ("90839", Decimal(1), Decimal("250.00")), ("90840", Decimal(2), Decimal("240.00"))]
    assert visit.coverages[0].payer.claim_filing_indicator == "MC"


def test_primary_and_secondary_coverage_in_order_and_an_expired_one_left_out():
    [visit] = read(raw("primary-secondary.json"))
    assert [(c.order, c.payer.payer_id, c.payer.claim_filing_indicator, c.member_id) for c in visit.coverages] == [
        (1, "00431", "MB", "2EG4TE5MK74"), (2, "77027", "MC", "MCD77001007")]


def test_two_coverages_claiming_the_same_order_are_refused():
    bundle = load("primary-secondary.json")
    resource(bundle, "Coverage", "cov-7-secondary")["order"] = 1
    error = refusal(bundle)
    assert "both have order 1" in str(error)
    assert error.where == "Coverage/cov-7-primary"


def test_prior_authorization_only_when_its_period_covers_the_date_of_service():
    visits = {e.source_ref: e for e in read(raw("prior-auth.json"))}
    assert visits["Encounter/enc-8-oct"].prior_authorization == "PA-2026-0042"
    assert visits["Encounter/enc-8-nov"].prior_authorization is None


CPT = "http://www.ama-assn.org/go/cpt"


def authorized(rid: str, number: str, code: str, quantity: int, start: str = "2026-10-01") -> dict:
    """A ClaimResponse authorizing ``quantity`` of ``code`` through October (addItem)."""
    return {"resource": {
        "resourceType": "ClaimResponse", "id": rid, "status": "active", "use": "preauthorization",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "patient": {"reference": "Patient/pat-8"}, "created": "2026-09-28",
        "insurer": {"reference": "Organization/payer-commercial"}, "outcome": "complete",
        "preAuthRef": number, "preAuthPeriod": {"start": start, "end": "2026-10-31"},
        "addItem": [{"productOrService": {"coding": [{"system": CPT, "code": code}]}, "quantity": {"value": quantity},
                     "adjudication": [{"category": {"coding": [
                         {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "eligible"}]}}]}]}}


def charged(rid: str, code: str) -> dict:
    return {"resource": {"resourceType": "ChargeItem", "id": rid, "status": "billable",
                         "code": {"coding": [{"system": CPT, "code": code}]}, "subject": {"reference": "Patient/pat-8"},
                         "context": {"reference": "Encounter/enc-8-oct"}, "quantity": {"value": 1},
                         "priceOverride": {"value": 150.0, "currency": "USD"}}}


def test_lines_authorized_by_different_authorizations_each_carry_theirs():
    # Psychotherapy under one authorization, psychological testing under another, the same day.
    bundle = drop(drop(load("prior-auth.json"), "ClaimResponse", "auth-oct"), "ClaimResponse", "auth-sep")
    bundle["entry"] += [authorized("auth-therapy", "PA-THERAPY", "90837", 12),
                        authorized("auth-testing", "PA-TESTING", "96130", 4, start="2026-10-10"),
                        charged("ci-therapy", "90837"), charged("ci-testing", "96130")]
    visit = next(v for v in read(bundle) if v.source_ref == "Encounter/enc-8-oct")
    assert visit.prior_authorization is None  # neither covers the whole visit
    assert [(s.procedure_code, s.prior_authorization) for s in visit.services] == [
        ("90837", "PA-THERAPY"), ("96130", "PA-TESTING")]


def test_an_authorization_naming_only_some_lines_is_carried_by_those_lines_only():
    # PA-THERAPY authorizes 90837, not the +90785 billed with it: the add-on claims no authorization.
    bundle = drop(drop(load("prior-auth.json"), "ClaimResponse", "auth-oct"), "ClaimResponse", "auth-sep")
    bundle["entry"] += [authorized("auth-therapy", "PA-THERAPY", "90837", 12),
                        charged("ci-therapy", "90837"), charged("ci-addon", "90785")]
    visit = next(v for v in read(bundle) if v.source_ref == "Encounter/enc-8-oct")
    assert visit.prior_authorization is None
    assert [s.prior_authorization for s in visit.services] == ["PA-THERAPY", None]


def test_one_authorization_naming_every_line_is_the_visits():
    bundle = drop(drop(load("prior-auth.json"), "ClaimResponse", "auth-oct"), "ClaimResponse", "auth-sep")
    bundle["entry"] += [authorized("auth-therapy", "PA-THERAPY", "90837", 12),
                        charged("ci-therapy", "90837"), charged("ci-more", "90837")]
    visit = next(v for v in read(bundle) if v.source_ref == "Encounter/enc-8-oct")
    assert visit.prior_authorization == "PA-THERAPY"
    assert [s.prior_authorization for s in visit.services] == [None, None]


def test_diagnoses_from_conditions_that_reference_the_encounter():
    [visit] = read(raw("conditions-reference-encounter.json"))
    assert visit.diagnoses == ("F40.10", "F32.A")  # not F90.0, recorded at another visit


def test_a_days_export_returns_every_finished_encounter_and_skips_the_cancelled_one():
    visits = read(raw("day-export-three-encounters.json"))
    assert [e.source_ref for e in visits] == ["Encounter/day-1", "Encounter/day-2", "Encounter/day-3"]
    assert [e.virtual for e in visits] == [False, True, False]
    assert [s.procedure_code for s in visits[2].services] == ["99213"]
    assert visits[2].rendering_provider.npi == "1111111112"


# --- bundle types and references ---------------------------------------------------------


def test_transaction_bundle_resolves_urn_uuid_references():
    [visit] = read(raw("transaction-urn-uuid.json"))
    assert visit.key == "fhir:Encounter|urn:example:ehr:visit|V1009"
    assert visit.patient.key == "fhir:MR|urn:example:ehr:mrn|MRN0001009"
    assert (visit.billing_provider.npi, visit.rendering_provider.npi) == ("1234567893", "1999999984")
    assert visit.coverages[0].member_id == "MEM1009"
    assert visit.diagnoses == ("F32.1",)
    assert [s.procedure_code for s in visit.services] == ["90834"]


def test_searchset_and_document_bundles_give_the_same_encounter_as_the_collection():
    office = read(raw("lcsw-office-90837.json"))
    assert read(raw("searchset.json")) == office
    assert read(raw("document.json")) == office


def test_a_payer_contained_in_the_coverage_is_found_by_its_local_reference():
    bundle = load("lcsw-office-90837.json")
    payer = resource(bundle, "Organization", "payer-commercial")
    drop(bundle, "Organization", "payer-commercial")
    coverage = resource(bundle, "Coverage", "cov-1")
    coverage["contained"] = [{**payer, "id": "insurer"}]
    coverage["payor"] = [{"reference": "#insurer"}]
    [visit] = read(bundle)
    assert visit.coverages[0].payer.payer_id == "87726"


def test_a_payer_named_only_by_identifier_is_read_from_the_logical_reference():
    bundle = drop(load("lcsw-office-90837.json"), "Organization", "payer-commercial")
    resource(bundle, "Coverage", "cov-1")["payor"] = [{
        "identifier": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                            "code": "NIIP"}]}, "value": "60054"},
        "display": "SAMPLE PAYER BY IDENTIFIER"}]
    [visit] = read(bundle)
    assert (visit.coverages[0].payer.payer_id, visit.coverages[0].payer.name) == ("60054", "SAMPLE PAYER BY IDENTIFIER")


def test_a_department_without_npi_bills_under_its_parent_organization():
    bundle = load("lcsw-office-90837.json")
    bundle["entry"].append({"resource": {"resourceType": "Organization", "id": "dept-child",
                                         "name": "CHILD AND FAMILY PROGRAM",
                                         "partOf": {"reference": "Organization/practice"}}})
    resource(bundle, "Encounter", "enc-1")["serviceProvider"] = {"reference": "Organization/dept-child"}
    [visit] = read(bundle)
    assert (visit.billing_provider.npi, visit.billing_provider.organization_name) == (
        "1234567893", "SAMPLE BEHAVIORAL HEALTH PLLC")


# --- the billing provider's taxonomy (2000A PRV*BI) -------------------------------------------------

NUCC = "http://nucc.org/provider-taxonomy"


def test_a_billing_organization_typed_with_a_nucc_taxonomy_gives_it():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Organization", "practice")["type"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]},
        {"coding": [{"system": NUCC, "code": "261QM0801X"}]}]
    [visit] = read(bundle)
    assert visit.billing_provider.taxonomy == "261QM0801X"
    assert visit.rendering_provider.taxonomy == "1041C0700X"  # the clinician keeps their own


@pytest.mark.parametrize("url", [
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/qualification",
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Organization.qualification",
])
def test_a_billing_organizations_qualification_extension_gives_its_taxonomy(url):
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Organization", "practice")["extension"] = [{"url": url, "extension": [
        {"url": "code", "valueCodeableConcept": {"coding": [{"system": NUCC, "code": "261QR1300X"}]}}]}]
    assert read(bundle)[0].billing_provider.taxonomy == "261QR1300X"


def test_a_clinicians_role_at_the_practice_is_not_the_practices_taxonomy():
    [visit] = read(raw("lcsw-office-90837.json"))  # the LCSW's PractitionerRole names the practice
    assert visit.billing_provider.taxonomy is None


def test_a_department_without_npi_bills_with_its_parents_taxonomy():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Organization", "practice")["type"] = [{"coding": [{"system": NUCC, "code": "261QM0801X"}]}]
    bundle["entry"].append({"resource": {"resourceType": "Organization", "id": "dept", "name": "CHILD PROGRAM",
                                         "type": [{"coding": [{"system": NUCC, "code": "261QF0400X"}]}],
                                         "partOf": {"reference": "Organization/practice"}}})
    resource(bundle, "Encounter", "enc-1")["serviceProvider"] = {"reference": "Organization/dept"}
    # The taxonomy sent is the one registered with the billing NPI: the parent's.
    assert read(bundle)[0].billing_provider.taxonomy == "261QM0801X"


def test_a_practice_names_its_billing_taxonomy_when_the_export_carries_none(tmp_path):
    (tmp_path / "ehr").mkdir()
    (tmp_path / "ehr" / "fhir_r4.toml").write_text('[provider.billing_taxonomy]\n"1234567893" = "261QM0801X"\n')
    [visit] = read(raw("lcsw-office-90837.json"), MappingSet(override_dir=tmp_path))
    assert visit.billing_provider.taxonomy == "261QM0801X"
    bundle = load("lcsw-office-90837.json")  # what the export says comes first
    resource(bundle, "Organization", "practice")["type"] = [{"coding": [{"system": NUCC, "code": "261QF0400X"}]}]
    assert read(bundle, MappingSet(override_dir=tmp_path))[0].billing_provider.taxonomy == "261QF0400X"


# --- a FHIR Claim, as billed --------------------------------------------------------------


def test_fhir_claim_is_taken_as_billed_and_its_encounter_is_not_billed_twice():
    [claim] = read(raw("fhir-claim.json"))
    assert claim.as_billed and claim.source_ref == "Claim/claim-12"
    assert claim.key == "fhir:Claim|urn:example:ehr:claim|CLM-1012"
    assert claim.service_date == date(2026, 10, 14)
    assert claim.place_of_service == "10" and claim.virtual
    assert claim.diagnoses == ("F33.1", "F41.1", "Z63.0")  # sequence order; seq 2 via its Condition
    first, second = claim.services
    assert (first.procedure_code, first.modifiers, first.charge, first.diagnosis_pointers) == (
        "90837", ("95",), Decimal("180.0"), (3, 1))
    assert first.place_of_service is None  # same as the claim's
    assert (second.procedure_code, second.units, second.charge, second.place_of_service) == (
        "G2211", Decimal(2), Decimal("33.00"), "11")  # unitPrice x quantity; its own POS
    # careTeam: the member with role primary renders (not the first, a supervisor)
    assert (claim.rendering_provider.npi, claim.rendering_provider.taxonomy) == ("1999999984", "1041C0700X")
    assert claim.billing_provider.npi == "1234567893"
    assert claim.coverages[0].member_id == "MEM1012"
    assert claim.prior_authorization == "PA-CLM-77"


def test_a_claim_addressed_to_a_secondary_payer_is_refused():
    bundle = load("fhir-claim.json")
    resource(bundle, "Claim", "claim-12")["insurance"][0]["sequence"] = 2
    bundle["entry"].append({"resource": {**resource(bundle, "Coverage", "cov-12"), "id": "cov-12-primary", "order": 1}})
    resource(bundle, "Claim", "claim-12")["insurance"].insert(
        0, {"sequence": 1, "focal": False, "coverage": {"reference": "Coverage/cov-12-primary"}})
    error = refusal(bundle)
    assert "insurance sequence 2, not the primary" in str(error) and error.where == "Claim/claim-12"


# --- refusals -----------------------------------------------------------------------------


def test_truncated_json_is_refused_with_the_character_position():
    content = raw("bad-truncated.json")
    error = refusal(content)
    assert str(error).startswith(f"truncated JSON: the content ends at char {len(content.decode())}")
    assert_no_phi(error)


def test_json_that_is_not_fhir_is_refused_as_such():
    error = refusal(raw("bad-not-fhir.json"))
    assert "JSON but not a FHIR resource (no resourceType)" in str(error)
    assert_no_phi(error, ("Test Patient", "MRN0009999"))


def test_a_lone_patient_is_refused_as_not_a_bundle():
    error = refusal(raw("bad-lone-patient.json"))
    assert "a lone FHIR Patient, not a Bundle" in str(error) and error.where == "Patient/pat-1"
    assert_no_phi(error)


def test_a_message_bundle_is_refused_as_unsupported():
    error = refusal(raw("bad-message-bundle.json"))
    assert "a Bundle of type 'message', which this reader does not import" in str(error)


def test_an_encounter_without_coverage_is_refused():
    error = refusal(raw("bad-no-coverage.json"))
    assert str(error).startswith("Encounter/enc-1: no coverage")
    assert_no_phi(error)


def test_a_validation_error_names_the_resource_and_element_but_not_the_value():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Patient", "pat-1")["birthDate"] = "03/14/1985"
    error = refusal(bundle)
    assert error.where == "Patient/pat-1"
    assert "not valid FHIR R4: Patient/pat-1 birthDate" in str(error)
    assert "03/14/1985" not in str(error)


def test_an_unknown_element_is_named_with_its_path():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "Encounter", "enc-1")["period"]["begin"] = "2026-10-05"
    error = refusal(bundle)
    assert "Encounter/enc-1 period.begin: not an element of this resource in FHIR R4" in str(error)


def test_a_billing_provider_without_npi_is_refused():
    bundle = load("lcsw-office-90837.json")
    practice = resource(bundle, "Organization", "practice")
    practice["identifier"] = [i for i in practice["identifier"] if "us-npi" not in i["system"]]
    error = refusal(bundle)
    assert error.where == "Organization/practice"
    assert "the billing provider has no NPI (for Encounter/enc-1)" in str(error)


def test_an_encounter_without_a_billing_provider_is_refused():
    bundle = load("lcsw-office-90837.json")
    del resource(bundle, "Encounter", "enc-1")["serviceProvider"]
    assert "Encounter.serviceProvider is missing" in str(refusal(bundle))


def test_an_encounter_without_diagnoses_is_refused():
    bundle = load("lcsw-office-90837.json")
    del resource(bundle, "Encounter", "enc-1")["diagnosis"]
    error = refusal(bundle)
    assert str(error).startswith("Encounter/enc-1: no diagnoses")


def test_an_encounter_with_neither_charges_nor_minutes_is_refused():
    bundle = drop(load("lcsw-office-90837.json"), "ChargeItem", "ci-1")
    encounter = resource(bundle, "Encounter", "enc-1")
    del encounter["length"], encounter["period"]["end"]
    assert "nothing billed: no ChargeItem for this encounter and no session length" in str(refusal(bundle))


def test_a_reference_to_a_resource_missing_from_the_bundle_is_refused():
    bundle = drop(load("lcsw-office-90837.json"), "Organization", "payer-commercial")
    error = refusal(bundle)
    assert error.where == "Coverage/cov-1"
    assert "refers to Organization/payer-commercial, which is not in the bundle" in str(error)


def test_a_charge_for_a_visit_missing_from_the_bundle_is_refused_not_dropped():
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "ChargeItem", "ci-1")["context"] = {"reference": "Encounter/enc-elsewhere"}
    error = refusal(bundle)
    assert error.where == "ChargeItem/ci-1" and "Encounter/enc-elsewhere" in str(error)


def test_one_unusable_encounter_refuses_the_whole_bundle_and_names_the_others():
    bundle = load("day-export-three-encounters.json")
    del resource(bundle, "Encounter", "day-1")["diagnosis"]
    del resource(bundle, "Encounter", "day-3")["serviceProvider"]
    error = refusal(bundle)
    assert error.where == "Encounter/day-1"
    assert "1 more unusable in this bundle: Encounter/day-3" in str(error)


def test_a_bundle_with_nothing_to_bill_is_refused():
    bundle = load("lcsw-office-90837.json")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] in ("Patient", "Organization")]
    assert str(refusal(bundle)).startswith("nothing to bill")


# --- the field map ------------------------------------------------------------------------


def override(tmp_path: Path, old: str, new: str) -> MappingSet:
    text = PACKAGED_MAP.read_text(encoding="utf-8")
    assert old in text
    target = tmp_path / "ehr" / "fhir_r4.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return MappingSet(override_dir=tmp_path)


def test_a_practice_mapping_teaches_the_reader_its_ehrs_hcpcs_system(tmp_path):
    bundle = load("lcsw-office-90837.json")
    resource(bundle, "ChargeItem", "ci-1")["code"] = {
        "coding": [{"system": "http://ehr.example.org/codes/hcpcs", "code": "H0004"}]}
    assert "the ChargeItem has no CPT or HCPCS code" in str(refusal(bundle))
    mappings = override(tmp_path, "hcpcs = [\n", 'hcpcs = [\n    "http://ehr.example.org/codes/hcpcs",\n')
    [visit] = read(bundle, mappings)
    assert visit.services[0].procedure_code == "H0004"


def test_a_malformed_practice_mapping_names_the_key(tmp_path):
    mappings = override(tmp_path, 'statuses = ["finished"]', 'statuses = "finished"')
    with pytest.raises(MappingError, match="encounter.statuses must be a list of strings"):
        read(raw("lcsw-office-90837.json"), mappings)


def test_every_problem_in_a_practice_mapping_is_reported_at_once(tmp_path):
    (tmp_path / "mappings" / "ehr").mkdir(parents=True)
    (tmp_path / "mappings" / "ehr" / "fhir_r4.toml").write_text(
        '[encounter]\nstatuses = "finished"\nstatsus = ["finished"]\n'
        '[systems]\nnpi = "http://hl7.org/fhir/sid/us-npi"\n[claim]\ndefault_place_of_service = 11\n')
    with pytest.raises(MappingError) as refused:
        read(raw("lcsw-office-90837.json"), MappingSet(override_dir=tmp_path / "mappings"))
    message = str(refused.value)
    for problem in ("encounter.statuses must be a list of strings", "systems.npi must be a list of strings",
                    "claim.default_place_of_service must be a string", "unknown key 'encounter.statsus'"):
        assert problem in message
    assert "4 problem(s)" in message


# --- content written by others: the official FHIR R4 examples --------------------------------


def test_every_official_bundle_example_gives_encounters_or_an_input_error(official):
    bundles = [name for name in official if name.startswith("Bundle-")]
    assert len(bundles) == 44
    outcomes = {}
    for name in bundles:
        content = official[name]
        assert recognizes(content), name
        try:
            outcomes[name] = len(read(content))
        except InputError as exc:
            outcomes[name] = type(exc).__name__
    # None of them bills anything (no US coverage): each is refused with a reason, never a crash.
    assert set(outcomes.values()) == {"InputError"}


def test_official_billing_resources_wrapped_in_a_bundle_give_encounters_or_an_input_error(official):
    singles = [n for n in official
               if n.startswith(("Claim-", "Coverage-", "Encounter-", "ChargeItem-", "ClaimResponse-"))]
    assert len(singles) > 30
    for name in singles:
        content = official[name]
        with pytest.raises(InputError, match="a lone FHIR"):
            read(content)
        wrapped = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": json.loads(content)}]}
        try:
            read(wrapped)
        except InputError:
            continue


def test_official_examples_assembled_into_a_visit_map_once_the_payer_id_system_is_configured(official, tmp_path):
    bundle = official_visit_bundle(official)
    error = refusal(bundle)  # the official payer has no NIIP identifier
    assert error.where == "Organization/2" and "the payer has no payer id" in str(error)
    mappings = override(tmp_path, "id_systems = []", 'id_systems = ["urn:oid:2.16.840.1.113883.3.19.2.3"]')
    [visit] = read(bundle, mappings)
    assert visit.patient.key == "fhir:MR|urn:oid:1.2.36.146.595.217.0.1|12345"
    assert (visit.patient.name.family, visit.patient.name.given, visit.patient.name.middle) == (
        "Chalmers", "Peter", "James")
    assert (visit.patient.birth_date, visit.patient.gender) == (date(1974, 12, 25), "M")
    assert visit.patient.address.line1 == "534 Erewhon St"
    [coverage] = visit.coverages
    assert (coverage.order, coverage.payer.payer_id, coverage.payer.name) == (2, "666666", "XYZ Insurance")
    assert (coverage.member_id, coverage.group_number, coverage.relationship) == ("AB9876", "WESTAIR", "18")
    assert coverage.payer.claim_filing_indicator == "CI"  # v3-ActCode EHCPOL
    assert (visit.rendering_provider.npi, visit.rendering_provider.name.family) == ("1122334499", "Beverly")
    assert visit.billing_provider.address.postal_code == "48104"
    assert visit.minutes == 45 and visit.place_of_service == "11"


def test_encounter_service_type_is_one_codeable_concept_in_r4_and_can_mark_a_phone_session():
    """R4's Encounter.serviceType is a single CodeableConcept (a list only in R5): read it as one."""
    import json

    from bhhub.demo.synthetic import encounter_bundle
    from bhhub.runtime.mapping_tables import MappingSet
    from bhhub.types import IntakeContext
    from bhhub.plugins.ehr import fhir_r4

    fmt = fhir_r4.bhhub_register_intake_formats()[0]

    def parse(service_type):
        bundle = encounter_bundle(5)
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Encounter":
                entry["resource"]["serviceType"] = service_type
        [encounter] = fmt.parse(json.dumps(bundle).encode(), IntakeContext("x", MappingSet()))
        return encounter

    assert parse({"text": "individual psychotherapy"}).audio_only is False
    phone = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "PHONE"}]}
    assert parse(phone).audio_only is True
