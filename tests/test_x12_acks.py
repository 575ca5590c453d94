"""Acknowledgments coming back for an 837P: TA1, 999 and 277CA readers, and the X12 recogniser.

Read against eMedNY's published samples (in ../shared, read in place; skipped when absent) and
against fixtures in tests/data/x12 written to the 005010X231A1 and 005010X214 guides (each one
passes pyx12's validator, except the TA1-only files, which pyx12 cannot map without a GS).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime
from datetime import time as clock
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from bhhub.errors import InputError
from bhhub.model import Address, Claim, Coverage, Patient, Payer, PersonName, Provider, ServiceLine
from bhhub.acknowledgments.codes import ack_codes, lookup
from bhhub.acknowledgments.ta1 import read_ta1
from bhhub.acknowledgments.x277ca import read_277ca, status_description
from bhhub.acknowledgments.x999 import read_999
from bhhub.claims.claim837p import write_837p
from bhhub.x12.envelope import ControlNumbers, Envelope
from bhhub.x12.recognize import HEAD_SIZE, recognize

DATA = Path(__file__).resolve().parent / "data" / "x12"
EMEDNY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "emedny-x12"
needs_emedny = pytest.mark.skipif(not EMEDNY.is_dir(), reason="the shared eMedNY corpus is not here")


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def emedny(name: str) -> bytes:
    return (EMEDNY / name).read_bytes()


def no_phi(result: object, *values: str) -> None:
    """None of ``values`` (names, member ids, copies of bad data) is anywhere in ``result``."""
    text = repr(result)
    for value in values:
        assert value not in text, f"{value!r} was kept"


# --- recognising what came in ---------------------------------------------------------------------

EMEDNY_KINDS = {
    "271-eligible.x12": ("271", "005010X279A1"),
    "277-claim-status-response.x12": ("277", "005010X212"),
    "277ca-accepted.x12": ("277CA", "005010X214"),
    "277ca-rejected.x12": ("277CA", "005010X214"),
    "835-institutional.x12": ("835", "005010X221A1"),
    "835-outpatient-retro.x12": ("835", "005010X221A1"),
    "835-professional-no-payment.x12": ("835", "005010X221A1"),
    "835-professional-with-payment.x12": ("835", "005010X221A1"),
    "999-accepted.x12": ("999", "005010X231A1"),
    "999-rejected.x12": ("999", "005010X231A1"),
}


@needs_emedny
def test_every_emedny_sample_is_recognised_with_its_kind_and_guide():
    assert sorted(p.name for p in EMEDNY.glob("*.x12")) == sorted(EMEDNY_KINDS)
    for name, (kind, version) in EMEDNY_KINDS.items():
        found = recognize(emedny(name))
        assert (found.kind, found.version) == (kind, version), name
        assert (found.sender_id, found.receiver_id) == ("EMEDNYBAT", "ETIN"), name


@needs_emedny
def test_recognition_reads_the_interchange_envelope():
    found = recognize(emedny("999-accepted.x12"))
    assert found.interchange_control_number == "052127406" and found.usage_indicator == "P"
    assert recognize(emedny("999-rejected.x12")).usage_indicator == "T"


def sample_837p() -> bytes:
    """An 837P as the hub writes it (loop contents do not matter here, the envelope does)."""
    practice = Provider(npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
                        taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "62701-0001"))
    patient = Patient(name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
                      address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|1")
    claim = Claim(
        patient_control_number="PCN20250304A", patient=patient,
        coverage=Coverage(order=1, payer=Payer("99999", "Sample Health Plan", "CI"), member_id="MEMBER123"),
        billing_provider=practice, rendering_provider=None, diagnoses=("F33.1",),
        lines=(ServiceLine("90837", date(2025, 3, 4), (), Decimal("180.00")),), place_of_service="11",
    )
    envelope = Envelope(
        sender_id="SUBMITTERID", receiver_id="RECEIVERID", submitter_name="Sample Behavioral Health PLLC",
        submitter_id="SUBMITTERID", submitter_contact_name="Billing Office", submitter_phone="5555550100",
        receiver_name="Sample Clearinghouse", receiver_id_code="RECEIVERID",
    )
    return write_837p([claim], envelope, ControlNumbers(42, 7, 3), datetime(2025, 3, 5, 12, 0))


def test_an_837p_the_hub_writes_is_recognised_as_an_837p():
    found = recognize(sample_837p())
    assert found.kind == "837P" and found.version == "005010X222A1"
    assert (found.interchange_control_number, found.sender_id, found.receiver_id) == (
        "000000042", "SUBMITTERID", "RECEIVERID")
    assert found.usage_indicator == "T"


def interchange(functional_id: str, version: str) -> bytes:
    return (
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *250306*0800*^*00501*000000123*0*P*:~"
        f"GS*{functional_id}*SENDER*RECEIVER*20250306*0800*1*X*{version}~ST*000*0001~SE*2*0001~GE*1*1~"
        "IEA*1*000000123~"
    ).encode()


@pytest.mark.parametrize("functional_id, version, kind", [
    ("HC", "005010X222A1", "837P"),
    ("HC", "005010X223A2", "837I"),
    ("HC", "005010X224A2", "X12"),  # a dental claim: not a kind the hub knows
    ("HP", "005010X221A1", "835"),
    ("FA", "005010X231A1", "999"),
    ("FA", "005010", "997"),
    ("HN", "005010X214", "277CA"),
    ("HN", "005010X212", "277"),
    ("HB", "005010X279A1", "271"),
    ("HS", "005010X279A1", "270"),
    ("HR", "005010X212", "276"),
    ("IN", "005010", "X12"),
])
def test_kind_comes_from_the_functional_identifier_and_the_guide(functional_id, version, kind):
    found = recognize(interchange(functional_id, version))
    assert (found.kind, found.version) == (kind, version)


def test_a_ta1_without_a_group_is_a_ta1_and_with_a_group_is_what_the_group_is():
    alone = recognize(fixture("ta1-duplicate-interchange.x12"))
    assert (alone.kind, alone.version, alone.interchange_control_number) == ("TA1", "", "000000919")
    assert recognize(fixture("ta1-accepted-with-999.x12")).kind == "999"


def test_whitespace_and_a_byte_order_mark_before_the_isa_are_allowed():
    assert recognize(b"\xef\xbb\xbf\r\n  " + fixture("999-partially-accepted.x12")).kind == "999"


@pytest.mark.parametrize("content", [
    json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": []}).encode(),
    b"\xef\xbb\xbf{\"resourceType\": \"Patient\"}",
    b"MSH|^~\\&|EHR|CLINIC|HUB|BILLING|20250304||DFT^P03|1|P|2.5\r",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
    b"\x00\x01\x02\xff garbage",
    b"",
    b"   \n",
    b"IS",
])
def test_content_that_is_not_x12_is_turned_away(content):
    assert recognize(content) is None


@pytest.mark.parametrize("content, problem", [
    (b"ISA*00*short~", "cut short"),
    (b"ISA*00*" + b"x" * 120, "fixed 106 characters"),
    (b"ISA" + b"A" * 120, "element separator"),
    (interchange("HC", "005010X222A1").replace(b"000000123*0*P", b"00000ABC1*0*P", 1), "ISA13"),
    (interchange("HC", "005010X222A1").replace(b"*0*P*:", b"*0*Q*:", 1), "ISA15"),
])
def test_a_malformed_isa_is_an_input_error_not_a_shrug(content, problem):
    with pytest.raises(InputError, match=problem) as raised:
        recognize(content)
    assert "ISA (segment 1)" in str(raised.value) and "ABC" not in str(raised.value)


def test_recognition_looks_only_at_the_head_of_a_large_payload():
    big_json = b'{"resourceType": "Bundle", "entry": [' + b'{"a": 1},' * 2_000_000 + b"]}"
    big_x12 = fixture("999-partially-accepted.x12") + b"\xff" * len(big_json)
    started = time.perf_counter()
    for _ in range(100):
        assert recognize(big_json) is None
        assert recognize(big_x12).kind == "999"
    # Reading each 18 MB payload whole even once would take far longer than this.
    assert time.perf_counter() - started < 0.5
    assert HEAD_SIZE <= 8192


# --- TA1 ----------------------------------------------------------------------------------------


def test_a_duplicate_interchange_is_rejected_and_flagged_duplicate():
    [ack] = read_ta1(fixture("ta1-duplicate-interchange.x12"))
    assert ack.interchange_control_number == "000000001"
    assert (ack.interchange_date, ack.interchange_time) == (date(2025, 3, 5), clock(12, 0))
    assert (ack.result.value, ack.note.value) == ("R", "025")
    assert not ack.accepted and ack.duplicate
    assert ack.describe() == "interchange 000000001 rejected: duplicate interchange control number (note 025)"


def test_an_invalid_control_structure_is_rejected_but_not_a_duplicate():
    [ack] = read_ta1(fixture("ta1-invalid-control-structure.x12"))
    assert ack.interchange_control_number == "000000002" and not ack.accepted and not ack.duplicate
    assert ack.note.description == "invalid control structure"
    assert ack.describe() == "interchange 000000002 rejected: invalid control structure (note 022)"


def test_a_ta1_in_front_of_a_999_is_read_and_so_is_the_999():
    data = fixture("ta1-accepted-with-999.x12")
    [ack] = read_ta1(data)
    assert ack.accepted and not ack.duplicate and ack.describe() == "interchange 000000003 accepted"
    [group] = read_999(data)
    assert group.accepted and group.group_control_number == "3"


def test_a_ta1_with_errors_noted_is_still_accepted_and_an_unknown_note_does_not_crash():
    data = fixture("ta1-invalid-control-structure.x12").replace(b"*R*022", b"*E*099")
    [ack] = read_ta1(data)
    assert ack.accepted and ack.note.description == "code 099"


def test_a_ta1_inside_a_transaction_set_or_with_a_bad_date_is_an_input_error():
    misplaced = fixture("ta1-accepted-with-999.x12").replace(b"IK5*A~", b"IK5*A~\nTA1*000000003*250305*1400*A*000~")
    with pytest.raises(InputError, match=r"TA1 \(segment 8\)"):
        read_ta1(misplaced)
    with pytest.raises(InputError, match="TA102 is not a date"):
        read_ta1(fixture("ta1-duplicate-interchange.x12").replace(b"*250305*", b"*251305*"))


# --- 999 ----------------------------------------------------------------------------------------


@needs_emedny
def test_emedny_accepted_999_accepts_the_group_and_its_one_transaction_set():
    [group] = read_999(emedny("999-accepted.x12"))
    assert (group.control_number, group.functional_id, group.group_control_number, group.version) == (
        "4001", "HC", "28", "005010X223A2")
    assert group.accepted and not group.partially_accepted
    assert (group.result.value, group.sets_included, group.sets_received, group.sets_accepted) == ("A", 1, 1, 1)
    [transaction] = group.transactions
    assert (transaction.transaction_set_id, transaction.control_number, transaction.implementation_reference) == (
        "837", "0028", "")
    assert transaction.accepted and transaction.errors == () and transaction.syntax_errors == ()


@needs_emedny
def test_emedny_rejected_999_names_the_unrecognised_segment():
    # Its component separator is "|" (ISA16), as the corpus README warns.
    [group] = read_999(emedny("999-rejected.x12"))
    assert not group.accepted and group.result.value == "R" and group.sets_accepted == 0
    [transaction] = group.transactions
    assert not transaction.accepted and [e.value for e in transaction.syntax_errors] == ["5"]
    assert transaction.describe() == "transaction set 837 0028 rejected: one or more segments in error"
    [error] = transaction.errors
    assert (error.segment_id, error.position, error.loop_id, error.error.value) == ("NM", 17, "", "1")
    assert error.element_errors == () and error.claim_reference is None
    assert error.describe() == "segment NM at position 17: unrecognized segment ID"


def test_a_rejected_set_names_each_claim_its_errors_are_in():
    [group] = read_999(fixture("999-rejected-two-claims.x12"))
    assert group.result.value == "R" and not group.accepted and not group.partially_accepted
    [transaction] = group.transactions
    assert [e.value for e in transaction.syntax_errors] == ["I5"]
    assert transaction.claim_references == ("PCN20250304A", "PCN20250305B")
    assert [(e.segment_id, e.position, e.loop_id, e.claim_reference) for e in transaction.errors] == [
        ("NM1", 22, "2310", "PCN20250304A"),
        ("SV1", 27, "2400", "PCN20250304A"),
        ("PRV", 40, "2310", "PCN20250305B"),
        ("DTP", 45, "2400", "PCN20250305B"),
    ]
    assert [e.describe() for e in transaction.errors] == [
        "segment NM1 at position 22 in loop 2310 of claim PCN20250304A: invalid code value (element 9)",
        "segment SV1 at position 27 in loop 2400 of claim PCN20250304A: invalid code value (element 1, component 2)",
        "segment PRV at position 40 in loop 2310 of claim PCN20250305B: "
        "segment the implementation guide requires in this situation is missing",
        "segment DTP at position 45 in loop 2400 of claim PCN20250305B: invalid date (element 3)",
    ]
    npi = transaction.errors[0].element_errors[0]
    assert (npi.position, npi.component, npi.data_element, npi.error.value) == (9, None, "67", "7")
    [trigger] = npi.triggers
    assert (trigger.segment_id, trigger.position, trigger.element_position) == ("CLM", 17, 5)
    assert transaction.errors[0].business_unit == "CLM01"
    # IK404 is a copy of the bad data: never kept.
    no_phi(group, "1999999985", "9083X", "20251341")


def test_a_partially_accepted_group_says_which_set_was_rejected():
    [group] = read_999(fixture("999-partially-accepted.x12"))
    assert group.partially_accepted and not group.accepted
    assert (group.sets_included, group.sets_received, group.sets_accepted) == (2, 2, 1)
    first, second = group.transactions
    assert (first.control_number, first.accepted) == ("0001", True)
    assert (second.control_number, second.accepted, second.claim_references) == ("0002", False, ("PCN20250306C",))
    assert second.errors[0].describe() == (
        "segment CLM at position 12 in loop 2300 of claim PCN20250306C: invalid code value (element 5, component 1)")
    assert group.describe() == ("functional group 2 (HC) partially accepted (at least one transaction set was "
                                "rejected): 1 of 2 transaction sets accepted")


def test_a_business_unit_other_than_the_claim_keeps_its_name_but_not_its_value():
    data = fixture("999-partially-accepted.x12").replace(
        b"CTX*CLM01:PCN20250306C~", b"CTX*SUBSCRIBER NUMBER REF02:MEMBER123~")
    [group] = read_999(data)
    [error] = group.transactions[1].errors
    assert error.claim_reference is None and error.business_unit == "SUBSCRIBER NUMBER REF02"
    no_phi(group, "MEMBER123")


def test_unknown_codes_read_as_code_n_and_group_errors_are_described():
    data = fixture("999-partially-accepted.x12").replace(b"IK4*5:1*1331*7*99", b"IK4*5:1*1331*Q7").replace(
        b"AK9*P*2*2*1", b"AK9*P*2*2*1*5*99")
    [group] = read_999(data)
    assert group.transactions[1].errors[0].element_errors[0].error.description == "code Q7"
    assert [e.description for e in group.group_errors] == [
        "number of included transaction sets (GE01) does not match the actual count", "code 99"]


def test_a_999_without_ak1_is_an_input_error_naming_the_segment():
    data = fixture("999-partially-accepted.x12").replace(b"AK1*HC*2*005010X222A1~\n", b"")
    with pytest.raises(InputError, match=r"AK2 \(segment 4\).*no AK1"):
        read_999(data)


def test_an_ik3_before_any_ak2_is_an_input_error_naming_the_segment():
    data = fixture("999-partially-accepted.x12").replace(
        b"AK2*837*0001*005010X222A1~\nIK5*A~\nAK2*837*0002*005010X222A1~\n", b"")
    with pytest.raises(InputError, match=r"IK3 \(segment 5\).*no AK2") as raised:
        read_999(data)
    assert "PCN" not in str(raised.value)


def test_a_999_whose_ak2_has_no_ik5_or_no_ak9_is_an_input_error():
    with pytest.raises(InputError, match=r"AK2 \(segment 6, loop 2000\).*no IK5"):
        read_999(fixture("999-partially-accepted.x12").replace(b"IK5*A~\n", b""))
    with pytest.raises(InputError, match=r"SE \(segment \d+\).*no AK9"):
        read_999(fixture("999-partially-accepted.x12").replace(b"AK9*P*2*2*1~\n", b""))


@pytest.mark.parametrize("reader, wrong, expected", [
    (read_999, "277ca-provider-rejected.x12", "not a 999"),
    (read_277ca, "999-rejected-two-claims.x12", "not a 277"),
])
def test_a_transaction_set_of_another_kind_is_an_input_error(reader, wrong, expected):
    with pytest.raises(InputError, match=rf"ST \(segment 3\).*{expected}"):
        reader(fixture(wrong))


# --- 277CA --------------------------------------------------------------------------------------


@needs_emedny
def test_emedny_accepted_277ca_accepts_the_claim_into_adjudication():
    [claim] = read_277ca(emedny("277ca-accepted.x12"))
    assert claim.patient_control_number == "5781"
    assert claim.payer_claim_control_number == "1107000000014420" and claim.clearinghouse_trace is None
    assert claim.accepted and not claim.rejected and claim.note is None and claim.category == "A2"
    [status] = claim.statuses
    assert (status.category, status.code, status.entity, status.date, status.action, status.amount) == (
        "A2", "20", "", date(2011, 3, 11), "WQ", Decimal("125"))
    assert claim.total_charge == Decimal("125")
    assert (claim.batch_reference, claim.billing_provider_id, claim.information_source) == (
        "000000674", "1234567890", "NYSDOH")
    assert claim.describe() == "claim 5781: accepted into the adjudication system: accepted for processing"
    no_phi(claim, "TPATIENT", "THEBE", "LL99999X", "10010101")


@needs_emedny
def test_emedny_rejected_277ca_rejects_the_claim_for_the_billing_npi_even_with_action_wq():
    # eMedNY sends A7 with action WQ; the category decides. Its component separator is "|".
    [claim] = read_277ca(emedny("277ca-rejected.x12"))
    assert claim.patient_control_number == "3920394930203" and claim.payer_claim_control_number == "1107000000001120"
    assert claim.rejected and not claim.accepted
    [status] = claim.statuses
    assert (status.category, status.code, status.entity, status.action) == ("A7", "562", "85", "WQ")
    assert status.description == "rejected for invalid information: billing provider's National Provider Identifier (NPI)"
    assert claim.total_charge == Decimal("199.14")
    no_phi(claim, "CLILNAME", "CLIFNAME", "XX99999X", "20090311")


@needs_emedny
def test_a_277_claim_status_response_is_read_but_neither_accepted_nor_rejected():
    [claim] = read_277ca(emedny("277-claim-status-response.x12"))
    assert claim.patient_control_number == "10060216012300233HSP1156IC002-"
    assert (claim.category, claim.accepted, claim.rejected) == ("F1", False, False)
    assert (claim.payer_claim_control_number, claim.clearinghouse_trace) == ("1026000000099999", "20041513010001")
    [line] = claim.service_lines
    assert (line.procedure_qualifier, line.procedure_code, line.charge) == ("N4", "10337080301", Decimal("524.49"))
    no_phi(claim, "Patient Last Name", "XX99999X")


def test_one_claim_accepted_and_one_rejected_with_an_additional_status_and_a_rejected_line():
    accepted, rejected = read_277ca(fixture("277ca-one-accepted-one-rejected.x12"))
    assert accepted.patient_control_number == "PCN20250304A" and accepted.accepted and not accepted.rejected
    assert (accepted.payer_claim_control_number, accepted.clearinghouse_trace) == ("2025065000123", "CH7781234")
    assert accepted.batch_reference == "BATCH0007" and accepted.service_lines == ()

    assert rejected.patient_control_number == "PCN20250304B" and rejected.rejected and not rejected.accepted
    assert rejected.payer_claim_control_number is None and rejected.clearinghouse_trace == "CH7781235"
    assert [(s.category, s.code, s.entity, s.amount) for s in rejected.statuses] == [
        ("A7", "562", "82", Decimal("180")), ("A7", "145", "82", None)]  # STC01, then STC10
    assert {(s.date, s.action, s.level) for s in rejected.statuses} == {(date(2025, 3, 6), "U", "claim")}
    assert rejected.describe() == (
        "claim PCN20250304B: rejected for invalid information: rendering provider's National Provider "
        "Identifier (NPI); rejected for invalid information: rendering provider's specialty/taxonomy code")
    [line] = rejected.service_lines
    assert (line.procedure_code, line.modifiers, line.charge, line.units) == ("90834", ("95",), Decimal("180"),
                                                                            Decimal("1"))
    assert line.line_item_control_number == "LINE-B-1" and line.rejected
    assert line.describe() == ("service line 90834:95 (LINE-B-1): rejected for invalid information: "
                               "procedure code for the services rendered")
    no_phi([accepted, rejected], "DOE", "JOHN", "ROE", "JANE", "MEMBER123", "MEMBER456", "date(2025, 3, 4)")


def test_a_provider_level_rejection_reaches_every_claim_of_that_provider_only():
    first, second, other = read_277ca(fixture("277ca-provider-rejected.x12"))
    for claim in (first, second):
        assert claim.rejected and not claim.accepted
        assert claim.category == "A1"  # the claim's own status: received
        inherited = [s for s in claim.statuses if s.level == "provider"]
        assert [(s.category, s.code, s.entity, s.action) for s in inherited] == [("A3", "496", "85", "U")]
        assert claim.billing_provider_id == "1245319599"
    assert first.describe() == (
        "claim PCN20250307D: received, not yet accepted for adjudication: payer acknowledges receipt of the claim; "
        "provider level: rejected as unprocessable (not entered into adjudication): submitter not approved for "
        "electronic claim submissions on behalf of billing provider")
    assert other.patient_control_number == "PCN20250307F" and other.accepted
    assert [s.level for s in other.statuses] == ["claim"] and other.billing_provider_id == "1234567893"
    no_phi([first, second, other], "POE", "EDGAR", "MEMBER789")


def test_a_receiver_level_rejection_reaches_every_claim_in_the_file():
    data = fixture("277ca-one-accepted-one-rejected.x12").replace(
        b"STC*A1:19:PR*20250306*WQ*380~", b"STC*A3:24:41*20250306*U*380~")
    claims = read_277ca(data)
    assert all(c.rejected for c in claims)
    assert [s.describe() for s in claims[0].statuses if s.level == "receiver"] == [
        "receiver level: rejected as unprocessable (not entered into adjudication): "
        "submitter not approved as an electronic submitter"]


def test_forwarded_and_split_claims_count_as_accepted_with_a_note():
    for category, note in (("A5", "more than one payment"), ("A0", "forwarded")):
        data = fixture("277ca-one-accepted-one-rejected.x12").replace(b"STC*A2:20:PR", f"STC*{category}:20:PR".encode())
        claim = read_277ca(data)[0]
        assert claim.accepted and note in claim.note


def test_an_accepted_claim_with_a_rejecting_additional_status_is_rejected():
    data = fixture("277ca-one-accepted-one-rejected.x12").replace(
        b"STC*A2:20:PR*20250306*WQ*200~", b"STC*A2:20:PR*20250306*WQ*200******A8:164:IL~")
    claim = read_277ca(data)[0]
    assert claim.category == "A2" and claim.rejected and not claim.accepted
    assert claim.statuses[1].description == "rejected for a relational field in error: subscriber's contract/member number"


def test_unknown_status_codes_read_as_code_n():
    assert status_description("Z9", "9999", "ZZ") == "code Z9: code 9999 (code ZZ)"
    assert status_description("A2", "") == "accepted into the adjudication system"
    assert lookup("entity", "QC").description == "patient"


def test_a_claim_status_with_no_claim_is_an_input_error_naming_the_segment():
    data = fixture("277ca-one-accepted-one-rejected.x12").replace(b"TRN*2*PCN20250304A~\n", b"")
    with pytest.raises(InputError, match=r"STC \(segment 28, loop 2200D\).*no claim") as raised:
        read_277ca(data)
    assert "DOE" not in str(raised.value)
    with pytest.raises(InputError, match=r"STC \(segment 7, loop 2000A\)"):
        read_277ca(fixture("277ca-provider-rejected.x12").replace(b"TRN*1*277CA0931~", b"STC*A1:19:PR**WQ*1~"))


def test_a_cut_short_or_unreadable_277ca_is_an_input_error():
    data = fixture("277ca-provider-rejected.x12")
    with pytest.raises(InputError, match="no SE"):
        read_277ca(data[: data.index(b"SE*")])
    with pytest.raises(InputError, match=r"STC04 is not an amount") as raised:
        read_277ca(data.replace(b"STC*A1:19:PR*20250306*WQ*180~", b"STC*A1:19:PR*20250306*WQ*1X0~"))
    assert "1X0" not in str(raised.value)


# --- the code tables ------------------------------------------------------------------------------


def valid_codes(map_name: str, xid: str) -> set[str]:
    pytest.importorskip("pyx12")
    tree = ET.parse(str(resources.files("pyx12") / "map" / map_name))
    return {c.text for e in tree.iter("element") if e.get("xid") == xid for c in e.iter("code")}


@pytest.mark.parametrize("map_name, xid, table, without_meaning", [
    ("999.5010X231.A1.xml", "TA104", "interchange_ack", set()),
    ("999.5010X231.A1.xml", "TA105", "interchange_note", set()),
    ("999.5010X231.A1.xml", "IK304", "segment_error", set()),
    # pyx12 allows IK403 11, which X12's code list 621 does not define: it reads "code 11".
    ("999.5010X231.A1.xml", "IK403", "element_error", {"11"}),
    ("999.5010X231.A1.xml", "IK501", "transaction_ack", set()),
    ("999.5010X231.A1.xml", "IK502", "transaction_error", set()),
    ("999.5010X231.A1.xml", "AK901", "group_ack", set()),
    ("999.5010X231.A1.xml", "AK905", "group_error", set()),
    ("277.5010.X214.xml", "STC01-03", "entity", set()),
])
def test_every_code_the_guides_allow_has_a_plain_description(map_name, xid, table, without_meaning):
    assert valid_codes(map_name, xid) - set(ack_codes()[table]) == without_meaning


def test_the_claim_status_tables_cover_the_codes_billers_meet_most():
    categories = ack_codes()["claim_status_category"]
    assert {f"A{n}" for n in range(9)} | {"P0", "F0", "F1", "F2", "E0", "D0"} <= set(categories)
    assert {"19", "20", "21", "33", "145", "164", "247", "454", "562", "673"} <= set(ack_codes()["claim_status"])
    assert all(description and description == description.strip() for table in ack_codes().values()
               for description in table.values())
