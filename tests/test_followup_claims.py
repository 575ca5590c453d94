"""Follow-up claims after a remittance: replacement (7), void (8) and the claim to the secondary.

The primary's adjudication used throughout is the 835 of domain reference 6.9, which paid the
claim of 5.6: line 1 charged 180, paid 90 (CO-45 60, PR-3 30); line 2 charged 20, paid 15
(CO-45 5); CLP07 PAYERICN0001.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bhhub.errors import InputError
from bhhub.model import (
    Claim, Coverage, LineAdjudication, PayerAdjustment, Payer, PriorPayerAdjudication, ServiceLine,
)
from bhhub.claims.claim837p import assemble_837p, render_claim
from bhhub.claims.followup import replacement, secondary, void
from bhhub.x12.validate import validate_x12
from strategies import claims, coverages
from test_837p_writer import CONTROLS, CREATED_AT, ENVELOPE, SERVICE_DATE, example_claim, find, parse

MEDICAID = Coverage(order=2, payer=Payer("MCD01", "State Medicaid Program", "MC"), member_id="MCD777")
SUPPLEMENT = Coverage(order=3, payer=Payer("SUP03", "Supplemental Plan", "CI"), member_id="SUP333")
REMITTED = date(2025, 3, 20)  # 835 BPR16 of domain reference 6.9


def sent_to_primary(**changes) -> Claim:
    """Domain reference 5.6, sent to the primary with Medicaid on file as the secondary."""
    return example_claim(other_coverages=(MEDICAID,), **changes)


def co(reason: str, amount: str) -> PayerAdjustment:
    return PayerAdjustment("CO", reason, Decimal(amount))


def pr(reason: str, amount: str) -> PayerAdjustment:
    return PayerAdjustment("PR", reason, Decimal(amount))


def primary_paid(claim: Claim | None = None, **changes) -> PriorPayerAdjudication:
    """The 835 of domain reference 6.9, line by line."""
    adjudication = PriorPayerAdjudication(
        coverage=(claim or sent_to_primary()).coverage,
        paid_amount=Decimal("105"),
        adjudication_date=REMITTED,
        lines=(
            LineAdjudication(Decimal("90"), (co("45", "60"), pr("3", "30")), line_number=1),
            LineAdjudication(Decimal("15"), (co("45", "5"),), line_number=2),
        ),
        patient_responsibility=Decimal("30"),
        payer_claim_control_number="PAYERICN0001",
    )
    return replace(adjudication, **changes)


def send(*claims: Claim) -> bytes:
    """Each claim rendered on its own, then assembled into one interchange, as batches are."""
    groups: dict = {}
    for claim in claims:
        groups.setdefault(claim.billing_provider, []).append(render_claim(claim))
    return assemble_837p(list(groups.items()), ENVELOPE, CONTROLS, CREATED_AT)


def amounts(cas: list[str]) -> list[Decimal]:
    """The adjustment amounts of one CAS segment (CAS03, CAS06 ... CAS18)."""
    return [Decimal(cas[i]) for i in range(3, len(cas), 3) if cas[i]]


def other_payer_loops(segments: list[list[str]]) -> list[list[list[str]]]:
    """Each 2320 loop (its SBR up to the next SBR or the first LX) of the one claim."""
    start = segments.index(find(segments, "CLM")[0])
    first_line = next(i for i, s in enumerate(segments) if s[0] == "LX")
    sbrs = [i for i in range(start, first_line) if segments[i][0] == "SBR"]
    return [segments[i:end] for i, end in zip(sbrs, [*sbrs[1:], first_line])]


def service_lines(segments: list[list[str]]) -> list[list[list[str]]]:
    """Each 2400 loop (LX up to the next LX or SE)."""
    lxs = [i for i, s in enumerate(segments) if s[0] == "LX"]
    se = next(i for i, s in enumerate(segments) if s[0] == "SE")
    return [segments[i:end] for i, end in zip(lxs, [*lxs[1:], se])]


def line_adjudications(line: list[list[str]]) -> list[list[list[str]]]:
    """Each 2430 loop (SVD up to the next SVD) of one 2400 loop."""
    svds = [i for i, s in enumerate(line) if s[0] == "SVD"]
    return [line[i:end] for i, end in zip(svds, [*svds[1:], len(line)])]


def assert_balanced(segments: list[list[str]]) -> None:
    """The guide's COB balancing, read back from the file, for every payer that adjudicated."""
    charge = Decimal(find(segments, "CLM")[0][2])
    for loop in other_payer_loops(segments):
        paid = [Decimal(s[2]) for s in loop if s[:2] == ["AMT", "D"]]
        if not paid:
            continue  # a payer that has not adjudicated: no CAS, no AMT, no 2430
        payer_id = next(s[9] for s in loop if s[:2] == ["NM1", "PR"])
        claim_level = sum((a for s in loop if s[0] == "CAS" for a in amounts(s)), Decimal(0))
        line_paid, line_adjusted = Decimal(0), Decimal(0)
        for line in service_lines(segments):
            mine = [a for a in line_adjudications(line) if a[0][1] == payer_id]
            for adjudication in mine:
                adjusted = sum((a for s in adjudication if s[0] == "CAS" for a in amounts(s)), Decimal(0))
                # SV102 = SVD02 + the line's CAS amounts for that payer
                assert Decimal(line[1][2]) == Decimal(adjudication[0][2]) + adjusted
                line_paid += Decimal(adjudication[0][2])
                line_adjusted += adjusted
        if line_paid or line_adjusted:
            assert paid[0] == line_paid - claim_level  # 2320 AMT*D = sum of SVD02 - 2320 CAS
        assert charge == paid[0] + claim_level + line_adjusted  # CLM02 = AMT*D + all CAS


# --- replacement (frequency 7) ------------------------------------------------------------------


def test_replacement_keeps_the_claim_number_and_names_the_payer_claim_it_replaces():
    corrected_lines = (
        replace(example_claim().lines[0], procedure_code="90834", charge=Decimal("120")),
        example_claim().lines[1],
    )
    corrected = replacement(sent_to_primary(), "PAYERICN0001", lines=corrected_lines)
    content = send(corrected)
    segments = parse(content)
    assert validate_x12(content) == []
    clm = find(segments, "CLM")[0]
    assert clm[1] == "PCN20250304A" and clm[5] == "10:B:7" and clm[2] == "140"
    assert ["REF", "F8", "PAYERICN0001"] in segments
    assert [s[1] for s in find(segments, "SV1")] == ["HC:90834:95", "HC:90785:95"]  # the whole claim


def test_replacement_can_drop_the_prior_authorization_and_change_diagnoses():
    corrected = replacement(sent_to_primary(), "ICN9", diagnoses=("F33.2", "Z63.0"), prior_authorization=None)
    segments = parse(send(corrected))
    assert find(segments, "REF", "G1") == []
    assert ["HI", "ABK:F332", "ABF:Z630"] in segments
    kept = replacement(sent_to_primary(), "ICN9")
    assert kept.prior_authorization == "AUTH12345" and kept.lines == sent_to_primary().lines


def test_replacement_without_the_payer_claim_number_is_refused_with_a_fix():
    with pytest.raises(InputError, match="PCN20250304A: a replacement .* payer claim control number") as refused:
        replacement(sent_to_primary(), "")
    assert "CLP07" in (refused.value.fix or "")
    with pytest.raises(InputError, match="a void .* payer claim control number"):
        render_claim(example_claim(frequency_code="8"))


def test_frequency_other_than_1_7_or_8_is_refused():
    with pytest.raises(InputError, match="frequency code .* not 1, 7 or 8"):
        render_claim(example_claim(frequency_code="6"))


# --- void (frequency 8) -------------------------------------------------------------------------


def test_void_repeats_the_original_lines_as_sent():
    original = sent_to_primary()
    content = send(void(original, "PAYERICN0001"))
    segments = parse(content)
    assert validate_x12(content) == []
    assert find(segments, "CLM")[0][5] == "10:B:8"
    assert ["REF", "F8", "PAYERICN0001"] in segments
    assert find(segments, "SV1") == find(parse(send(original)), "SV1")


def test_a_void_is_neither_replaced_nor_voided_again():
    voided = void(sent_to_primary(), "PAYERICN0001")
    with pytest.raises(InputError, match="is a void and cannot be replaced"):
        replacement(voided, "PAYERICN0001")
    with pytest.raises(InputError, match="voided again"):
        void(voided, "PAYERICN0001")


# --- the claim to the secondary, with the primary's adjudication --------------------------------


def test_secondary_claim_reports_what_the_primary_paid_line_by_line():
    content = send(secondary(sent_to_primary(), MEDICAID, primary_paid()))
    segments = parse(content)
    assert validate_x12(content) == []
    # 2000B: the claim goes to Medicaid as the secondary payer; a new claim there, same CLM01.
    assert find(segments, "SBR")[0] == ["SBR", "S", "18", "", "", "", "", "", "", "MC"]
    assert find(segments, "NM1", "PR")[0][9] == "MCD01"
    assert find(segments, "CLM")[0][1] == "PCN20250304A" and find(segments, "CLM")[0][5] == "10:B:1"
    assert find(segments, "REF", "F8") == [["REF", "F8", "PAYERICN0001"]]  # 2330B: the primary's number
    # 2320: the primary only (Medicaid is now the destination), paid 105, no claim-level CAS.
    [primary] = other_payer_loops(segments)
    assert [s[:2] for s in primary[:3]] == [["SBR", "P"], ["AMT", "D"], ["OI", ""]]
    assert ["AMT", "D", "105"] in primary and find(primary, "AMT", "EAF") == []
    assert find(primary, "DTP") == []  # the adjudication date travels with each line
    # 2430 per line: the payer as in 2330B NM109, its paid amount, CAS, DTP*573, AMT*EAF.
    first, second = service_lines(segments)
    assert first[3:] == [
        ["SVD", "99999", "90", "HC:90837:95", "", "1"],
        ["CAS", "CO", "45", "60"],
        ["CAS", "PR", "3", "30"],
        ["DTP", "573", "D8", "20250320"],
        ["AMT", "EAF", "30"],
    ]
    assert second[3:] == [
        ["SVD", "99999", "15", "HC:90785:95", "", "1"],
        ["CAS", "CO", "45", "5"],
        ["DTP", "573", "D8", "20250320"],
        ["AMT", "EAF", "0"],
    ]
    assert_balanced(segments)


def test_claim_level_adjudication_groups_adjustments_six_to_a_cas():
    # A paper remittance with claim-level amounts only: 200 = 105 paid + CO 65 + PR 30 (7 reasons).
    patient_share = [pr(reason, amount) for reason, amount in
                     (("1", "10"), ("2", "5"), ("3", "5"), ("119", "4"), ("204", "3"), ("96", "2"), ("B1", "1"))]
    adjudication = primary_paid(lines=(), claim_adjustments=(co("45", "65"), *patient_share),
                                patient_responsibility=None)
    content = send(secondary(sent_to_primary(), MEDICAID, adjudication))
    segments = parse(content)
    assert validate_x12(content) == []
    [primary] = other_payer_loops(segments)
    assert find(primary, "CAS") == [
        ["CAS", "CO", "45", "65"],
        ["CAS", "PR", "1", "10", "", "2", "5", "", "3", "5", "", "119", "4", "", "204", "3", "", "96", "2"],
        ["CAS", "PR", "B1", "1"],
    ]
    assert ["AMT", "D", "105"] in primary and ["AMT", "EAF", "30"] in primary  # EAF at claim level here
    assert ["DTP", "573", "D8", "20250320"] in primary  # 2330B, since no line reports it
    assert find(segments, "SVD") == []
    assert_balanced(segments)


def test_claim_level_adjustments_stay_at_claim_level_when_lines_are_reported():
    # Sequestration taken once on the claim: the lines paid 105, the claim 103.
    adjudication = primary_paid(paid_amount=Decimal("103"), claim_adjustments=(co("253", "2"),))
    segments = parse(send(secondary(sent_to_primary(), MEDICAID, adjudication)))
    [primary] = other_payer_loops(segments)
    assert find(primary, "CAS") == [["CAS", "CO", "253", "2"]]
    assert ["AMT", "D", "103"] in primary
    assert [s[2] for s in find(segments, "SVD")] == ["90", "15"]
    assert_balanced(segments)


def test_lines_are_paired_by_procedure_and_date_or_by_control_number():
    later = SERVICE_DATE + timedelta(days=7)
    lines = (
        ServiceLine("90837", SERVICE_DATE, ("95",), Decimal("180")),
        ServiceLine("90837", later, ("95",), Decimal("180"), control_number="L2"),
        ServiceLine("90785", later, ("95",), Decimal("20")),
    )
    original = sent_to_primary(lines=lines)
    adjudication = primary_paid(original, paid_amount=Decimal("195"), lines=(
        LineAdjudication(Decimal("20"), procedure_code="90785", modifiers=("95",)),
        LineAdjudication(Decimal("80"), (co("45", "100"),), control_number="L2"),
        LineAdjudication(Decimal("95"), (co("45", "85"),), procedure_code="90837", modifiers=("95",),
                         service_date=SERVICE_DATE),
    ))
    segments = parse(send(secondary(original, MEDICAID, adjudication)))
    assert [[s[2] for s in line if s[0] == "SVD"] for line in service_lines(segments)] == [["95"], ["80"], ["20"]]
    assert_balanced(segments)


def test_tertiary_claim_carries_both_earlier_payers():
    to_medicaid = secondary(sent_to_primary(), MEDICAID, primary_paid())
    medicaid_paid = PriorPayerAdjudication(
        coverage=MEDICAID, paid_amount=Decimal("20"), adjudication_date=date(2025, 4, 2),
        lines=(LineAdjudication(Decimal("20"), (co("45", "160"),), line_number=1),
               LineAdjudication(Decimal("0"), (co("23", "20"),), line_number=2)),
    )
    content = send(secondary(to_medicaid, SUPPLEMENT, medicaid_paid))
    segments = parse(content)
    assert validate_x12(content) == []
    assert find(segments, "SBR")[0][1] == "T"
    assert [loop[0][1] for loop in other_payer_loops(segments)] == ["P", "S"]
    assert [[a[0][1] for a in line_adjudications(line)] for line in service_lines(segments)] == [
        ["99999", "MCD01"], ["99999", "MCD01"],
    ]
    assert_balanced(segments)


# --- prior authorizations belong to the payer that issued them -----------------------------------


def authorization_numbers(segments: list[list[str]]) -> list[str]:
    return [s[2] for s in segments if s[:2] == ["REF", "G1"]]


def test_the_primarys_authorization_is_not_sent_to_the_secondary_payer():
    # AUTH12345 is the primary's (claim level), PRIM-7 too (line 2): Medicaid issued neither.
    original = sent_to_primary(lines=(sent_to_primary().lines[0],
                                      replace(sent_to_primary().lines[1], prior_authorization="PRIM-7")))
    assert authorization_numbers(parse(send(original))) == ["AUTH12345", "PRIM-7"]
    to_medicaid = secondary(original, MEDICAID, primary_paid(original))
    content = send(to_medicaid)
    assert validate_x12(content) == []
    assert authorization_numbers(parse(content)) == []
    assert to_medicaid.prior_authorization is None
    assert [line.prior_authorization for line in to_medicaid.lines] == [None, None]


def test_an_authorization_the_secondary_payer_issued_stays_on_its_claim():
    original = sent_to_primary(lines=(sent_to_primary().lines[0],
                                      replace(sent_to_primary().lines[1], prior_authorization="MCD-9")))
    to_medicaid = secondary(original, MEDICAID, primary_paid(original), next_payer_authorizations={"MCD-9"})
    content = send(to_medicaid)
    assert validate_x12(content) == []
    # The primary's claim-level AUTH12345 is gone; Medicaid's own number stays on its line.
    assert authorization_numbers(parse(content)) == ["MCD-9"]
    first, second = service_lines(parse(content))
    assert find(first, "REF", "G1") == [] and find(second, "REF", "G1") == [["REF", "G1", "MCD-9"]]


def test_a_number_both_payers_issued_goes_to_the_secondary_at_claim_level():
    to_medicaid = secondary(sent_to_primary(), MEDICAID, primary_paid(), next_payer_authorizations=["AUTH12345"])
    assert authorization_numbers(parse(send(to_medicaid))) == ["AUTH12345"]


def test_the_tertiary_claim_keeps_only_the_tertiary_payers_authorization():
    to_medicaid = secondary(sent_to_primary(), MEDICAID, primary_paid(), next_payer_authorizations={"AUTH12345"})
    medicaid_paid = PriorPayerAdjudication(coverage=MEDICAID, paid_amount=Decimal("0"),
                                           adjudication_date=date(2025, 4, 2),
                                           claim_adjustments=(co("23", "200"),))
    to_supplement = secondary(to_medicaid, SUPPLEMENT, medicaid_paid)
    assert authorization_numbers(parse(send(to_supplement))) == []


def test_a_replacement_and_a_void_go_to_the_same_payer_with_its_authorization():
    assert authorization_numbers(parse(send(replacement(sent_to_primary(), "ICN9")))) == ["AUTH12345"]
    assert authorization_numbers(parse(send(void(sent_to_primary(), "ICN9")))) == ["AUTH12345"]


# --- what the writer and the builders refuse ----------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ((LineAdjudication(Decimal("90"), (co("45", "90"),), procedure_code="90834"),
          LineAdjudication(Decimal("15"), (co("45", "5"),), line_number=2)), "matches no service line"),
        ((LineAdjudication(Decimal("90"), (co("45", "60"), pr("3", "30")), line_number=1),),
         "no line for service line 2"),
        ((LineAdjudication(Decimal("15"), (co("45", "5"),), line_number=2),
          LineAdjudication(Decimal("15"), (co("45", "5"),), line_number=2)), "service line 2 twice"),
        ((LineAdjudication(Decimal("90"), line_number=1),
          LineAdjudication(Decimal("15"), line_number=7)), "matches no service line"),
    ],
)
def test_secondary_whose_adjudication_does_not_match_the_lines_is_refused(lines, why):
    with pytest.raises(InputError, match=f"PCN20250304A: the adjudication does not match the claim's lines.*{why}"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(lines=lines))


def test_secondary_to_the_same_payer_is_refused():
    same_payer = replace(MEDICAID, payer=sent_to_primary().coverage.payer, member_id="OTHER1")
    with pytest.raises(InputError, match="next payer is payer 99999 again"):
        secondary(sent_to_primary(), same_payer, primary_paid())


def test_secondary_needs_the_adjudication_of_the_payer_the_claim_went_to():
    with pytest.raises(InputError, match="the adjudication is payer MCD01's"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(coverage=MEDICAID))
    with pytest.raises(InputError, match="order"):
        secondary(sent_to_primary(), replace(MEDICAID, order=1), primary_paid())


def test_adjudication_that_does_not_balance_is_refused_with_a_fix():
    unbalanced = primary_paid(lines=(
        LineAdjudication(Decimal("90"), (co("45", "60"),), line_number=1),  # PR-3 30 left out
        LineAdjudication(Decimal("15"), (co("45", "5"),), line_number=2),
    ))
    with pytest.raises(InputError, match="service line 1 does not balance") as refused:
        secondary(sent_to_primary(), MEDICAID, unbalanced)
    assert "paid + adjustments = charge" in (refused.value.fix or "")
    with pytest.raises(InputError, match="paid 100 on the claim, but its lines paid 105"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(paid_amount=Decimal("100")))
    with pytest.raises(InputError, match="is not the claim charge 200"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(lines=(), claim_adjustments=(co("45", "65"),)))


def test_adjustment_group_outside_5010_is_refused():
    with pytest.raises(InputError, match="group 'CR' is not CO, OA, PI or PR"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(
            paid_amount=Decimal("103"), claim_adjustments=(PayerAdjustment("CR", "253", Decimal("2")),)))


def test_adjudication_dated_before_the_service_is_refused():
    with pytest.raises(InputError, match="dated before the service"):
        secondary(sent_to_primary(), MEDICAID, primary_paid(adjudication_date=SERVICE_DATE - timedelta(days=1)))


# --- generated adjudications --------------------------------------------------------------------


@st.composite
def split(draw, charge: Decimal, line_number: int) -> LineAdjudication:
    """A line paid at most its charge; the rest split into CO-45 and PR-1/2/3."""
    cents = int(charge * 100)
    paid = draw(st.integers(0, cents))
    contractual = draw(st.integers(0, cents - paid))
    left = cents - paid - contractual
    cut = sorted(draw(st.lists(st.integers(0, left), min_size=2, max_size=2)))
    shares = {"CO:45": contractual, "PR:1": cut[0], "PR:2": cut[1] - cut[0], "PR:3": left - cut[1]}
    adjustments = tuple(
        PayerAdjustment(key[:2], key[3:], Decimal(amount).scaleb(-2)) for key, amount in shares.items() if amount
    )
    return LineAdjudication(Decimal(paid).scaleb(-2), adjustments, line_number=line_number)


@st.composite
def adjudicated_claims(draw) -> Claim:
    claim = draw(claims())
    primary = replace(claim.coverage, order=1)
    original = replace(claim, coverage=primary, other_coverages=(), frequency_code="1",
                       payer_claim_control_number=None, prior_authorization=None)
    next_payer = draw(coverages(order=2).filter(lambda c: c.payer.payer_id != primary.payer.payer_id))
    lines = [draw(split(line.charge, n)) for n, line in enumerate(original.lines, start=1)]
    lines = draw(st.permutations(lines))
    remitted = max(line.service_date for line in original.lines) + timedelta(days=draw(st.integers(0, 90)))
    paid = sum((a.paid_amount for a in lines), Decimal(0))
    if draw(st.booleans()):  # line by line
        adjudication = PriorPayerAdjudication(primary, paid, remitted, lines=tuple(lines))
    else:  # claim level only: the same amounts, added up by group and reason
        totals: dict[tuple[str, str], Decimal] = {}
        for a in (a for line in lines for a in line.adjustments):
            totals[a.group, a.reason] = totals.get((a.group, a.reason), Decimal(0)) + a.amount
        adjustments = tuple(PayerAdjustment(g, r, amount) for (g, r), amount in totals.items())
        adjudication = PriorPayerAdjudication(primary, paid, remitted, claim_adjustments=adjustments)
    return secondary(original, next_payer, adjudication)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adjudicated_claims())
def test_generated_secondary_claims_validate_and_balance(claim):
    content = send(claim)
    assert validate_x12(content) == []
    segments = parse(content)
    assert len(find(segments, "AMT", "D")) == 1
    assert_balanced(segments)
