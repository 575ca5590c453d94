"""A service already billed is not billed again under another visit (payers deny it as CARC 18)."""

from __future__ import annotations

import json

from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema


def _visit(seed: int, encounter_id: str, **changes) -> bytes:
    """The synthetic visit ``seed`` recorded again under another Encounter id (a second visit record)."""
    bundle = encounter_bundle(seed)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["resource"].update(changes)
    return json.dumps(bundle).replace(f'enc-{seed}"', f'{encounter_id}"').encode()


def _findings(hub, pcn: str) -> list[str]:
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        return [f.code for f in claim.findings]


def test_the_same_service_recorded_under_a_second_visit_is_blocked_as_a_duplicate(hub):
    first = intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json")
    second = intake.receive(hub, _visit(5, "enc-5-copy"), "visit-again.json")
    assert first.claims[0].status == "ready"
    [outcome] = second.claims
    assert outcome.patient_control_number != first.claims[0].patient_control_number
    assert outcome.status == "needs_attention"
    assert _findings(hub, outcome.patient_control_number) == ["claim.duplicate_service"]


def test_the_same_code_on_another_date_is_not_a_duplicate(hub):
    intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json")
    later = _visit(5, "enc-5-next-week", period={"start": "2026-11-16T10:00:00-05:00"})
    [outcome] = intake.receive(hub, later, "next-week.json").claims
    assert outcome.status == "ready", _findings(hub, outcome.patient_control_number)


def test_a_rejected_first_claim_does_not_block_the_service_billed_again(hub):
    [first] = intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json").claims
    with hub.store.session() as session:
        session.get(schema.Claim, first.claim_id).status = "rejected"
        session.commit()
    [outcome] = intake.receive(hub, _visit(5, "enc-5-copy"), "visit-again.json").claims
    assert outcome.status == "ready"


def test_bhhub_scrub_checks_unsent_claims_again_when_what_they_depend_on_changed(hub, hub_home, capsys):
    from bhhub.cli.main import main

    [first] = intake.receive(hub, json.dumps(encounter_bundle(5)).encode(), "visit.json").claims
    [second] = intake.receive(hub, _visit(5, "enc-5-copy"), "visit-again.json").claims
    assert second.status == "needs_attention"
    with hub.store.session() as session:  # the first claim was rejected by the payer's front end
        session.get(schema.Claim, first.claim_id).status = "rejected"
        session.commit()
    capsys.readouterr()
    assert main(["--home", str(hub_home), "scrub", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] == [{"patient_control_number": second.patient_control_number, "from": "needs_attention", "to": "ready"}]
    assert _findings(hub, second.patient_control_number) == []
    with hub.store.session() as session:
        assert session.get(schema.Claim, second.claim_id).rendered_x12 is not None
