"""The sandbox clearinghouse answering inquiries: a 270 with a 999 and a 271, a 276 with a 999 and
a 277 (005010X212), without the network (``answer_upload``, what the SFTP server calls on a rename).

The inquiries are written by the hub's writers and the answers read by the hub's readers; the
sandbox reads and writes with its own code, and x12sdk's models judge its 271s and 277s.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from test_sandbox_clearinghouse import CLAIMS, COMMERCIAL, ENVELOPE, GROUP_PRACTICE, SERVICE_DATE, batch_837p
from x12_models import x12sdk_problems

from bhhub.claimstatus.records import StatusInquiry
from bhhub.claimstatus.x276 import write_276
from bhhub.claimstatus.x277 import read_277
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.x270 import write_270
from bhhub.eligibility.x271 import read_271
from bhhub.model import Payer, Person, PersonName
from bhhub.acknowledgments.x999 import read_999
from bhhub.x12.envelope import ControlNumbers
from bhhub.plugins.clearinghouse.sandbox.clearinghouse import answer_upload
from bhhub.plugins.clearinghouse.sandbox.rules import load_rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState

NOW = datetime(2026, 11, 30, 12, 0)
WRITTEN = datetime(2026, 11, 30, 9, 0)
JOHN = Person(PersonName("Doe", "John"), date(1980, 1, 1), "M")
MAYA = Person(PersonName("Doe", "Maya"), date(2012, 5, 1), "F")


@pytest.fixture
def state(tmp_path) -> SandboxState:
    return SandboxState(tmp_path / "state.json")


def replies(answer) -> dict[str, bytes]:
    return dict(answer.replies)


def eligibility(trace: str, member_id: str, payer: Payer = COMMERCIAL, **changes) -> EligibilityRequest:
    return EligibilityRequest(**{"trace_number": trace, "payer": payer, "provider": GROUP_PRACTICE,
                                 "member_id": member_id, "subscriber": JOHN, "service_date": SERVICE_DATE, **changes})


def ask_270(requests, state, interchange: int, rules=None):
    content = write_270(requests, ENVELOPE, ControlNumbers(interchange, interchange, interchange), WRITTEN)
    return answer_upload(content, rules or load_rules(), state, NOW)


# --- 270 -> 271 ------------------------------------------------------------------------------------


def test_a_dependent_is_answered_in_a_2000d_loop_with_the_trace_echoed(state):
    answer = ask_270([eligibility("ELIG-DEP-1", "SBXACTIVE0100", dependent=MAYA, service_types=("A6",))], state, 11)
    assert [kind for kind, _ in answer.replies] == ["ta1", "999", "271"]
    answered = replies(answer)["271"]
    assert x12sdk_problems(answered) == []
    assert b"HL*4*3*23*0~" in answered and b"TRN*2*ELIG-DEP-1*1123456789~" in answered
    [response] = read_271(answered)
    assert response.patient == "dependent" and response.dependent_member_id is None  # no id of their own
    assert response.trace_numbers == ("ELIG-DEP-1",) and response.subscriber_member_id == "SBXACTIVE0100"
    assert response.mental_health_summary().copay == Decimal("30")
    assert set(response.benefits) == {"A6"}


def test_asked_only_for_plan_coverage_a_covered_member_hears_about_mental_health_too(state):
    [response] = read_271(replies(ask_270([eligibility("ELIG-30", "SBXAUTH0007", service_types=("30",))],
                                          state, 12))["271"])
    assert {"30", "MH"} <= set(response.benefits)
    summary = response.mental_health_summary()
    assert summary.auth_required is True and summary.visits_remaining == Decimal("12")


def test_a_payer_the_sandbox_does_not_know_is_refused_at_the_payer_level(state):
    stranger = Payer("55555", "Unknown Plan")
    answered = replies(ask_270([eligibility("ELIG-STRANGER", "SBXACTIVE1", payer=stranger)], state, 13))["271"]
    [response] = read_271(answered)
    assert [(r.loop, r.code) for r in response.rejections] == [("2100A", "79")]
    assert not response.benefits


def test_a_270_whose_se_count_is_wrong_gets_a_999_rejection_and_no_271(state):
    content = write_270([eligibility("ELIG-BROKEN", "SBXACTIVE2")], ENVELOPE, ControlNumbers(14, 14, 14), WRITTEN)
    content = content.replace(b"SE*14*0014~", b"SE*15*0014~")
    answer = answer_upload(content, load_rules(), state, NOW)
    assert [kind for kind, _ in answer.replies] == ["ta1", "999"]
    [group] = read_999(replies(answer)["999"])
    assert group.functional_id == "HS" and not group.transactions[0].accepted
    assert b"IK5*R*4~" in replies(answer)["999"]


def test_the_same_270_twice_is_answered_once(state):
    request = [eligibility("ELIG-TWICE", "SBXACTIVE3")]
    assert ask_270(request, state, 15).outcome == "answered"
    again = ask_270(request, state, 15)
    assert again.outcome == "duplicate" and [kind for kind, _ in again.replies] == ["ta1"]


# --- 276 -> 277 ------------------------------------------------------------------------------------


def status_inquiry(pcn: str, trace: str, charge: str = "150.00") -> StatusInquiry:
    return StatusInquiry(trace_number=trace, payer=COMMERCIAL, provider=GROUP_PRACTICE, subscriber=JOHN,
                         member_id="MEMBER123", patient_control_number=pcn, total_charge=Decimal(charge),
                         service_date_from=SERVICE_DATE)


def ask_276(pcns, state, interchange: int, rules=None) -> dict[str, object]:
    inquiries = [status_inquiry(pcn, f"T-{pcn}") for pcn in pcns]
    content = write_276(inquiries, ENVELOPE, ControlNumbers(interchange, interchange, interchange), WRITTEN)
    answer = answer_upload(content, rules or load_rules(), state, NOW)
    assert [kind for kind, _ in answer.replies] == ["ta1", "999", "277"]
    answered = replies(answer)["277"]
    assert x12sdk_problems(answered) == []
    return {result.patient_control_number: result for result in read_277(answered)}


def test_a_276_hears_what_became_of_each_claim_the_clearinghouse_was_sent(state):
    assert answer_upload(batch_837p(CLAIMS, 1), load_rules(), state, NOW).outcome == "answered"
    results = ask_276(["PCN-COMMERCIAL", "PCN-BADNPI", "PCN-NOAUTH", "PCN-MEDICARE", "PCN-NEVER"], state, 21)
    paid = results["PCN-COMMERCIAL"]
    assert (paid.status, paid.category) == ("paid", "F1") and paid.paid_amount > 0
    assert paid.payer_claim_control_number.startswith("SBX") and paid.check_or_eft_number.startswith("SBX")
    rejected = results["PCN-BADNPI"]  # the 277CA's own code: rendering provider NPI
    assert (rejected.status, rejected.reports[0].codes[0].status.value) == ("rejected", "562")
    denied = results["PCN-NOAUTH"]  # CO-197 in the 835: service not authorized
    assert (denied.status, denied.reports[0].codes[0].status.value) == ("denied", "84")
    assert results["PCN-MEDICARE"].status == "paid"  # one line denied, one paid
    never = results["PCN-NEVER"]
    assert (never.status, never.category, never.trace_number) == ("not_found", "A4", "T-PCN-NEVER")


def test_a_payer_that_pends_its_claims_is_answered_pending_and_sends_no_835(state):
    rules = load_rules()
    rules = replace(rules, payers={**rules.payers, "87726": replace(rules.payers["87726"], pend=True)})
    commercial = [c for c in CLAIMS if c.patient_control_number == "PCN-COMMERCIAL"]
    first = answer_upload(batch_837p(commercial, 2), rules, state, NOW)
    assert [kind for kind, _ in first.replies] == ["ta1", "999", "277"]  # no 835
    [pending] = ask_276(["PCN-COMMERCIAL"], state, 22, rules).values()
    assert (pending.status, pending.category) == ("pending", "P1")


def test_claim_outcomes_survive_a_restart_of_the_sandbox(tmp_path):
    answer_upload(batch_837p(CLAIMS, 3), load_rules(), SandboxState(tmp_path / "state.json"), NOW)
    restarted = SandboxState(tmp_path / "state.json")
    assert restarted.claim("BHHUBPRACTICE", "PCN-COMMERCIAL")["outcome"] == "paid"
    assert restarted.claim("BHHUBPRACTICE", "PCN-NEVER") is None
