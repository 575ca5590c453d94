"""A claim's acknowledgments, arriving in any order, leave it where what they mean puts it.

A biller's story: the 837 went out; the clearinghouse answers with a 999 and a 277CA saying it
received the claims, the payer answers with its own 277CA, and these files come down in
whatever order the mailbox lists them. A payer's rejection must not be undone by the
clearinghouse's receipt; a payer that cannot find a claim is something to look into, not an
acceptance; and once a claim is fixed and sent again, answers about the first submission no
longer move it. The 277CA files are built here in the shape of 005010X214 (and checked with
pyx12), addressed to a batch the hub really exported.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from sqlalchemy import select
from test_responses import Sent, ack_999, sent, statuses  # noqa: F401 (sent is a fixture)

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.store import schema
from bhhub.x12.validate import validate_x12

SOURCES = {  # 2100A: who is speaking
    "payer": "NM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999",
    "clearinghouse": "NM1*AY*2*SAMPLE CLEARINGHOUSE*****46*CH0001",
}
PATIENT = "NM1*QC*1*DOE*JOHN****MI*MEMBER123"  # PHI that must never reach an alert


def ack_277ca(batch: schema.Batch, claims: dict[str, str], *, source: str, on: str = "20261129",
              number: int = 600, echo_batch: bool = True) -> bytes:
    """A 277CA from ``source`` about ``claims``: CLM01 -> its STC01 composites, ";" between STC
    segments, "+" before an STC10 (e.g. "A2:20:PR+A8:164:IL"). The 2200B TRN02 echoes the
    batch's BHT03 unless ``echo_batch`` is false."""
    reference = f"BATCH{batch.transaction_control_number}" if echo_batch else "THEIRS77"
    body = ["ST*277*0001*005010X214", f"BHT*0085*08*ACK{number}*{on}*0800*TH", "HL*1**20*1", SOURCES[source],
            f"TRN*1*ACK{number}", f"DTP*050*D8*{on}", f"DTP*009*D8*{on}", "HL*2*1*21*1",
            "NM1*41*2*SAMPLE PRACTICE*****46*SUBMITTERID", f"TRN*2*{reference}", f"STC*A1:19:PR*{on}*WQ*450",
            "HL*3*2*19*1", "NM1*85*2*SAMPLE PRACTICE*****XX*1234567893", "TRN*1*0", "STC*A1:19:PR**WQ*450"]
    for n, (pcn, said) in enumerate(claims.items(), start=4):
        body += [f"HL*{n}*3*PT", PATIENT, f"TRN*2*{pcn}"]
        for stc in said.split(";"):
            first, _, extra = stc.partition("+")
            action = "WQ" if first.startswith(("A0", "A1", "A2", "A5")) and not extra else "U"
            body.append(f"STC*{first}*{on}*{action}*150" + (f"******{extra}" if extra else ""))
        if said.startswith("A2") and "+" not in said:
            body.append(f"REF*1K*PAYER{n}")
        body.append("DTP*472*D8*20261101")
    body.append(f"SE*{len(body) + 1}*0001")
    isa = (f"ISA*00*          *00*          *ZZ*{'TESTCH':<15}*ZZ*{batch.sender_id:<15}*261129*0800*^*00501*"
           f"{number:09d}*0*T*:~\n")
    return (isa + f"GS*HN*TESTCH*{batch.sender_id}*{on}*0800*{number}*X*005010X214~\n"
            + "".join(s + "~\n" for s in body) + f"GE*1*{number}~\nIEA*1*{number:09d}~\n").encode()


def receive(hub, content: bytes, name: str):
    result = intake.receive(hub, content, name)
    assert result.outcome == "imported", result.reason
    return result


def open_alerts(hub, kind: str) -> list[schema.Alert]:
    with hub.store.session() as session:
        return list(session.scalars(select(schema.Alert).where(schema.Alert.kind == kind,
                                                               schema.Alert.cleared_at.is_(None))))


def test_the_277ca_files_built_here_pass_pyx12(sent):
    for source in SOURCES:
        content = ack_277ca(sent.batch, {"PCN1": "A1:19:PR;A7:562:82+A7:145:82", "PCN2": "A4:35:PR"}, source=source)
        assert validate_x12(content) == []


@pytest.mark.parametrize("order", ["rejection first", "receipt first"])
def test_a_clearinghouse_receipt_never_undoes_a_payers_rejection(hub, sent, order):
    pcn = sent.pcns[0]
    rejection = ack_277ca(sent.batch, {pcn: "A7:562:82"}, source="payer", number=601)
    receipt = ack_277ca(sent.batch, {pcn: "A1:19:PR"}, source="clearinghouse", number=602)
    for content in ([rejection, receipt] if order == "rejection first" else [receipt, rejection]):
        receive(hub, content, f"ch:{len(content)}.277")
    assert statuses(hub)[pcn] == "rejected"


# Four files: the clearinghouse's 999 and two 277CAs, and the payer's 277CA. What each claim
# should end as, from what the answers mean and who gave them:
#   first:  clearinghouse received, then accepted; the payer rejected  -> rejected
#   second: clearinghouse received; the payer accepted                  -> accepted
#   third:  clearinghouse rejected; the payer accepted it all the same  -> accepted (payer outranks)
ANSWER_FILES = ("999 accepted", "clearinghouse receipt", "clearinghouse decision", "payer decision")


@pytest.mark.parametrize("order", list(itertools.permutations(ANSWER_FILES)), ids=lambda o: ", ".join(o))
def test_the_same_answers_in_any_order_leave_every_claim_in_the_same_status(hub, sent, order):
    first, second, third = sent.pcns
    files = {
        "999 accepted": ack_999(sent, "A"),
        "clearinghouse receipt": ack_277ca(sent.batch, {first: "A1:19:PR", second: "A1:19:PR", third: "A1:19:PR"},
                                           source="clearinghouse", on="20261128", number=611),
        "clearinghouse decision": ack_277ca(sent.batch, {first: "A2:20:PR", third: "A7:562:82"},
                                            source="clearinghouse", on="20261128", number=612),
        "payer decision": ack_277ca(sent.batch, {first: "A1:19:PR;A7:562:82", second: "A2:20:PR",
                                                 third: "A2:20:PR"}, source="payer", number=613),
    }
    for name in order:
        receive(hub, files[name], f"ch:{name}")
    assert statuses(hub) == {first: "rejected", second: "accepted", third: "accepted"}


def test_a_claim_is_decided_by_its_most_decisive_status_whatever_order_its_stcs_are_in(hub, sent):
    a, b, c = sent.pcns
    # rejection beats acceptance beats receipt; "not found" beats receipt and is its own outcome
    receive(hub, ack_277ca(sent.batch, {a: "A7:562:82;A1:19:PR", b: "A1:19:PR;A4:35:PR", c: "A2:20:PR+A8:164:IL"},
                           source="payer"), "ch:x.277")
    assert statuses(hub) == {a: "rejected", b: "submitted", c: "rejected"}
    [not_found] = open_alerts(hub, "ack_not_found")
    assert b in not_found.message and a not in not_found.message


def test_a_payer_that_cannot_find_a_claim_leaves_it_in_flight_with_an_alert_and_the_listing_says_so(
        hub, hub_home, sent, capsys):
    from bhhub.claims.build import resubmit

    a, b, _ = sent.pcns
    receive(hub, ack_277ca(sent.batch, {a: "A2:20:PR"}, source="clearinghouse", number=621), "ch:ch.277")
    result = receive(hub, ack_277ca(sent.batch, {a: "A4:35:PR", b: "A1:19:PR"}, source="payer", number=622),
                     "ch:payer.277")
    # Not accepted (the payer has no such claim), not rejected (nothing to fix): in flight.
    assert statuses(hub)[a] == "submitted" and "not found" in result.summary
    [alert] = open_alerts(hub, "ack_not_found")
    assert a in alert.message and "investigate" in alert.message and "DOE" not in alert.message
    assert not open_alerts(hub, "ack_rejected")

    assert main(["--home", str(hub_home), "claims"]) == 0
    listing = capsys.readouterr().out
    assert f"  {a} submitted, NOT FOUND by the payer (277CA A4" in listing
    assert f"{b} submitted, NOT FOUND" not in listing

    with hub.store.session() as session:  # once looked into, it may be sent again
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        resubmit(session, claim, "payer confirmed it never received it")
        assert claim.status == "ready"


def test_a_277ca_rejection_raises_one_alert_per_file_naming_the_claims_and_no_patient(hub, sent):
    a, b, c = sent.pcns
    receive(hub, ack_277ca(sent.batch, {a: "A7:562:82", b: "A6:21:IL", c: "A2:20:PR"}, source="payer"), "ch:x.277")
    [alert] = open_alerts(hub, "ack_rejected")
    assert a in alert.message and b in alert.message and c not in alert.message
    assert "277CA" in alert.message and "2 claims rejected" in alert.message
    for phi in ("DOE", "JOHN", "MEMBER123"):
        assert phi not in alert.message


def test_a_999_rejection_raises_the_same_kind_of_alert(hub, sent):
    receive(hub, ack_999(sent, "R", f"IK3*CLM*9*2300*8\nCTX*CLM01:{sent.pcns[0]}"), "ch:r.999")
    [alert] = open_alerts(hub, "ack_rejected")
    assert alert.message.startswith("999 ") and all(pcn in alert.message for pcn in sent.pcns)


@pytest.mark.parametrize("echo_batch", [True, False], ids=["batch echoed", "batch not echoed"])
def test_a_claim_sent_again_is_not_moved_by_answers_about_its_first_submission(hub, sent, tmp_path, echo_batch):
    from bhhub.claims.build import resubmit

    pcn = sent.pcns[0]
    first_batch = sent.batch
    # The clearinghouse rejects it; the biller fixes it and sends it again in a new batch.
    receive(hub, ack_277ca(first_batch, {pcn: "A7:562:82"}, source="clearinghouse", on="20200601", number=631,
                           echo_batch=echo_batch), "ch:first.277")
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        resubmit(session, claim, "rendering NPI corrected")
        session.commit()
    again = export_837p(hub, tmp_path / "again.x12")
    assert validate_x12((tmp_path / "again.x12").read_bytes()) == []
    with hub.store.session() as session:
        second_batch = session.get(schema.Batch, again.batch_id)
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        claim.status = "submitted"
        session.commit()
        session.expunge(second_batch)

    # The payer's 277CA about the first submission comes late: the new one is not touched.
    receive(hub, ack_277ca(first_batch, {pcn: "A7:562:82"}, source="payer", on="20200602", number=632,
                           echo_batch=echo_batch), "ch:late.277")
    assert statuses(hub)[pcn] == "submitted"
    # The answers about the new submission decide it.
    receive(hub, ack_277ca(second_batch, {pcn: "A2:20:PR"}, source="payer", on=date.today().strftime("%Y%m%d"), number=633,
                           echo_batch=echo_batch), "ch:second.277")
    assert statuses(hub)[pcn] == "accepted"
    with hub.store.session() as session:
        kept = session.scalars(select(schema.Acknowledgment).where(schema.Acknowledgment.kind == "277CA")
                               .order_by(schema.Acknowledgment.id)).all()
        assert len(kept) == 3 and kept[1].outcome == "rejected"  # the late answer is kept in the history
