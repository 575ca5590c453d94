"""Follow-up claims from the store: after an 835, a replacement, a void, the secondary claim.

Each is built with `bhhub followup`, goes out in the next batch, and the batch passes pyx12;
the secondary claim carries the primary's posted adjudication, and A/R follows the claim from
the primary to the secondary payer.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from conftest import FIXTURES
from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.store import schema
from bhhub.x12.validate import validate_x12
from test_remittance import Remit, claim_info

D = Decimal


def _send_one(hub, tmp_path, name: str) -> tuple[str, dict]:
    result = intake.receive(hub, (FIXTURES / "fhir" / name).read_bytes(), name)
    assert result.outcome == "imported", result.reason
    export_837p(hub, tmp_path / "first.x12")
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim)).one()
        claim.status = "submitted"
        session.commit()
        return claim.patient_control_number, claim_info(session, claim)


def _segments(content: bytes) -> list[list[str]]:
    return [s.strip().split("*") for s in content.decode().split("~") if s.strip()]


def test_replacement_and_void_after_the_835_go_out_valid_with_the_payers_number(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "lcsw-office-90837.json")
    remit = Remit("TRACE100").claim(pcn, info, lines=[[("CO", "45", D("20"))]] * len(info["lines"]),
                                    payer_number="ICN-777")
    intake.receive(hub, remit.bytes(1), "r.835")
    assert main(["--home", str(hub_home), "followup", "replace", pcn, "--as-billed"]) == 0
    replaced = export_837p(hub, tmp_path / "replacement.x12")
    content = (tmp_path / "replacement.x12").read_bytes()
    assert replaced.claim_count == 1 and validate_x12(content) == []
    segs = _segments(content)
    clm = next(s for s in segs if s[0] == "CLM")
    assert clm[1] == pcn and clm[5].split(":")[2] == "7"
    assert ["REF", "F8", "ICN-777"] in segs
    with hub.store.session() as session:  # the replacement went out (as `bhhub exchange` does)
        session.scalars(select(schema.Claim).where(schema.Claim.revision == 1)).one().status = "submitted"
        session.commit()

    assert main(["--home", str(hub_home), "followup", "void", pcn]) == 0
    export_837p(hub, tmp_path / "void.x12")
    content = (tmp_path / "void.x12").read_bytes()
    assert validate_x12(content) == []
    assert next(s for s in _segments(content) if s[0] == "CLM")[5].split(":")[2] == "8"
    with hub.store.session() as session:
        revisions = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)
                                    .order_by(schema.Claim.revision)).all()
        assert [(r.revision, r.frequency_code) for r in revisions] == [(0, "1"), (1, "7"), (2, "8")]
        assert revisions[1].status == "void"  # the replacement was voided


def test_a_void_or_replacement_needs_the_payers_claim_number(hub, hub_home, tmp_path, capsys):
    pcn, _ = _send_one(hub, tmp_path, "lcsw-office-90837.json")
    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "void", pcn]) == 1
    assert "no payer claim number yet" in capsys.readouterr().out


def test_the_secondary_claim_carries_the_primarys_adjudication_and_ar_follows_it(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    charge = info["charge"]
    remit = Remit("TRACE200").claim(pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]],
                                    payer_number="PRIMARY-1")
    intake.receive(hub, remit.bytes(1), "primary.835")
    primary_paid = charge - 30 - 24
    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 0
    export_837p(hub, tmp_path / "secondary.x12")
    content = (tmp_path / "secondary.x12").read_bytes()
    assert validate_x12(content) == []
    segs = _segments(content)
    assert [D(s[2]) for s in segs if s[:2] == ["AMT", "D"]] == [primary_paid]
    svd = next(s for s in segs if s[0] == "SVD")
    assert D(svd[2]) == primary_paid
    assert any(s[0] == "CAS" and s[1] == "PR" and s[2] == "2" and D(s[3]) == 24 for s in segs)

    # A/R: the 24.00 the primary left is now billed to the secondary, not to the patient
    as_of = (date.today() + timedelta(days=5)).isoformat()
    capsys.readouterr()
    assert main(["--home", str(hub_home), "ar", "--as-of", as_of, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    assert D(str(figures["insurance_ar"])) == D("24") and D(str(figures["patient_ar"])) == 0

    # the secondary pays 20 of it, 4 left to the patient (OA-23: the primary's impact)
    with hub.store.session() as session:
        second = session.scalars(select(schema.Claim).where(schema.Claim.revision == 1)).one()
        second.status = "submitted"
        session.commit()
        secondary = claim_info(session, second)  # billed to the secondary payer
    remit = Remit("TRACE201", "20261220").claim(
        pcn, secondary, "2", lines=[[("OA", "23", primary_paid + 30), ("PR", "1", D("4"))]], payer_number="SECOND-1")
    intake.receive(hub, remit.bytes(2), "secondary.835")
    capsys.readouterr()
    assert main(["--home", str(hub_home), "ar", "--as-of", as_of, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    assert D(str(figures["insurance_ar"])) == 0 and D(str(figures["patient_ar"])) == D("4")


def test_the_claim_to_the_secondary_payer_leaves_the_primarys_visit_used(hub, hub_home, tmp_path, capsys):
    """Issue 10: the ledger counts the visit once. The primary (00431) authorized 12 visits; the
    visit billed to it uses one, and billing the secondary (77027) afterwards gives none back."""
    from bhhub.ledger import authorization_uses
    from bhhub.ledger import authorizations as ledger

    with hub.store.session() as session:
        auth_id = ledger.add(session, payer_id="00431", member_id="2EG4TE5MK74", number="PA-12", quantity=12,
                             start=date(2026, 10, 1), end=date(2027, 3, 31)).id
        session.commit()
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    with hub.store.session() as session:
        assert authorization_uses.remaining(session, auth_id) == 11
    remit = Remit("TRACE300").claim(pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]],
                                    payer_number="PRIMARY-3")
    intake.receive(hub, remit.bytes(1), "primary.835")
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 0
    export_837p(hub, tmp_path / "secondary.x12")
    assert validate_x12((tmp_path / "secondary.x12").read_bytes()) == []
    with hub.store.session() as session:
        assert authorization_uses.remaining(session, auth_id) == 11  # main showed 12 of 12 left here
        uses = session.scalars(select(schema.AuthorizationUse)).all()
        assert [(u.authorization_id, u.released_at) for u in uses] == [(auth_id, None)]
