"""A visit corrected in the EHR after its claim was billed: the corrected claim carries the fix.

The story: an LCSW's 90837 (tests/fixtures/fhir/lcsw-office-90837.json, diagnoses F33.1 and
F41.1) is billed and the payer denies it (CO-11, diagnosis inconsistent with the procedure).
The clinician corrects the diagnosis in the EHR, which sends the visit again. The hub keeps the
change as a pending correction the biller can see, and `bhhub followup replace` sends it as the
frequency-7 claim with the corrected data and the payer's claim number of the latest
adjudication in REF*F8. Every 837P written here passes pyx12.
"""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from conftest import FIXTURES
from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.store import schema
from bhhub.x12.validate import validate_x12
from test_remittance import Remit, claim_info

D = Decimal
VISIT = "lcsw-office-90837.json"


def visit(principal: str = "F33.1", **indent) -> bytes:
    """The visit as the EHR sends it, with ``principal`` as its first diagnosis."""
    bundle = json.loads((FIXTURES / "fhir" / VISIT).read_bytes())
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "cond-1":
            entry["resource"]["code"]["coding"][0]["code"] = principal
    return json.dumps(bundle, **indent).encode()


def receive(hub, content: bytes, name: str) -> intake.IntakeResult:
    result = intake.receive(hub, content, name)
    assert result.outcome == "imported", result.reason
    return result


def bill(hub, tmp_path) -> tuple[str, dict]:
    """The visit taken in, batched and uploaded (as `bhhub exchange` would); its claim's facts."""
    receive(hub, visit(), "visit.json")
    assert export_837p(hub, tmp_path / "original.x12") is not None
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim)).one()
        claim.status = "submitted"
        session.commit()
        return claim.patient_control_number, claim_info(session, claim)


def deny(hub, pcn: str, info: dict, payer_number: str = "ICN-DENIED-1") -> None:
    remit = Remit("TRACE-DENY").claim(pcn, info, "4", lines=[[("CO", "11", charge)] for _, charge, _ in info["lines"]],
                                      payer_number=payer_number)
    receive(hub, remit.bytes(1), "denial.835")


def cli(hub_home, capsys, *argv: str) -> tuple[int, object]:
    capsys.readouterr()
    code = main(["--home", str(hub_home), *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def segments(content: bytes) -> list[list[str]]:
    return [s.strip().split("*") for s in content.decode().split("~") if s.strip()]


def exported(hub, path) -> list[list[str]]:
    """The next batch, checked with pyx12, as segments."""
    assert export_837p(hub, path) is not None
    content = path.read_bytes()
    assert validate_x12(content) == []
    return segments(content)


def revisions(hub, pcn: str) -> list[tuple[int, str, str]]:
    with hub.store.session() as session:
        return [(r.revision, r.frequency_code, r.status) for r in session.scalars(
            select(schema.Claim).where(schema.Claim.patient_control_number == pcn).order_by(schema.Claim.revision))]


# --- the correction is kept, shown, and not sent on its own ---------------------------------------


def test_a_changed_visit_for_a_billed_claim_becomes_a_pending_correction_the_biller_sees(hub, hub_home, tmp_path, capsys):
    pcn, info = bill(hub, tmp_path)
    deny(hub, pcn, info)
    result = receive(hub, visit("F32.1"), "visit corrected.json")
    [outcome] = result.claims
    assert outcome.action == "pending_correction" and outcome.status == "pending_correction"
    assert f"bhhub followup replace {pcn}" in outcome.note
    assert revisions(hub, pcn) == [(0, "1", "denied"), (1, "7", "pending_correction")]

    code, listed = cli(hub_home, capsys, "claims", "--status", "pending_correction")
    assert code == 0 and [(c["patient_control_number"], c["diagnoses"][0]) for c in listed] == [(pcn, "F32.1")]
    code, corrections = cli(hub_home, capsys, "followup", "corrections")
    assert code == 0
    [pending] = corrections
    assert pending["patient_control_number"] == pcn and pending["replaces_revision"] == 0 and pending["billed_status"] == "denied"
    assert pending["changes"] == ["diagnoses F33.1 F41.1 -> F32.1 F41.1"]
    assert pending["payer_claim_control_number"] == "ICN-DENIED-1" and pending["errors"] == []

    # not sent until a biller sends it
    assert export_837p(hub, tmp_path / "nothing.x12") is None


def test_an_unchanged_resend_of_a_billed_visit_changes_nothing(hub, tmp_path):
    pcn, info = bill(hub, tmp_path)
    result = receive(hub, visit(indent=2), "visit again.json")  # other bytes, the same visit
    [outcome] = result.claims
    assert outcome.action == "unchanged_sent" and "unchanged" in outcome.note
    assert revisions(hub, pcn) == [(0, "1", "submitted")]


# --- sending it ------------------------------------------------------------------------------------


def test_the_replacement_carries_the_corrected_diagnosis_and_the_payers_claim_number(hub, hub_home, tmp_path, capsys):
    pcn, info = bill(hub, tmp_path)
    deny(hub, pcn, info, "ICN-DENIED-1")
    receive(hub, visit("F32.1"), "visit corrected.json")

    code, done = cli(hub_home, capsys, "followup", "replace", pcn)
    assert code == 0 and done["refused"] == []
    assert done["created"] == [{"patient_control_number": pcn, "revision": 1, "frequency_code": "7", "status": "ready",
                                "payer_claim_control_number": "ICN-DENIED-1", "errors": []}]
    segs = exported(hub, tmp_path / "replacement.x12")
    clm = next(s for s in segs if s[0] == "CLM")
    assert clm[1] == pcn and clm[5].split(":")[2] == "7"
    assert ["REF", "F8", "ICN-DENIED-1"] in segs
    assert next(s for s in segs if s[0] == "HI")[1:] == ["ABK:F321", "ABF:F411"]  # the correction, not F33.1
    assert revisions(hub, pcn) == [(0, "1", "denied"), (1, "7", "batched")]
    code, corrections = cli(hub_home, capsys, "followup", "corrections")
    assert corrections == []


def test_after_a_reversal_and_a_new_adjudication_ref_f8_names_the_new_one(hub, hub_home, tmp_path, capsys):
    pcn, info = bill(hub, tmp_path)
    paid = Remit("TRACE-1").claim(pcn, info, lines=[[("CO", "45", D("20"))]] * len(info["lines"]),
                                  payer_number="ICN-FIRST")
    receive(hub, paid.bytes(1), "paid.835")
    # the payer takes the payment back and adjudicates the claim again under a new number
    again = Remit("TRACE-2", "20261215")
    again.claim(pcn, info, "22", sign=-1, lines=[[("CO", "45", D("20"))]] * len(info["lines"]), payer_number="ICN-FIRST")
    again.claim(pcn, info, lines=[[("CO", "45", D("20")), ("CO", "11", D("10"))]] * len(info["lines"]),
                payer_number="ICN-SECOND")
    receive(hub, again.bytes(2), "reversed and readjudicated.835")
    receive(hub, visit("F32.1"), "visit corrected.json")

    code, corrections = cli(hub_home, capsys, "followup", "corrections")
    assert corrections[0]["payer_claim_control_number"] == "ICN-SECOND"
    assert main(["--home", str(hub_home), "followup", "replace", pcn]) == 0
    segs = exported(hub, tmp_path / "replacement.x12")
    assert ["REF", "F8", "ICN-SECOND"] in segs and ["REF", "F8", "ICN-FIRST"] not in segs


def test_a_void_after_a_reversal_and_a_new_adjudication_names_the_new_one(hub, hub_home, tmp_path):
    pcn, info = bill(hub, tmp_path)
    paid = Remit("TRACE-1").claim(pcn, info, lines=[[("CO", "45", D("20"))]] * len(info["lines"]),
                                  payer_number="ICN-FIRST")
    receive(hub, paid.bytes(1), "paid.835")
    again = Remit("TRACE-2", "20261215")
    again.claim(pcn, info, "22", sign=-1, lines=[[("CO", "45", D("20"))]] * len(info["lines"]), payer_number="ICN-FIRST")
    again.claim(pcn, info, lines=[[("CO", "45", D("25"))]] * len(info["lines"]), payer_number="ICN-SECOND")
    receive(hub, again.bytes(2), "reversed and readjudicated.835")

    assert main(["--home", str(hub_home), "followup", "void", pcn]) == 0
    segs = exported(hub, tmp_path / "void.x12")
    assert ["REF", "F8", "ICN-SECOND"] in segs and ["REF", "F8", "ICN-FIRST"] not in segs


def test_a_correction_whose_data_fails_the_checks_is_held_until_the_visit_is_fixed(hub, hub_home, tmp_path, capsys):
    pcn, info = bill(hub, tmp_path)
    deny(hub, pcn, info)
    receive(hub, visit("F33"), "visit miscoded.json")  # a category, not a billable code
    code, corrections = cli(hub_home, capsys, "followup", "corrections")
    assert corrections[0]["errors"] == ["diagnosis.not_billable"]  # the biller sees it before sending

    code, done = cli(hub_home, capsys, "followup", "replace", pcn)
    assert code == 1 and done["created"][0]["status"] == "needs_attention"
    assert done["created"][0]["errors"] == ["diagnosis.not_billable"]
    assert export_837p(hub, tmp_path / "nothing.x12") is None  # kept out of batches

    # fixed in the EHR and sent again: the held replacement is corrected and goes, still a 7
    receive(hub, visit("F32.1"), "visit fixed.json")
    assert revisions(hub, pcn) == [(0, "1", "denied"), (1, "7", "ready")]
    segs = exported(hub, tmp_path / "replacement.x12")
    assert next(s for s in segs if s[0] == "CLM")[5].split(":")[2] == "7"
    assert ["REF", "F8", "ICN-DENIED-1"] in segs and next(s for s in segs if s[0] == "HI")[1] == "ABK:F321"


def test_replace_without_a_correction_needs_as_billed_and_as_billed_never_skips_a_correction(hub, hub_home, tmp_path,
                                                                                            capsys):
    pcn, info = bill(hub, tmp_path)
    deny(hub, pcn, info)
    code, done = cli(hub_home, capsys, "followup", "replace", pcn)
    assert code == 1 and "no pending correction" in done["refused"][0]["reason"]
    assert revisions(hub, pcn) == [(0, "1", "denied")]

    receive(hub, visit("F32.1"), "visit corrected.json")
    code, done = cli(hub_home, capsys, "followup", "replace", pcn, "--as-billed")
    assert code == 1 and "pending correction" in done["refused"][0]["reason"]
    assert revisions(hub, pcn) == [(0, "1", "denied"), (1, "7", "pending_correction")]


# --- voids and front-end rejections -------------------------------------------------------------


def test_voiding_a_claim_with_a_pending_correction_cancels_it_as_billed_and_drops_the_correction(hub, hub_home,
                                                                                                tmp_path, capsys):
    pcn, info = bill(hub, tmp_path)
    deny(hub, pcn, info)
    receive(hub, visit("F32.1"), "visit corrected.json")

    assert main(["--home", str(hub_home), "followup", "void", pcn]) == 0
    segs = exported(hub, tmp_path / "void.x12")
    assert next(s for s in segs if s[0] == "CLM")[5].split(":")[2] == "8"
    assert ["REF", "F8", "ICN-DENIED-1"] in segs
    assert next(s for s in segs if s[0] == "HI")[1] == "ABK:F331"  # the claim the payer has, as billed
    assert revisions(hub, pcn) == [(0, "1", "void"), (1, "7", "void"), (2, "8", "batched")]
    code, corrections = cli(hub_home, capsys, "followup", "corrections")
    assert corrections == []
    code, done = cli(hub_home, capsys, "followup", "replace", pcn)
    assert code == 1 and done["created"] == []


def test_a_correction_to_a_claim_rejected_at_the_front_end_goes_out_as_a_new_original(hub, tmp_path):
    pcn, info = bill(hub, tmp_path)
    with hub.store.session() as session:  # a 277CA rejected it: the payer never adjudicated it
        session.scalars(select(schema.Claim)).one().status = "rejected"
        session.commit()
    [outcome] = receive(hub, visit("F32.1"), "visit corrected.json").claims
    assert outcome.action == "updated" and outcome.status == "ready"
    assert revisions(hub, pcn) == [(0, "1", "ready")]
    segs = exported(hub, tmp_path / "again.x12")
    assert next(s for s in segs if s[0] == "CLM")[5].split(":")[2] == "1"
    assert not [s for s in segs if s[:2] == ["REF", "F8"]]
    assert next(s for s in segs if s[0] == "HI")[1] == "ABK:F321"
