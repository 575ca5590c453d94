"""The 005010X222A1 837P writer, checked against the domain reference's example and pyx12."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from bhhub.errors import InputError
from bhhub.model import Address, Claim, Coverage, Patient, Payer, Person, PersonName, Provider, ServiceLine
from bhhub.claims.claim837p import write_837p
from bhhub.x12.envelope import ControlNumbers, Envelope
from bhhub.x12.segments import decimal_text, money
from bhhub.x12.validate import validate_x12
from strategies import claim_batches, npi_with_check_digit

# Domain reference 5.6, validated there with pyx12: an LCSW's 60-minute telehealth session.
EXAMPLE_5_6 = """\
ISA*00*          *00*          *ZZ*SUBMITTERID    *ZZ*RECEIVERID     *250305*1200*^*00501*000000001*1*T*:~
GS*HC*SUBMITTERID*RECEIVERID*20250305*1200*1*X*005010X222A1~
ST*837*0001*005010X222A1~
BHT*0019*00*BATCH0001*20250305*1200*CH~
NM1*41*2*SAMPLE BEHAVIORAL HEALTH PLLC*****46*SUBMITTERID~
PER*IC*BILLING OFFICE*TE*5555550100~
NM1*40*2*SAMPLE CLEARINGHOUSE*****46*RECEIVERID~
HL*1**20*1~
PRV*BI*PXC*261QM0801X~
NM1*85*2*SAMPLE BEHAVIORAL HEALTH PLLC*****XX*1234567893~
N3*100 MAIN ST~
N4*SPRINGFIELD*IL*627010001~
REF*EI*123456789~
HL*2*1*22*0~
SBR*P*18*GRP001******CI~
NM1*IL*1*DOE*JOHN****MI*MEMBER123~
N3*200 OAK AVE~
N4*SPRINGFIELD*IL*62702~
DMG*D8*19800101*M~
NM1*PR*2*SAMPLE HEALTH PLAN*****PI*99999~
CLM*PCN20250304A*200***10:B:1*Y*A*Y*Y~
REF*G1*AUTH12345~
HI*ABK:F331*ABF:Z630~
NM1*82*1*SMITH*JANE****XX*1999999984~
PRV*PE*PXC*1041C0700X~
LX*1~
SV1*HC:90837:95*180*UN*1***1:2~
DTP*472*D8*20250304~
LX*2~
SV1*HC:90785:95*20*UN*1***1~
DTP*472*D8*20250304~
SE*30*0001~
GE*1*1~
IEA*1*000000001~
"""

ENVELOPE = Envelope(
    sender_id="SUBMITTERID", receiver_id="RECEIVERID",
    submitter_name="Sample Behavioral Health PLLC", submitter_id="SUBMITTERID",
    submitter_contact_name="Billing Office", submitter_phone="(555) 555-0100",
    receiver_name="Sample Clearinghouse", receiver_id_code="RECEIVERID",
    acknowledgment_requested=True,
)
CONTROLS = ControlNumbers(interchange=1, group=1, transaction=1)
CREATED_AT = datetime(2025, 3, 5, 12, 0)
SERVICE_DATE = date(2025, 3, 4)

GROUP_PRACTICE = Provider(
    npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
    taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "62701-0001"),
)
LCSW = Provider(npi="1999999984", name=PersonName("Smith", "Jane"), taxonomy="1041C0700X")
JOHN_DOE = Patient(
    name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
    address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key="test:MR|1",
)
HEALTH_PLAN = Payer("99999", "Sample Health Plan", "CI")


def example_claim(**changes) -> Claim:
    """The claim of domain reference 5.6 as canonical objects."""
    claim = Claim(
        patient_control_number="PCN20250304A",
        patient=JOHN_DOE,
        coverage=Coverage(order=1, payer=HEALTH_PLAN, member_id="MEMBER123", group_number="GRP001"),
        billing_provider=GROUP_PRACTICE,
        rendering_provider=LCSW,
        diagnoses=("F33.1", "Z63.0"),
        lines=(
            ServiceLine("90837", SERVICE_DATE, ("95",), Decimal("180.00"), diagnosis_pointers=(1, 2)),
            ServiceLine("90785", SERVICE_DATE, ("95",), Decimal("20")),
        ),
        place_of_service="10",
        prior_authorization="AUTH12345",
    )
    return replace(claim, **changes)


def write(*claims: Claim) -> bytes:
    return write_837p(list(claims), ENVELOPE, CONTROLS, CREATED_AT)


def parse(content: bytes) -> list[list[str]]:
    """Segments as element lists, reading the delimiters from the ISA as a receiver would."""
    raw = content.decode("ascii")
    element, terminator = raw[3], raw[105]
    return [s.strip("\n").split(element) for s in raw.split(terminator) if s.strip("\n")]


def find(segments: list[list[str]], segment_id: str, *leading: str) -> list[list[str]]:
    return [s for s in segments if s[0] == segment_id and s[1 : 1 + len(leading)] == list(leading)]


# --- the domain reference's example -------------------------------------------------------------


def test_domain_reference_example_is_rebuilt_exactly_from_canonical_objects():
    assert write(example_claim()).decode("ascii") == EXAMPLE_5_6


def test_pyx12_accepts_the_domain_reference_example():
    assert validate_x12(EXAMPLE_5_6.encode()) == []


# --- the validator finds what is wrong ----------------------------------------------------------


def test_validator_reports_a_wrong_segment_count():
    broken = EXAMPLE_5_6.replace("SE*30*0001", "SE*29*0001").encode()
    assert any("SE count of 29" in error for error in validate_x12(broken))


def test_validator_reports_a_missing_required_segment():
    # The billing provider's N4 is required (2010AA); SE01 is corrected so only that is wrong.
    broken = EXAMPLE_5_6.replace("N4*SPRINGFIELD*IL*627010001~\n", "").replace("SE*30", "SE*29")
    errors = validate_x12(broken.encode())
    assert len(errors) == 1 and "N4" in errors[0] and "missing" in errors[0]


def test_validator_reports_wrong_group_and_interchange_counts():
    broken = EXAMPLE_5_6.replace("GE*1*1", "GE*2*1").replace("IEA*1*", "IEA*2*").encode()
    errors = validate_x12(broken)
    assert any("GE count" in e for e in errors) and any("IEA count" in e for e in errors)


def test_validator_reports_content_that_is_not_x12():
    assert validate_x12(b"this is a PDF, not an 837") == ["the content does not look like an X12 data file"]


def test_validator_says_how_to_install_pyx12_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyx12", None)
    with pytest.raises(ImportError, match="pip install"):
        validate_x12(EXAMPLE_5_6.encode())


# --- envelope and control numbers ---------------------------------------------------------------


def test_control_numbers_are_padded_as_each_element_wants_and_echoed_in_the_trailers():
    envelope = replace(ENVELOPE, acknowledgment_requested=False, usage_indicator="P",
                       application_sender_code="APPSENDER", application_receiver_code="APPRECEIVER")
    content = write_837p([example_claim()], envelope, ControlNumbers(42, 7, 12345), CREATED_AT)
    segments = parse(content)
    assert content.index(b"~") == 105  # the ISA is fixed width: 106 characters with its terminator
    assert segments[0][13:16] == ["000000042", "0", "P"]
    assert segments[1][2:4] == ["APPSENDER", "APPRECEIVER"] and segments[1][6] == "7"
    assert segments[2][2] == "12345" and find(segments, "BHT")[0][3] == "BATCH12345"
    assert segments[-3][2] == "12345"
    assert segments[-2:] == [["GE", "1", "7"], ["IEA", "1", "000000042"]]


# The segments the writer emits, with the most elements each can carry.
MOST_ELEMENTS = {
    "ISA": 16, "GS": 8, "ST": 3, "BHT": 6, "NM1": 9, "PER": 8, "HL": 4, "PRV": 3, "N3": 2, "N4": 3,
    "REF": 2, "SBR": 9, "DMG": 3, "PAT": 1, "CLM": 9, "HI": 12, "OI": 6, "LX": 1, "SV1": 7, "DTP": 3,
    "SE": 2, "GE": 2, "IEA": 2,
}


# --- generated batches --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_batches())
def test_generated_batches_pass_the_pyx12_validator(batch):
    assert validate_x12(write(*batch)) == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_batches())
def test_generated_batches_have_right_counts_links_and_totals(batch):
    segments = parse(write(*batch))
    ids = [s[0] for s in segments]
    # Names full of * ~ : ^ split nothing: only the segments the writer emits, none over-long.
    assert set(ids) <= set(MOST_ELEMENTS)
    assert all(len(s) - 1 <= MOST_ELEMENTS[s[0]] for s in segments)
    st, se = ids.index("ST"), ids.index("SE")
    assert int(segments[se][1]) == se - st + 1 and segments[se][2] == segments[st][2]
    assert segments[-2] == ["GE", str(ids.count("ST")), segments[1][6]]
    assert segments[-1] == ["IEA", str(ids.count("GS")), segments[0][13]]

    hls = [s for s in segments if s[0] == "HL"]
    assert [h[1] for h in hls] == [str(n) for n in range(1, len(hls) + 1)]
    level_of = {h[1]: h[3] for h in hls}
    for number, parent, level, has_children in (h[1:5] for h in hls):
        expected_parent_level = {"20": None, "22": "20", "23": "22"}[level]
        assert level_of.get(parent) == expected_parent_level
        assert has_children == ("1" if any(h[2] == number for h in hls) else "0")
    assert len([h for h in hls if h[3] == "20"]) == len({c.billing_provider for c in batch})

    claims_written = find(segments, "CLM")
    assert sorted(c[1] for c in claims_written) == sorted(c.patient_control_number for c in batch)
    billing_npi = None
    for segment in segments:  # each claim sits under its own billing provider's 2000A
        if segment[:2] == ["NM1", "85"]:
            billing_npi = segment[9]
        elif segment[0] == "CLM":
            claim = next(c for c in batch if c.patient_control_number == segment[1])
            assert claim.billing_provider.npi == billing_npi
    starts = [i for i, s in enumerate(segments) if s[0] in ("CLM", "HL", "SE")]
    for i, segment in enumerate(segments):
        if segment[0] == "CLM":
            end = next(j for j in starts if j > i)
            line_charges = [Decimal(s[2]) for s in segments[i:end] if s[0] == "SV1"]
            assert Decimal(segment[2]) == sum(line_charges)
            claim = next(c for c in batch if c.patient_control_number == segment[1])
            assert len(line_charges) == len(claim.lines)


# --- names and delimiters -----------------------------------------------------------------------


def test_delimiters_in_names_and_addresses_never_break_the_structure():
    awkward = example_claim(
        patient=replace(
            JOHN_DOE, name=PersonName("O'Brien*Smith~Jr", "Ann:Marie^Zoë"),
            address=Address("12 Elm*St~", "Hope:Town", "IL", "62702"),
        ),
        billing_provider=replace(GROUP_PRACTICE, organization_name="Mind*Body~Care: Núñez ^ Co"),
    )
    content = write(awkward)
    segments = parse(content)
    assert len(segments) == len(parse(write(example_claim())))  # nothing split, nothing merged
    assert find(segments, "NM1", "IL") == [
        ["NM1", "IL", "1", "O'BRIEN SMITH JR", "ANN MARIE ZOE", "", "", "", "MI", "MEMBER123"]
    ]
    assert find(segments, "NM1", "85")[0][3] == "MIND BODY CARE NUNEZ CO"
    assert ["N3", "12 ELM ST"] in segments and ["N4", "HOPE TOWN", "IL", "62702"] in segments
    assert validate_x12(content) == []


def test_an_identifier_with_a_delimiter_is_refused_not_altered():
    with pytest.raises(InputError, match="PCN20250304A.*member id"):
        write(example_claim(coverage=replace(example_claim().coverage, member_id="MEM*123")))


# --- loops for dependents, other payers, providers ----------------------------------------------


def test_child_on_both_parents_plans_gets_patient_level_and_other_payer_loops():
    # Sent to the father's plan as secondary; the mother's plan (primary) goes in 2320/2330.
    father = Person(name=PersonName("Doe", "Max"))  # birth date and address unknown
    mother = Person(name=PersonName("Doe", "Mary"), birth_date=date(1975, 5, 5), gender="F")
    child = replace(JOHN_DOE, name=PersonName("Doe", "Sam"), birth_date=date(2012, 2, 2))
    claim = example_claim(
        patient=child,
        coverage=Coverage(order=2, payer=Payer("BCBS1", "Blue Plan", "BL"), member_id="MAX88",
                          relationship="19", subscriber=father),
        other_coverages=(Coverage(order=1, payer=HEALTH_PLAN, member_id="MARY55", relationship="19",
                                  subscriber=mother, group_number="GRP001"),),
    )
    content = write(claim)
    segments = parse(content)
    assert find(segments, "HL", "2") == [["HL", "2", "1", "22", "1"]]
    assert find(segments, "SBR", "S") == [["SBR", "S", "", "", "", "", "", "", "", "BL"]]
    assert find(segments, "NM1", "IL")[0] == ["NM1", "IL", "1", "DOE", "MAX", "", "", "", "MI", "MAX88"]
    assert segments[segments.index(find(segments, "NM1", "IL")[0]) + 1][:2] == ["NM1", "PR"]  # no N3/DMG
    assert find(segments, "HL", "3") == [["HL", "3", "2", "23", "0"]]
    assert ["PAT", "19"] in segments
    assert find(segments, "NM1", "QC") == [["NM1", "QC", "1", "DOE", "SAM"]]
    assert ["DMG", "D8", "20120202", "M"] in segments
    # 2320/2330A/2330B: the primary payer, the patient being the subscriber's child there too.
    assert find(segments, "SBR", "P") == [["SBR", "P", "19", "GRP001", "", "", "", "", "", "CI"]]
    assert ["OI", "", "", "Y", "", "", "Y"] in segments
    assert find(segments, "NM1", "IL")[1] == ["NM1", "IL", "1", "DOE", "MARY", "", "", "", "MI", "MARY55"]
    assert ["NM1", "PR", "2", "SAMPLE HEALTH PLAN", "", "", "", "", "PI", "99999"] in segments
    assert validate_x12(content) == []


def test_patient_with_a_member_id_of_their_own_is_the_subscriber():
    segments = parse(write(example_claim()))
    assert find(segments, "HL", "2") == [["HL", "2", "1", "22", "0"]]
    assert find(segments, "HL", "3") == [] and find(segments, "PAT") == []
    assert find(segments, "SBR")[0][2] == "18"


def test_rendering_provider_is_left_out_when_it_is_the_billing_provider():
    segments = parse(write(example_claim(rendering_provider=GROUP_PRACTICE)))
    assert find(segments, "NM1", "82") == [] and find(segments, "PRV", "PE") == []


def test_sole_proprietor_bills_under_their_own_name():
    solo = Provider(npi=npi_with_check_digit("100000000"), name=PersonName("Smith", "Jane", "Q"),
                    tin="987654321", address=GROUP_PRACTICE.address)
    segments = parse(write(example_claim(billing_provider=solo, rendering_provider=solo)))
    assert find(segments, "NM1", "85") == [["NM1", "85", "1", "SMITH", "JANE", "Q", "", "", "XX", solo.npi]]
    assert find(segments, "PRV", "BI") == []  # no taxonomy known, so no PRV
    assert find(segments, "NM1", "82") == []


def test_claims_of_one_billing_provider_share_its_level():
    other_practice = replace(
        GROUP_PRACTICE, npi=npi_with_check_digit("200000000"), organization_name="North Clinic"
    )
    segments = parse(write(
        example_claim(patient_control_number="A1"),
        example_claim(patient_control_number="B1", billing_provider=other_practice),
        example_claim(patient_control_number="A2"),
    ))
    order = [(s[0], s[1]) for s in segments if s[0] == "CLM" or s[:3] == ["HL", s[1], ""]]
    assert order == [("HL", "1"), ("CLM", "A1"), ("CLM", "A2"), ("HL", "4"), ("CLM", "B1")]


def test_replacement_claim_carries_the_payer_claim_control_number():
    segments = parse(write(example_claim(frequency_code="7", payer_claim_control_number="ICN123")))
    assert find(segments, "CLM")[0][5] == "10:B:7"
    assert ["REF", "F8", "ICN123"] in segments
    with pytest.raises(InputError, match="payer claim control number"):
        write(example_claim(frequency_code="8"))


def test_line_place_of_service_is_sent_only_when_it_differs_from_the_claim():
    lines = (
        ServiceLine("90834", SERVICE_DATE, charge=Decimal("120.50"), place_of_service="10"),
        ServiceLine("90834", SERVICE_DATE, charge=Decimal("120.50"), place_of_service="02",
                    prior_authorization="AUTH9", control_number="LINE-2"),
    )
    segments = parse(write(example_claim(lines=lines)))
    assert [s for s in segments if s[0] == "SV1"] == [
        ["SV1", "HC:90834", "120.5", "UN", "1", "", "", "1"],
        ["SV1", "HC:90834", "120.5", "UN", "1", "02", "", "1"],
    ]
    assert ["REF", "G1", "AUTH9"] in segments and ["REF", "6R", "LINE-2"] in segments
    assert find(segments, "CLM")[0][2] == "241"


# --- claims the writer refuses ------------------------------------------------------------------


def test_claim_without_service_lines_is_refused():
    with pytest.raises(InputError, match="claim PCN20250304A: the claim has no service lines"):
        write(example_claim(lines=()))


def test_claim_with_thirteen_diagnoses_is_refused():
    thirteen = ("F33.1", "F41.1", "F43.10", "F43.21", "F90.0", "F84.0", "F42.2", "F60.3", "F10.20",
                "F31.9", "F99", "Z63.0", "Z91.51")
    with pytest.raises(InputError, match="claim PCN20250304A: the claim has 13 diagnoses; .* at most 12"):
        write(example_claim(diagnoses=thirteen))


def test_claim_without_diagnoses_or_with_too_many_lines_is_refused():
    with pytest.raises(InputError, match="no diagnosis"):
        write(example_claim(diagnoses=()))
    with pytest.raises(InputError, match="51 service lines"):
        write(example_claim(lines=example_claim().lines[:1] * 51))


def test_line_without_a_charge_is_refused():
    unpriced = (example_claim().lines[0], replace(example_claim().lines[1], charge=None))
    with pytest.raises(InputError, match="claim PCN20250304A: service line 2 has no charge"):
        write(example_claim(lines=unpriced))


# --- X12 values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "sent"),
    [("180.00", "180"), ("180.50", "180.5"), ("180.25", "180.25"), ("0", "0"), ("0.05", "0.05"),
     ("1E+3", "1000"), ("12345678.90", "12345678.9")],
)
def test_money_is_written_the_x12_way(amount, sent):
    assert money(Decimal(amount)) == sent


def test_fractions_of_a_cent_are_refused_and_units_keep_their_fraction():
    with pytest.raises(ValueError, match="fractions of a cent"):
        money(Decimal("10.005"))
    assert decimal_text(Decimal("1.50")) == "1.5"
