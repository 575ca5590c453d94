"""Remittance end to end: claims sent, 835s posted, denials worked, A/R computed from the store.

The 835s are written here from the claims the hub really sent (codes, charges, dates), the way
a payer adjudicates them, and arrive through the inbox as from a mailbox or `bhhub intake`.
Every figure asserted is worked out by hand in the test from the amounts in those 835s.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema

SEEDS = (19, 2, 4, 1, 24)  # 2-line, 1-line, 1-line, 2-line, 2-line claims, all to the commercial plan
D = Decimal


@pytest.fixture
def sent(hub, tmp_path) -> dict[str, dict]:
    """Five claims sent in one batch to one payer; pcn -> {charge, lines: [(code, charge, date)], and who:
    payer id and name, member id, patient's family and given names}."""
    for seed in SEEDS:
        assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
    export_837p(hub, tmp_path / "batch.x12")
    claims = {}
    with hub.store.session() as session:
        for claim in session.scalars(select(schema.Claim).order_by(schema.Claim.id)):
            claim.status = "submitted"
            claims[claim.patient_control_number] = claim_info(session, claim)
        session.commit()
    return claims


def claim_info(session, claim: schema.Claim) -> dict:
    """What a payer's 835 echoes of a sent claim: charge, lines [(code, charge, date)], the payer
    (id, name) it was billed to, the member id and the patient's (family, given) names."""
    coverage = session.get(schema.Coverage, claim.coverage_id)
    payer, patient = session.get(schema.Payer, coverage.payer_id), session.get(schema.Patient, claim.patient_id)
    return {"charge": claim.total_charge, "lines": [(l.procedure_code, l.charge, l.service_date) for l in claim.lines],
            "payer": (payer.payer_id, payer.name), "member_id": coverage.member_id,
            "patient": (patient.family_name, patient.given_name)}


class Remit:
    """An 835 written line by line, balanced like a payer's; from the payer of its first claim
    unless ``payer`` (id, name) says otherwise."""

    def __init__(self, trace: str, amount_date: str = "20261201", payer: tuple[str, str] | str | None = None):
        self.trace, self.date = trace, amount_date
        self.payer = ("", payer) if isinstance(payer, str) else payer  # a name alone: N1*PR only
        self.body: list[str] = []
        self.paid = D(0)
        self.interest = D(0)  # PLB L6 (negative: added to the deposit, so BPR02 is more than the claims)

    def claim(self, pcn: str, info: dict, status: str = "1", *, lines: list[list[tuple[str, str, D]]],
              sign: int = 1, payer_number: str | None = None) -> "Remit":
        """``lines``: per claim line, its CAS (group, reason, amount); paid = charge − Σ CAS."""
        paid_lines, svcs = [], []
        patient = D(0)
        for (code, charge, day), cas in zip(info["lines"], lines):
            line_paid = charge - sum((a for _, _, a in cas), D(0))
            paid_lines.append(line_paid)
            patient += sum((a for g, _, a in cas if g == "PR"), D(0))
            svcs += [f"SVC*HC:{code}*{sign * charge}*{sign * line_paid}**1", f"DTM*472*{day:%Y%m%d}"]
            for group in dict.fromkeys(g for g, _, _ in cas):
                triples = "**".join(f"{r}*{sign * a}" for g, r, a in cas if g == group)  # reason, amount, (quantity)
                svcs.append(f"CAS*{group}*{triples}")
        paid = sum(paid_lines, D(0))
        self.paid += sign * paid
        self.payer = self.payer or info.get("payer")
        family, given = info.get("patient", ("DOE", "JOHN"))
        self.body += [f"CLP*{pcn}*{status}*{sign * info['charge']}*{sign * paid}*{sign * patient}*12*"
                      f"{payer_number or 'ICN' + pcn}", f"NM1*QC*1*{family}*{given}****MI*{info.get('member_id', 'M12345')}",
                      *svcs]
        return self

    def bytes(self, n: int = 1) -> bytes:
        plb = [f"PLB*1234567893*20261231*L6*{-self.interest}"] if self.interest else []
        body = [f"ST*835*{n:04d}", f"BPR*I*{self.paid + self.interest}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*98765*{self.date}",
                f"TRN*1*{self.trace}*1512345678", f"DTM*405*{self.date}", *self._payer_segments(), "PER*BL*EDI*TE*5555550100", "N1*PE*SAMPLE PRACTICE*XX*1234567893", "LX*1",
                *self.body, *plb]
        body.append(f"SE*{len(body) + 1}*{n:04d}")
        isa = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*BHHUB          *261201*0800*^*00501*"
               f"{n:09d}*0*T*:~\n")
        return (isa + f"GS*HP*PAYER*BHHUB*{self.date}*0800*{n}*X*005010X221A1~\n" + "".join(s + "~\n" for s in body)
                + f"GE*1*{n}~\nIEA*1*{n:09d}~\n").encode()

    def _payer_segments(self) -> list[str]:
        """1000A: N1*PR with the payer's name, REF*2U with its id (the one the claim was billed to)."""
        payer_id, name = self.payer or ("", "SAMPLE HEALTH PLAN")
        return [f"N1*PR*{name}", "N3*1 MAIN ST", "N4*CITY*NY*10001", *([f"REF*2U*{payer_id}"] if payer_id else [])]


def statuses(hub) -> dict[str, str]:
    with hub.store.session() as session:
        return {c.patient_control_number: c.status for c in session.scalars(select(schema.Claim))}


def run_json(capsys, home, *args):
    capsys.readouterr()
    assert main(["--home", str(home), *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_posting_a_scenario_end_to_end(hub, hub_home, sent, capsys):
    a, b, c, d, e = sent  # in claim order
    A, B, C, Dd = sent[a], sent[b], sent[c], sent[d]
    first = Remit("TRACE001")
    # a: paid, contractual CO-45 and a copay on the first line
    first.claim(a, A, lines=[[("CO", "45", D("40")), ("PR", "3", D("20"))]] + [[("CO", "45", D("10"))]] * (len(A["lines"]) - 1))
    # b: partly denied: CO-45, then CO-151 (frequency not supported) for part of the line
    first.claim(b, B, lines=[[("CO", "45", D("30")), ("CO", "151", D("50"))]])
    # c: denied, no authorization
    first.claim(c, C, "4", lines=[[("CO", "197", C["lines"][0][1])]])
    # d: paid (later reversed and corrected)
    first.claim(d, Dd, lines=[[("CO", "45", D("50"))]] * len(Dd["lines"]))
    result = intake.receive(hub, first.bytes(1), "remit-1.835")
    assert result.outcome == "imported" and result.format == "x12-835", result.reason
    assert statuses(hub) == {a: "paid", b: "partially_paid", c: "denied", d: "paid", e: "submitted"}

    # the same 835 again, and the same payment in another envelope: nothing posted twice
    assert intake.receive(hub, first.bytes(1), "remit-1 again.835").outcome == "duplicate"
    again = intake.receive(hub, first.bytes(7), "remit-1 other envelope.835")
    assert again.outcome == "imported" and "1 already posted" in again.summary

    # d reversed, then corrected with less paid
    second = Remit("TRACE002", "20261215")
    second.claim(d, Dd, "22", sign=-1, lines=[[("CO", "45", D("50"))]] * len(Dd["lines"]))
    second.claim(d, Dd, lines=[[("CO", "45", D("70"))]] * len(Dd["lines"]))
    assert intake.receive(hub, second.bytes(2), "remit-2.835").outcome == "imported"
    assert statuses(hub)[d] == "paid"

    payments = run_json(capsys, hub_home, "remit", "list")
    assert [(p["trace_number"], p["claims"], p["claims_posted"], p["claims_unmatched"], p["claims_quarantined"])
            for p in payments] == [("TRACE001", 4, 4, 0, 0), ("TRACE002", 2, 2, 0, 0)]
    assert D(str(payments[0]["payment_amount"])) == D(str(payments[0]["paid_total"])) == first.paid
    with hub.store.session() as session:
        rows = session.scalars(select(schema.RemitClaim).where(schema.RemitClaim.patient_control_number == d)
                               .order_by(schema.RemitClaim.id)).all()
        assert [r.status_code for r in rows] == ["1", "22", "1"]
        assert rows[0].reversed_by_id == rows[1].id and rows[1].reverses_id == rows[0].id

    # denials: b's CO-151 and c's CO-197, oldest deadline first, with their categories
    denials = run_json(capsys, hub_home, "denials")
    assert sorted((x["patient_control_number"], x["adjustment"], x["category"]) for x in denials) == [
        (b, "CO-151", "medical_necessity"), (c, "CO-197", "authorization")]
    assert all(x["next_step"] for x in denials)

    # A/R as of 40 days from now: e has had no response at all; balances from the 835s
    as_of = date.today() + timedelta(days=40)
    report = run_json(capsys, hub_home, "ar", "--as-of", as_of.isoformat())
    paid_d = Dd["charge"] - 70 * len(Dd["lines"])
    expected_insurance = (D(0)  # a: fully resolved
                          + D("50")  # b: the open CO-151 denial is still owed until worked
                          + C["charge"]  # c: denied, open
                          + D(0)  # d: corrected payment resolves it
                          + sent[e]["charge"])  # e: nothing back yet
    assert D(str(report["figures"]["insurance_ar"])) == expected_insurance
    assert D(str(report["figures"]["patient_ar"])) == D("20")
    assert [x["patient_control_number"] for x in report["no_response_30_days"]] == [e]
    assert report["figures"]["claims_with_835"] == 4
    assert D(str(report["figures"]["denial_rate_count"])) == D("0.500")  # b and c of a, b, c, d
    denied = D("50") + C["charge"]
    charges = A["charge"] + B["charge"] + C["charge"] + Dd["charge"]
    assert D(str(report["figures"]["denial_rate_dollars"])) == (denied / charges).quantize(D("0.001"), ROUND_HALF_UP)
    payments_total = (A["charge"] - 40 - 20 - 10 * (len(A["lines"]) - 1)) + (B["charge"] - 80) + paid_d
    contractual = D(40) + 10 * (len(A["lines"]) - 1) + D(30) + 70 * len(Dd["lines"])
    assert D(str(report["figures"]["net_collection_rate"])) == (payments_total / (charges - contractual)).quantize(D("0.001"), ROUND_HALF_UP)
    total_bucket = report["aging"]["total"]["31-60"]
    assert D(str(total_bucket["insurance"])) == expected_insurance and total_bucket["claims"] == 4

    # working a denial takes it off the worklist and out of insurance A/R
    assert main(["--home", str(hub_home), "denials", "resolve", str(denials[0]["id"]), "--how", "appealed"]) == 0
    assert len(run_json(capsys, hub_home, "denials")) == 1


def test_unmatched_and_unbalanced_claim_payments_are_kept_and_the_rest_posts(hub, hub_home, sent, capsys):
    a, b, *_ = sent
    remit = Remit("TRACE009")
    remit.claim(a, sent[a], lines=[[("CO", "45", D("10"))]] * len(sent[a]["lines"]))
    remit.claim("NOTOURS123", {"charge": D("99"), "lines": [("90791", D("99"), date(2026, 10, 1))]},
                lines=[[("CO", "45", D("9"))]])
    remit.body.append(f"CLP*{b}*1*{sent[b]['charge']}*1.00*0*12*ICNX")  # does not balance: no CAS for the rest
    result = intake.receive(hub, remit.bytes(3), "remit-3.835")
    assert result.outcome == "imported"
    [payment] = run_json(capsys, hub_home, "remit", "list")
    assert (payment["claims"], payment["claims_posted"], payment["claims_unmatched"], payment["claims_quarantined"]) == (3, 1, 1, 1)
    waiting = run_json(capsys, hub_home, "remit", "unmatched")
    assert {w["state"] for w in waiting} == {"unmatched", "quarantined"}
    quarantined = next(w for w in waiting if w["state"] == "quarantined")
    assert "balance" in quarantined["reason"] and quarantined["patient_control_number"] == b
    assert statuses(hub)[b] == "submitted"  # not posted silently

    # a biller matches the unmatched one to a claim by hand
    unmatched = next(w for w in waiting if w["state"] == "unmatched")
    assert main(["--home", str(hub_home), "remit", "match", str(unmatched["id"]), b]) == 0
    assert statuses(hub)[b] == "paid"
    [payment] = run_json(capsys, hub_home, "remit", "list")
    assert payment["claims_posted"] == 2 and payment["claims_unmatched"] == 0


def test_a_claim_returned_under_the_payers_number_or_with_changed_modifiers_still_matches(hub, sent):
    a, b, *_ = sent
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        claim.payer_claim_control_number = "PAYER-A-1"
        session.commit()
    remit = Remit("TRACE010")
    remit.claim("MANGLED01", sent[a], lines=[[("CO", "45", D("10"))]] * len(sent[a]["lines"]), payer_number="PAYER-A-1")
    remit.claim("MANGLED02", sent[b], lines=[[("CO", "45", D("10"))]] * len(sent[b]["lines"]), payer_number="UNKNOWN")
    intake.receive(hub, remit.bytes(4), "remit-4.835")
    assert statuses(hub)[a] == "paid"  # by the payer's claim number
    assert statuses(hub)[b] == "paid"  # by charge, codes and dates


def _others_835s():
    from conftest import FIXTURES, SHARED_CORPORA

    own = sorted((FIXTURES.parent / "data" / "x12" / "835").glob("lfh-*.835"))
    own += [FIXTURES.parent / "data" / "x12" / "835" / "pyx12-835-mult-loops.x12"]
    shared = sorted((SHARED_CORPORA / "emedny-x12").glob("835-*.x12")) if SHARED_CORPORA.is_dir() else []
    return own + shared


def _figures_by_split(content: bytes) -> tuple[list[Decimal], int, Decimal]:
    """BPR02s, CLP count and ΣCLP04, read with nothing but str.split (independent of the reader)."""
    text = content.decode()
    element, terminator = text[3], text[105]
    segs = [s.strip().split(element) for s in text.split(terminator) if s.strip()]
    bprs = [Decimal(s[2]) for s in segs if s[0] == "BPR"]
    clps = [s for s in segs if s[0] == "CLP"]
    return bprs, len(clps), sum((Decimal(s[4]) for s in clps if len(s) > 4 and s[4]), Decimal(0))


@pytest.mark.parametrize("path", _others_835s(), ids=lambda p: p.name)
def test_835s_written_by_others_have_every_claim_payment_accounted_for(sqlite_hub, path, capsys):
    content = path.read_bytes()
    result = intake.receive(sqlite_hub, content, path.name)
    assert result.outcome == "imported", result.reason
    with sqlite_hub.store.session() as session:
        payments = session.scalars(select(schema.RemitPayment).order_by(schema.RemitPayment.id)).all()
        claims = session.scalars(select(schema.RemitClaim)).all()
    bprs, clp_count, paid = _figures_by_split(content)
    assert [p.amount for p in payments] == bprs
    assert sum(p.claims for p in payments) == len(claims) == clp_count
    assert sum(p.claims_posted + p.claims_unmatched + p.claims_quarantined for p in payments) == clp_count
    assert sum((p.paid_total for p in payments), Decimal(0)) == paid
    # none of these claims was sent by this hub: each is unmatched, or quarantined with a reason
    assert all(c.state in ("unmatched", "quarantined") and c.reason for c in claims)


def test_a_4010_remittance_is_quarantined_with_a_reason(sqlite_hub):
    from conftest import FIXTURES

    content = (FIXTURES.parent / "data" / "x12" / "835" / "pyx12-835-simple-4010.x12").read_bytes()
    result = intake.receive(sqlite_hub, content, "old.835")
    assert result.outcome == "quarantined" and "00401" in result.reason and "005010X221A1" in result.reason


def test_ar_as_text_and_csv_state_their_formulas_and_buckets(hub, hub_home, sent, capsys):
    import csv
    import io

    a, b, *_ = sent
    remit = Remit("TRACE300").claim(a, sent[a], lines=[[("CO", "45", D("10")), ("PR", "2", D("5"))]] * len(sent[a]["lines"]))
    intake.receive(hub, remit.bytes(5), "r.835")
    as_of = (date.today() + timedelta(days=95)).isoformat()
    capsys.readouterr()
    assert main(["--home", str(hub_home), "ar", "--as-of", as_of]) == 0
    text = capsys.readouterr().out
    assert "age from the date first billed" in text
    for phrase in ("days in ar", "clean claim rate", "first pass resolution rate", "denial rate count",
                   "net collection rate", "total A/R (insurance + patient) / (gross charges billed in the last 90 days / 90)"):
        assert phrase in text
    assert main(["--home", str(hub_home), "ar", "--as-of", as_of, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    owed = [r for r in rows if r["claims"] != "0"]
    assert {r["bucket"] for r in owed} == {"91-120"}  # billed today, 95 days before as-of
    by_payer = sum(Decimal(r["insurance"]) + Decimal(r["patient"]) for r in owed if r["group"] == "payer")
    by_provider = sum(Decimal(r["insurance"]) + Decimal(r["patient"]) for r in owed if r["group"] == "provider")
    expected = sum((info["charge"] for pcn, info in sent.items() if pcn != a), D(0)) + 5 * len(sent[a]["lines"])
    assert by_payer == by_provider == expected
