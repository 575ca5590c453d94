"""A batch is written whatever one claim is like, and never carries the same service twice.

- A sole proprietor bills and renders under one NPI: storing the clinician must not erase the
  billing provider's address and tax id (2010AA), or every claim of theirs fails.
- A claim, or a billing provider, the 837P cannot carry is set aside (``needs_attention``, with
  the reason) when the batch is built; the rest of the batch is written.
- The same service twice in one intake (two visit records for one session) passes the intake's
  duplicate check twice, since it sees committed claims only: the batch checks again.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.intake import many as intake_many
from bhhub.claims.export import export_837p
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema
from bhhub.x12.validate import validate_x12

PRACTICE_NPI = "1234567893"  # the synthetic practice Organization's NPI


def _bundle(seed: int, **edit) -> dict:
    bundle = encounter_bundle(seed)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Practitioner" and edit.get("clinician_npi"):
            resource["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": edit["clinician_npi"]}]
        if resource["resourceType"] == "Encounter" and edit.get("encounter_id"):
            resource["id"] = edit["encounter_id"]
    return bundle


def _claim(hub, pcn: str) -> schema.Claim:
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        claim.findings  # loaded while the session is open
        return claim


def _segments(content: bytes) -> list[str]:
    return [s for s in content.decode().replace("\n", "").split("~") if s]


def test_a_sole_proprietor_who_bills_and_renders_under_one_npi_is_billed_with_their_address(hub, tmp_path):
    [outcome] = intake.receive(hub, json.dumps(_bundle(5, clinician_npi=PRACTICE_NPI)).encode(), "v.json").claims
    assert outcome.status == "ready"
    result = export_837p(hub, tmp_path / "b.x12")
    assert result is not None and result.claim_count == 1
    content = (tmp_path / "b.x12").read_bytes()
    assert validate_x12(content) == []
    segments = _segments(content)
    billing = segments.index(next(s for s in segments if s.startswith("NM1*85*")))
    assert segments[billing + 1].startswith("N3*100 MAIN ST") and segments[billing + 3] == "REF*EI*123456789"
    assert not any(s.startswith("NM1*82*") for s in segments)  # 2310B only when it differs from 2010AA


def test_the_rendering_role_never_erases_what_the_billing_role_said_about_a_provider(hub, tmp_path):
    intake.receive(hub, json.dumps(_bundle(5)).encode(), "practice-bills.json")
    # the same NPI named later only as a clinician (no address, no tax id, a person's name)
    intake.receive(hub, json.dumps(_bundle(8, clinician_npi=PRACTICE_NPI)).encode(), "clinician.json")
    with hub.store.session() as session:
        provider = session.scalars(select(schema.Provider).where(schema.Provider.npi == PRACTICE_NPI)).one()
        assert provider.address is not None and provider.address["line1"] == "100 Main St"
        assert provider.tin == "123456789" and provider.organization_name
    result = export_837p(hub, tmp_path / "b.x12")
    assert result is not None and result.claim_count == 2 and result.set_aside == ()


def test_a_billing_provider_the_837p_cannot_carry_sets_aside_its_claims_and_the_batch_goes(hub, tmp_path):
    for seed in (3, 5, 8):
        intake.receive(hub, json.dumps(_bundle(seed)).encode(), f"v{seed}.json")
    other = intake.receive(hub, json.dumps(_bundle(11)).encode(), "other.json").claims[0]
    with hub.store.session() as session:  # a second billing provider whose address was lost,
        claim = session.get(schema.Claim, other.claim_id)  # on a claim rendered before renderings
        broken = schema.Provider(npi="1245319599", organization_name="OTHER GROUP", tin="987654321", address=None)
        session.add(broken)  # kept their billing provider (the stored one stands in)
        session.flush()
        claim.billing_provider_id = broken.id
        claim.rendered_x12 = {k: v for k, v in claim.rendered_x12.items() if k != "billing_provider"}
        session.commit()
    set_aside: list = []
    result = export_837p(hub, tmp_path / "b.x12", set_aside=set_aside)
    assert result is not None and result.claim_count == 3
    assert set_aside == [(other.patient_control_number, "billing_provider.unwritable")]
    assert validate_x12((tmp_path / "b.x12").read_bytes()) == []
    held = _claim(hub, other.patient_control_number)
    assert held.status == "needs_attention" and held.batch_id is None
    [finding] = [f for f in held.findings if f.code == "billing_provider.unwritable"]
    assert "street address" in finding.message and finding.fix


def test_a_claim_the_837p_cannot_carry_is_set_aside_when_batching(hub, tmp_path):
    good = intake.receive(hub, json.dumps(_bundle(3)).encode(), "good.json").claims[0]
    bad = intake.receive(hub, json.dumps(_bundle(5)).encode(), "bad.json").claims[0]
    with hub.store.session() as session:  # stored before renderings were kept, and now unwritable
        claim = session.get(schema.Claim, bad.claim_id)
        claim.rendered_x12 = None
        claim.lines[0].diagnosis_pointers = [9]
        session.commit()
    set_aside: list = []
    result = export_837p(hub, tmp_path / "b.x12", set_aside=set_aside)
    assert result is not None and result.patient_control_numbers == (good.patient_control_number,)
    assert set_aside == [(bad.patient_control_number, "x12.unwritable")]
    assert _claim(hub, bad.patient_control_number).status == "needs_attention"


def test_the_same_service_recorded_twice_in_one_intake_goes_out_once(hub, tmp_path):
    first = json.dumps(_bundle(5)).encode()
    second = json.dumps(_bundle(5, encounter_id="enc-5-again")).encode()
    results = list(intake_many.receive_many(hub, [("a.json", first), ("b.json", second)]))
    pcns = [r.claims[0].patient_control_number for r in results]
    assert [r.claims[0].status for r in results] == ["ready", "ready"]  # neither saw the other at intake
    set_aside: list = []
    result = export_837p(hub, tmp_path / "b.x12", set_aside=set_aside)
    assert result.patient_control_numbers == (pcns[0],)
    assert set_aside == [(pcns[1], "claim.duplicate_service")]
    [finding] = [f for f in _claim(hub, pcns[1]).findings if f.code == "claim.duplicate_service"]
    assert pcns[0] in finding.message
    assert sum(1 for s in _segments((tmp_path / "b.x12").read_bytes()) if s.startswith("CLM*")) == 1


def test_a_service_already_sent_is_not_batched_again_under_another_claim(hub, tmp_path):
    first = json.dumps(_bundle(5)).encode()
    second = json.dumps(_bundle(5, encounter_id="enc-5-again")).encode()
    results = list(intake_many.receive_many(hub, [("a.json", first), ("b.json", second)]))
    pcns = [r.claims[0].patient_control_number for r in results]
    assert export_837p(hub, tmp_path / "first.x12", max_claims=1).patient_control_numbers == (pcns[0],)
    set_aside: list = []
    assert export_837p(hub, tmp_path / "second.x12", set_aside=set_aside) is None  # nothing else to bill
    assert set_aside == [(pcns[1], "claim.duplicate_service")]
    assert not (tmp_path / "second.x12").exists()


def test_a_duplicate_a_biller_overrode_goes_out(hub, tmp_path):
    first = json.dumps(_bundle(5)).encode()
    second = json.dumps(_bundle(5, encounter_id="enc-5-again")).encode()
    results = list(intake_many.receive_many(hub, [("a.json", first), ("b.json", second)]))
    second_claim = results[1].claims[0]
    with hub.store.session() as session:
        session.add(schema.FindingOverride(claim_id=second_claim.claim_id, code="claim.duplicate_service",
                                           line_number=1, reason="two sessions that day, payer confirmed",
                                           actor="test"))
        session.commit()
    result = export_837p(hub, tmp_path / "b.x12")
    assert result.claim_count == 2
