"""The 276 claim status request writer and the 277 claim status response reader (005010X212).

The independent check of the X12 is x12sdk, a pydantic model of the 005010X212 276 and 277
(a descendant of LinuxForHealth x12): pyx12 4.0 has no 276 map for 005010 and its 277 X212 map
is not indexed and rejects eMedNY's own sample, so it cannot judge these files. x12sdk has
one known bug: a second service line (SVC) in a claim is nested into the first and dropped,
so its segment count check fails; the files checked here keep one line per claim, and the
two-line 277 fixture is read by the hub only (see ``X12SDK_CANNOT_READ``).

The 277 fixtures (tests/fixtures/x12/277/) use invented ids; the 277CA one is the domain
reference's 7.3 example in its own envelope. eMedNY's published 277 is read in place.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bhhub.claimstatus.matching import match_results
from bhhub.claimstatus.records import StatusInquiry, inquiry_for_claim
from bhhub.claimstatus.x276 import write_276
from bhhub.claimstatus.x277 import hub_status, read_277
from bhhub.errors import InputError
from bhhub.model import Address, Claim, Coverage, Patient, Payer, Person, PersonName, Provider, ServiceLine
from bhhub.x12.envelope import ControlNumbers, Envelope
from x12_models import x12sdk_problems

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x12"
EMEDNY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "emedny-x12"

ENVELOPE = Envelope(
    sender_id="SUBMITTERID", receiver_id="RECEIVERID",
    submitter_name="Sample Behavioral Health", submitter_id="SUBMITTERID",
    submitter_contact_name="Billing Office", submitter_phone="(555) 555-0100",
    receiver_name="Sample Clearinghouse", receiver_id_code="RECEIVERID",
)
CONTROLS = ControlNumbers(interchange=201, group=201, transaction=201)
CREATED_AT = datetime(2025, 4, 1, 9, 30)

HEALTH_PLAN = Payer("99999", "Sample Health Plan")
OTHER_PLAN = Payer("88888", "Other Health Plan")
GROUP_PRACTICE = Provider(npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789")
JOHN_DOE = Person(PersonName("Doe", "John"), date(1980, 1, 1), "M")
JANE_DOE = Person(PersonName("Doe", "Jane"), date(2012, 5, 6), "F")

SUBSCRIBER_INQUIRY = StatusInquiry(
    trace_number="TRACE0201", payer=HEALTH_PLAN, provider=GROUP_PRACTICE, subscriber=JOHN_DOE,
    member_id="MEMBER123", patient_control_number="PCN0201", total_charge=Decimal("200.00"),
    service_date_from=date(2025, 3, 4), service_date_to=date(2025, 3, 4),
    service_lines=(ServiceLine("90837", date(2025, 3, 4), ("95",), Decimal("200"), control_number="PCN0201-1"),),
)
DEPENDENT_INQUIRY = StatusInquiry(
    trace_number="TRACE0202", payer=HEALTH_PLAN, provider=GROUP_PRACTICE, subscriber=JOHN_DOE,
    member_id="MEMBER123", patient_control_number="PCN0202", total_charge=Decimal("150"),
    service_date_from=date(2025, 3, 5), dependent=JANE_DOE, payer_claim_control_number="PAYERICN0202",
)


def segment_lines(content: bytes) -> list[str]:
    return [line.rstrip("~") for line in content.decode("ascii").splitlines()]


def fixture_277(name: str) -> bytes:
    return (FIXTURES / "277" / name).read_bytes()


# --- the 276 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("inquiry, golden", [
    (SUBSCRIBER_INQUIRY, "subscriber-patient.x12"),
    (DEPENDENT_INQUIRY, "dependent-patient.x12"),
])
def test_276_is_written_as_the_golden_file(inquiry, golden):
    assert write_276([inquiry], ENVELOPE, CONTROLS, CREATED_AT) == (FIXTURES / "276" / golden).read_bytes()


OTHER_PROVIDER = Provider(npi="1999999984", name=PersonName("Smith", "Jane"))
SEVERAL_PAYERS_AND_PROVIDERS = [
    SUBSCRIBER_INQUIRY,
    replace(DEPENDENT_INQUIRY, trace_number="TRACE0203", payer=OTHER_PLAN),
    replace(DEPENDENT_INQUIRY, trace_number="TRACE0204", provider=OTHER_PROVIDER),
]


@pytest.mark.parametrize("inquiries", [
    [SUBSCRIBER_INQUIRY], [DEPENDENT_INQUIRY], [SUBSCRIBER_INQUIRY, DEPENDENT_INQUIRY], SEVERAL_PAYERS_AND_PROVIDERS,
], ids=["subscriber-patient", "dependent-patient", "both", "several-payers-and-providers"])
def test_276_passes_the_independent_x212_check(inquiries):
    assert x12sdk_problems(write_276(inquiries, ENVELOPE, CONTROLS, CREATED_AT)) == []


def test_276_for_a_subscriber_patient_has_no_dependent_level():
    lines = segment_lines(write_276([SUBSCRIBER_INQUIRY], ENVELOPE, CONTROLS, CREATED_AT))

    assert "GS*HR*SUBMITTERID*RECEIVERID*20250401*0930*201*X*005010X212" in lines
    assert [l for l in lines if l.startswith("HL")] == ["HL*1**20*1", "HL*2*1*21*1", "HL*3*2*19*1", "HL*4*3*22*0"]
    # 2000D DMG is required when the subscriber is the patient; the claim hangs under 2000D.
    assert lines[lines.index("HL*4*3*22*0") + 1] == "DMG*D8*19800101*M"
    assert lines.index("TRN*1*TRACE0201") > lines.index("NM1*IL*1*DOE*JOHN****MI*MEMBER123")
    assert "REF*EJ*PCN0201" in lines and "AMT*T3*200" in lines
    assert "DTP*472*RD8*20250304-20250304" in lines
    assert "SVC*HC:90837:95*200*****1" in lines and "REF*FJ*PCN0201-1" in lines


def test_276_for_a_dependent_puts_the_claim_under_the_2000E_patient_level():
    lines = segment_lines(write_276([DEPENDENT_INQUIRY], ENVELOPE, CONTROLS, CREATED_AT))

    assert "HL*4*3*22*1" in lines  # the subscriber level has a child
    dependent = lines.index("HL*5*4*23")
    assert lines[dependent + 1 : dependent + 4] == ["DMG*D8*20120506*F", "NM1*QC*1*DOE*JANE", "TRN*1*TRACE0202"]
    assert lines.index("REF*1K*PAYERICN0202") < lines.index("REF*EJ*PCN0202")


def test_276_groups_inquiries_under_their_payer_and_provider_levels():
    lines = segment_lines(write_276(SEVERAL_PAYERS_AND_PROVIDERS, ENVELOPE, CONTROLS, CREATED_AT))

    assert [l for l in lines if l.startswith("HL")] == [
        "HL*1**20*1", "HL*2*1*21*1",
        "HL*3*2*19*1", "HL*4*3*22*0",  # first provider, subscriber-patient
        "HL*5*2*19*1", "HL*6*5*22*1", "HL*7*6*23",  # second provider, dependent
        "HL*8**20*1", "HL*9*8*21*1", "HL*10*9*19*1", "HL*11*10*22*1", "HL*12*11*23",  # other payer
    ]
    assert "NM1*1P*1*SMITH*JANE****XX*1999999984" in lines
    assert lines[-3] == f"SE*{len(lines) - 4}*0201"  # ST through SE


def dependent_claim(subscriber: Person | None = JOHN_DOE) -> Claim:
    patient = Patient(PersonName("Doe", "Jane"), date(2012, 5, 6), "F",
                      Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|2")
    return Claim(
        patient_control_number="PCN20250304B", patient=patient,
        coverage=Coverage(1, HEALTH_PLAN, "MEMBER123", relationship="19", subscriber=subscriber),
        billing_provider=GROUP_PRACTICE, rendering_provider=None, diagnoses=("F41.1",),
        lines=(ServiceLine("90834", date(2025, 3, 5), charge=Decimal("150")),
               ServiceLine("90834", date(2025, 3, 12), charge=Decimal("150"))),
        place_of_service="11",
    )


def test_276_from_a_stored_claim_asks_about_its_patient_control_number_and_dates():
    claim = dependent_claim()
    inquiry = inquiry_for_claim(claim, "TRACE0205", payer_claim_control_number="PAYERICN0205")

    assert (inquiry.dependent, inquiry.subscriber, inquiry.member_id) == (claim.patient, JOHN_DOE, "MEMBER123")
    assert (inquiry.total_charge, inquiry.service_date_from, inquiry.service_date_to) == (
        Decimal("300"), date(2025, 3, 5), date(2025, 3, 12))
    lines = segment_lines(write_276([inquiry], ENVELOPE, CONTROLS, CREATED_AT))
    assert {"REF*1K*PAYERICN0205", "REF*EJ*PCN20250304B", "AMT*T3*300",
            "DTP*472*RD8*20250305-20250312"} <= set(lines)


def test_a_claim_whose_subscriber_is_unknown_cannot_become_an_inquiry():
    with pytest.raises(InputError, match="subscriber is unknown") as caught:
        inquiry_for_claim(dependent_claim(subscriber=None), "TRACE0206")
    assert "claim PCN20250304B" in str(caught.value) and "DOE" not in str(caught.value).upper()


@pytest.mark.parametrize("inquiries, problem", [
    ([replace(SUBSCRIBER_INQUIRY, member_id="MEM*123")], "member id contains characters"),
    ([SUBSCRIBER_INQUIRY, replace(DEPENDENT_INQUIRY, trace_number="TRACE0201")], "share a trace number"),
    ([replace(SUBSCRIBER_INQUIRY, subscriber=replace(JOHN_DOE, birth_date=None))], "no birth date"),
    ([replace(DEPENDENT_INQUIRY, dependent=replace(JANE_DOE, birth_date=None))], "2000E DMG is required"),
    ([replace(SUBSCRIBER_INQUIRY, service_lines=(ServiceLine("90837", date(2025, 3, 4)),))], "no charge"),
    ([replace(SUBSCRIBER_INQUIRY, service_date_to=date(2025, 3, 1))], "ends before it starts"),
    ([], "at least one claim"),
])
def test_276_refuses_an_inquiry_it_cannot_write_without_naming_the_person(inquiries, problem):
    with pytest.raises(InputError, match=problem) as caught:
        write_276(inquiries, ENVELOPE, CONTROLS, CREATED_AT)

    assert "DOE" not in str(caught.value).upper() and "19800101" not in str(caught.value)


# --- the 277 -------------------------------------------------------------------------------------

CONFORMING_277 = ["pending.x12", "paid.x12", "denied.x12", "information-requested.x12",
                  "subscriber-not-found.x12", "several-claims.x12", "provider-refused.x12",
                  "round-trip-answer.x12"]
X12SDK_CANNOT_READ = {
    "line-statuses.x12": "x12sdk nests a claim's second SVC loop into the first (a parser bug)",
    "subscriber-aaa.x12": "005010X212 has no AAA segment: this is a sender that adds one anyway",
}


@pytest.mark.parametrize("name", CONFORMING_277)
def test_277_fixtures_pass_the_independent_x212_check(name):
    assert x12sdk_problems(fixture_277(name)) == []


@pytest.mark.parametrize("name, trace, pcn, payer_icn, member, status, category, code", [
    ("pending.x12", "TRACE0101", "PCN0101", "PAYERICN0101", "MEMBER123", "pending", "P1", "20"),
    ("paid.x12", "TRACE0102", "PCN0102", "PAYERICN0102", "MEMBER123", "paid", "F1", "65"),
    ("denied.x12", "TRACE0103", "PCN0103", "PAYERICN0103", "MEMBER123", "denied", "F2", "84"),
    ("information-requested.x12", "TRACE0104", "PCN0104", "PAYERICN0104", "MEMBER123",
     "information_requested", "R3", "252"),
    ("subscriber-not-found.x12", "TRACE0106", "PCN0106", None, "MEMBER404", "not_found", "D0", "33"),
])
def test_277_claim_status_is_read_into_the_hubs_vocabulary(name, trace, pcn, payer_icn, member, status,
                                                           category, code):
    [result] = read_277(fixture_277(name))

    assert (result.trace_number, result.patient_control_number, result.payer_claim_control_number) == (
        trace, pcn, payer_icn)
    assert (result.status, result.category, result.reports[0].codes[0].status.value) == (status, category, code)
    assert (result.payer_id, result.payer_name, result.receiver_id, result.provider_id, result.member_id) == (
        "99999", "SAMPLE HEALTH PLAN", "SUBMITTERID", "1234567893", member)
    assert result.level == "claim" and result.rejections == ()


def test_finalized_paid_claim_carries_amounts_dates_and_check_number():
    [result] = read_277(fixture_277("paid.x12"))
    [report] = result.reports

    assert (report.total_charge, report.paid_amount) == (Decimal("200"), Decimal("150"))
    assert (report.effective_date, report.adjudication_date, report.payment_date) == (
        date(2025, 4, 15), date(2025, 4, 14), date(2025, 4, 16))
    assert (report.payment_method, report.check_or_eft_number) == ("CHK", "CHK778899")
    assert (result.paid_amount, result.check_or_eft_number) == (Decimal("150"), "CHK778899")
    assert (result.service_date_from, result.service_date_to) == (date(2025, 3, 4), date(2025, 3, 4))
    assert result.describe() == ("claim PCN0102 (trace TRACE0102): finalized (paid): claim or line has been "
                                 "paid (paid 150, CHK CHK778899)")


def test_codes_are_explained_from_the_shared_ack_code_tables():
    [denied] = read_277(fixture_277("denied.x12"))
    [asked] = read_277(fixture_277("information-requested.x12"))
    [missing] = read_277(fixture_277("subscriber-not-found.x12"))

    assert denied.reports[0].describe() == "finalized (denied): service not authorized"
    assert asked.reports[0].codes[0].entity.description == "provider"
    assert asked.reports[0].describe() == ("additional information requested (claim or line information): "
                                           "provider's prior authorization/certification number")
    assert "subscriber and subscriber ID not found" in missing.describe()


def test_line_level_statuses_are_read_per_service_line():
    [result] = read_277(fixture_277("line-statuses.x12"))
    first, second = result.service_lines

    assert result.status == "paid" and result.reports[0].payment_method == "ACH"
    assert (first.procedure_code, first.modifiers, first.charge, first.paid_amount, first.units) == (
        "90837", ("95",), Decimal("180"), Decimal("150"), Decimal("1"))
    assert (first.line_item_control_number, first.status) == ("PCN0105-1", "paid")
    assert (second.procedure_code, second.line_item_control_number, second.status) == ("90785", "PCN0105-2", "denied")
    assert second.reports[0].codes[0].status.description == "procedure code for the services rendered"
    assert second.service_date_from == date(2025, 3, 4)
    assert result.other_segments == ()  # every segment of it was understood


def test_several_claims_in_one_277_keep_their_own_trace_status_and_patient_level():
    results = read_277(fixture_277("several-claims.x12"))

    assert [(r.trace_number, r.patient_control_number, r.status, r.member_id, r.patient_is_dependent)
            for r in results] == [
        ("TRACE0108A", "PCN0108A", "paid", "MEMBER123", False),
        ("TRACE0108B", "PCN0108B", "pending", "MEMBER123", False),
        ("TRACE0108C", "PCN0108C", "not_found", "MEMBER456", True),
    ]
    assert results[0].check_or_eft_number == "CHK778900" and results[1].paid_amount == Decimal("0")


def test_subscriber_level_aaa_with_no_claim_is_kept_as_a_subscriber_result():
    [result] = read_277(fixture_277("subscriber-aaa.x12"))
    [rejection] = result.rejections

    assert (result.level, result.status, result.member_id, result.trace_number) == (
        "subscriber", "error", "MEMBER404", "")
    assert (rejection.level, rejection.valid_request, rejection.reason.value, rejection.follow_up.value) == (
        "subscriber", False, "75", "C")
    assert result.describe() == ("the request: subscriber level: subscriber/insured not found (75); "
                                 "please correct and resubmit")


@pytest.mark.parametrize("segment, level", [
    ("HL*1**20*1~\nNM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999~\nAAA*Y**42*R~", "payer"),
    ("NM1*41*2*SAMPLE BEHAVIORAL HEALTH*****46*SUBMITTERID~\nAAA*N**41*N~", "receiver"),
    ("NM1*1P*2*SAMPLE BEHAVIORAL HEALTH PLLC*****XX*1234567893~\nAAA*N**51*C~", "provider"),
])
def test_aaa_at_the_payer_receiver_or_provider_level_reaches_the_claims_under_it(segment, level):
    first_line = segment.split("~\n")[0] + "~"
    content = fixture_277("pending.x12").replace(first_line.encode(), segment.encode())
    [result] = read_277(content)

    assert [r.level for r in result.rejections] == [level]
    assert result.status == "pending"  # the claim's own STC still says what happened to it


def test_provider_refused_with_no_claims_is_a_provider_result():
    [result] = read_277(fixture_277("provider-refused.x12"))

    assert (result.level, result.status, result.category, result.trace_number) == (
        "provider", "error", "E0", "PROVIDERTRACE0109")
    assert result.describe() == (
        "the request (trace PROVIDERTRACE0109): provider level: response not possible (error in the "
        "submitted request): provider's National Provider Identifier (NPI)")


def test_segments_the_reader_does_not_interpret_are_kept_with_their_loop():
    content = fixture_277("pending.x12").replace(
        b"NM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999~",
        b"NM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999~\nPER*IC*CLAIMS*TE*8005550100~",
    ).replace(b"REF*EJ*PCN0101~", b"REF*EJ*PCN0101~\nREF*BLT*131~")
    [result] = read_277(content)

    assert [(s.loop, s.elements) for s in result.other_segments] == [
        ("2000A", ("PER", "IC", "CLAIMS", "TE", "8005550100")),
        ("2200D", ("REF", "BLT", "131")),
    ]


def test_emedny_claim_status_response_is_read():
    if not EMEDNY.is_dir():
        pytest.skip("../shared/corpora is not present (a user's clone has none)")
    content = (EMEDNY / "277-claim-status-response.x12").read_bytes()
    [result] = read_277(content)
    [line] = result.service_lines

    assert (result.status, result.patient_control_number, result.payer_claim_control_number) == (
        "paid", "PT12345", "1026000000099999")
    assert (result.reports[0].total_charge, result.paid_amount) == (Decimal("524.49"), Decimal("389.73"))
    assert result.reports[0].codes[0].code_list == "RX"  # an NCPDP code, not list 508
    assert (line.procedure_qualifier, line.paid_amount, line.status) == ("N4", Decimal("389.73"), "paid")
    assert [s.elements[:2] for s in result.other_segments] == [("REF", "XZ")]


def test_the_independent_x212_check_accepts_emednys_published_277():
    """Calibration: the checker the 276s and 277 fixtures pass also passes a payer's real file."""
    if not EMEDNY.is_dir():
        pytest.skip("../shared/corpora is not present (a user's clone has none)")
    assert x12sdk_problems((EMEDNY / "277-claim-status-response.x12").read_bytes()) == []


# --- what read_277 refuses -----------------------------------------------------------------------


def test_a_277ca_given_to_read_277_is_refused_as_an_acknowledgment():
    with pytest.raises(InputError, match="claim acknowledgment \\(277CA") as caught:
        read_277(fixture_277("acknowledgment-277ca.x12"))

    assert "read_277ca" in caught.value.fix


def test_a_277ca_labelled_as_x212_is_still_refused_by_its_bht():
    content = fixture_277("acknowledgment-277ca.x12").replace(b"005010X214", b"005010X212")

    with pytest.raises(InputError, match="BHT 0085 ... TH"):
        read_277(content)


def test_emedny_277ca_is_refused_too():
    if not EMEDNY.is_dir():
        pytest.skip("../shared/corpora is not present (a user's clone has none)")
    with pytest.raises(InputError, match="277CA"):
        read_277((EMEDNY / "277ca-rejected.x12").read_bytes())


@pytest.mark.parametrize("change, problem", [
    (lambda c: write_276([SUBSCRIBER_INQUIRY], ENVELOPE, CONTROLS, CREATED_AT), "functional group is HR"),
    (lambda c: c.replace(b"005010X212", b"004010X093A1"), "version 004010X093A1"),
    (lambda c: c.replace(b"ST*277*", b"ST*271*"), "is a 271, not a 277"),
    (lambda c: b"MSH|^~\\&|EHR|CLINIC", "not an X12 interchange"),
    (lambda c: c[: c.index(b"SE*")], "no SE"),
])
def test_what_is_not_a_005010X212_277_is_refused(change, problem):
    with pytest.raises(InputError, match=problem):
        read_277(change(fixture_277("pending.x12")))


@pytest.mark.parametrize("bad, problem", [
    (b"STC*P1:20*20250410**200*0~", "STC*P1:20*20250410**2OO*0~"),
    (b"DTP*472*RD8*20250304-20250304~", "DTP*472*RD8*2025-03-04~"),
])
def test_a_malformed_element_is_named_by_segment_and_loop_never_by_value(bad, problem):
    content = fixture_277("pending.x12").replace(bad, problem.encode())

    with pytest.raises(InputError, match="loop 2200D") as caught:
        read_277(content)
    assert "2OO" not in str(caught.value) and "2025-03-04" not in str(caught.value)


@pytest.mark.parametrize("category, status", [
    ("A1", "acknowledged"), ("A2", "accepted"), ("A3", "rejected"), ("A4", "not_found"),
    ("A7", "rejected"), ("P0", "pending"), ("P4", "pending"), ("F0", "finalized"), ("F1", "paid"),
    ("F2", "denied"), ("F3", "revised"), ("F3F", "revised"), ("F3N", "revised"),
    ("F4", "finalized_no_payment"), ("R0", "information_requested"), ("R13", "information_requested"),
    ("E0", "error"), ("E4", "error"), ("D0", "not_found"), ("Z9", "unknown"),
])
def test_status_word_comes_from_the_category_table(category, status):
    assert hub_status(category) == status


# --- round trip ----------------------------------------------------------------------------------


def test_round_trip_276_inquiries_are_matched_to_their_277_answers():
    inquiries = [SUBSCRIBER_INQUIRY, DEPENDENT_INQUIRY]
    request = segment_lines(write_276(inquiries, ENVELOPE, CONTROLS, CREATED_AT))
    assert {"TRN*1*TRACE0201", "REF*EJ*PCN0201", "TRN*1*TRACE0202", "REF*EJ*PCN0202"} <= set(request)

    answers, unmatched = match_results(inquiries, read_277(fixture_277("round-trip-answer.x12")))

    assert unmatched == []
    assert [(a.inquiry.trace_number, [r.status for r in a.results]) for a in answers] == [
        ("TRACE0201", ["paid"]), ("TRACE0202", ["pending"]),
    ]
    for answer in answers:
        [result] = answer.results
        assert result.patient_control_number == answer.inquiry.patient_control_number
        assert result.patient_is_dependent == (answer.inquiry.dependent is not None)
    assert answers[0].results[0].check_or_eft_number == "CHK880201"


def test_an_answer_about_another_claim_is_not_taken_for_the_claim_asked_about():
    content = fixture_277("round-trip-answer.x12").replace(b"REF*EJ*PCN0202", b"REF*EJ*PCN9999")
    answers, unmatched = match_results([SUBSCRIBER_INQUIRY, DEPENDENT_INQUIRY], read_277(content))

    assert answers[1].answered is False
    assert [r.patient_control_number for r in answers[1].other_claims] == ["PCN9999"]


def test_a_subscriber_not_found_without_a_claim_loop_answers_that_members_inquiries():
    inquiry = replace(SUBSCRIBER_INQUIRY, member_id="MEMBER404", trace_number="TRACE0107")
    answers, unmatched = match_results([inquiry, SUBSCRIBER_INQUIRY], read_277(fixture_277("subscriber-aaa.x12")))

    assert [r.level for r in answers[0].results] == ["subscriber"]
    assert answers[1].answered is False
    assert [r.level for r in unmatched] == ["subscriber"]  # also reported once on its own
