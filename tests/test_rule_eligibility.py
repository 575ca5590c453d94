"""The eligibility claim checks (``bhhub.scrub.eligibility_checks``), one row per rule.

The claim is seed 4 of ``bhhub.demo.synthetic`` (payer 87726, member M00000004, a 90837 on
2026-10-16). Each case stores one answer, read with ``read_271`` from a fixture in
tests/fixtures/x12/271/ addressed to that member, and runs the check on the claim.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bhhub.intake import inbox as intake
from bhhub.demo.synthetic import encounter_bundle
from bhhub.eligibility import store
from bhhub.eligibility.x271 import read_271
from bhhub.scrub.eligibility_checks import check_eligibility
from bhhub.scrub.engine import BulkContext, ConnectionContext
from bhhub.store import schema
from bhhub.store.repo import claim_record

FIXTURES = Path(__file__).parent / "fixtures" / "x12" / "271"
PAYER, MEMBER = "87726", "M00000004"
CLAIM_DATE = date(2026, 10, 16)


def answer(name: str, index: int = 0, **replace: str):
    """Fixture ``name``'s ``index``-th response, addressed to payer 87726 and member M00000004;
    ``replace`` swaps segments (underscores stand for element separators)."""
    text = (FIXTURES / f"{name}.x12").read_text().replace("PI*60054", f"PI*{PAYER}")
    for member in ("ZQX10000101", "ZQX20000200", "ZQX40000400", "ZQX30000300", "ZQX50000500"):
        text = text.replace(member, MEMBER)
    for old, new in replace.items():
        assert old.replace("_", "*") in text
        text = text.replace(old.replace("_", "*"), new.replace("_", "*"))
    return read_271(text)[index]


@pytest.fixture
def claim(sqlite_hub):
    assert intake.receive(sqlite_hub, json.dumps(encounter_bundle(4)).encode(), "visit.json").outcome == "imported"
    with sqlite_hub.store.session() as session:
        row = session.scalars(select(schema.Claim)).one()
        return claim_record(session, row)


def keep(hub, response, *, service_date=CLAIM_DATE, patient: str | None = "own"):
    """Store ``response`` as the answer of a check about the claim's member on ``service_date``."""
    with hub.store.session() as session:
        patient_id = None
        if patient == "own":
            patient_id = session.scalar(select(schema.Patient.id).where(schema.Patient.key.like("%MRN0000004")))
        elif patient == "other":
            other = schema.Patient(key="fhir:MR|urn:example:ehr:mrn|SIBLING", family_name="Sibling")
            session.add(other)
            session.flush()
            patient_id = other.id
        row = store.ask(session, patient_id=patient_id, payer_id=PAYER, member_id=MEMBER, service_date=service_date,
                        service_types=("MH",), source="portal:test", reason="asked")
        store.answer(session, row, response)
        session.commit()


# The commercial plan's fixture requires an authorization for 90837 alone (EB13 HC:90837 with
# EB11 Y), which is the claim's code: the cases about something else name another code there.
ANOTHER_CODE = {"HC:90837": "HC:90838"}

CASES = [
    # rule, fixture, index, replacements, codes (severity), in the message
    ("eligibility.inactive", "dependents", 1, {"DTP_357_D8_20261031": "DTP_357_D8_20261015"},
     {"eligibility.inactive": "error"}, "coverage inactive on 2026-10-16 per payer 87726's answer of"),
    ("eligibility.inactive does not hold a visit before the coverage ended", "dependents", 1, {},
     {}, None),
    ("eligibility.carve_out", "carve-out", 0, {}, {"eligibility.carve_out": "error"},
     "administered by NORTHSTAR BEHAVIORAL HEALTH (payer id 77321), not payer 87726"),
    ("eligibility.visits_exhausted", "commercial-psychotherapy", 0, {"VS_8~": "VS_0~", **ANOTHER_CODE},
     {"eligibility.visits_exhausted": "error"}, "no covered mental-health visits remain (0 of 20)"),
    ("eligibility.auth_required", "dependents", 0, {}, {"eligibility.auth_required": "error"},
     "and none on file covers 2026-10-16"),
    ("eligibility.auth_required for the one procedure the payer names (EB13, EB11 Y)", "commercial-psychotherapy",
     0, {}, {"eligibility.auth_required": "error"}, "requires an authorization for 90837"),
    ("an authorization needed after the 12th visit does not hold the first", "msg-only-limits", 0, {}, {}, None),
    ("eligibility.not_covered", "commercial-psychotherapy", 0,
     {"IND_30^MH^A6_PR": "IND_30_PR", "EB_B_IND_MH___27_40____N_Y": "EB_I_IND_MH^A6^CF", **ANOTHER_CODE},
     {"eligibility.not_covered": "error"}, "line 1 (90837): psychotherapy (A6) is not covered"),
    ("eligibility.identity", "subscriber-not-found", 0, {}, {"eligibility.identity": "error"},
     "subscriber/insured not found (75)"),
    ("eligibility.rejected", "subscriber-not-found", 0, {"AAA_Y__75_C": "AAA_Y__43_C"},
     {"eligibility.rejected": "warning"}, "invalid or missing provider identification (43)"),
    ("active coverage with visits left and no authorization needed", "commercial-psychotherapy", 0, ANOTHER_CODE,
     {}, None),
    ("a payer unable to respond now says nothing", "payer-unable-to-respond", 0, {}, {}, None),
]


@pytest.mark.parametrize("rule, fixture, index, replace, expected, message", CASES, ids=[c[0] for c in CASES])
def test_rule(sqlite_hub, claim, rule, fixture, index, replace, expected, message):
    keep(sqlite_hub, answer(fixture, index, **replace))
    findings = check_eligibility(claim, sqlite_hub)
    assert {f.code: f.severity.value for f in findings} == expected
    if message:
        assert message in findings[0].message and findings[0].fix


def test_an_authorization_in_the_ledger_answers_the_payers_requirement(sqlite_hub, claim):
    from bhhub.ledger import authorizations as ledger

    keep(sqlite_hub, answer("dependents", 0))
    assert [f.code for f in check_eligibility(claim, sqlite_hub)] == ["eligibility.auth_required"]
    with sqlite_hub.store.session() as session:  # one that ended before the visit does not count
        ledger.add(session, payer_id=PAYER, member_id=MEMBER, number="A-OLD", quantity=6,
                   start=CLAIM_DATE - timedelta(days=90), end=CLAIM_DATE - timedelta(days=1))
        session.commit()
    assert [f.code for f in check_eligibility(claim, sqlite_hub)] == ["eligibility.auth_required"]
    with sqlite_hub.store.session() as session:
        ledger.add(session, payer_id=PAYER, member_id=MEMBER, number="A-NOW", quantity=6,
                   start=CLAIM_DATE - timedelta(days=10), end=CLAIM_DATE + timedelta(days=80))
        session.commit()
    assert check_eligibility(claim, sqlite_hub) == []


def test_no_check_on_file_is_no_finding(sqlite_hub, claim):
    assert check_eligibility(claim, sqlite_hub) == []


def test_an_answer_about_a_day_outside_the_window_is_not_used(sqlite_hub, claim):
    ended = answer("dependents", 1, DTP_357_D8_20261031="DTP_357_D8_20261015")
    keep(sqlite_hub, ended, service_date=CLAIM_DATE + timedelta(days=31))
    assert check_eligibility(claim, sqlite_hub) == []
    keep(sqlite_hub, ended, service_date=CLAIM_DATE + timedelta(days=30))
    assert [f.code for f in check_eligibility(claim, sqlite_hub)] == ["eligibility.inactive"]


def test_the_window_is_the_practices_table(sqlite_hub, claim):
    rules = sqlite_hub.settings.mappings_dir / "rules"
    rules.mkdir(parents=True)
    (rules / "eligibility.toml").write_text("[checks]\nwindow_days = 5\n", encoding="utf-8")
    keep(sqlite_hub, answer("dependents", 1, DTP_357_D8_20261031="DTP_357_D8_20261015"),
         service_date=CLAIM_DATE + timedelta(days=6))
    assert check_eligibility(claim, sqlite_hub) == []


def test_the_newest_answer_wins(sqlite_hub, claim):
    keep(sqlite_hub, answer("dependents", 1, DTP_357_D8_20261031="DTP_357_D8_20261015"))
    keep(sqlite_hub, answer("commercial-psychotherapy", **ANOTHER_CODE))
    assert check_eligibility(claim, sqlite_hub) == []


def test_an_answer_about_another_patient_sharing_the_member_id_is_not_used(sqlite_hub, claim):
    # Dependents without ids of their own share the subscriber's member id.
    keep(sqlite_hub, answer("dependents", 1, DTP_357_D8_20261031="DTP_357_D8_20261015"), patient="other")
    assert check_eligibility(claim, sqlite_hub) == []


def test_inside_a_transaction_the_check_sees_its_uncommitted_answer(sqlite_hub, claim):
    with sqlite_hub.store.session() as session:
        row = store.ask(session, patient_id=None, payer_id=PAYER, member_id=MEMBER, service_date=CLAIM_DATE,
                        service_types=("MH",), source="portal:test", reason="asked")
        store.answer(session, row, answer("carve-out"))
        context = ConnectionContext(sqlite_hub, session.connection())
        assert [f.code for f in check_eligibility(claim, context)] == ["eligibility.carve_out"]
        session.rollback()
    assert check_eligibility(claim, sqlite_hub) == []


def test_a_bulk_scrub_reads_the_answers_once(sqlite_hub, claim):
    keep(sqlite_hub, answer("carve-out"))
    context = BulkContext(sqlite_hub)
    assert [f.code for f in check_eligibility(claim, context)] == ["eligibility.carve_out"]
    with sqlite_hub.store.session() as session:
        session.execute(delete(schema.EligibilityCheck))
        session.commit()
    # Still found: read once into the context's cache, not again per claim.
    assert [f.code for f in check_eligibility(claim, context)] == ["eligibility.carve_out"]
    assert check_eligibility(claim, sqlite_hub) == []


def test_a_bulk_scrub_reads_refusals_and_coverage_once(sqlite_hub, claim):
    keep(sqlite_hub, answer("commercial-psychotherapy", **{**ANOTHER_CODE, "IND_30^MH^A6_PR": "IND_30_PR",
                                                            "EB_B_IND_MH___27_40____N_Y": "EB_I_IND_MH^A6^CF"}))
    keep(sqlite_hub, answer("subscriber-not-found", 1))  # AAA 72, after that answer
    context = BulkContext(sqlite_hub)
    expected = {"eligibility.identity", "eligibility.not_covered"}
    assert {f.code for f in check_eligibility(claim, context)} == expected
    with sqlite_hub.store.session() as session:
        session.execute(delete(schema.EligibilityCheck))
        session.commit()
    assert {f.code for f in check_eligibility(claim, context)} == expected
    assert check_eligibility(claim, sqlite_hub) == []
