"""What a posted 835 means for the claim and for A/R: crossovers, who owes a PR amount, net
collection counted once across payers, and the remarks and PLB amounts payers apply.

The 835s are written here from the claims the hub sent, as a payer would: a Medicare-like primary
that forwards the claim to a supplemental plan itself, a payer that puts the wrong things on the
patient, a remittance that takes money back from an earlier claim. Figures are worked by hand.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.cli.main import main
from bhhub.claims.export import export_837p
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.remittance.denials import DenialRules
from bhhub.store import schema
from test_followups_store import _send_one
from test_remittance import Remit, run_json, sent, statuses  # noqa: F401  (sent is a fixture)

D = Decimal
AS_OF = (date.today() + timedelta(days=5)).isoformat()


class Payer835(Remit):
    """A ``Remit`` from a payer of its own (TRN03), with MOA remarks, a crossover carrier (NM1*TT)
    and PLB lines where a payer puts them."""

    def __init__(self, trace: str, amount_date: str = "20261201", payer: str | None = None,
                 payer_id: str | None = None):
        # No payer named: the payer the first claim was billed to (as a real 835 would be).
        super().__init__(trace, amount_date, (payer_id or "", payer) if payer else None)
        self.payer_id = payer_id
        self.plb: list[tuple[str, str, D]] = []

    def claim(self, pcn: str, info: dict, status: str = "1", *, lines, crossover_to: str | None = None,
              remarks: tuple[str, ...] = (), payer_number: str | None = None) -> "Payer835":
        super().claim(pcn, info, status, lines=lines, payer_number=payer_number)
        extra = [f"NM1*TT*2*{crossover_to}*****PI*54321"] if crossover_to else []
        if remarks:
            extra.append("MOA***" + "*".join(remarks))  # MOA03-07: claim-level remark codes
        at = max(i for i, s in enumerate(self.body) if s.startswith("NM1*QC")) + 1
        self.body[at:at] = extra  # 2100 order: NM1*QC, NM1*TT, MOA, then the 2110 lines
        return self

    def provider_adjustment(self, reason: str, reference: str, amount: D) -> "Payer835":
        self.plb.append((reason, reference, amount))
        self.paid -= amount  # a positive PLB reduces the deposit (domain reference 6.4)
        return self

    def bytes(self, n: int = 1) -> bytes:
        text = super().bytes(n).decode()
        if self.payer_id:
            text = text.replace("*1512345678~", f"*{self.payer_id}~", 1)  # TRN03
        if self.plb:
            pairs = "*".join(f"{reason}:{ref}*{amount}" for reason, ref, amount in self.plb)
            se_at = text.index("SE*")
            count = int(text[se_at:].split("*")[1]) + 1
            text = (text[:se_at] + f"PLB*1234567893*20261231*{pairs}~\n"
                    + text[se_at:].replace(f"SE*{count - 1}*", f"SE*{count}*", 1))
        return text.encode()


def post(hub, remit: Remit, name: str, n: int = 1) -> None:
    result = intake.receive(hub, remit.bytes(n), name)
    assert result.outcome == "imported", result.reason
    assert "0 quarantined" in result.summary and "0 unmatched" in result.summary, result.summary


def figures(capsys, home) -> dict:
    return run_json(capsys, home, "ar", "--as-of", AS_OF)["figures"]


def claim_view(capsys, home, pcn: str) -> dict:
    return next(c for c in run_json(capsys, home, "claims") if c["patient_control_number"] == pcn)


# --- 7: crossovers -------------------------------------------------------------------------------


def test_a_crossover_is_not_billed_twice_and_the_secondary_owes_the_share_until_its_835(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    charge = info["charge"]
    primary = Payer835("XOVER1", payer="SAMPLE MEDICARE PART B", payer_id="00431").claim(
        pcn, info, "19", lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]], crossover_to="MEDIGAP PLAN",
        remarks=("MA18",))
    post(hub, primary, "primary.835")
    primary_paid = charge - 30 - 24

    # the claim says the supplemental plan has it
    assert statuses(hub)[pcn] == "paid"
    view = claim_view(capsys, hub_home, pcn)
    assert "forwarded to MEDIGAP PLAN" in view["status_reason"]
    assert view["remittance"]["crossover"]["to"] == "MEDIGAP PLAN"
    assert view["remittance"]["crossover"]["waiting_for_835"] is True
    assert [r["code"] for r in view["remittance"]["postings"][0]["remarks"]] == ["MA18"]

    # no secondary claim is built, and the biller is told why
    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 1
    refused = capsys.readouterr().out
    assert "crossover" in refused and "MEDIGAP PLAN" in refused and "not billed again" in refused
    with hub.store.session() as session:
        assert session.scalars(select(schema.Claim.revision)).all() == [0]

    # the 24.00 coinsurance is owed by the supplemental plan, not the patient
    owed = figures(capsys, hub_home)
    assert D(str(owed["insurance_ar"])) == D("24") and D(str(owed["patient_ar"])) == 0

    # the supplemental plan's own 835 (same CLP01) pays 20, leaves 4 to the patient
    secondary = Payer835("XOVER2", "20261215", payer="MEDIGAP PLAN", payer_id="MEDIGAP01").claim(
        pcn, info, "2", lines=[[("OA", "23", primary_paid + 30), ("PR", "1", D("4"))]])
    post(hub, secondary, "secondary.835", 2)
    owed = figures(capsys, hub_home)
    assert D(str(owed["insurance_ar"])) == 0 and D(str(owed["patient_ar"])) == D("4")
    assert claim_view(capsys, hub_home, pcn)["remittance"]["crossover"] is None
    # payments 100% of the primary's paid plus 20, over the charge less the primary's CO-45 only
    expected = ((primary_paid + 20) / (charge - 30)).quantize(D("0.001"))  # a fraction, as coinsurance
    assert D(str(owed["net_collection_rate"])) == expected


def test_a_crossover_names_the_forwarding_payer_by_the_hubs_payer_id_with_the_835s_beside(hub, hub_home, tmp_path,
                                                                                          capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    # The payer names itself by N1*PR name and its trace's originator (TRN03) only, not 00431.
    post(hub, Payer835("XONAME", payer="SAMPLE MEDICARE PART B").claim(
        pcn, info, "19", lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]], crossover_to="MEDIGAP PLAN"),
        "primary.835")
    remittance = claim_view(capsys, hub_home, pcn)["remittance"]
    crossover, posting = remittance["crossover"], remittance["postings"][0]
    assert posting["payer_id"] == "00431" and posting["payer_id_835"] != "00431"
    assert crossover["forwarded_by"] == "00431"  # the claim's payer id, as postings[].payer_id
    assert crossover["forwarded_by_835"] == posting["payer_id_835"]
    assert "by payer 00431 (" in crossover["note"]

    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 1
    assert "by payer 00431 (" in capsys.readouterr().out


def test_after_a_crossover_only_the_payer_it_went_to_posts_to_the_claim(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    post(hub, Payer835("XO1", payer="SAMPLE MEDICARE PART B", payer_id="00431").claim(
        pcn, info, "19", lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]], crossover_to="MEDIGAP PLAN"), "p.835")
    stranger = Payer835("XO2", "20261215", payer="SOME OTHER PLAN", payer_id="OTHER01").claim(
        pcn, info, "2", lines=[[("OA", "23", info["charge"] - 24), ("PR", "1", D("4"))]])
    result = intake.receive(hub, stranger.bytes(2), "other.835")
    assert "0 posted, 1 unmatched" in result.summary
    # the patient's own secondary coverage on file (Medicaid) is a payer the claim may go on to
    on_file = Payer835("XO3", "20261216", payer="SAMPLE MEDICAID", payer_id="77027").claim(
        pcn, info, "2", lines=[[("OA", "23", info["charge"] - 24), ("PR", "1", D("4"))]])
    assert "1 posted" in intake.receive(hub, on_file.bytes(3), "medicaid.835").summary


def test_after_a_crossover_naming_no_payer_another_patients_name_does_not_post(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    post(hub, Payer835("XN1", payer="SAMPLE MEDICARE PART B", payer_id="00431").claim(
        pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]], remarks=("MA18",)), "p.835")
    family, given = info["patient"]
    stranger = Payer835("XN2", "20261215", payer="SOME OTHER PLAN", payer_id="OTHER01").claim(
        pcn, {**info, "patient": (family, "NOTTHEPATIENT"), "member_id": "X0000000"}, "2",
        lines=[[("OA", "23", info["charge"] - 24), ("PR", "1", D("4"))]])
    assert "0 posted, 1 unmatched" in intake.receive(hub, stranger.bytes(2), "stranger.835").summary
    theirs = Payer835("XN3", "20261216", payer="SOME OTHER PLAN", payer_id="OTHER01").claim(
        pcn, {**info, "member_id": "X0000000"}, "2", lines=[[("OA", "23", info["charge"] - 24), ("PR", "1", D("4"))]])
    assert "1 posted" in intake.receive(hub, theirs.bytes(3), "next payer.835").summary


def test_a_crossover_told_only_by_the_remark_code_still_stops_the_secondary_claim(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    post(hub, Payer835("XOVER3").claim(pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]],
                                       remarks=("N89",)), "primary.835")
    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 1
    assert "forwarded to the next payer" in capsys.readouterr().out


# --- 11: patient responsibility only where the patient owes it ----------------------------------


def test_a_wrong_payer_pr_sends_the_biller_to_the_right_payer_not_the_patient(hub, hub_home, sent, capsys):
    a, *_ = sent
    info = sent[a]
    # the payer says coverage ended (27) and puts the whole charge on the patient: paid $0
    remit = Remit("WRONG1").claim(a, info, lines=[[("PR", "27", charge)] for _, charge, _ in info["lines"]])
    post(hub, remit, "wrong.835")

    assert statuses(hub)[a] == "denied"  # not partially_paid: the payer paid nothing
    denials = [x for x in run_json(capsys, hub_home, "denials") if x["patient_control_number"] == a]
    assert {x["adjustment"] for x in denials} == {"PR-27"}
    assert all(x["action"] == "check_eligibility" and "do not bill the patient" in x["next_step"] for x in denials)
    owed = figures(capsys, hub_home)
    assert D(str(owed["patient_ar"])) == 0  # the right payer owes it until the biller finds it
    others = sum((sent[p]["charge"] for p in sent if p != a), D(0))
    assert D(str(owed["insurance_ar"])) == others + info["charge"]


def test_a_non_covered_pr_is_the_patients_only_once_an_advance_notice_is_on_file(hub, hub_home, sent, capsys):
    _, b, c, *_ = sent
    with hub.store.session() as session:  # c's service was billed with GA: the ABN is on the claim
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == c)).one()
        for line in claim.lines:
            line.modifiers = [*line.modifiers, "GA"]
        session.commit()
    remit = Remit("NOTICE1")
    remit.claim(b, sent[b], lines=[[("PR", "96", charge)] for _, charge, _ in sent[b]["lines"]])
    remit.claim(c, sent[c], lines=[[("PR", "204", charge)] for _, charge, _ in sent[c]["lines"]])
    post(hub, remit, "noncovered.835")

    assert statuses(hub)[b] == statuses(hub)[c] == "denied"  # $0 paid, everything on the patient
    by_claim = {x["patient_control_number"]: x for x in run_json(capsys, hub_home, "denials")}
    assert by_claim[b]["action"] == "write_off" and "no advance notice" in by_claim[b]["next_step"]
    assert by_claim[c]["action"] == "bill_patient"  # GA: the notice went with the claim
    owed = figures(capsys, hub_home)
    assert D(str(owed["patient_ar"])) == sent[c]["charge"]

    # the biller finds b's signed ABN and records it: now the patient owes b too
    day_before = (sent[b]["lines"][0][2] - timedelta(days=1)).isoformat()
    capsys.readouterr()
    assert main(["--home", str(hub_home), "notice", "add", b, "--signed-on", day_before, "--note", "scanned"]) == 0
    assert "1 denial(s) are now the patient's" in capsys.readouterr().out
    by_claim = {x["patient_control_number"]: x for x in run_json(capsys, hub_home, "denials")}
    assert by_claim[b]["action"] == "bill_patient" and by_claim[b]["deadline"] is None
    owed = figures(capsys, hub_home)
    assert D(str(owed["patient_ar"])) == sent[b]["charge"] + sent[c]["charge"]
    assert main(["--home", str(hub_home), "notice", "add", b, "--signed-on", day_before]) == 0  # again
    assert [n["patient_control_number"] for n in run_json(capsys, hub_home, "notice", "list")] == [b]


def test_a_notice_signed_after_the_service_is_refused(hub, hub_home, sent, capsys):
    a, *_ = sent
    later = (sent[a]["lines"][0][2] + timedelta(days=1)).isoformat()
    capsys.readouterr()
    # the request itself is wrong, not the hub: a usage error (README's exit codes), nothing recorded
    assert main(["--home", str(hub_home), "notice", "add", a, "--signed-on", later]) == 2
    assert "before the service" in capsys.readouterr().err
    assert main(["--home", str(hub_home), "notice", "list", a, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_blank_procedure_or_note_on_a_notice_is_refused_not_a_second_notice(hub, hub_home, sent, capsys):
    a, *_ = sent
    day_before = (sent[a]["lines"][0][2] - timedelta(days=1)).isoformat()
    assert main(["--home", str(hub_home), "notice", "add", a, "--signed-on", day_before]) == 0
    for blank in (["--procedure", ""], ["--procedure", "  "], ["--note", ""]):
        capsys.readouterr()
        assert main(["--home", str(hub_home), "notice", "add", a, "--signed-on", day_before, *blank]) == 2, blank
        err = capsys.readouterr().err
        assert "is empty" in err and err.count("\n") == 1, err
    notices = run_json(capsys, hub_home, "notice", "list")
    assert [n["procedure_code"] for n in notices] == [None]


def test_patient_ar_leaves_out_what_a_secondary_on_file_will_be_billed(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    post(hub, Remit("COB1").claim(pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]]), "p.835")
    owed = figures(capsys, hub_home)  # no secondary claim built yet: the secondary, not the patient
    assert D(str(owed["insurance_ar"])) == D("24") and D(str(owed["patient_ar"])) == 0


def test_a_zero_payment_to_the_deductible_is_paid_not_denied(hub, sent):
    _, _, _, d, _ = sent
    post(hub, Remit("DEDUCT1").claim(d, sent[d], lines=[[("PR", "1", charge)] for _, charge, _ in sent[d]["lines"]]),
         "deductible.835")
    assert statuses(hub)[d] == "paid"


def test_a_payer_may_have_its_own_lists(tmp_path):
    from bhhub.remittance.responsibility import Responsibility

    (tmp_path / "remittance").mkdir()
    (tmp_path / "remittance" / "responsibility.toml").write_text(
        '[payer."77027"]\nname = "A Medicaid MCO"\nadvance_notice = ["50", "119"]\n', encoding="utf-8")
    mappings = MappingSet(override_dir=tmp_path)
    rules = DenialRules.load(mappings)
    table = Responsibility.load(mappings)
    pr_96 = rules.classify("PR", "96")
    assert table.decide(rules, "77027", "PR", "96", (), pr_96, notice_on_file=False, has_secondary=False).patient_owes
    assert not table.decide(rules, "OTHER", "PR", "96", (), pr_96, notice_on_file=False,
                            has_secondary=False).patient_owes


def test_a_mistyped_responsibility_table_names_the_nearest_key():
    from bhhub.remittance.responsibility import table_problems

    problems = table_problems({"patient": {"wrong_payers": ["27"], "advance_notice": [50]}})
    assert any("wrong_payers: unknown key (did you mean 'wrong_payer'?)" in p for p in problems)
    assert any("patient.advance_notice: must be a list of codes" in p for p in problems)
    assert table_problems(MappingSet().load("remittance/responsibility.toml")) == []


# --- 12: net collection rate counts each write-down once -----------------------------------------


def test_one_coordinated_claim_paid_in_full_collects_100_percent(hub, hub_home, tmp_path, capsys):
    pcn, info = _send_one(hub, tmp_path, "primary-secondary.json")
    charge = info["charge"]
    post(hub, Remit("NCR1").claim(pcn, info, lines=[[("CO", "45", D("30")), ("PR", "2", D("24"))]]), "p.835")
    primary_paid = charge - 54
    assert main(["--home", str(hub_home), "followup", "secondary", pcn]) == 0
    assert export_837p(hub, tmp_path / "secondary.x12") is not None  # sent, as an exchange would
    with hub.store.session() as session:
        session.scalars(select(schema.Claim).where(schema.Claim.revision == 1)).one().status = "submitted"
        session.commit()
    # the secondary restates the primary's payment (OA-23) and its CO-45, and pays the 24 in full
    post(hub, Payer835("NCR2", "20261215", payer="SAMPLE MEDICAID", payer_id="77027").claim(
        pcn, info, "2", lines=[[("OA", "23", primary_paid), ("CO", "45", D("30"))]]), "s.835", 2)

    owed = figures(capsys, hub_home)
    assert D(str(owed["net_collection_rate"])) == D("1.000")
    assert D(str(owed["net_collection_payments"])) == primary_paid + 24 == charge - 30
    assert D(str(owed["net_collection_expected"])) == charge - 30
    assert D(str(owed["insurance_ar"])) == D(str(owed["patient_ar"])) == 0
    formula = run_json(capsys, hub_home, "ar", "--as-of", AS_OF)["formulas"]["net_collection_rate"]
    assert "secondary" in formula and "PLB" in formula and "once" in formula


# --- 14: what payers apply: MOA remarks and PLB lines --------------------------------------------


def test_remark_codes_and_plb_amounts_show_with_the_claim_they_name(hub, hub_home, sent, capsys):
    a, b, *_ = sent
    first = Remit("PLB1").claim(b, sent[b], lines=[[("CO", "45", D("10"))]] * len(sent[b]["lines"]),
                                payer_number="ICN-B-1")
    post(hub, first, "b.835")
    # later: a is paid with MA01 (appeal rights); 25.00 taken back from b's payment, 1.50 interest on a
    remit = (Payer835("PLB2", "20261215")
             .claim(a, sent[a], lines=[[("CO", "45", D("10"))]] * len(sent[a]["lines"]), remarks=("MA01",))
             .provider_adjustment("WO", "ICN-B-1", D("25.00"))
             .provider_adjustment("L6", a, D("-1.50")))
    post(hub, remit, "plb.835", 2)

    view_a, view_b = claim_view(capsys, hub_home, a), claim_view(capsys, hub_home, b)
    [remark] = view_a["remittance"]["postings"][0]["remarks"]
    assert remark["code"] == "MA01" and "appeal" in remark["meaning"]
    assert [(x["reason"], D(str(x["amount"])), x["effect"]) for x in view_a["remittance"]["provider_adjustments"]] == [
        ("L6", D("-1.50"), "adds to the deposit")]
    [wo] = view_b["remittance"]["provider_adjustments"]
    assert (wo["reason"], D(str(wo["amount"])), wo["trace_number"]) == ("WO", D("25.00"), "PLB2")
    assert "Overpayment recovery" in wo["meaning"]
    assert statuses(hub)[b] == "paid"  # PLB money is not a claim payment: the claim is not changed

    payments = run_json(capsys, hub_home, "remit", "list")
    assert [(x["reason"], x["patient_control_number"]) for x in payments[1]["provider_adjustment_lines"]] == [("WO", b), ("L6", a)]
    capsys.readouterr()
    assert main(["--home", str(hub_home), "claims"]) == 0
    text = capsys.readouterr().out
    assert f"{a} remark MA01" in text and f"{b} PLB WO 25.00" in text


@pytest.mark.parametrize("status", ["19", "20", "21"])
def test_each_forwarded_claim_status_is_a_crossover(status):
    from bhhub.remittance.crossovers import crossover_of
    from bhhub.remittance.responsibility import Responsibility

    class Paid:
        status_code, remarks, services, crossover_payer = status, (), (), None

    assert crossover_of(Paid, Responsibility.load(MappingSet())) == (True, "")


# --- the payer tables are keyed by the claim payer's id -----------------------------------------


def test_a_payers_own_rows_apply_when_its_835_names_it_without_that_id(hub, hub_home, sent, capsys):
    """mappings/ rows are keyed by the payer id the hub bills; an 835 that names its payer only by
    N1*PR's name and TRN03 (no REF*2U) is still that payer's, so its own CARC rules hold."""
    a, *_ = sent
    info = sent[a]
    payer_id, payer_name = info["payer"]
    override = hub_home / "mappings" / "remittance"
    override.mkdir(parents=True)
    (override / "denials.toml").write_text(
        f'[payer."{payer_id}"]\nappeal_days = 45\n\n[payer."{payer_id}".carc."50"]\n'
        'action = "resubmit_with_info"\naction_text = "This payer wants the treatment plan attached: send it."\n',
        encoding="utf-8")
    remit = Remit("BYNAME1", payer=payer_name)  # N1*PR name only; TRN03 is an EIN no claim payer has
    remit.claim(a, info, "4", lines=[[("CO", "50", charge)] for _, charge, _ in info["lines"]])
    from bhhub.runtime.app import Hub

    with Hub.open(hub_home) as fresh:  # the practice's tables as a new process reads them
        post(fresh, remit, "byname.835")

    denials = [x for x in run_json(capsys, hub_home, "denials") if x["patient_control_number"] == a]
    assert denials and {x["payer_id"] for x in denials} == {payer_id}
    assert {x["action"] for x in denials} == {"resubmit_with_info"}  # the payer's own CARC rule
    assert all("treatment plan attached" in x["next_step"] for x in denials)
