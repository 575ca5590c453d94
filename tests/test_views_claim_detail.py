"""A claim's page (issue 16): `bhhub claims show CLAIM` and claim_detail(), on a hub whose claims
went through bhhub's sandbox clearinghouse and came back with a TA1, 999, 277CA and 835."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bhhub.claims.detail import claim_detail
from bhhub.cli.main import main
from bhhub.exchange.cycle import exchange
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.runtime.app import Hub
from bhhub.store import schema
from views_support import as_printed, start_sandbox, take_in, take_in_a_member_id_typo, with_sandbox_mailbox

pytest.importorskip("pyx12")


@pytest.fixture
def exchanged(hub_home, tmp_path, request):
    with_sandbox_mailbox(hub_home, start_sandbox(tmp_path, request))
    with Hub.open(hub_home) as hub:
        take_in(hub)
        take_in_a_member_id_typo(hub)
        report = exchange(hub, load_mailboxes(hub)["sandbox"])
    assert report.ok, report.error
    return hub_home


def _a_paid_claim(home) -> str:
    with Hub.open(home) as hub, hub.store.session() as session:
        return session.scalars(select(schema.Claim.patient_control_number).where(
            schema.Claim.status.in_(["paid", "partially_paid", "denied"])).order_by(schema.Claim.id)).first()


def test_the_history_tells_the_claims_whole_journey_in_time_order(exchanged):
    pcn = _a_paid_claim(exchanged)
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        detail = claim_detail(hub, session, pcn)
    history = detail["history"]
    kinds = [e["kind"] for e in history]
    assert {"status", "batch", "transmission", "acknowledgment", "remittance"} <= set(kinds)
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    answers = [e for e in history if e["kind"] == "acknowledgment"]
    assert {e["acknowledgment"] for e in answers if e["whole_file"]} >= {"TA1", "999"}  # the file's
    [claims_own] = [e for e in answers if not e["whole_file"]]  # its own 277CA, not its batch-mates'
    assert claims_own["acknowledgment"] == "277CA" and pcn in claims_own["detail"]
    statuses = [e["status"] for e in history if e["kind"] == "status"]
    assert statuses.index("batched") < statuses.index("submitted") < statuses.index(detail["status"])
    assert kinds.index("batch") < kinds.index("remittance")
    posting = next(e for e in history if e["kind"] == "remittance")
    assert posting["state"] == "posted" and posting["trace_number"] and isinstance(posting["adjustments"], list)


def test_the_claim_as_the_listing_shows_it_with_the_patient_apart(exchanged, capsys):
    pcn = _a_paid_claim(exchanged)
    assert main(["--home", str(exchanged), "claims", "--json"]) == 0
    listed = next(c for c in json.loads(capsys.readouterr().out) if c["patient_control_number"] == pcn)
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        detail = as_printed(claim_detail(hub, session, pcn))
        patient = session.get(schema.Patient, listed["patient_id"])
    assert detail["patient_phi"]["member_id"] == listed.pop("member_id") and "member_id" not in detail
    phi = detail["patient_phi"]
    assert phi["family_name"] == patient.family_name and phi["id"] == listed["patient_id"]
    assert {k: detail[k] for k in listed} == listed  # the same figures: lines, findings, remittance...
    names = json.dumps({k: v for k, v in detail.items() if k != "patient_phi"})
    assert patient.family_name not in names  # PHI only under "patient_phi", for the web to hide


def test_the_837p_segments_are_the_claims_part_of_the_batch_file(exchanged):
    pcn = _a_paid_claim(exchanged)
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        detail = claim_detail(hub, session, pcn)
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        content = session.get(schema.Batch, claim.batch_id).content.decode("ascii")
    segments = detail["x12"]["segments"]
    assert detail["x12"]["batch_id"] == claim.batch_id
    assert segments[0].startswith(f"CLM*{pcn}*")
    assert "".join(segments) in content.replace("\n", "").replace("\r", "")
    # the loop ends where the next claim's subscriber or the transaction set's trailer starts
    after = content.replace("\n", "").split("".join(segments), 1)[1]
    assert after.startswith(("HL*", "SE*"))
    assert sum(s.startswith("SV1*") for s in segments) == len(detail["lines"])


def test_cli_json_prints_what_the_function_returns_and_the_view_is_audited(exchanged, capsys):
    pcn = _a_paid_claim(exchanged)
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        expected = as_printed(claim_detail(hub, session, pcn))
    assert main(["--home", str(exchanged), "claims", "show", pcn, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        events = session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.action == "show_claim")).all()
    assert len(events) == 2 and events[-1].object_ids == [r["id"] for r in expected["revisions"]]
    assert events[-1].detail is None


def test_the_text_page_shows_fixes_history_and_segments(exchanged, capsys):
    pcn = _a_paid_claim(exchanged)
    assert main(["--home", str(exchanged), "claims", "show", pcn]) == 0
    out = capsys.readouterr().out
    assert f"claim {pcn} revision 0" in out and "history:" in out and f"CLM*{pcn}*" in out and "835 posted" in out


def test_an_unknown_claim_is_a_usage_error(exchanged, capsys):
    assert main(["--home", str(exchanged), "claims", "show", "NOPE123"]) == 2
    assert capsys.readouterr().err == "bhhub: no claim NOPE123 (see `bhhub claims`)\n"
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        assert claim_detail(hub, session, "NOPE123") is None


def test_a_voided_claim_shows_both_revisions_both_batches_and_goes_out_last_as_the_void(exchanged, capsys):
    pcn = _a_paid_claim(exchanged)
    assert main(["--home", str(exchanged), "followup", "void", pcn]) == 0
    with Hub.open(exchanged) as hub:
        assert exchange(hub, load_mailboxes(hub)["sandbox"]).ok
        with hub.store.session() as session:
            detail = claim_detail(hub, session, pcn)
    assert [(r["revision"], r["frequency_code"]) for r in detail["revisions"]] == [(0, "1"), (1, "8")]
    batches = [e["batch_id"] for e in detail["history"] if e["kind"] == "batch"]
    assert len(batches) == 2 and detail["x12"]["batch_id"] == max(batches)
    assert detail["x12"]["segments"][0].startswith(f"CLM*{pcn}*") and ":B:8*" in detail["x12"]["segments"][0]
    assert {e["revision"] for e in detail["history"] if e["kind"] == "status"} == {0, 1}


def test_a_rejected_claim_queued_again_still_shows_the_segments_it_went_out_as(exchanged, capsys):
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        rejected = session.scalars(select(schema.Claim.patient_control_number)
                                   .where(schema.Claim.status == "rejected")).first()
    assert rejected, "the fixture needs a claim the sandbox rejects"
    assert main(["--home", str(exchanged), "resubmit", rejected]) == 0
    with Hub.open(exchanged) as hub, hub.store.session() as session:
        detail = claim_detail(hub, session, rejected)
    assert detail["status"] == "ready" and detail["batch_id"] is None  # queued: no batch of its own yet
    sent = [e["batch_id"] for e in detail["history"] if e["kind"] == "batch"]
    assert detail["x12"]["batch_id"] == sent[-1] and detail["x12"]["segments"][0].startswith(f"CLM*{rejected}*")
