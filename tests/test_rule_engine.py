"""The rule engine as a biller meets it: overriding a finding with a reason, and the
authorization ledger counting a visit when its claim goes out and giving it back on a denial."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema
from test_duplicates import _visit
from test_remittance import Remit, claim_info


def run_json(capsys, home, *args):
    capsys.readouterr()
    code = main(["--home", str(home), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_finding_overridden_with_a_reason_no_longer_blocks_and_the_override_is_audited(hub, hub_home, capsys):
    intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json")
    [second] = intake.receive(hub, _visit(5, "enc-5-copy"), "visit-again.json").claims
    assert second.status == "needs_attention"
    pcn = second.patient_control_number
    assert main(["--home", str(hub_home), "override", pcn, "claim.duplicate_service", "--line", "1",
                 "--reason", "two sessions that day, confirmed with the payer"]) == 0
    _, claims = run_json(capsys, hub_home, "claims")
    claim = next(c for c in claims if c["patient_control_number"] == pcn)
    assert claim["status"] == "ready"
    [finding] = claim["findings"]
    assert finding["overridden"] == "two sessions that day, confirmed with the payer"
    with hub.store.session() as session:
        actions = [e.action for e in session.scalars(select(schema.AuditEvent))]
        assert "override_finding" in actions


def test_an_override_must_name_a_finding_the_claim_has(hub, hub_home, capsys):
    [claim] = intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json").claims
    capsys.readouterr()
    assert main(["--home", str(hub_home), "override", claim.patient_control_number, "coding.time_mismatch",
                 "--reason", "x"]) == 2
    assert "has no finding coding.time_mismatch" in capsys.readouterr().err


def test_a_visit_is_counted_when_its_claim_goes_out_and_given_back_when_denied_for_no_authorization(
        hub, hub_home, tmp_path, capsys):
    bundle = encounter_bundle(5)
    coverage = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")
    payer = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"
                 and e["resource"]["id"].startswith("payer-"))
    payer_id = payer["identifier"][0]["value"]
    overrides = hub_home / "mappings" / "rules"
    overrides.mkdir(parents=True)
    (overrides / "authorization.toml").write_text(f'[payers."{payer_id}"]\nrequires_authorization = ["90834"]\n')
    start, end = date(2026, 9, 1), date(2026, 12, 31)
    assert main(["--home", str(hub_home), "auth", "add", "--payer", payer_id, "--member", coverage["subscriberId"],
                 "--number", "AUTH-1", "--visits", "1", "--cpt", "90834", "--from", start.isoformat(),
                 "--to", end.isoformat()]) == 0

    from bhhub.runtime.app import Hub

    with Hub.open(hub_home) as fresh:  # the practice's table and the authorization, as a new process sees them
        [claim] = intake.receive(fresh, json.dumps(bundle).encode(), "visit.json").claims
        assert claim.status == "ready", claim
        export_837p(fresh, tmp_path / "b.x12")
        _, auths = run_json(capsys, hub_home, "auth", "list")
        assert [(a["number"], Decimal(str(a["remaining"]))) for a in auths] == [("AUTH-1", 0)]

        # a second visit for the same authorization is blocked: nothing left
        later = _visit(5, "enc-5-next", period={"start": "2026-11-20T10:00:00-05:00"})
        [blocked] = intake.receive(fresh, later, "later.json").claims
        assert blocked.status == "needs_attention"
        with fresh.store.session() as session:
            codes = [f.code for f in session.get(schema.Claim, blocked.claim_id).findings]
        assert "auth.exhausted" in codes

        # the payer denies the first one CO-197: the visit is given back
        with fresh.store.session() as session:
            row = session.get(schema.Claim, claim.claim_id)
            row.status = "submitted"
            info = claim_info(session, row)  # the 835 comes from the claim's payer and names its patient
            session.commit()
        remit = Remit("TRACE-A").claim(claim.patient_control_number, info, "4",
                                       lines=[[("CO", "197", info["charge"])]])
        intake.receive(fresh, remit.bytes(1), "denial.835")
    _, auths = run_json(capsys, hub_home, "auth", "list")
    assert [(a["number"], Decimal(str(a["remaining"]))) for a in auths] == [("AUTH-1", 1)]


def test_a_claim_sent_after_an_override_does_not_count_as_clean(hub, hub_home, tmp_path, capsys):
    outcomes = [intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"{seed}.json").claims[0]
                for seed in (3, 5, 8)]
    assert [o.status for o in outcomes] == ["ready"] * 3
    # seed 3 (an E/M with a psychotherapy add-on) carries a warning; a biller overrides it before it goes out
    _, claims = run_json(capsys, hub_home, "claims")
    warned = next(c for c in claims if c["patient_control_number"] == outcomes[0].patient_control_number)
    [finding] = warned["findings"]
    assert main(["--home", str(hub_home), "override", warned["patient_control_number"], finding["code"],
                 "--line", str(finding["line"]), "--reason", "minutes are in the note"]) == 0
    export_837p(hub, tmp_path / "b.x12")
    _, after = run_json(capsys, hub_home, "ar")
    assert Decimal(str(after["figures"]["clean_claim_rate"])) == Decimal("0.667")  # a fraction, as coinsurance
    assert "overridden finding" in after["formulas"]["clean_claim_rate"]


def test_a_claim_already_sent_refuses_an_override_and_its_figures_stay(hub, hub_home, tmp_path, capsys):
    outcomes = [intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"{seed}.json").claims[0]
                for seed in (3, 5, 8)]
    export_837p(hub, tmp_path / "b.x12")
    _, before = run_json(capsys, hub_home, "ar")
    assert Decimal(str(before["figures"]["clean_claim_rate"])) == Decimal("1.000")
    _, claims = run_json(capsys, hub_home, "claims")
    warned = next(c for c in claims if c["patient_control_number"] == outcomes[0].patient_control_number)
    [finding] = warned["findings"]
    for status in ("batched", "paid"):
        with hub.store.session() as session:
            session.get(schema.Claim, outcomes[0].claim_id).status = status
            session.commit()
        capsys.readouterr()
        assert main(["--home", str(hub_home), "override", warned["patient_control_number"], finding["code"],
                     "--line", str(finding["line"]), "--reason", "late doc"]) == 2
        err = capsys.readouterr().err
        assert f"is {status}: an override changes only a claim not yet sent" in err and err.count("\n") == 1, err
    _, after = run_json(capsys, hub_home, "ar")
    assert after["figures"]["clean_claim_rate"] == before["figures"]["clean_claim_rate"]
    with hub.store.session() as session:
        assert session.scalars(select(schema.FindingOverride)).all() == []


def test_the_same_override_twice_records_one_and_reports_it(hub, hub_home, capsys):
    intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json")
    [second] = intake.receive(hub, _visit(5, "enc-5-copy"), "visit-again.json").claims
    argv = ["override", second.patient_control_number, "claim.duplicate_service", "--line", "1",
            "--reason", "two sessions that day"]
    code, first = run_json(capsys, hub_home, *argv)
    assert code == 0 and first["status"] == "ready"
    code, again = run_json(capsys, hub_home, *argv[:-1], "another reason")
    assert code == 0 and again == first
    assert main(["--home", str(hub_home), *argv]) == 0
    assert "already overridden (override 1" in capsys.readouterr().out
    with hub.store.session() as session:
        assert len(session.scalars(select(schema.FindingOverride)).all()) == 1
        audited = [e.action for e in session.scalars(select(schema.AuditEvent))]
        assert audited.count("override_finding") == 1


def test_an_override_survives_the_encounter_being_sent_again(hub, hub_home, capsys):
    intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json")
    copy = _visit(5, "enc-5-copy")
    [second] = intake.receive(hub, copy, "visit-again.json").claims
    pcn = second.patient_control_number
    assert main(["--home", str(hub_home), "override", pcn, "claim.duplicate_service", "--line", "1",
                 "--reason", "two sessions"]) == 0
    # the EHR sends the same visit again with a changed note: the claim is rebuilt, the override kept
    changed = _visit(5, "enc-5-copy", length={"value": 44, "unit": "min", "system": "http://unitsofmeasure.org",
                                              "code": "min"})
    [again] = intake.receive(hub, changed, "visit-again-2.json").claims
    assert again.patient_control_number == pcn and again.status == "ready"
