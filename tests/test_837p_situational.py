"""The 005010X222A1 situational rules the 837P writer follows, each written from the TR3's note.

- 2010BA N3/N4 and DMG: "Required when the patient is the subscriber. If not required by this
  implementation guide, do not send." (the dependent patient's are in 2010CA).
- 2000C: "Required when the patient is a dependent of the subscriber identified in Loop ID-2000B
  and cannot be uniquely identified to the payer using the subscriber's identifier."
- 2300 REF*G1: the prior authorization for the claim; 2400 REF*G1: "Required when the service
  line involved a prior authorization number that is different than the number reported at the
  claim level." (domain reference 5.3: claim level when one authorization covers the claim,
  line level when lines have different ones).

Every file written here also passes pyx12.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from bhhub.model import Coverage, Payer, Person, PersonName, ServiceLine
from bhhub.x12.validate import validate_x12
from test_837p_writer import JOHN_DOE, SERVICE_DATE, example_claim, find, parse, write

PARENT = Person(name=PersonName("Doe", "Mary"), birth_date=date(1975, 5, 5), gender="F",
                address=JOHN_DOE.address)
CHILD = replace(JOHN_DOE, name=PersonName("Doe", "Sam"), birth_date=date(2012, 2, 2))
FAMILY_PLAN = Coverage(order=1, payer=Payer("99999", "Sample Health Plan", "CI"), member_id="FAM100",
                       relationship="19", subscriber=PARENT, group_number="GRP001")


def loop_2010ba(segments: list[list[str]]) -> list[list[str]]:
    """From NM1*IL (2010BA) up to NM1*PR (2010BB)."""
    start = segments.index(find(segments, "NM1", "IL")[0])
    end = segments.index(find(segments, "NM1", "PR")[0])
    return segments[start:end]


def written(claim) -> list[list[str]]:
    content = write(claim)
    assert validate_x12(content) == []
    return parse(content)


# --- 2010BA address and demographics: the subscriber's only when they are the patient --------------


def test_a_subscriber_who_is_the_patient_has_their_address_and_birth_date_in_2010ba():
    subscriber = loop_2010ba(written(example_claim()))
    assert [s[0] for s in subscriber] == ["NM1", "N3", "N4", "DMG"]
    assert subscriber[3] == ["DMG", "D8", "19800101", "M"]


def test_a_dependents_claim_leaves_the_subscribers_address_and_birth_date_out_of_2010ba():
    # The parent's address and birth date are known, but the guide says not to send them.
    segments = written(example_claim(patient=CHILD, coverage=FAMILY_PLAN))
    assert loop_2010ba(segments) == [["NM1", "IL", "1", "DOE", "MARY", "", "", "", "MI", "FAM100"]]
    # The patient's own address and demographics are in 2010CA, after PAT.
    patient_loop = segments[segments.index(["PAT", "19"]):]
    assert [s[0] for s in patient_loop[:5]] == ["PAT", "NM1", "N3", "N4", "DMG"]
    assert ["DMG", "D8", "20120202", "M"] in patient_loop
    assert len(find(segments, "DMG")) == 1


def test_a_dependent_identified_by_their_own_member_id_is_billed_as_the_subscriber():
    # The payer knows the child by their own member id (Coverage with relationship 18 and the
    # child's id): no 2000C, SBR02 18, the child's name, id, address and birth date in 2010BA.
    own_id = Coverage(order=1, payer=FAMILY_PLAN.payer, member_id="SAM200", group_number="GRP001")
    segments = written(example_claim(patient=CHILD, coverage=own_id))
    assert find(segments, "HL", "2") == [["HL", "2", "1", "22", "0"]] and find(segments, "HL", "3") == []
    assert find(segments, "PAT") == [] and find(segments, "NM1", "QC") == []
    assert find(segments, "SBR")[0][2] == "18"
    assert loop_2010ba(segments) == [
        ["NM1", "IL", "1", "DOE", "SAM", "", "", "", "MI", "SAM200"],
        ["N3", "200 OAK AVE"], ["N4", "SPRINGFIELD", "IL", "62702"], ["DMG", "D8", "20120202", "M"],
    ]


def test_a_dependent_without_a_member_id_of_their_own_gets_the_patient_loop():
    segments = written(example_claim(patient=CHILD, coverage=FAMILY_PLAN))
    assert find(segments, "HL", "2") == [["HL", "2", "1", "22", "1"]]
    assert find(segments, "HL", "3") == [["HL", "3", "2", "23", "0"]]
    assert find(segments, "SBR")[0][2] == ""  # SBR02 only when the subscriber is the patient


# --- REF*G1: claim level when one authorization covers every line, line level otherwise ------------


def lines_with(*authorizations: str | None) -> tuple[ServiceLine, ...]:
    return tuple(ServiceLine("90834", SERVICE_DATE, charge=Decimal("100"), prior_authorization=a,
                             control_number=f"L{n}") for n, a in enumerate(authorizations, start=1))


def authorizations_sent(segments: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """(the 2300 REF*G1 values, each 2400 loop's REF*G1 values)."""
    first_line = next(i for i, s in enumerate(segments) if s[0] == "LX")
    claim_level = [s[2] for s in segments[:first_line] if s[:2] == ["REF", "G1"]]
    starts = [i for i, s in enumerate(segments) if s[0] == "LX"] + [len(segments)]
    per_line = [[s[2] for s in segments[a:b] if s[:2] == ["REF", "G1"]] for a, b in zip(starts, starts[1:])]
    return claim_level, per_line


def test_one_authorization_on_every_line_goes_once_at_claim_level():
    claim = example_claim(prior_authorization=None, lines=lines_with("AUTH1", "AUTH1"))
    assert authorizations_sent(written(claim)) == (["AUTH1"], [[], []])


def test_a_line_repeating_the_claims_authorization_is_not_sent_it_again():
    claim = example_claim(prior_authorization="AUTH1", lines=lines_with("AUTH1", None))
    assert authorizations_sent(written(claim)) == (["AUTH1"], [[], []])


def test_lines_with_different_authorizations_each_carry_their_own():
    claim = example_claim(prior_authorization=None, lines=lines_with("AUTH1", "AUTH2"))
    assert authorizations_sent(written(claim)) == ([], [["AUTH1"], ["AUTH2"]])


def test_a_line_with_another_authorization_than_the_claims_carries_it_at_line_level():
    claim = example_claim(prior_authorization="AUTH1", lines=lines_with(None, "AUTH2", None))
    assert authorizations_sent(written(claim)) == (["AUTH1"], [[], ["AUTH2"], []])


def test_a_claim_authorization_that_every_line_replaces_is_not_sent():
    claim = example_claim(prior_authorization="OLD", lines=lines_with("AUTH1", "AUTH2"))
    assert authorizations_sent(written(claim)) == ([], [["AUTH1"], ["AUTH2"]])


def test_a_line_without_authorization_keeps_the_others_at_line_level():
    # Claim-level AUTH1 would claim it for line 3 too, which has none.
    claim = example_claim(prior_authorization=None, lines=lines_with("AUTH1", "AUTH1", None))
    assert authorizations_sent(written(claim)) == ([], [["AUTH1"], ["AUTH1"], []])

