"""The first vertical slice as a biller uses it: bundles in through `bhhub intake`, claims out
through `bhhub export-837`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import FIXTURES
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema
from bhhub.x12.validate import validate_x12

FHIR = FIXTURES / "fhir"


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def run_json(capsys, home: Path, *args: str):
    capsys.readouterr()
    code = run(home, *args, "--json")
    return code, json.loads(capsys.readouterr().out)


def segments(path: Path) -> list[list[str]]:
    text = path.read_text()
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def claim_segments(path: Path, pcn: str) -> list[list[str]]:
    """The segments of one claim: from its subscriber HL to the next subscriber HL."""
    segs = segments(path)
    clm = next(i for i, s in enumerate(segs) if s[0] == "CLM" and s[1] == pcn)
    start = max(i for i, s in enumerate(segs[:clm]) if s[0] == "HL" and s[3] == "22")
    end = next((i for i, s in enumerate(segs[clm:], clm) if (s[0] == "HL" and s[3] != "23") or s[0] == "SE"))
    return segs[start:end]


def counts(home: Path) -> dict[str, int]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table))
            for table in (schema.InboxItem, schema.Encounter, schema.Claim, schema.ServiceLine,
                          schema.Patient, schema.Coverage, schema.ClaimStatusEvent)
        }


SHAPES = [
    "child-on-parent-plan.json", "psychiatrist-em-addon.json", "crisis-90839-90840.json",
    "primary-secondary.json", "telehealth-video-45min.json", "audio-only-phone.json",
    "fhir-claim.json", "prior-auth.json", "lcsw-office-90837.json", "transaction-urn-uuid.json",
    "searchset.json", "document.json", "conditions-reference-encounter.json",
    "day-export-three-encounters.json",
]


@pytest.fixture
def exported(hub_home, tmp_path, capsys):
    """Every good fixture taken in and exported as one 837P."""
    assert run(hub_home, "intake", *[str(FHIR / name) for name in SHAPES]) == 0
    code, claims = run_json(capsys, hub_home, "claims")
    out = tmp_path / "batch.x12"
    assert run(hub_home, "export-837", "--out", str(out)) == 0
    return out, {c["patient_control_number"]: c for c in claims}, claims


def by_line_code(claims: list[dict], code: str) -> dict:
    return next(c for c in claims if any(l["procedure_code"] == code for l in c["lines"]))


def test_every_shape_becomes_a_claim_in_one_valid_837p(exported):
    out, by_pcn, claims = exported
    assert all(c["status"] == "ready" for c in claims), [c["findings"] for c in claims]
    assert validate_x12(out.read_bytes()) == []
    clms = [s for s in segments(out) if s[0] == "CLM"]
    assert {s[1] for s in clms} == set(by_pcn)
    for segment in clms:  # CLM02 is what the claim said it charged
        assert float(segment[2]) == by_pcn[segment[1]]["total_charge"]


def test_child_on_parent_plan_is_sent_as_a_dependent_of_the_subscriber(exported):
    out, _, claims = exported
    claim = next(c for c in claims if c["member_id"] == "MEM2000-02")
    segs = claim_segments(out, claim["patient_control_number"])
    assert segs[1][:3] == ["SBR", "P", ""]  # SBR02 empty: the subscriber is not the patient
    hl_patient = next(s for s in segs if s[0] == "HL" and s[3] == "23")
    assert hl_patient[2] == segs[0][1]  # the patient's HL hangs under the subscriber's
    assert ["PAT", "19"] in segs
    assert any(s[:3] == ["NM1", "QC", "1"] for s in segs)


def test_psychiatrist_em_with_addon_keeps_both_codes_and_the_prescriber_taxonomy(exported):
    out, _, claims = exported
    claim = by_line_code(claims, "90833")
    assert [l["procedure_code"] for l in claim["lines"]] == ["99214", "90833"]
    segs = claim_segments(out, claim["patient_control_number"])
    assert ["PRV", "PE", "PXC", "2084P0800X"] in segs
    assert [s[1].split(":")[1] for s in segs if s[0] == "SV1"] == ["99214", "90833"]


def test_crisis_codes_carry_their_units(exported):
    out, _, claims = exported
    claim = by_line_code(claims, "90839")
    sv1 = [s for s in claim_segments(out, claim["patient_control_number"]) if s[0] == "SV1"]
    assert [(s[1], s[4]) for s in sv1] == [("HC:90839", "1"), ("HC:90840", "2")]


def test_secondary_coverage_goes_in_the_other_payer_loops(exported):
    out, _, claims = exported
    claim = next(c for c in claims if c["member_id"] == "2EG4TE5MK74")  # Medicare primary
    assert claim["payer_id"] == "00431"
    segs = claim_segments(out, claim["patient_control_number"])
    assert segs[1][0] == "SBR" and segs[1][1] == "P" and segs[1][9] == "MB"
    other = next(i for i, s in enumerate(segs) if s[0] == "SBR" and s[1] == "S")
    assert segs[other][9] == "MC"
    assert any(s[:2] == ["NM1", "PR"] and s[-1] == "77027" for s in segs[other:])
    assert any(s[:2] == ["NM1", "IL"] and s[-1] == "MCD77001007" for s in segs[other:])


def test_telehealth_uses_the_payers_place_of_service_and_modifier(exported):
    out, _, claims = exported
    video = next(c for c in claims if c["member_id"] == "MEM1002")  # commercial, video
    assert video["place_of_service"] == "10"
    assert all("95" in l["modifiers"] for l in video["lines"])
    assert video["lines"][0]["procedure_code"] == "90834"  # 45 minutes, no ChargeItem
    phone = next(c for c in claims if c["member_id"] == "1EG4TE5MK73")  # Medicare, audio-only
    assert phone["place_of_service"] == "10"
    assert all(l["modifiers"] == ["93"] for l in phone["lines"])
    clm = next(s for s in claim_segments(out, phone["patient_control_number"]) if s[0] == "CLM")
    assert clm[5] == "10:B:1"


def test_a_fhir_claim_is_billed_as_it_stands(exported):
    out, _, claims = exported
    claim = next(c for c in claims if c["member_id"] == "MEM1012")
    source = json.loads((FHIR / "fhir-claim.json").read_text())
    fhir_claim = next(e["resource"] for e in source["entry"] if e["resource"]["resourceType"] == "Claim")
    wanted = [i["productOrService"]["coding"][0]["code"] for i in fhir_claim["item"]]
    assert [l["procedure_code"] for l in claim["lines"]] == wanted
    wanted_mods = [[c["code"] for m in i.get("modifier", []) for c in m["coding"]] for i in fhir_claim["item"]]
    assert [l["modifiers"] for l in claim["lines"]] == wanted_mods


def test_prior_authorization_covering_the_date_goes_on_the_claim(exported):
    out, _, claims = exported
    auths = sorted((c["service_date"], c["prior_authorization"]) for c in claims if c["member_id"] == "MEM1008")
    assert [a for _, a in auths] == ["PA-2026-0042", None]
    claim = next(c for c in claims if c["prior_authorization"] == "PA-2026-0042")
    assert ["REF", "G1", "PA-2026-0042"] in claim_segments(out, claim["patient_control_number"])


def test_claims_json_has_the_fields_scripts_rely_on(exported):
    _, _, claims = exported
    for claim in claims:
        assert {"patient_control_number", "status", "payer_id", "member_id", "service_date",
                "total_charge", "findings"} <= claim.keys()
        assert len(claim["patient_control_number"]) <= 20


def test_bad_files_are_quarantined_with_reasons_and_good_ones_still_import(hub_home, capsys):
    files = [FHIR / "lcsw-office-90837.json", FHIR / "bad-truncated.json", FHIR / "bad-not-fhir.json",
             FHIR / "bad-no-coverage.json", FHIR / "telehealth-video-45min.json"]
    code, results = run_json(capsys, hub_home, "intake", *map(str, files))
    assert code == 1
    outcome = {Path(r["source"]).name: r for r in results}
    assert outcome["lcsw-office-90837.json"]["outcome"] == "imported"
    assert outcome["telehealth-video-45min.json"]["outcome"] == "imported"
    assert "truncated" in outcome["bad-truncated.json"]["reason"]
    assert "not a FHIR" in outcome["bad-not-fhir.json"]["reason"]
    assert "overage" in outcome["bad-no-coverage.json"]["reason"]
    assert "Encounter/" in outcome["bad-no-coverage.json"]["reason"]  # which resource
    code, inbox = run_json(capsys, hub_home, "inbox", "--state", "quarantined")
    assert sorted(Path(i["source"]).name for i in inbox) == ["bad-no-coverage.json", "bad-not-fhir.json",
                                                             "bad-truncated.json"]
    assert counts(hub_home)["claims"] == 2  # nothing half-imported from the bad bundles


def test_the_same_file_twice_changes_nothing(hub_home, tmp_path, capsys):
    assert run(hub_home, "intake", str(FHIR / "day-export-three-encounters.json")) == 0
    before = counts(hub_home)
    renamed = tmp_path / "resent-under-another-name.json"
    shutil.copy(FHIR / "day-export-three-encounters.json", renamed)
    code, results = run_json(capsys, hub_home, "intake", str(renamed))
    assert code == 0 and results[0]["outcome"] == "duplicate"
    assert counts(hub_home) == before


def test_a_resent_encounter_updates_its_unsent_claim_and_keeps_its_control_number(hub_home, tmp_path, capsys):
    bundle = encounter_bundle(3)
    first = tmp_path / "a.json"
    first.write_text(json.dumps(bundle))
    assert run(hub_home, "intake", str(first)) == 0
    _, [claim] = run_json(capsys, hub_home, "claims")
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    encounter["length"]["value"] = 58  # the clinician corrected the session length
    encounter["class"]["code"] = "AMB"
    second = tmp_path / "b.json"
    second.write_text(json.dumps(bundle))
    assert run(hub_home, "intake", str(second)) == 0
    _, [updated] = run_json(capsys, hub_home, "claims")
    assert updated["patient_control_number"] == claim["patient_control_number"]
    assert counts(hub_home)["claims"] == 1
    # once batched, a re-send no longer changes the claim: one that bills the same is a no-op ...
    assert run(hub_home, "export-837", "--out", str(tmp_path / "x.x12")) == 0
    encounter["length"]["value"] = 20  # still within the add-on's time: the claim is the same
    third = tmp_path / "c.json"
    third.write_text(json.dumps(bundle))
    code, [result] = run_json(capsys, hub_home, "intake", str(third))
    assert result["claims"][0]["action"] == "unchanged_sent"
    # ... and a changed claim waits as a pending correction
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["code"]["coding"][0]["code"] = "F41.1"
    fourth = tmp_path / "d.json"
    fourth.write_text(json.dumps(bundle))
    code, [result] = run_json(capsys, hub_home, "intake", str(fourth))
    assert result["claims"][0]["action"] == "pending_correction"
    _, [after, pending] = run_json(capsys, hub_home, "claims")
    assert after["lines"] == updated["lines"] and after["status"] == "batched"
    assert pending["patient_control_number"] == claim["patient_control_number"]
    assert pending["status"] == "pending_correction" and pending["revision"] == 1


def test_quarantined_item_imports_on_retry_after_the_mapping_is_fixed(hub_home, tmp_path, capsys):
    bundle = encounter_bundle(5)
    payer = next(e["resource"] for e in bundle["entry"] if e["resource"].get("id", "").startswith("payer-"))
    payer["identifier"] = [{"system": "urn:example:our-clearinghouse:payers", "value": "87726"}]  # no NIIP type
    path = tmp_path / "untyped-payer.json"
    path.write_text(json.dumps(bundle))
    code, [result] = run_json(capsys, hub_home, "intake", str(path))
    assert code == 1 and result["outcome"] == "quarantined" and "payer" in result["reason"]
    assert run(hub_home, "inbox", "retry", str(result["inbox_item_id"])) == 1  # nothing fixed yet
    override = hub_home / "mappings" / "ehr" / "fhir_r4.toml"
    override.parent.mkdir(parents=True)
    override.write_text('[payer]\nid_systems = ["urn:example:our-clearinghouse:payers"]\n')
    code, retried = run_json(capsys, hub_home, "inbox", "retry", str(result["inbox_item_id"]))
    assert code == 0 and retried["outcome"] == "imported"
    _, [claim] = run_json(capsys, hub_home, "claims")
    assert claim["payer_id"] == "87726"


def test_retry_of_an_unknown_item_is_a_usage_error(hub_home, capsys):
    assert run(hub_home, "inbox", "retry", "999") == 2
    assert "no inbox item 999" in capsys.readouterr().err


def test_claims_with_errors_stay_out_of_batches_and_say_how_to_fix(hub_home, tmp_path, capsys):
    bad = encounter_bundle(8)
    condition = next(e["resource"] for e in bad["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["code"]["coding"][0]["code"] = "F41"  # a category, not a billable code
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "bad.json").write_text(json.dumps(bad))
    (folder / "good.json").write_text(json.dumps(encounter_bundle(11)))
    assert run(hub_home, "intake", str(folder)) == 0
    _, attention = run_json(capsys, hub_home, "claims", "--status", "needs_attention")
    [finding] = [f for f in attention[0]["findings"] if f["severity"] == "error"]
    assert finding["code"] == "diagnosis.not_billable" and "F41.1" in finding["fix"]
    code, batch = run_json(capsys, hub_home, "export-837", "--out", str(tmp_path / "out.x12"))
    assert batch["claims"] == 1
    assert attention[0]["patient_control_number"] not in batch["patient_control_numbers"]


def test_control_numbers_are_never_reused_across_batches(hub_home, tmp_path, capsys):
    isa13 = []
    for seed in (3, 5, 8):
        (tmp_path / f"{seed}.json").write_text(json.dumps(encounter_bundle(seed)))
        assert run(hub_home, "intake", str(tmp_path / f"{seed}.json")) == 0
        code, batch = run_json(capsys, hub_home, "export-837", "--out", str(tmp_path / f"{seed}.x12"))
        isa13.append(batch["interchange_control_number"])
        segs = segments(tmp_path / f"{seed}.x12")
        assert segs[0][13] == batch["interchange_control_number"] == segs[-1][2]
    assert len(set(isa13)) == 3
    code, nothing = run_json(capsys, hub_home, "export-837", "--out", str(tmp_path / "none.x12"))
    assert (nothing["written"], nothing["claims"]) == (False, 0) and not (tmp_path / "none.x12").exists()


def test_many_varied_synthetic_encounters_give_one_valid_837p(sqlite_hub, tmp_path, capsys):
    folder = tmp_path / "export"
    folder.mkdir()
    for seed in range(100, 160):
        (folder / f"{seed}.json").write_text(json.dumps(encounter_bundle(seed)))
    home = sqlite_hub.settings.home
    assert run(home, "intake", str(folder)) == 0
    out = tmp_path / "many.x12"
    code, batch = run_json(capsys, home, "export-837", "--out", str(out))
    assert batch["claims"] == 60
    assert validate_x12(out.read_bytes()) == []


def test_no_phi_in_logs(hub_home, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    bundle = encounter_bundle(19)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    coverage = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")
    (tmp_path / "in.json").write_text(json.dumps(bundle))
    truncated = json.dumps(encounter_bundle(23))
    (tmp_path / "cut.json").write_text(truncated[:-40])
    run(hub_home, "-v", "intake", str(tmp_path))
    run(hub_home, "export-837", "--out", str(tmp_path / "o.x12"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "inbox item" in logged  # the log did run
    for phi in (patient["name"][0]["family"], patient["birthDate"], coverage["subscriberId"]):
        assert phi not in logged


def test_every_phi_read_and_change_is_audited(hub_home, tmp_path, capsys):
    (tmp_path / "in.json").write_text(json.dumps(encounter_bundle(29)))
    run(hub_home, "intake", str(tmp_path / "in.json"))
    run_json(capsys, hub_home, "claims")
    run(hub_home, "export-837", "--out", str(tmp_path / "o.x12"))
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        actions = [e.action for e in session.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id))]
    assert actions == ["intake", "list_claims", "export_837p"]


def test_intake_of_a_folder_holding_the_hub_home_skips_the_hubs_own_files(tmp_path, capsys):
    home = tmp_path / "home"  # the store (SQLite, config) lives inside the folder taken in
    (tmp_path / "visit.json").write_text(json.dumps(encounter_bundle(31)))
    assert run(home, "init") == 0
    code, results = run_json(capsys, home, "intake", str(tmp_path))
    assert code == 0
    assert [Path(r["source"]).name for r in results] == ["visit.json"]


def test_a_store_time_failure_quarantines_only_its_own_file(sqlite_hub, monkeypatch):
    import bhhub.intake.inbox as intake_module
    from bhhub.intake import many as intake_many
    from bhhub.errors import InputError

    real = intake_module.store_encounter

    def failing_for_one(hub, session, upserts, encounter, item_id):
        if encounter.source_ref.endswith("enc-5"):
            raise InputError("simulated failure while storing", where=encounter.source_ref)
        return real(hub, session, upserts, encounter, item_id)

    monkeypatch.setattr(intake_module, "store_encounter", failing_for_one)  # one by one
    monkeypatch.setattr(intake_many, "store_encounter", failing_for_one)  # the whole chunk
    payloads = [(f"{seed}.json", json.dumps(encounter_bundle(seed)).encode()) for seed in (3, 5, 8)]
    results = list(intake_many.receive_many(sqlite_hub, payloads))
    assert [r.outcome for r in results] == ["imported", "quarantined", "imported"]
    assert "simulated failure" in results[1].reason
    assert counts(sqlite_hub.settings.home)["claims"] == 2


def test_the_same_content_twice_in_one_command_is_imported_once(sqlite_hub):
    from bhhub.intake import many as intake_many

    content = json.dumps(encounter_bundle(3)).encode()
    results = list(intake_many.receive_many(sqlite_hub, [("a.json", content), ("b.json", content)]))
    assert [r.outcome for r in results] == ["imported", "duplicate"]
    assert results[1].item_id == results[0].item_id


def test_an_item_left_received_by_an_interrupted_intake_can_be_retried(sqlite_hub, monkeypatch, capsys):
    from bhhub.intake import many as intake_many

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the raw bytes were committed

    monkeypatch.setattr(intake_many, "_parse_here", crash)
    with pytest.raises(KeyboardInterrupt):
        list(intake_many.receive_many(sqlite_hub, [("a.json", json.dumps(encounter_bundle(3)).encode())]))
    monkeypatch.undo()
    home = sqlite_hub.settings.home
    _, [item] = run_json(capsys, home, "inbox")
    assert item["state"] == "received"  # stored raw before the crash: nothing lost
    code, retried = run_json(capsys, home, "inbox", "retry", str(item["id"]))
    assert code == 0 and retried["outcome"] == "imported"


def test_an_encounter_sent_twice_in_one_command_ends_as_one_claim_with_the_later_data(hub_home, tmp_path, capsys):
    bundle = encounter_bundle(3)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "1-first.json").write_text(json.dumps(bundle))
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    encounter["length"]["value"] = 58
    encounter["class"]["code"] = "AMB"
    (folder / "2-corrected.json").write_text(json.dumps(bundle))
    assert run(hub_home, "intake", str(folder)) == 0
    _, claims = run_json(capsys, hub_home, "claims")
    assert len(claims) == 1
    # seed 3 is a telehealth E/M with an add-on; the corrected copy says it was in the office
    assert [(l["procedure_code"], l["modifiers"]) for l in claims[0]["lines"]] == [("99214", []), ("90833", [])]
    assert claims[0]["place_of_service"] == "11"


def test_parsing_in_a_worker_process_gives_the_same_results(tmp_path):
    from bhhub.intake import many as intake_many

    payloads = [(f"{seed}.json", json.dumps(encounter_bundle(seed)).encode()) for seed in range(40, 52)]
    payloads.insert(5, ("cut.json", payloads[0][1][:100]))
    payloads.append(("again.json", payloads[1][1]))
    outcomes = {}
    for parallel in (False, True):
        with Hub.open(tmp_path / str(parallel), create=True) as hub:
            results = list(intake_many.receive_many(hub, payloads, chunk_size=4, parse_in_worker=parallel))
            outcomes[parallel] = [(r.source_name, r.outcome, r.reason, [c.status for c in r.claims]) for r in results]
    assert outcomes[True] == outcomes[False]
    assert [o[1] for o in outcomes[True]].count("imported") == 12
    assert outcomes[True][5][1] == "quarantined" and outcomes[True][-1][1] == "duplicate"


def test_a_visit_assembled_from_official_fhir_examples_is_checked_then_billed(official, hub_home, tmp_path, capsys):
    """Content written by others (HL7's R4 examples): its problems are caught, then it bills."""
    from conftest import official_visit_bundle

    bundle = official_visit_bundle(official)
    override = hub_home / "mappings" / "ehr" / "fhir_r4.toml"
    override.parent.mkdir(parents=True)
    override.write_text('[payer]\nid_systems = ["urn:oid:2.16.840.1.113883.3.19.2.3"]\n')
    (tmp_path / "as-published.json").write_text(json.dumps(bundle))
    assert run(hub_home, "intake", str(tmp_path / "as-published.json")) == 0
    _, [claim] = run_json(capsys, hub_home, "claims")
    assert claim["status"] == "needs_attention"
    # The example Practitioner's NPI fails the check digit, its Coverage is order 2, the HL7
    # Organization has no tax id, and the 2011 visit predates the psychotherapy codes (2013)
    # the hub derives from minutes, so no line could be coded.
    assert {f["code"] for f in claim["findings"] if f["severity"] == "error"} == {
        "provider.npi", "coverage.primary_missing", "provider.tin", "coding.no_table", "claim.no_lines"}

    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Practitioner":
            resource["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1999999984"}]
        if resource["resourceType"] == "Coverage":
            resource["order"] = 1
            resource["period"] = {"start": "2026-01-01", "end": "2026-12-31"}  # the example's ended in 2012
        if resource["resourceType"] == "Organization" and resource["id"] == "hl7":
            resource["identifier"].append({"system": "urn:oid:2.16.840.1.113883.4.4", "value": "123456789"})
        if resource["resourceType"] == "Encounter":
            resource["period"] = {"start": "2026-10-01T10:00:00-04:00", "end": "2026-10-01T10:45:00-04:00"}
    (tmp_path / "corrected.json").write_text(json.dumps(bundle))
    assert run(hub_home, "intake", str(tmp_path / "corrected.json")) == 0
    out = tmp_path / "official.x12"
    assert run(hub_home, "export-837", "--out", str(out)) == 0
    assert validate_x12(out.read_bytes()) == []
    segs = segments(out)
    assert ["NM1", "IL", "1", "CHALMERS", "PETER", "JAMES", "", "", "MI", "AB9876"] in segs
    assert ["SBR", "P", "18", "WESTAIR", "", "", "", "", "", "CI"] in segs
    assert ["DMG", "D8", "19741225", "M"] in segs
    assert any(s[0] == "HI" and s[1] == "ABK:F4321" for s in segs)
    assert any(s[0] == "SV1" and s[1] == "HC:90834" for s in segs)  # 45 minutes by the period


def test_the_batch_passes_the_x12valid_command_itself(exported):
    """The same check a clearinghouse analyst would run: pyx12's x12valid, via the shared wrapper
    that reads its report (x12valid's own exit status is 1 for valid files too)."""
    import subprocess
    import sys

    from conftest import SHARED_CORPORA

    checker = SHARED_CORPORA.parent / "tools" / "x12valid-check"
    if not checker.is_file():
        pytest.skip("../shared/tools/x12valid-check is not present")
    out, _, _ = exported
    run_check = subprocess.run([sys.executable, str(checker), str(out)], capture_output=True, text=True, timeout=300)
    assert run_check.returncode == 0, run_check.stdout + run_check.stderr
    assert run_check.stdout.strip().endswith(": OK")
