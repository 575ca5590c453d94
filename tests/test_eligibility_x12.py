"""Eligibility over X12 (005010X279A1): the 270 writer and the 271 reader.

The 271 fixtures in tests/fixtures/x12/271 are the domain reference's section 8.3 fragments
made into whole interchanges, plus shapes payers send (dependents, AAA rejections, a
carve-out, limits said only in MSG text, segments the guide does not have). Member ids are
invented. eMedNY's published 271 is read in place from the shared corpora (skipped when absent).

Independent check. pyx12 4.0 ships no 005010X279A1 map, so the 270s the writer produces and the
271 fixtures are read by x12sdk's 005010X279A1 models (tests/x12_models.py), written by others.
The 270s in tests/fixtures/x12/270 were also checked with linuxforhealth-x12 0.57 when written;
the writer must reproduce them byte for byte (``test_written_270s_are_the_checked_fixtures``).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from x12_models import x12sdk_problems

from bhhub.eligibility import codes
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.service_benefits import UNSPECIFIED
from bhhub.eligibility.x270 import write_270
from bhhub.eligibility.x271 import read_271
from bhhub.errors import InputError
from bhhub.model import Payer, Person, PersonName, Provider
from bhhub.x12.envelope import ControlNumbers, Envelope
from bhhub.x12.recognize import recognize
from bhhub.x12.tokens import segments

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x12"
EMEDNY_271 = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "emedny-x12" / "271-eligible.x12"

ENVELOPE = Envelope(
    sender_id="BHHUBPRACTICE", receiver_id="ACMEHEALTH", submitter_name="RIVERSIDE COUNSELING",
    submitter_id="BHHUB01", submitter_contact_name="BILLING OFFICE", receiver_name="ACME HEALTH",
    receiver_id_code="60054", submitter_phone="5185550100",
)
ACME = Payer(payer_id="60054", name="Acme Health Plan")
NORTHSTAR = Payer(payer_id="77321", name="Northstar Behavioral Health")
PRACTICE = Provider(npi="1245319599", organization_name="Riverside Counseling", tin="123456789")
CLINICIAN = Provider(npi="1679576722", name=PersonName("Rivera", "Ana"), tin="123456789")
JANE = Person(name=PersonName("Doe", "Jane"), birth_date=date(1985, 2, 14), gender="F")
JOHN = Person(name=PersonName("Doe", "John"), birth_date=date(1984, 7, 9), gender="M")
MAYA = Person(name=PersonName("Doe", "Maya"), birth_date=date(2012, 5, 1), gender="F")
WRITTEN_AT = datetime(2026, 11, 29, 10, 15)
SERVICE_DAY = date(2026, 12, 1)


def subscriber_request(trace: str = "ELIG-RT-1", **changes) -> EligibilityRequest:
    fields = dict(trace_number=trace, payer=ACME, provider=PRACTICE, member_id="ZQX10000101",
                  subscriber=JANE, service_date=SERVICE_DAY)
    return EligibilityRequest(**{**fields, **changes})


def dependent_request(trace: str = "ELIG-0002", **changes) -> EligibilityRequest:
    fields = dict(trace_number=trace, payer=ACME, provider=PRACTICE, member_id="ZQX20000200",
                  subscriber=JOHN, service_date=SERVICE_DAY, dependent=MAYA)
    return EligibilityRequest(**{**fields, **changes})


# The checked 270 fixtures: file name -> (inquiries, control number).
WRITTEN_270S = {
    "subscriber.x12": ([subscriber_request()], 7),
    "dependent.x12": ([dependent_request()], 8),
    "subscriber-one-code.x12": ([subscriber_request("ELIG-0009", service_types=("A6",))], 9),
    "dependent-one-code.x12": ([dependent_request("ELIG-0010", service_types=("MH",))], 10),
}


def written(name: str) -> bytes:
    requests, control = WRITTEN_270S[name]
    return write_270(requests, ENVELOPE, ControlNumbers(control, control, control), WRITTEN_AT)


def read_fixture(name: str) -> list[EligibilityResponse]:
    return read_271((FIXTURES / "271" / name).read_bytes())


def lines(content: bytes) -> list[str]:
    return [s.strip() for s in content.decode("ascii").split("~") if s.strip()]


@pytest.fixture(scope="module")
def commercial() -> EligibilityResponse:
    (response,) = read_fixture("commercial-psychotherapy.x12")
    return response


# --- 271: cost share, limits, authorization ------------------------------------------------------

COMMERCIAL_VALUES = [
    # (what, service type, how it is asked, expected); the fixture holds several EB per type.
    ("in-network copay per visit", "A6", lambda b: b.copay(), Decimal("30")),
    ("out-of-network copay", "A6", lambda b: b.copay("out"), Decimal("60")),
    ("out-of-network coinsurance as a fraction", "A6", lambda b: b.coinsurance("out"), Decimal("0.2")),
    ("no in-network coinsurance given", "A6", lambda b: b.coinsurance(), None),
    ("mental health copay of its own", "MH", lambda b: b.copay(), Decimal("40")),
    ("calendar-year deductible in network", "30", lambda b: b.deductible(), Decimal("1500")),
    ("deductible remaining", "30", lambda b: b.deductible(remaining=True), Decimal("750")),
    ("out-of-network deductible", "30", lambda b: b.deductible("out"), Decimal("4000")),
    ("out-of-pocket maximum", "30", lambda b: b.out_of_pocket(), Decimal("6000")),
    ("out-of-pocket remaining", "30", lambda b: b.out_of_pocket(remaining=True), Decimal("4850.5")),
    ("visits per calendar year from EB09/EB10", "A6", lambda b: b.visits_allowed(), Decimal("20")),
    ("visits remaining from EB06 29", "A6", lambda b: b.visits_remaining(), Decimal("8")),
    ("visits per year from an HSD", "CF", lambda b: b.visits_allowed(), Decimal("30")),
    ("outpatient provider copay", "CF", lambda b: b.copay(), Decimal("30")),
    ("no auth for psychotherapy (EB11 N)", "A6", lambda b: b.auth_required, False),
    ("auth for an outpatient mental health provider (EB11 Y)", "CF", lambda b: b.auth_required, True),
    ("no auth on the mental health copay", "MH", lambda b: b.auth_required, False),
    ("plan coverage has no auth indicator", "30", lambda b: b.auth_required, None),
]


@pytest.mark.parametrize("what, service_type, ask, expected", COMMERCIAL_VALUES,
                         ids=[v[0] for v in COMMERCIAL_VALUES])
def test_commercial_271_benefit_values(commercial, what, service_type, ask, expected):
    assert ask(commercial.benefits[service_type]) == expected


def test_remaining_visits_come_from_eb06_29(commercial):
    psychotherapy = commercial.benefits["A6"]
    assert psychotherapy.visits_allowed() == 20 and psychotherapy.visits_remaining() == 8
    remaining = [e for e in psychotherapy.entries if e.remaining and e.quantity_qualifier == "VS"]
    assert [e.time_period for e in remaining] == ["29"]


def test_family_deductible_does_not_hide_the_individual_one(commercial):
    deductibles = [e for e in commercial.benefits["30"].entries if e.code == "C"]
    assert {e.coverage_level for e in deductibles} == {"IND", "FAM"}
    assert commercial.benefits["30"].deductible() == Decimal("1500")


def test_year_to_date_amount_is_not_read_as_the_deductible_or_what_is_left(commercial):
    # EB*C*IND*30***24*750: 750 met so far. Neither the deductible nor what remains of it.
    plan = commercial.benefits["30"]
    assert any(e.time_period == "24" for e in plan.entries)
    assert plan.deductible() == Decimal("1500")
    assert plan.deductible(remaining=True) == Decimal("750")  # from the EB06 29 entry


def test_procedure_specific_copay_is_kept_apart_from_the_general_one(commercial):
    psychotherapy = commercial.benefits["A6"]
    assert psychotherapy.procedures == ("HC:90837",)
    extended = psychotherapy.for_procedure("HC:90837")
    assert extended.copay() == Decimal("50") and extended.auth_required is True
    assert psychotherapy.copay() == Decimal("30")
    assert extended.messages == ("EXTENDED SESSIONS NEED PRIOR AUTHORIZATION",)


def test_eb03_list_puts_the_active_coverage_under_each_service_type(commercial):
    assert commercial.active is True
    for service_type in ("30", "MH", "A6"):
        assert commercial.benefits[service_type].active is True
    assert commercial.plan_description == "GOLD PPO"
    assert commercial.insurance_type == "PR"
    assert commercial.benefits["A6"].description == "psychotherapy"


def test_plan_group_and_coverage_dates_come_from_2100c(commercial):
    assert commercial.plan_number == "PPO-GOLD-2026"
    assert (commercial.group_number, commercial.group_name) == ("GRP-88001", "RIVERSIDE SCHOOLS")
    dates = commercial.coverage_dates
    assert dates["346"].start == date(2026, 1, 1) and dates["346"].meaning == "plan begin"
    assert dates["356"].start == date(2026, 1, 1)


def test_mental_health_summary_prefers_psychotherapy_over_mental_health_and_the_plan(commercial):
    summary = commercial.mental_health_summary()
    assert summary.copay == Decimal("30") and summary.sources["copay"] == "A6"  # not MH's 40
    assert summary.deductible == Decimal("1500") and summary.sources["deductible"] == "30"
    assert summary.deductible_remaining == Decimal("750")
    assert summary.visits_allowed == 20 and summary.visits_remaining == 8
    # A6 says no authorization (EB11 N) and wins over CF's Y; the MSG about prior authorization
    # belongs to the 90837 entry only.
    assert summary.auth_required is False and summary.sources["auth_required"] == "A6"
    assert summary.carve_out is None
    assert summary.active is True


def test_response_matches_the_inquiry_by_its_echoed_trace(commercial):
    assert [(t.type, t.number) for t in commercial.traces] == [("2", "ELIG-0001"), ("1", "PAYERTRACE77")]
    assert commercial.matches("ELIG-0001") and not commercial.matches("ELIG-9999")
    assert commercial.receiver_npi == "1245319599"
    assert (commercial.payer_id, commercial.payer_name) == ("60054", "ACME HEALTH PLAN")
    assert commercial.reference == "BATCH0001" and commercial.control_number == "0001"


def test_to_json_gives_what_eligibility_list_shows(commercial):
    data = json.loads(json.dumps(commercial.to_json()))  # plain values only
    assert (data["member_id"], data["payer_id"], data["active"]) == ("ZQX10000101", "60054", True)
    psychotherapy = data["benefits"]["A6"]
    assert psychotherapy["copay"] == "30" and psychotherapy["coinsurance_out_of_network"] == "0.2"
    assert psychotherapy["visits_allowed"] == "20" and psychotherapy["visits_remaining"] == "8"
    assert psychotherapy["auth_required"] is False and psychotherapy["in_network"] is True
    assert psychotherapy["procedures"]["HC:90837"]["copay"] == "50"
    assert psychotherapy["procedures"]["HC:90837"]["auth_required"] is True
    plan = data["benefits"]["30"]
    assert (plan["deductible"], plan["deductible_remaining"]) == ("1500", "750")
    assert (plan["out_of_pocket"], plan["out_of_pocket_remaining"]) == ("6000", "4850.5")
    assert data["mental_health"]["sources"]["copay"] == "A6"


def test_no_names_or_birth_dates_are_read_into_the_record(commercial):
    kept = json.dumps(commercial.to_json()) + repr(commercial)
    for phi in ("DOE", "JANE", "19850214", "1 MAIN ST", "ALBANY"):
        assert phi not in kept
    assert "ZQX10000101" in commercial.describe() and "DOE" not in commercial.describe()


# --- 271: dependents ----------------------------------------------------------------------------


def test_each_dependent_gets_its_own_response_under_the_subscriber_id():
    maya, alex = read_fixture("dependents.x12")
    for response in (maya, alex):
        assert response.patient == "dependent"
        assert response.subscriber_member_id == "ZQX20000200" and response.dependent_member_id is None
        assert response.member_id == "ZQX20000200"
        assert response.group_number == "GRP-88001"  # the subscriber's REF*6P applies
    assert maya.trace_numbers == ("ELIG-0002",) and alex.trace_numbers == ("ELIG-0003",)
    assert maya.active is True and maya.benefits["MH"].copay() == Decimal("25")
    assert maya.benefits["MH"].coinsurance() == Decimal("0.1")
    assert maya.benefits["MH"].auth_required is True
    assert maya.plan_description == "SILVER HMO"


def test_dependent_whose_coverage_ended_reads_inactive_with_its_end_date():
    _, alex = read_fixture("dependents.x12")
    assert alex.active is False and alex.benefits["30"].active is False
    assert alex.coverage_dates["357"].start == date(2026, 10, 31)
    assert alex.messages == ("COVERAGE TERMINATED",)


# --- 271: rejections ----------------------------------------------------------------------------

REJECTIONS = [
    # (fixture, response, loop, AAA03, AAA04, meaning, trace)
    ("subscriber-not-found.x12", 0, "2100C", "75", "C", "subscriber/insured not found", "ELIG-0004"),
    ("subscriber-not-found.x12", 1, "2100C", "72", "C", "invalid or missing subscriber/insured ID", "ELIG-0005"),
    ("payer-unable-to-respond.x12", 0, "2000A", "42", "P", "unable to respond at current time", "ELIG-0006"),
]


@pytest.mark.parametrize("fixture, index, loop, code, follow_up, meaning, trace", REJECTIONS,
                         ids=[f"{r[3]}-at-{r[2]}" for r in REJECTIONS])
def test_aaa_rejection_is_read_with_its_loop_reason_and_follow_up(fixture, index, loop, code, follow_up,
                                                                 meaning, trace):
    response = read_fixture(fixture)[index]
    (rejection,) = response.rejections
    assert (rejection.loop, rejection.code, rejection.follow_up_code) == (loop, code, follow_up)
    assert rejection.meaning == meaning
    assert rejection.follow_up == codes.describe("follow_up", follow_up) != f"follow-up action {follow_up}"
    assert response.rejected and response.active is None and not response.benefits
    assert response.matches(trace)


def test_several_transaction_sets_in_one_interchange_are_all_read():
    responses = read_fixture("subscriber-not-found.x12")
    assert [r.control_number for r in responses] == ["0001", "0002"]
    assert [r.reference for r in responses] == ["BATCH0001", "BATCH0002"]
    assert {r.interchange_control_number for r in responses} == {"000000102"}


def test_payer_rejection_without_any_subscriber_still_gives_a_response():
    content = (FIXTURES / "271" / "payer-unable-to-respond.x12").read_text()
    kept = [line for line in content.splitlines() if not line.startswith(("HL*2", "NM1*1P", "HL*3", "TRN", "NM1*IL"))]
    kept = [re.sub(r"^SE\*\d+", "SE*6", line) for line in kept]
    (response,) = read_271("\n".join(kept).encode())
    assert response.patient is None and response.member_id == ""
    assert [r.code for r in response.rejections] == ["42"]
    assert "unable to respond" in response.describe()


# --- 271: carve-outs, MSG-only limits, unknown segments ------------------------------------------


def test_mental_health_carved_out_to_an_mbho_names_the_payer_to_bill():
    (response,) = read_fixture("carve-out.x12")
    for service_type in ("MH", "A6", "CF"):
        carve_out = response.benefits[service_type].carve_out
        assert (carve_out.payer_id, carve_out.payer_name) == ("77321", "NORTHSTAR BEHAVIORAL HEALTH")
        assert carve_out.benefit_code == "U" and carve_out.entity.entity == "payer"
    assert response.benefits["30"].carve_out is None and response.benefits["98"].carve_out is None
    summary = response.mental_health_summary()
    assert summary.carve_out.payer_id == "77321" and summary.sources["carve_out"] == "A6"
    assert summary.messages == ("BEHAVIORAL HEALTH ADMINISTERED BY NORTHSTAR BEHAVIORAL",)
    assert response.to_json()["benefits"]["MH"]["carve_out"]["payer_id"] == "77321"


CARVE_OUT_SHAPES = [
    # (EB and 2120 NM1 as a payer sends them, carved out?)
    ("EB*1*IND*MH", "NM1*Y2*2*MINDCARE MCO*****PI*88123", True),  # active, with a managed care org
    ("EB*MC*IND*MH", "NM1*X3*2*MINDCARE UM*****PI*88124", True),  # managed care coordinator
    ("EB*N*IND*MH", "NM1*P3*1*WELBY*MARCUS****XX*1679576722", False),  # restricted to a PCP
    ("EB*R*IND*MH", "NM1*PRP*2*OTHER PLAN*****PI*11111", False),  # another payer is primary: COB
]


@pytest.mark.parametrize("eb, nm1, carved_out", CARVE_OUT_SHAPES, ids=[s[0][3:].split("*")[0] + "-" + s[1][4:7]
                                                                      for s in CARVE_OUT_SHAPES])
def test_carve_out_is_told_from_other_related_entities(eb, nm1, carved_out):
    content = (FIXTURES / "271" / "carve-out.x12").read_text()
    content = content.replace("EB*U*IND*MH^A6^CF", eb).replace(
        "NM1*PR*2*NORTHSTAR BEHAVIORAL HEALTH*****PI*77321", nm1)
    (response,) = read_271(content.encode())
    assert (response.benefits["MH"].carve_out is not None) is carved_out
    if nm1.startswith("NM1*P3"):  # a person's name is not kept, their NPI is
        (entity,) = response.benefits["MH"].related_entities
        assert entity.name is None and entity.id == "1679576722"
    if eb.startswith("EB*R"):
        assert [p.id for p in response.other_payers] == ["11111"]


def test_limits_said_only_in_msg_are_kept_and_an_authorization_after_the_12th_visit_is_a_condition():
    (response,) = read_fixture("msg-only-limits.x12")
    mental_health = response.benefits["MH"]
    assert mental_health.visits_allowed() is None  # the text is not guessed at
    assert mental_health.auth_required is None
    assert mental_health.messages == ("OUTPATIENT MENTAL HEALTH LIMITED TO 20 VISITS PER CALENDAR YEAR",
                                      "PRIOR AUTHORIZATION REQUIRED AFTER THE 12TH VISIT")
    summary = response.mental_health_summary()
    # Not "required" for every visit: only from the 13th, counted per calendar year (no plan dates).
    assert summary.auth_required is None and "auth_required" not in summary.sources
    [rule] = summary.auth_conditions
    assert (rule.after_visits, rule.procedure_codes, rule.readable) == (12, (), True)
    assert (rule.service_types, rule.period_start) == (("MH",), "01-01")
    assert summary.copay == Decimal("35")


AUTHORIZATION_MESSAGES = [
    # (MSG text, required for every visit?, visits needing none, codes it is for, readable)
    ("PRIOR AUTHORIZATION REQUIRED FOR OUTPATIENT MENTAL HEALTH", True, None, (), True),
    ("VISITS OVER 20 REQUIRE AUTHORIZATION", None, 20, (), True),
    ("MORE THAN 20 VISITS REQUIRE PRIOR AUTHORIZATION", None, 20, (), True),
    ("AUTHORIZATION REQUIRED AFTER 12 VISITS", None, 12, (), True),
    ("AUTHORIZATION REQUIRED BEGINNING WITH THE 13TH VISIT", None, 12, (), True),
    ("AUTH REQUIRED FOR 21ST AND SUBSEQUENT VISITS", None, 20, (), True),
    ("NO PRIOR AUTHORIZATION REQUIRED FOR THE FIRST 8 SESSIONS", None, 8, (), True),
    ("PRIOR AUTH REQUIRED FOR 90837", None, None, ("90837",), True),
    ("PRECERT REQUIRED FOR H0035 AFTER 10 SESSIONS", None, 10, ("H0035",), True),
    ("PRECERTIFICATION REQUIRED FOR INPATIENT ADMISSIONS", None, None, (), False),
    ("EXTENDED SESSIONS NEED PRIOR AUTHORIZATION", None, None, (), False),
]


@pytest.mark.parametrize("message, always, after, procedures, readable", AUTHORIZATION_MESSAGES,
                         ids=[m[0][:40] for m in AUTHORIZATION_MESSAGES])
def test_an_authorization_rule_in_msg_is_read_with_its_condition(message, always, after, procedures, readable):
    content = (FIXTURES / "271" / "msg-only-limits.x12").read_text().replace(
        "PRIOR AUTHORIZATION REQUIRED AFTER THE 12TH VISIT", message)
    (response,) = read_271(content.encode())
    summary = response.mental_health_summary()
    assert summary.auth_required is always
    if always:
        assert summary.auth_conditions == ()
        return
    [rule] = summary.auth_conditions
    assert (rule.after_visits, rule.procedure_codes, rule.readable) == (after, procedures, readable)
    assert rule.message == message and rule.service_types == ("MH",)


def test_visits_are_counted_from_the_plan_years_first_day_unless_the_payer_says_calendar_year():
    content = (FIXTURES / "271" / "msg-only-limits.x12").read_text().replace(
        "NTE*ADD*VERIFIED BY IVR", "DTP*346*D8*20260701").replace(
        "PRIOR AUTHORIZATION REQUIRED AFTER THE 12TH VISIT", "VISITS OVER 20 REQUIRE AUTHORIZATION")
    (response,) = read_271(content.encode())
    [rule] = response.mental_health_summary().auth_conditions
    assert rule.period_start == "07-01"
    (response,) = read_271(content.replace("REQUIRE AUTHORIZATION", "PER CALENDAR YEAR REQUIRE AUTHORIZATION").encode())
    [rule] = response.mental_health_summary().auth_conditions
    assert rule.period_start == "01-01"


def test_an_authorization_on_one_procedures_benefit_is_for_that_procedure(commercial):
    # EB*B*IND*A6***27*50****Y*Y*HC:90837 with "EXTENDED SESSIONS NEED PRIOR AUTHORIZATION".
    summary = commercial.mental_health_summary()
    assert summary.auth_required is False  # psychotherapy in general needs none (A6 EB11 N)
    [rule] = summary.auth_conditions
    assert (rule.procedure_codes, rule.after_visits, rule.readable) == (("90837",), None, True)


NOT_COVERED_SHAPES = [
    # (benefit loops replacing the plan's, outpatient mental health covered?, not covered listed)
    ("EB*1*IND*30~EB*I*IND*MH^A6^CF", False, ("MH", "A6", "CF")),
    ("EB*1*IND*30~EB*E*IND*A6", False, ("A6",)),
    ("EB*1*IND*30^MH^A6~EB*I*IND*33", True, ()),
    ("EB*1*IND*30^MH^A6~EB*I*IND*A6*********N", True, ()),  # out of network only
    ("EB*1*IND*30^MH^A6~EB*I*IND*MH~III*ZZ*21", True, ("MH",)),  # only in an inpatient hospital
    ("EB*1*IND*30^MH^A6~EB*I*IND*A6", None, ("A6",)),  # said both: unclear
]


@pytest.mark.parametrize("loops, covered, listed", NOT_COVERED_SHAPES, ids=[s[0] for s in NOT_COVERED_SHAPES])
def test_mental_health_not_covered_is_told_from_the_plan_being_active(loops, covered, listed):
    content = (FIXTURES / "271" / "answer-to-roundtrip.x12").read_text()
    plan = "EB*1*IND*MH~\nEB*B*IND*MH***27*30****N*Y~\nEB*1*IND*30*PR*GOLD PPO"
    assert plan in content
    content = content.replace(plan, loops.replace("~", "~\n"))
    content = re.sub(r"SE\*\d+", f"SE*{12 + loops.count('~') + 1}", content)
    (response,) = read_271(content.encode())
    assert response.active is True
    summary = response.mental_health_summary()
    assert summary.active is covered
    assert tuple(n.service_type for n in summary.not_covered) == listed
    if covered is False:
        assert "mental health not covered" in response.describe()


def test_a_stored_answer_reads_back_into_the_same_benefits(commercial):
    from bhhub.eligibility.service_benefits import benefits_from_json

    again = benefits_from_json(json.loads(json.dumps(commercial.to_json())))
    assert again.keys() == commercial.benefits.keys()
    for stc, benefits in commercial.benefits.items():
        assert [e.to_json() for e in again[stc].entries] == [e.to_json() for e in benefits.entries]


def test_msg_saying_no_authorization_is_needed_does_not_raise_the_flag():
    content = (FIXTURES / "271" / "msg-only-limits.x12").read_text().replace(
        "PRIOR AUTHORIZATION REQUIRED AFTER THE 12TH VISIT", "NO PRIOR AUTHORIZATION REQUIRED")
    (response,) = read_271(content.encode())
    assert response.mental_health_summary().auth_required is None


def test_segments_the_guide_does_not_have_are_kept_with_their_loop():
    (response,) = read_fixture("msg-only-limits.x12")
    kept = [(u.segment_id, u.loop) for u in response.unrecognized]
    assert kept == [("NTE", "2100C"), ("QTY", "2110C")]
    assert response.unrecognized[0].text == "NTE*ADD*VERIFIED BY IVR"
    assert str(response.unrecognized[1]) == "QTY (segment 18, loop 2110C)"
    assert response.to_json()["unrecognized"][1]["segment_id"] == "QTY"


def test_eb_without_a_service_type_is_kept_under_unspecified():
    content = (FIXTURES / "271" / "msg-only-limits.x12").read_text().replace(
        "EB*F*IND*MH~", "EB*F*IND" + "*" * 11 + "HC:90837~")
    (response,) = read_271(content.encode())
    assert response.benefits[UNSPECIFIED].procedures == ("HC:90837",)


def test_other_separators_announced_by_the_isa_are_honoured():
    # ISA11 "{" and ISA16 ">" instead of "^" and ":": EB03 lists and EB13 composites follow them.
    content = (FIXTURES / "271" / "commercial-psychotherapy.x12").read_text()
    isa, rest = content.split("~", 1)
    isa = isa[:82] + "{" + isa[83:104] + ">"
    rest = rest.replace("30^MH^A6", "30{MH{A6").replace("HC:90837", "HC>90837")
    (response,) = read_271((isa + "~" + rest).encode())
    assert response.benefits["A6"].active is True
    assert response.benefits["A6"].procedures == ("HC:90837",)


def test_emedny_271_from_the_corpus():
    if not EMEDNY_271.is_file():
        pytest.skip("the shared eMedNY corpus is not here")
    (response,) = read_271(EMEDNY_271.read_bytes())
    assert (response.payer_id, response.payer_id_qualifier, response.payer_name) == ("141797357", "FI", "NYSDOH")
    assert response.member_id == "XX99999X" and response.matches("110010101000002")
    assert response.active is True and response.benefits["MH"].active is True
    assert response.plan_description == "MA Eligible"
    assert response.benefits["30"].copay() == Decimal("0")
    assert "RECERT MONTH=12" in response.messages
    # EB*N with the primary care provider, and EB*R with another payer: neither is a carve-out.
    assert response.benefits["88"].carve_out is None
    assert response.plan_number is None  # the REF*18 belongs to the other payer's 2110C loop
    assert response.mental_health_summary().carve_out is None
    assert response.coverage_dates["346"].start == date(2010, 6, 1)
    assert response.unrecognized == ()


# --- 271: what is not a readable 271 -----------------------------------------------------------------


def _commercial_text() -> str:
    return (FIXTURES / "271" / "commercial-psychotherapy.x12").read_text()


MALFORMED = [
    ("truncated", lambda: _commercial_text()[: len(_commercial_text()) // 2], "cut short"),
    ("no IEA", lambda: _commercial_text().rsplit("IEA", 1)[0], "no IEA"),
    ("wrong version", lambda: _commercial_text().replace("005010X279A1", "004010X092A1"), "004010X092A1"),
    ("a 270 given as a 271", lambda: written("subscriber.x12").decode(), "this is a 270"),
    ("an 837 given as a 271", lambda: _commercial_text().replace("GS*HB", "GS*HC"), "GS01 HC"),
    ("segment count off", lambda: re.sub(r"SE\*\d+\*", "SE*99*", _commercial_text()), "SE01"),
    ("amount not a number", lambda: _commercial_text().replace("*27*30****N*Y", "*27*3O****N*Y"), "EB07"),
    ("bad date", lambda: _commercial_text().replace("DTP*346*D8*20260101", "DTP*346*D8*2026-01"), "DTP03"),
    ("not X12", lambda: '{"resourceType": "Bundle"}', "ISA"),
]


@pytest.mark.parametrize("what, make, says", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_content_that_is_not_a_readable_271_is_an_input_error(what, make, says):
    with pytest.raises(InputError) as raised:
        read_271(make().encode())
    assert says in str(raised.value)
    assert "ZQX10000101" not in str(raised.value)  # messages name segments, never member data
    if what not in ("not X12", "amount not a number", "bad date"):
        assert raised.value.fix


# --- 270 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WRITTEN_270S))
def test_written_270s_are_the_checked_fixtures(name):
    assert written(name) == (FIXTURES / "270" / name).read_bytes()


@pytest.mark.parametrize("name", sorted(WRITTEN_270S))
def test_written_270_passes_the_independent_x279a1_model(name):
    assert x12sdk_problems(written(name)) == []


# x12sdk's own mistakes, so these fixtures are judged by the hub's reader tests only.
X12SDK_CANNOT_JUDGE = {
    "commercial-psychotherapy.x12": "x12sdk types EB09 (quantity qualifier, e.g. VS) as a number",
    "subscriber-not-found.x12": "x12sdk checks 2100C AAA03 against the 2100B code list (75 is valid in 2100C)",
    "msg-only-limits.x12": "carries segments the guide does not have, on purpose (kept as unrecognized)",
}


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "271").glob("*.x12")))
def test_the_271_fixtures_are_271s_by_the_independent_model(name):
    if name in X12SDK_CANNOT_JUDGE:
        problems = x12sdk_problems((FIXTURES / "271" / name).read_bytes())
        assert problems, f"x12sdk now reads {name}: drop it from X12SDK_CANNOT_JUDGE"
        return
    assert x12sdk_problems((FIXTURES / "271" / name).read_bytes()) == []


def test_270_for_the_subscriber_asks_mental_health_then_plan_coverage():
    body = lines(written("subscriber.x12"))
    assert body[2:] == [
        "ST*270*0007*005010X279A1",
        "BHT*0022*13*BATCH0007*20261129*1015",
        "HL*1**20*1",
        "NM1*PR*2*ACME HEALTH PLAN*****PI*60054",
        "HL*2*1*21*1",
        "NM1*1P*2*RIVERSIDE COUNSELING*****XX*1245319599",
        "HL*3*2*22*0",
        "TRN*1*ELIG-RT-1*1123456789",
        "NM1*IL*1*DOE*JANE****MI*ZQX10000101",
        "DMG*D8*19850214*F",
        "DTP*291*D8*20261201",
        "EQ*MH",
        "EQ*30",
        "SE*14*0007",
        "GE*1*7",
        "IEA*1*000000007",
    ]
    assert body[1] == "GS*HS*BHHUBPRACTICE*ACMEHEALTH*20261129*1015*7*X*005010X279A1"
    assert codes.default_service_types() == ("MH", "30")


def test_270_for_a_dependent_puts_the_trace_and_questions_in_2000d():
    body = lines(written("dependent.x12"))
    start = body.index("HL*3*2*22*1")
    assert body[start:start + 9] == [
        "HL*3*2*22*1",
        "NM1*IL*1*DOE*JOHN****MI*ZQX20000200",  # the subscriber: no TRN, DMG or EQ here
        "HL*4*3*23*0",
        "TRN*1*ELIG-0002*1123456789",
        "NM1*03*1*DOE*MAYA",
        "DMG*D8*20120501*F",
        "DTP*291*D8*20261201",
        "EQ*MH",
        "EQ*30",
    ]


def test_many_inquiries_share_one_payer_and_provider_loop_each():
    requests = [
        subscriber_request("ELIG-A"),
        dependent_request("ELIG-B"),
        subscriber_request("ELIG-C", payer=NORTHSTAR, provider=CLINICIAN, service_types=("A6", "CF")),
    ]
    content = write_270(requests, ENVELOPE, ControlNumbers(21, 22, 23), WRITTEN_AT)
    parsed = list(segments(content))
    hl = [(s[1], s[2], s[3], s[4]) for s in parsed if s.id == "HL"]
    assert hl == [("1", "", "20", "1"), ("2", "1", "21", "1"), ("3", "2", "22", "0"), ("4", "2", "22", "1"),
                  ("5", "4", "23", "0"), ("6", "", "20", "1"), ("7", "6", "21", "1"), ("8", "7", "22", "0")]
    st = next(s for s in parsed if s.id == "ST")
    se = next(s for s in parsed if s.id == "SE")
    assert int(se[1]) == se.number - st.number + 1 and se[2] == st[2] == "0023"
    assert "NM1*1P*1*RIVERA*ANA****XX*1679576722" in lines(content)
    assert [s[1] for s in parsed if s.id == "EQ"] == ["MH", "30", "MH", "30", "A6", "CF"]
    assert recognize(content).kind == "270"


BAD_INQUIRIES = [
    ("a service type that is not a mental-health inquiry code",
     lambda: subscriber_request(service_types=("ZZ",)), "not mental-health inquiry codes"),
    ("a dependent without a birth date",
     lambda: dependent_request(dependent=Person(name=PersonName("Doe", "Maya"))), "birth date"),
    ("an NPI that is not 10 digits",
     lambda: subscriber_request(provider=Provider(npi="12345", organization_name="X", tin="123456789")), "NPI"),
    ("no tax id and no trace originator",
     lambda: subscriber_request(provider=Provider(npi="1245319599", organization_name="X")), "TRN03"),
    ("a member id with a delimiter in it",
     lambda: subscriber_request(member_id="ZQX1*0101"), "member id"),
]


@pytest.mark.parametrize("what, make, says", BAD_INQUIRIES, ids=[b[0] for b in BAD_INQUIRIES])
def test_inquiry_that_cannot_be_written_names_its_trace_not_the_patient(what, make, says):
    request = make()
    with pytest.raises(InputError) as raised:
        write_270([request], ENVELOPE, ControlNumbers(1, 1, 1), WRITTEN_AT)
    assert says in str(raised.value) and raised.value.where == f"inquiry {request.trace_number}"
    assert "DOE" not in str(raised.value).upper().replace("DOES", "")


def test_two_inquiries_with_one_trace_number_are_refused():
    with pytest.raises(InputError, match="share a trace number"):
        write_270([subscriber_request("SAME"), dependent_request("SAME")], ENVELOPE,
                  ControlNumbers(1, 1, 1), WRITTEN_AT)


def test_trace_originator_given_on_the_request_is_used():
    request = subscriber_request(provider=Provider(npi="1245319599", organization_name="X"),
                                 trace_originator="9BHHUB0001")
    content = write_270([request], ENVELOPE, ControlNumbers(1, 1, 1), WRITTEN_AT)
    assert "TRN*1*ELIG-RT-1*9BHHUB0001" in lines(content)


# --- round trip -----------------------------------------------------------------------------------


def test_round_trip_270_answered_by_a_271_is_matched_by_trace():
    request = subscriber_request()
    inquiry = write_270([request], ENVELOPE, ControlNumbers(42, 42, 42), WRITTEN_AT)
    answer = (FIXTURES / "271" / "answer-to-roundtrip.x12").read_bytes()
    assert recognize(inquiry).kind == "270" and recognize(answer).kind == "271"
    (response,) = read_271(answer)
    sent_trace = next(s for s in segments(inquiry) if s.id == "TRN")
    assert response.matches(sent_trace[2]) and response.matches(request.trace_number)
    assert response.traces[0].originator == sent_trace[3]  # the 270's TRN03, echoed
    assert response.member_id == request.member_id and response.payer_id == request.payer.payer_id
    assert response.receiver_npi == request.provider.npi
    assert response.active is True and response.mental_health_summary().copay == Decimal("30")
    assert response.benefits["MH"].auth_required is False


# --- the code table -------------------------------------------------------------------------------


def test_code_meanings_come_from_the_mapping_table():
    assert codes.describe("service_type", "CF") == "mental health provider - outpatient"
    assert codes.describe("reject_reason", "42") == "unable to respond at current time"
    assert codes.describe("time_period", "29") == "remaining"
    assert codes.describe("benefit", "ZZ") == "benefit code ZZ"  # unknown codes are named, not dropped


def test_a_practice_override_of_the_table_changes_what_counts_as_a_carve_out(tmp_path):
    from bhhub.runtime.mapping_tables import MappingSet

    override = tmp_path / "x12" / "eligibility_codes.toml"
    override.parent.mkdir()
    override.write_text('[carve_out]\nbenefit_codes = ["MC"]\nentity_codes = ["Y2"]\n')
    try:
        codes.use_mappings(MappingSet(override_dir=tmp_path))
        (response,) = read_fixture("carve-out.x12")  # EB*U with NM1*PR: no longer a carve-out here
        assert response.benefits["MH"].carve_out is None
        assert codes.describe("service_type", "A6") == "psychotherapy"  # the rest of the table stays
    finally:
        codes.use_mappings(MappingSet())
    (response,) = read_fixture("carve-out.x12")
    assert response.benefits["MH"].carve_out is not None


def test_a_practice_widens_how_msg_text_states_an_authorization_rule(tmp_path):
    from bhhub.runtime.mapping_tables import MappingSet

    content = (FIXTURES / "271" / "msg-only-limits.x12").read_text().replace(
        "PRIOR AUTHORIZATION REQUIRED AFTER THE 12TH VISIT", "PAYER APPROVAL NEEDED PAST 12 SESSIONS")
    (response,) = read_271(content.encode())
    assert response.mental_health_summary().auth_conditions == ()  # not wording the table knows
    override = tmp_path / "x12" / "eligibility_codes.toml"
    override.parent.mkdir()
    table = codes.authorization_patterns()
    required = json.dumps([*table["required"], r"\bapproval needed\b"])  # JSON strings are TOML strings
    after = json.dumps([*table["after_visits"], r"\bpast (?P<visits>\d+) sessions\b"])
    override.write_text(f"[authorization]\nrequired = {required}\nafter_visits = {after}\n")
    try:
        codes.use_mappings(MappingSet(override_dir=tmp_path))
        [rule] = response.mental_health_summary().auth_conditions
        assert (rule.after_visits, rule.readable) == (12, True)
    finally:
        codes.use_mappings(MappingSet())
