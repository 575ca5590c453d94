"""Authorizations that arrive in bulk: a payer's FHIR ClaimResponse in an intake bundle, and a
CSV file (``bhhub auth import``). Each lands in the ledger once, however often it is sent.

The bundles are tests/fixtures/fhir/prior-auth.json (patient pat-8, member MEM1008 of payer
87726, visits on 2026-10-20 and 2026-11-03, ClaimResponse auth-oct for October with no count)
with the count put where payers put it.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.cli.main import main
from bhhub.errors import InputError
from bhhub.ledger import authorization_imports
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store import schema
from bhhub.types import IntakeContext
from bhhub.plugins.ehr.fhir_r4 import parse

FIXTURE = Path(__file__).parent / "fixtures" / "fhir" / "prior-auth.json"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
PAYER, MEMBER, NUMBER = "87726", "MEM1008", "PA-2026-0042"


# --- bundles ------------------------------------------------------------------------------------------


def concept(code: str, system: str = CPT) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def add_item(code: str, quantity, system: str = CPT, **extra) -> dict:
    return {"itemSequence": [1], "productOrService": concept(code, system), "quantity": {"value": quantity, **extra},
            "adjudication": [{"category": concept("eligible", ADJUDICATION)}]}


def item(sequence: int = 1, *, extension=(), adjudication=None) -> dict:
    """A ClaimResponse.item (R4 requires at least one adjudication)."""
    return {"itemSequence": sequence, "extension": list(extension),
            "adjudication": adjudication or [{"category": concept("submitted", ADJUDICATION)}]}


def authorized_detail(quantity, code: str | None = None) -> dict:
    parts = [{"url": "quantity", "valueQuantity": {"value": quantity}}]
    if code:
        parts.append({"url": "productOrServiceCode", "valueCodeableConcept": concept(code)})
    return {"url": PAS + "extension-itemAuthorizedDetail", "extension": parts}


def review_action(code: str) -> dict:
    return {"category": concept("submitted", ADJUDICATION), "extension": [
        {"url": PAS + "extension-reviewAction",
         "extension": [{"url": PAS + "extension-reviewActionCode", "valueCodeableConcept": concept(code, "x12-306")}]}]}


def request_claim(*items: tuple[str, int]) -> dict:
    """The preauthorization request (a Claim with use preauthorization: asked for, not billed)."""
    return {"resourceType": "Claim", "id": "pa-request", "status": "active", "use": "preauthorization",
            "type": concept("professional", "http://terminology.hl7.org/CodeSystem/claim-type"),
            "patient": {"reference": "Patient/pat-8"}, "created": "2026-09-20",
            "provider": {"reference": "Organization/practice"},
            "priority": concept("normal", "http://terminology.hl7.org/CodeSystem/processpriority"),
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-8"}}],
            "item": [{"sequence": n, "productOrService": concept(code), "quantity": {"value": qty}}
                     for n, (code, qty) in enumerate(items, start=1)]}


def bundle(*, request: dict | None = None, **auth_oct) -> dict:
    """prior-auth.json with ClaimResponse auth-oct changed (and the request Claim added)."""
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for entry in data["entry"]:
        if entry["resource"]["id"] == "auth-oct":
            entry["resource"].update(auth_oct)
    if request is not None:
        data["entry"].append({"fullUrl": "https://ehr.example.org/fhir/Claim/pa-request", "resource": request})
        for entry in data["entry"]:
            if entry["resource"]["id"] == "auth-oct":
                entry["resource"]["request"] = {"reference": "Claim/pa-request"}
    return data


def grants(data: dict):
    encounters = parse(json.dumps(data).encode(), IntakeContext("prior-auth.json", MappingSet()))
    assert len({e.authorizations for e in encounters}) == 1  # every visit of the patient carries them
    return encounters[0].authorizations


# --- reading the count --------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, expected", [
    pytest.param({"addItem": [add_item("90837", 12)]}, (("90837",), 12, "visits"),
                 id="addItem_product_and_quantity"),
    pytest.param({"addItem": [add_item("90834", 12), add_item("90837", 12)]}, (("90834", "90837"), 12, "visits"),
                 id="addItems_with_one_count_share_it"),
    pytest.param({"addItem": [add_item("H2019", 48, HCPCS)]}, (("H2019",), 48, "units"),
                 id="an_h_code_counts_units"),
    pytest.param({"addItem": [add_item("90837", 10, unit="units")]}, (("90837",), 10, "units"),
                 id="a_quantity_in_units_counts_units"),
    pytest.param({"item": [item(extension=[authorized_detail(8, "90834")])]}, (("90834",), 8, "visits"),
                 id="pas_item_authorized_detail"),
    pytest.param({"item": [item(extension=[authorized_detail(8)])], "request": request_claim(("90837", 10))},
                 (("90837",), 8, "visits"), id="pas_authorized_detail_without_a_code_takes_the_requested_code"),
    pytest.param({"item": [item(adjudication=[{"category": concept("eligible", ADJUDICATION), "value": 10}])],
                  "request": request_claim(("90837", 12))}, (("90837",), 10, "visits"),
                 id="item_adjudication_value_for_the_requested_item"),
    pytest.param({"request": request_claim(("90837", 6))}, (("90837",), 6, "visits"),
                 id="a_complete_answer_grants_the_request_as_asked"),
    pytest.param({"item": [item(1), item(2, adjudication=[review_action("A3")])],
                  "request": request_claim(("90837", 6), ("90785", 3))}, (("90837",), 6, "visits"),
                 id="an_item_not_certified_is_left_out"),
])
def test_claimresponse_count_is_read_where_payers_put_it(changes, expected):
    request = changes.pop("request", None)
    [grant] = grants(bundle(request=request, **changes))
    assert (grant.procedure_codes, grant.quantity, grant.unit_type) == (expected[0], Decimal(expected[1]), expected[2])
    assert (grant.payer_id, grant.member_id, grant.number) == (PAYER, MEMBER, NUMBER)
    assert (grant.start, grant.end, grant.source, grant.source_ref) == (
        date(2026, 10, 1), date(2026, 10, 31), "fhir", "ClaimResponse/auth-oct")


@pytest.mark.parametrize("changes", [
    pytest.param({}, id="no_count_anywhere"),
    pytest.param({"item": [item(adjudication=[{"category": concept("eligible", ADJUDICATION), "value": 10}])]},
                 id="an_adjudication_value_whose_request_is_not_in_the_bundle"),
    pytest.param({"addItem": [add_item("90837", 12), add_item("90791", 1)]}, id="items_with_different_counts"),
    pytest.param({"addItem": [add_item("90837", 12)], "outcome": "queued"}, id="an_answer_still_queued"),
    pytest.param({"request": request_claim(("90837", 6)), "outcome": "partial"},
                 id="a_partial_answer_does_not_grant_the_request_as_asked"),
    pytest.param({"addItem": [add_item("90837", 12)], "preAuthPeriod": {"start": "2026-10-01"}},
                 id="a_period_without_an_end"),
])
def test_a_claimresponse_whose_count_cannot_be_read_is_not_a_ledger_entry(changes):
    request = changes.pop("request", None)
    data = bundle(request=request, **changes)
    assert grants(data) == ()
    visits = {e.source_ref: e for e in parse(json.dumps(data).encode(), IntakeContext("x", MappingSet()))}
    if changes.get("preAuthPeriod") is None:  # the number still goes on the October claim, as before
        assert visits["Encounter/enc-8-oct"].prior_authorization == NUMBER


# --- into the ledger ----------------------------------------------------------------------------------


def require_authorization(hub) -> None:
    """The practice's rule: payer 87726 authorizes every code."""
    rules = hub.settings.mappings_dir / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "authorization.toml").write_text(f'[payers."{PAYER}"]\nrequires_authorization = []\n', encoding="utf-8")


def receive(hub, data: dict, name: str) -> None:
    result = intake.receive(hub, json.dumps(data).encode(), name)
    assert result.outcome in ("imported", "duplicate"), result.reason


def ledger_rows(hub) -> list[schema.Authorization]:
    with hub.store.session() as session:
        return list(session.scalars(select(schema.Authorization).order_by(schema.Authorization.id)))


def audit_actions(hub) -> list[str]:
    with hub.store.session() as session:
        return [e.action for e in session.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id))
                if e.object_type == "authorization"]


def claim_statuses(hub) -> dict[str, tuple[str, set[str]]]:
    with hub.store.session() as session:
        rows = session.execute(select(schema.Encounter.source_ref, schema.Claim)
                               .join(schema.Claim, schema.Claim.encounter_id == schema.Encounter.id)).all()
        return {ref: (claim.status, {f.code for f in claim.findings}) for ref, claim in rows}


def test_claimresponse_preauthorization_becomes_a_ledger_entry_once(hub):
    first = bundle(addItem=[add_item("90837", 12)])
    receive(hub, first, "day-1.json")
    receive(hub, first, "day-1-again.json")  # the same bytes: the inbox knows them
    resent = bundle(addItem=[add_item("90837", 12)])
    resent["id"] = "another-export"  # another bundle carrying the same ClaimResponse
    receive(hub, resent, "day-2.json")
    [row] = ledger_rows(hub)
    assert (row.payer_id, row.member_id, row.number, row.quantity, row.unit_type, row.procedure_codes) == (
        PAYER, MEMBER, NUMBER, 12, "visits", ["90837"])
    assert (row.start_date, row.end_date, row.source, row.status) == (date(2026, 10, 1), date(2026, 10, 31), "fhir",
                                                                      "active")
    assert row.patient_id is not None
    assert audit_actions(hub) == ["authorization_added"]


def test_the_claim_in_the_same_bundle_is_checked_against_the_authorization_it_brought(hub):
    require_authorization(hub)
    receive(hub, bundle(addItem=[add_item("90837", 12)]), "with-count.json")
    statuses = claim_statuses(hub)
    assert statuses["Encounter/enc-8-oct"][0] == "ready"
    assert not {c for c in statuses["Encounter/enc-8-oct"][1] if c.startswith("auth.") and c != "auth.nearly_used"}
    assert statuses["Encounter/enc-8-nov"] == ("needs_attention", statuses["Encounter/enc-8-nov"][1])
    assert "auth.outside_dates" in statuses["Encounter/enc-8-nov"][1]  # November is outside October's


def test_a_claimresponse_without_a_count_leaves_the_claim_held_for_its_authorization(hub):
    require_authorization(hub)
    receive(hub, bundle(), "no-count.json")
    assert ledger_rows(hub) == []
    status, codes = claim_statuses(hub)["Encounter/enc-8-oct"]
    assert (status, "auth.missing" in codes) == ("needs_attention", True)


def test_a_later_claimresponse_changes_the_dates_and_count_and_an_earlier_one_does_not(hub):
    receive(hub, bundle(addItem=[add_item("90837", 12)], created="2026-09-28"), "first.json")
    extended = bundle(addItem=[add_item("90837", 20)], created="2026-10-25",
                      preAuthPeriod={"start": "2026-10-01", "end": "2026-12-31"})
    receive(hub, extended, "extension.json")
    stale = bundle(addItem=[add_item("90837", 12)], created="2026-09-28", id="auth-oct")
    stale["id"] = "a-late-copy-of-the-first-answer"
    receive(hub, stale, "stale.json")
    [row] = ledger_rows(hub)
    assert (row.quantity, row.end_date) == (20, date(2026, 12, 31))
    assert audit_actions(hub) == ["authorization_added", "authorization_updated"]


def test_a_voided_fhir_authorization_is_not_brought_back_by_the_same_answer(hub, capsys):
    receive(hub, bundle(addItem=[add_item("90837", 12)]), "first.json")
    [row] = ledger_rows(hub)
    assert main(["--home", str(hub.settings.home), "auth", "void", str(row.id)]) == 0
    again = bundle(addItem=[add_item("90837", 12)])
    again["id"] = "re-export"
    receive(hub, again, "again.json")
    assert [r.status for r in ledger_rows(hub)] == ["void"]


# --- CSV ----------------------------------------------------------------------------------------------

HEADER = ",".join(authorization_imports.COLUMNS)


def csv_file(tmp_path: Path, *rows: str, name: str = "auths.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_an_authorization_file_with_bad_rows_names_each_line_and_imports_nothing(hub, tmp_path):
    path = csv_file(tmp_path,
                    f"{PAYER},{MEMBER},A-1,12,visits,90834 90837,2026-10-01,2026-12-31,,portal",
                    f"{PAYER},{MEMBER},A-2,ten,visits,,2026-10-01,2026-31-12,1234567890,",
                    f"{PAYER},,A-3,4,hours,9083,2026-10-01,2026-09-01,,fax",
                    f"{PAYER},{MEMBER},A-1,6,visits,,2026-10-01,2026-12-31,,")
    with hub.store.session() as session, pytest.raises(InputError) as caught:
        authorization_imports.import_csv(session, path)
    message = str(caught.value)
    assert "4 bad row(s), nothing imported" not in message and "3 bad row(s), nothing imported" in message
    assert "line 3: quantity 'ten'" in message and "2026-31-12" in message and "check digit" in message
    assert "line 4:" in message and "'hours'" in message and "'fax'" in message and "ends (2026-09-01)" in message
    assert "line 5: authorization A-1 repeats line 2 with other terms" in message
    assert "line 2:" not in message
    assert ledger_rows(hub) == []


def test_an_imported_count_is_read_as_auth_add_reads_it(hub, tmp_path):
    path = csv_file(tmp_path,
                    f"{PAYER},{MEMBER},A-1,1.5,visits,,2026-10-01,2026-12-31,,",
                    f"{PAYER},{MEMBER},A-2,1e400,units,,2026-10-01,2026-12-31,,",
                    f"{PAYER},{MEMBER},A-3,2.5,units,,2026-10-01,2026-12-31,,")
    with hub.store.session() as session, pytest.raises(InputError) as caught:
        authorization_imports.import_csv(session, path)
    message = str(caught.value)
    assert "line 2: visits are counted whole" in message and "line 3: the authorized count must be below" in message
    assert "line 4:" not in message  # part units are a payer's grant (testing hours)
    assert ledger_rows(hub) == []


def test_importing_the_same_authorization_file_twice_adds_nothing(hub, tmp_path, capsys):
    path = csv_file(tmp_path,
                    f"{PAYER},{MEMBER},A-1,12,visits,90834;90837,2026-10-01,2026-12-31,,portal",
                    f"{PAYER},M-OTHER,B-7,48,units,H2019,2026-10-01,2026-12-31,1999999984,")
    home = str(hub.settings.home)
    # no claim for the payer yet: the practice names it, so the hub knows it (bhhub.ledger.payers)
    (hub.settings.home / "mappings").mkdir(exist_ok=True)
    (hub.settings.home / "mappings" / "payers.toml").write_text(f'[payer."{PAYER}"]\n', encoding="utf-8")
    assert main(["--home", home, "auth", "import", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["added"], first["on_file"]) == (2, 0)
    assert main(["--home", home, "auth", "import", str(path), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["added"], second["on_file"], second["differing_lines"]) == (0, 2, [])
    rows = ledger_rows(hub)
    assert [(r.number, r.quantity, r.unit_type, r.procedure_codes, r.rendering_npi, r.source) for r in rows] == [
        ("A-1", 12, "visits", ["90834", "90837"], None, "portal"),
        ("B-7", 48, "units", ["H2019"], "1999999984", "typed")]

    changed = csv_file(tmp_path, f"{PAYER},{MEMBER},A-1,20,visits,90834;90837,2026-10-01,2026-12-31,,portal",
                       name="changed.csv")
    assert main(["--home", home, "auth", "import", str(changed)]) == 0
    assert "line(s) 2: on file with other terms, left as they are" in capsys.readouterr().out
    assert [r.quantity for r in ledger_rows(hub)] == [12, 48]


def test_an_authorization_file_with_an_unknown_header_is_refused_in_one_line(hub, tmp_path, capsys):
    path = tmp_path / "a.csv"
    path.write_text("payer,member,auth\n87726,M,1\n", encoding="utf-8")
    assert main(["--home", str(hub.settings.home), "auth", "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "missing payer_id, member_id, number, quantity, start, end" in err and "Traceback" not in err


def test_auth_import_help_documents_the_header(capsys):
    with pytest.raises(SystemExit):
        main(["auth", "import", "--help"])
    assert HEADER in capsys.readouterr().out
