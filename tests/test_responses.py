"""Responses applied to what the hub sent: TA1, 999, 277CA and 835 claim outcomes.

The response files are written here by hand in the shapes of the implementation guides (and of
the fixtures in tests/data/x12), addressed to a batch the hub really exported; they arrive
through the inbox exactly as a mailbox pickup or `bhhub intake FILE` delivers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema


@dataclass
class Sent:
    batch: schema.Batch
    transmission_id: int
    pcns: list[str]


@pytest.fixture
def sent(hub, tmp_path) -> Sent:
    for seed in (3, 5, 8):
        assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
    export_837p(hub, tmp_path / "batch.x12")
    with hub.store.session() as session:
        batch = session.scalars(select(schema.Batch)).one()
        transmission = schema.Transmission(batch_id=batch.id, mailbox="ch", remote_name="b.837", state="uploaded")
        session.add(transmission)
        for claim in session.scalars(select(schema.Claim)):
            claim.status = "submitted"
        session.commit()
        pcns = sorted(session.scalars(select(schema.Claim.patient_control_number)))
        session.expunge(batch)
        return Sent(batch, transmission.id, pcns)


def _isa(sender: str, receiver: str, number: int) -> str:
    return (f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*{receiver:<15}*261129*0800*^*00501*"
            f"{number:09d}*0*T*:~\n")


def ta1(sent: Sent, result: str, note: str) -> bytes:
    b = sent.batch
    return (_isa("TESTCH", b.sender_id, 501) + f"TA1*{b.interchange_control_number}*261129*0800*{result}*{note}~\n"
            + "IEA*0*000000501~\n").encode()


def ack_999(sent: Sent, result: str, errors: str = "") -> bytes:
    b = sent.batch
    body = ["ST*999*0001*005010X231A1", f"AK1*HC*{b.group_control_number}*005010X222A1",
            f"AK2*837*{b.transaction_control_number}*005010X222A1", *[e for e in errors.split("\n") if e],
            f"IK5*{result}" + ("*I5" if result == "R" else ""),
            f"AK9*{result}*1*1*{0 if result == 'R' else 1}"]
    body.append(f"SE*{len(body) + 1}*0001")
    return (_isa("TESTCH", b.sender_id, 502) + "GS*FA*TESTCH*" + b.sender_id + "*20261129*0800*502*X*005010X231A1~\n"
            + "".join(s + "~\n" for s in body) + "GE*1*502~\nIEA*1*000000502~\n").encode()


def ack_277ca(sent: Sent, outcomes: dict[str, str]) -> bytes:
    """``outcomes``: pcn -> STC01 (e.g. "A2:20:PR" or "A7:562:82")."""
    b = sent.batch
    body = ["ST*277*0001*005010X214", "BHT*0085*08*277CA1*20261129*0800*TH", "HL*1**20*1",
            "NM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999", "TRN*1*277CA1", "DTP*050*D8*20261129",
            "DTP*009*D8*20261129", "HL*2*1*21*1", "NM1*41*2*SAMPLE PRACTICE*****46*SUBMITTERID",
            "TRN*2*BATCH1", "STC*A1:19:PR*20261129*WQ*100", "HL*3*2*19*1",
            "NM1*85*2*SAMPLE PRACTICE*****XX*1234567893", "TRN*1*0", "STC*A1:19:PR**WQ*100"]
    for n, (pcn, stc) in enumerate(outcomes.items(), start=4):
        body += [f"HL*{n}*3*PT", "NM1*QC*1*DOE*JOHN****MI*MEMBER123", f"TRN*2*{pcn}",
                 f"STC*{stc}*20261129*{'WQ' if stc.startswith(('A1', 'A2')) else 'U'}*150",
                 *([f"REF*1K*PAYER{n}"] if stc.startswith("A2") else []), "DTP*472*D8*20261101"]
    body.append(f"SE*{len(body) + 1}*0001")
    return (_isa("TESTCH", b.sender_id, 503) + "GS*HN*TESTCH*" + b.sender_id + "*20261129*0800*503*X*005010X214~\n"
            + "".join(s + "~\n" for s in body) + "GE*1*503~\nIEA*1*000000503~\n").encode()


def remit_835(sent: Sent, clps: list[str]) -> bytes:
    b = sent.batch
    body = ["ST*835*0001*005010X221A1", "BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*98765*20261201",
            "TRN*1*TRACE123*1512345678", "DTM*405*20261201", "N1*PR*SAMPLE MEDICAID MCO", "N3*1 MAIN ST",
            "N4*CITY*NY*10001", "N1*PE*SAMPLE PRACTICE*XX*1234567893", "LX*1", *clps]
    body.append(f"SE*{len(body) + 1}*0001")
    return (_isa("PAYER", b.sender_id, 504) + "GS*HP*PAYER*" + b.sender_id + "*20261201*0800*504*X*005010X221A1~\n"
            + "".join(s + "~\n" for s in body) + "GE*1*504~\nIEA*1*000000504~\n").encode()


def statuses(hub) -> dict[str, str]:
    with hub.store.session() as session:
        return {c.patient_control_number: c.status for c in session.scalars(select(schema.Claim))}


def transmission_state(hub, sent: Sent) -> str:
    with hub.store.session() as session:
        return session.get(schema.Transmission, sent.transmission_id).state


def test_an_accepting_999_acknowledges_the_transmission_and_clears_the_missing_ack_alert(hub, sent):
    from bhhub.exchange.alerts import raise_alert

    with hub.store.session() as session:
        raise_alert(session, f"ack_missing:transmission:{sent.transmission_id}", "ack_missing", "no 999")
        session.commit()
    result = intake.receive(hub, ack_999(sent, "A"), "ch:a.999")
    assert result.outcome == "imported" and result.format == "x12-999"
    assert transmission_state(hub, sent) == "acknowledged"
    assert set(statuses(hub).values()) == {"submitted"}  # the 277CA says more, per claim
    with hub.store.session() as session:
        alert = session.scalars(select(schema.Alert)).one()
        assert alert.cleared_at is not None
        [ack] = session.scalars(select(schema.Acknowledgment)).all()
        assert ack.kind == "999" and ack.accepted and ack.batch_id == sent.batch.id


def test_a_rejecting_999_rejects_the_file_with_the_error_locations_per_claim(hub, sent):
    pcn = sent.pcns[1]
    errors = f"IK3*NM1*22*2010BA*8\nCTX*CLM01:{pcn}\nIK4*9*67*7*BADVALUE"
    result = intake.receive(hub, ack_999(sent, "R", errors), "ch:r.999")
    assert result.outcome == "imported", result.reason
    assert transmission_state(hub, sent) == "rejected"
    assert set(statuses(hub).values()) == {"rejected"}
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        [specific] = session.scalars(select(schema.Acknowledgment).where(schema.Acknowledgment.claim_id == claim.id)).all()
        assert "NM1" in specific.detail and "2010BA" in specific.detail and "BADVALUE" not in specific.detail
        reason = session.scalars(select(schema.ClaimStatusEvent.reason).where(
            schema.ClaimStatusEvent.claim_id == claim.id).order_by(schema.ClaimStatusEvent.id.desc())).first()
        assert "this claim" in reason and "NM1" in reason


def test_a_rejected_claim_goes_out_again_only_when_resubmitted_in_a_new_batch(hub, sent, tmp_path):
    from bhhub.claims.build import resubmit
    from bhhub.errors import InputError

    intake.receive(hub, ack_999(sent, "R", f"IK3*CLM*9*2300*8\nCTX*CLM01:{sent.pcns[0]}"), "ch:r.999")
    assert export_837p(hub, tmp_path / "again.x12") is None  # rejected claims are not re-batched by themselves
    with hub.store.session() as session:
        claims = {c.patient_control_number: c for c in session.scalars(select(schema.Claim))}
        resubmit(session, claims[sent.pcns[0]], "member id corrected")
        session.commit()
    again = export_837p(hub, tmp_path / "again.x12")
    assert again.claim_count == 1 and again.interchange_control_number != sent.batch.interchange_control_number
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == sent.pcns[0])).one()
        assert claim.status == "batched"
        with pytest.raises(InputError, match="not rejected"):
            resubmit(session, claim, "again")


def test_a_ta1_rejection_rejects_and_a_duplicate_025_changes_nothing(hub, sent):
    result = intake.receive(hub, ta1(sent, "R", "025"), "ch:dup.ta1")
    assert result.outcome == "imported" and "duplicate" in result.summary
    assert transmission_state(hub, sent) == "uploaded" and set(statuses(hub).values()) == {"submitted"}
    intake.receive(hub, ta1(sent, "R", "022"), "ch:bad.ta1")
    assert transmission_state(hub, sent) == "rejected" and set(statuses(hub).values()) == {"rejected"}


def test_a_277ca_accepts_and_rejects_claim_by_claim_with_the_reason(hub, sent):
    a, b, c = sent.pcns
    result = intake.receive(hub, ack_277ca(sent, {a: "A2:20:PR", b: "A7:562:82", c: "A1:19:PR"}), "ch:x.277")
    assert result.outcome == "imported", result.reason
    # A1 is receipt, not acceptance into adjudication: that claim stays in flight
    assert statuses(hub) == {a: "accepted", b: "rejected", c: "submitted"}
    assert result.updated == {a: "accepted", b: "rejected"}
    with hub.store.session() as session:
        claim_b = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == b)).one()
        reason = session.scalars(select(schema.ClaimStatusEvent.reason).where(
            schema.ClaimStatusEvent.claim_id == claim_b.id).order_by(schema.ClaimStatusEvent.id.desc())).first()
        assert "NPI" in reason or "National Provider Identifier" in reason
        claim_a = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        assert claim_a.payer_claim_control_number == "PAYER4"


def test_the_same_response_twice_is_applied_once(hub, sent):
    content = ack_277ca(sent, {sent.pcns[0]: "A7:562:82"})
    intake.receive(hub, content, "ch:x.277")
    again = intake.receive(hub, content, "ch:x.277 (downloaded again)")
    assert again.outcome == "duplicate"
    with hub.store.session() as session:
        assert len(session.scalars(select(schema.Acknowledgment)).all()) == 1
        events = session.scalars(select(schema.ClaimStatusEvent).where(schema.ClaimStatusEvent.status == "rejected")).all()
        assert len(events) == 1


def test_a_response_for_something_never_sent_is_quarantined_with_a_reason(hub, sent):
    other = ack_277ca(sent, {"NOSUCHCLAIM": "A2:20:PR"})
    result = intake.receive(hub, other, "ch:other.277")
    assert result.outcome == "quarantined" and "none of which the hub sent" in result.reason
    sent.batch.group_control_number = "424242"
    result = intake.receive(hub, ack_999(sent, "A"), "ch:other.999")
    assert result.outcome == "quarantined" and "matches no batch" in result.reason


def test_an_835_is_posted_and_sets_each_claims_outcome(hub, sent):
    a, b, c = sent.pcns
    clps = [f"CLP*{a}*1*150*100*20*12*PAYERA", "CAS*CO*45*30", "CAS*PR*3*20",
            f"CLP*{b}*4*200*0*0*12*PAYERB", "CAS*CO*197*200"]
    result = intake.receive(hub, remit_835(sent, clps), "ch:x.835")
    assert result.outcome == "imported" and result.format == "x12-835"
    assert statuses(hub) == {a: "paid", b: "denied", c: "submitted"}
    with hub.store.session() as session:
        item = session.get(schema.InboxItem, result.item_id)
        assert item.state == "processed"
        claim_b = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == b)).one()
        reason = session.scalars(select(schema.ClaimStatusEvent.reason).where(
            schema.ClaimStatusEvent.claim_id == claim_b.id).order_by(schema.ClaimStatusEvent.id.desc())).first()
        assert "CO-197" in reason
        postings = session.scalars(select(schema.RemitClaim).order_by(schema.RemitClaim.id)).all()
        assert [(p.patient_control_number, p.state, p.paid) for p in postings] == [
            (a, "posted", Decimal("100")), (b, "posted", Decimal("0"))]


def test_intake_of_a_folder_mixing_bundles_and_responses(hub, sent, tmp_path):
    from bhhub.intake.many import receive_many

    payloads = [("new.json", json.dumps(encounter_bundle(11)).encode()),
                ("r.277", ack_277ca(sent, {sent.pcns[0]: "A2:20:PR"})),
                ("junk.x12", b"ISA*garbage"),
                ("new2.json", json.dumps(encounter_bundle(19)).encode())]
    results = list(receive_many(hub, payloads))
    assert [r.outcome for r in results] == ["imported", "imported", "quarantined", "imported"]
    assert results[1].format == "x12-277ca" and results[1].updated == {sent.pcns[0]: "accepted"}
    assert "ISA" in results[2].reason
