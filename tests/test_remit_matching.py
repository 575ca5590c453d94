"""Never post a payment to someone else's claim: an 835 claim payment posts to a claim of the
same payer, and a match by anything but its CLP01 (the payer's claim number, the lines) must be
the same patient's and the only one. Otherwise it waits, with the reason, in `bhhub remit unmatched`.

The 835s are written from the claims the hub sent (``tests/test_remittance.py``'s ``sent`` and
``Remit``); another patient is a name and member id the hub does not hold.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.cli.main import main
from bhhub.store import schema
from test_remittance import Remit, sent, statuses  # noqa: F401 - ``sent`` is a fixture

D = Decimal
CONTRACTUAL = [("CO", "45", D("10"))]


def posted(hub) -> list[tuple[str, str, str | None]]:
    """(CLP01, state, the claim posted to) of every claim payment, in order."""
    with hub.store.session() as session:
        rows = session.execute(select(schema.RemitClaim, schema.Claim.patient_control_number)
                               .outerjoin(schema.Claim, schema.Claim.id == schema.RemitClaim.claim_id)
                               .order_by(schema.RemitClaim.id)).all()
    return [(r.patient_control_number, r.state, pcn) for r, pcn in rows]


def unmatched(capsys, home) -> list[dict]:
    capsys.readouterr()
    assert main(["--home", str(home), "remit", "unmatched", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def someone_else(info: dict, family: str = "OTHERPERSON", given: str = "ALEX", member_id: str = "XZ999999") -> dict:
    """The same service, charge and date as ``info``, for a patient the hub does not hold."""
    return {**info, "patient": (family, given), "member_id": member_id}


def test_a_payment_for_another_patient_with_the_same_lines_is_not_posted_to_our_claim(hub, hub_home, sent, capsys):
    a, *_ = sent
    remit = Remit("TRACE-OTHER").claim("THEIRS0001", someone_else(sent[a]), lines=[CONTRACTUAL] * len(sent[a]["lines"]))
    assert intake.receive(hub, remit.bytes(21), "other-patient.835").outcome == "imported"
    assert statuses(hub)[a] == "submitted"
    assert posted(hub) == [("THEIRS0001", "unmatched", None)]
    [waiting] = unmatched(capsys, hub_home)
    assert "member id" in waiting["reason"] and "bhhub remit match" in waiting["reason"]
    assert "XZ999999" not in waiting["reason"] and "OTHERPERSON" not in waiting["reason"]  # no PHI in reasons


def test_the_same_patient_with_the_same_lines_still_matches_when_the_payer_mangles_clp01(hub, sent):
    a, *_ = sent
    remit = Remit("TRACE-MANGLED").claim("MANGLED0001", sent[a], lines=[CONTRACTUAL] * len(sent[a]["lines"]))
    intake.receive(hub, remit.bytes(22), "mangled.835")
    assert posted(hub) == [("MANGLED0001", "posted", a)]


def test_a_payment_by_our_claims_payer_number_for_another_patient_is_not_posted(hub, hub_home, sent, capsys):
    a, *_ = sent
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        claim.payer_claim_control_number = "PAYER-A-1"
        session.commit()
    other = someone_else({"charge": D("90"), "lines": [("90832", D("90"), sent[a]["lines"][0][2])]})
    remit = Remit("TRACE-ICN", payer=sent[a]["payer"]).claim("THEIRS0002", other, lines=[CONTRACTUAL],
                                                              payer_number="PAYER-A-1")
    intake.receive(hub, remit.bytes(23), "icn.835")
    assert posted(hub) == [("THEIRS0002", "unmatched", None)]
    assert "member id" in unmatched(capsys, hub_home)[0]["reason"]


def test_a_payment_from_another_payer_is_not_posted_even_to_the_claim_its_clp01_names(hub, hub_home, sent, capsys):
    a, b, *_ = sent
    remit = Remit("TRACE-PAYER", payer=("00431", "SAMPLE MEDICARE PART B"))
    remit.claim(a, sent[a], lines=[CONTRACTUAL] * len(sent[a]["lines"]))
    remit.claim("MANGLED0002", sent[b], lines=[CONTRACTUAL])
    intake.receive(hub, remit.bytes(24), "wrong-payer.835")
    assert statuses(hub)[a] == statuses(hub)[b] == "submitted"
    assert [state for _, state, _ in posted(hub)] == ["unmatched", "unmatched"]
    first, second = unmatched(capsys, hub_home)
    assert "billed to payer 87726" in first["reason"] and "from payer 00431" in first["reason"]
    assert "another payer" in second["reason"]


def test_the_payer_named_by_its_835_name_or_a_listed_remittance_id_is_the_claims_payer(hub, hub_home, sent):
    a, b, *_ = sent
    by_name = Remit("TRACE-NAME", payer=("", "Sample Commercial Health-Plan"))  # no REF*2U; TRN03 is 1 + EIN
    by_name.claim(a, sent[a], lines=[CONTRACTUAL] * len(sent[a]["lines"]))
    intake.receive(hub, by_name.bytes(25), "by-name.835")
    (hub_home / "mappings").mkdir(exist_ok=True)
    (hub_home / "mappings" / "payers.toml").write_text('[payer."87726"]\nremittance_ids = ["PAYER-87726-ERA"]\n')
    from bhhub.runtime.app import Hub

    with Hub.open(hub_home) as reopened:  # the practice's mappings are read when the hub opens
        by_listed_id = Remit("TRACE-LISTED", payer=("PAYER-87726-ERA", "UNKNOWN NAME"))
        by_listed_id.claim(b, sent[b], lines=[CONTRACTUAL])
        intake.receive(reopened, by_listed_id.bytes(26), "by-id.835")
    assert posted(hub) == [(a, "posted", a), (b, "posted", b)]


# A patient the hub holds none of: names and member ids outside the synthetic practice's.
_strangers = st.fixed_dictionaries({
    "family": st.sampled_from(["ZZTOP", "OBRIEN", "NGUYEN", "SMITHJONES", "ALSAYED"]),
    "given": st.sampled_from(["ANA", "LOU", "JOSE", ""]),
    "member_id": st.text("ABCDEFGHJKLNPQRSTUVWXYZ0123456789", min_size=3, max_size=12).map(lambda s: "X" + s),
})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_payments_for_patients_the_hub_does_not_hold_never_post(hub, sent, data):
    """Property: whatever lines, charge, payer claim number or CLP01 (never one the hub sent) an
    835 gives a stranger's claim payment, it posts to no claim."""
    pcns = list(sent)
    with hub.store.session() as session:  # the payer's claim numbers known (from a 277CA) for every claim
        for claim in session.scalars(select(schema.Claim)):
            claim.payer_claim_control_number = f"ICN{claim.patient_control_number}"
        session.commit()
    before = statuses(hub)
    remit = Remit(f"T{data.draw(st.integers(0, 10**9))}", payer=sent[pcns[0]]["payer"])
    for n in range(data.draw(st.integers(1, 4))):
        like = sent[data.draw(st.sampled_from(pcns), label="copying the lines of")]
        stranger = data.draw(_strangers)
        number = data.draw(st.sampled_from([None, "UNKNOWN-ICN", *[f"ICN{p}" for p in pcns]]))
        remit.claim(f"STRANGER{n}{data.draw(st.integers(0, 999))}",
                    someone_else(like, stranger["family"], stranger["given"], stranger["member_id"]),
                    lines=[CONTRACTUAL] * len(like["lines"]), payer_number=number)
    intake.receive(hub, remit.bytes(data.draw(st.integers(30, 10**6))), "stranger.835")
    assert all(state != "posted" for _, state, _ in posted(hub))
    assert statuses(hub) == before
