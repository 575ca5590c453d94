"""Reading 835 remittances (bhhub.remittance.x835): real payers' samples, other projects' samples, our
own fixtures in the guide's shape, and a generated file of 20,000 claims read in flat memory."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bhhub.errors import InputError
from bhhub.remittance.x835 import read_835
from bhhub.remittance.x835_events import (Adjustment, BadClaim, ClaimPayment, PaymentHeader, PaymentTrailer,
                                          ProviderAdjustment)

PROJECT = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parent / "data" / "x12" / "835"
EMEDNY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "emedny-x12"
VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "x12valid-check"
D = Decimal


def events(source) -> list:
    return list(read_835(source))


def of(kind, found: list) -> list:
    return [e for e in found if isinstance(e, kind)]


def claims(found: list) -> dict[str, ClaimPayment]:
    return {c.patient_control_number: c for c in of(ClaimPayment, found)}


def stated_figures(path: Path) -> dict:
    """What the file itself says, read naively (no reader involved): BPR02s, CLP04s and PLB amounts."""
    text = path.read_text()
    segments = [s.strip().split("*") for s in text.split("~") if s.strip()]
    return {
        "bpr": [D(s[2]) for s in segments if s[0] == "BPR"],
        "clp": [D(s[4]) for s in segments if s[0] == "CLP"],
        "plb": [D(s[i]) for s in segments if s[0] == "PLB" for i in range(4, len(s), 2)],
    }


def generator():
    spec = importlib.util.spec_from_file_location("gen835", PROJECT / "benchmarks" / "gen835.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emedny(name: str) -> Path:
    path = EMEDNY / name
    if not path.exists():
        pytest.skip(f"the shared eMedNY corpus is not here ({path})")
    return path


# -- eMedNY: New York Medicaid's published 835 samples ------------------------------------------


def test_emedny_institutional_remit_pays_one_claim_and_zeroes_the_other():
    found = events(emedny("835-institutional.x12"))
    header, first, second, trailer = found
    assert isinstance(header, PaymentHeader) and isinstance(trailer, PaymentTrailer)
    assert (header.payer_name, header.trace_number, header.amount) == ("NYSDOH", "10100000000", D("1481.99"))
    assert (header.handling, header.method, header.credit_debit) == ("I", "ACH", "C")
    assert header.payer_id == "1000000000"  # no REF*2U and no XV: TRN03
    assert (header.payee_id_qualifier, header.payee_id) == ("XX", "9999999995")
    assert header.payment_date == date(2010, 1, 1) and header.interchange_control_number == "006000600"
    assert (first.status_code, first.charge, first.paid, first.payer_claim_control_number) == \
        ("3", D("137.48"), D("0"), "1000210000000030")
    assert first.adjustments == (Adjustment("CO", "39", D("137.48")),)
    assert (first.facility_code, first.frequency_code) == ("34", "1")
    assert first.statement_start == first.statement_end == date(2010, 1, 1)
    assert ("9A", "2422") in first.references and ("G1", "11111111111") in first.references
    assert (second.status_code, second.charge, second.paid, second.patient_responsibility) == \
        ("1", D("2286.99"), D("1481.99"), D("805"))
    assert second.adjustments == (Adjustment("PR", "142", D("805")),)
    assert second.rendering_provider_npi == "9999999995" and second.coverage_amount == D("2286.99")
    assert first.balanced and second.balanced and second.services == ()
    assert (trailer.claims, trailer.paid_total, trailer.problems) == (2, D("1481.99"), ())


def test_emedny_outpatient_retro_reverses_a_payment_and_repays_the_same_claim():
    header, reversal, repaid, trailer = events(emedny("835-outpatient-retro.x12"))  # CRLF after each ~
    assert (header.amount, header.handling, header.method, header.trace_number) == (D("0"), "H", "NON", "12345678901")
    assert header.payee_id_qualifier == "FI" and header.interchange_control_number == "111111123"
    assert reversal.patient_control_number == repaid.patient_control_number == "987654321"
    assert (reversal.status_code, reversal.charge, reversal.paid) == ("22", D("-7151.17"), D("-7151.17"))
    assert reversal.remarks == ("N689",) and reversal.frequency_code == "7"
    assert (repaid.status_code, repaid.charge, repaid.paid) == ("1", D("7151.17"), D("7131.01"))
    assert repaid.adjustments == (Adjustment("CO", "45", D("20.16")),) and repaid.remarks == ("N419",)
    assert repaid.statement_end == date(2014, 2, 11) and repaid.coverage_amount == D("7131.01")
    assert reversal.balanced and repaid.balanced
    assert trailer.provider_adjustments == (
        ProviderAdjustment("02245834", date(2014, 12, 31), "FB", "FCN#201401011010200", D("-20.16")),)
    assert trailer.paid_total == D("-20.16") and trailer.problems == ()


def test_emedny_professional_claim_denied_line_by_line_for_timely_filing():
    header, claim, trailer = events(emedny("835-professional-no-payment.x12"))
    assert (claim.status_code, claim.charge, claim.paid, claim.frequency_code) == ("2", D("34"), D("0"), "")
    lines = claim.services
    assert [(s.procedure_code, s.charge, s.paid, s.units_paid) for s in lines] == \
        [("V2020", D("12"), D("0"), D("0")), ("V2103", D("22"), D("0"), D("0"))]
    assert [s.adjustments for s in lines] == [(Adjustment("CO", "29", D("12")),), (Adjustment("CO", "29", D("22")),)]
    assert lines[0].service_date == date(2010, 1, 1) and lines[0].segment_number == 21
    assert claim.balanced and trailer.problems == () and trailer.paid_total == header.amount == D("0")


def test_emedny_professional_payment_of_three_claims_adds_up_to_the_deposit():
    header, paid, denied, partly, trailer = events(emedny("835-professional-with-payment.x12"))
    assert header.amount == D("45.75")
    assert [(s.procedure_code, s.modifiers, s.paid, s.units_paid, s.allowed) for s in paid.services] == [
        ("V2020", ("RB",), D("6"), D("1"), D("6")), ("V2700", ("RB",), D("2.75"), D("1"), D("2.75")),
        ("V2103", ("RB",), D("5.5"), D("1"), D("5.5")), ("S0580", (), D("20"), D("2"), D("20"))]
    assert (denied.status_code, denied.paid) == ("2", D("0"))
    assert [s.remarks for s in partly.services] == [(), (), ("N206",), ("N206",)]
    assert partly.services[1].service_date == date(2013, 9, 17)
    assert [a.reason for a in partly.all_adjustments] == ["251", "251"]
    assert all(c.balanced for c in (paid, denied, partly))
    assert (trailer.claims, trailer.paid_total, trailer.problems) == (3, D("45.75"), ())


@pytest.mark.parametrize("name", ["835-institutional.x12", "835-outpatient-retro.x12",
                                  "835-professional-no-payment.x12", "835-professional-with-payment.x12"])
def test_emedny_totals_are_the_files_own_figures(name):
    path = emedny(name)
    found, stated = events(path), stated_figures(path)
    assert [h.amount for h in of(PaymentHeader, found)] == stated["bpr"]
    assert [c.paid for c in of(ClaimPayment, found)] == stated["clp"]
    (trailer,) = of(PaymentTrailer, found)
    assert trailer.paid_total == sum(stated["clp"], D(0))
    assert trailer.paid_total - sum(stated["plb"], D(0)) == stated["bpr"][0]


# -- samples from other X12 projects (see tests/data/x12/835/README.md) -------------------------


@pytest.mark.parametrize("name", ["lfh-managed-care.835", "lfh-medicare-part-a.835", "lfh-tertiary-payment.835",
                                  "pyx12-835-mult-loops.x12"])
def test_other_projects_samples_account_for_every_claim(name):
    path = SAMPLES / name
    found, stated = events(path), stated_figures(path)
    read = of(ClaimPayment, found) + of(BadClaim, found)
    (trailer,) = of(PaymentTrailer, found)
    assert len(read) == trailer.claims == len(stated["clp"])
    assert trailer.paid_total == sum(stated["clp"], D(0))
    assert not any("BPR02" in p for p in trailer.problems)


def test_managed_care_sample_balances_with_claim_and_line_adjustments_but_has_an_impossible_payment_date():
    found = events(SAMPLES / "lfh-managed-care.835")
    first, second = of(ClaimPayment, found)
    assert first.adjustments == (Adjustment("CO", "A2", D("50.00")),)
    assert second.services[0].adjustments == (Adjustment("PR", "1", D("600.00")), Adjustment("CO", "45", D("50.00")))
    assert (second.services[0].service_date, second.services[0].service_date_end) == (date(2002, 3, 10),
                                                                                     date(2002, 3, 12))
    assert first.balanced and second.balanced
    header, trailer = found[0], found[-1]
    assert header.payment_date is None  # BPR16 says 20002316
    assert trailer.problems == ("BPR16 (segment 4), the payment date, is not a valid date",)


def test_medicare_part_a_sample_takes_the_payer_id_from_ref_2u_and_reads_ts3_lx_and_moa():
    header, *rest = events(SAMPLES / "lfh-medicare-part-a.835")
    assert header.payer_id == "999" and header.trace_originator == "1512345678"
    first, second = of(ClaimPayment, rest)
    assert (first.filing_indicator, second.filing_indicator, second.remarks) == ("MA", "MB", ("MA02",))
    assert rest[-1].provider_adjustments == (ProviderAdjustment("6543210903", date(2002, 12, 31), "CV", "CP",
                                                                D("-1.27")),)
    assert rest[-1].problems == ()


def test_sample_with_a_service_line_lacking_its_procedure_code_is_quarantined_not_misread():
    header, bad, trailer = events(SAMPLES / "lfh-tertiary-payment.835")  # SVC*HC*24599.00*...: no HC:code
    assert isinstance(bad, BadClaim)
    assert (bad.patient_control_number, bad.segment_number, bad.loop) == ("0001000054", 20, "2110")
    assert "SVC (segment 20)" in bad.reason and "SVC01" in bad.reason
    assert trailer.paid_total == header.amount == D("187.50") and trailer.problems == ()


def test_pyx12_sample_denied_claim_keeps_each_lines_remark_and_dates():
    found = events(SAMPLES / "pyx12-835-mult-loops.x12")
    (claim,) = of(ClaimPayment, found)
    assert claim.status_code == "4" and claim.balanced
    assert [s.remarks for s in claim.services] == [("N14",)] * 3
    assert [s.units_paid for s in claim.services] == [D("68"), D("16"), D("36")]
    assert claim.services[1].service_date == claim.services[1].service_date_end == date(2003, 10, 30)
    assert [a.group for a in claim.all_adjustments] == ["CO", "OA", "OA"]


def test_a_4010_remit_is_refused_rather_than_misread():
    with pytest.raises(InputError, match="00401"):
        events(SAMPLES / "pyx12-835-simple-4010.x12")


# -- our fixtures, in the shape of the 005010X221A1 guide ----------------------------------------


def test_plb_recoupment_and_interest_settle_the_deposit():
    found = events(SAMPLES / "interest-and-recoupment.835")
    header, trailer = found[0], found[-1]
    assert trailer.provider_adjustments == (
        ProviderAdjustment("1234567893", date(2026, 12, 31), "WO", "ICN251115X", D("45.67")),
        ProviderAdjustment("1234567893", date(2026, 12, 31), "L6", "INT0301", D("-3.5")))
    assert trailer.paid_total == D("355") and header.amount == D("312.83")  # 355 - 45.67 + 3.50
    assert trailer.problems == () and header.payer_id == "SHP01"


def test_a_cas_with_six_adjustments_is_read_whole_and_balances():
    claim = claims(events(SAMPLES / "interest-and-recoupment.835"))["PCN-2026-0102"]
    (line,) = claim.services
    assert [(a.group, a.reason, a.amount) for a in line.adjustments] == [
        ("CO", "45", D("100")), ("CO", "253", D("5")), ("CO", "97", D("10")), ("CO", "59", D("15")),
        ("CO", "94", D("12")), ("CO", "B7", D("8"))]
    assert [a.quantity for a in line.adjustments] == [D("1"), None, None, None, None, None]
    assert claim.balanced and line.line_control_number == "LINE0102A" and line.allowed == D("300")


def test_first_claim_of_the_remit_has_its_lines_rendering_npi_and_received_date():
    claim = claims(events(SAMPLES / "interest-and-recoupment.835"))["PCN-2026-0101"]
    assert claim.rendering_provider_npi == "1999999984" and claim.received_date == date(2026, 2, 20)
    assert [(s.procedure_code, s.modifiers, s.line_control_number) for s in claim.services] == [
        ("90837", ("95",), "LINE0101A"), ("90785", ("95",), "LINE0101B")]
    assert claim.patient_responsibility == D("30") and claim.balanced
    assert [a.reason for a in claim.all_adjustments] == ["45", "3", "45"]


def test_recoded_line_keeps_the_submitted_code_and_its_remarks():
    found = claims(events(SAMPLES / "recoded-line-and-crossover.835"))
    claim = found["PCN-2026-0201"]
    (line,) = claim.services
    assert (line.procedure_code, line.modifiers) == ("90834", ("95",))
    assert (line.original_procedure_code, line.original_modifiers) == ("90837", ("95",))
    assert line.remarks == ("N22", "M80")
    assert claim.remarks == ("MA18", "N130")  # MOA03, MOA04
    assert (claim.status_code, claim.crossover_payer) == ("19", "SAMPLE MEDIGAP PLAN")
    assert claim.balanced and claim.patient_responsibility == D("27.6")
    denied = found["PCN-2026-0202"]
    assert denied.status_code == "4" and denied.services[0].adjustments == (Adjustment("CO", "197", D("180")),)
    assert denied.services[0].remarks == ("N54",) and denied.services[0].original_procedure_code is None


def test_reversal_then_correction_under_the_same_patient_control_number():
    found = events(SAMPLES / "reversal-then-correction.835")
    reversal, corrected = of(ClaimPayment, found)
    assert reversal.patient_control_number == corrected.patient_control_number == "PCN-2026-0301"
    assert (reversal.status_code, reversal.paid, reversal.payer_claim_control_number) == ("22", D("-96"), "ICN251201A")
    assert (corrected.status_code, corrected.paid, corrected.payer_claim_control_number) == \
        ("1", D("120"), "ICN260310A")
    assert reversal.services[0].adjustments == (Adjustment("CO", "45", D("-60")), Adjustment("PR", "2", D("-24")))
    assert reversal.balanced and corrected.balanced
    assert found[-1].paid_total == D("24") and found[-1].problems == ()


def test_only_a_reversal_may_disagree_with_its_pr_adjustments():
    text = (SAMPLES / "reversal-then-correction.835").read_text()
    reversal_without_clp05 = text.replace("*-96*-24*12*", "*-96*0*12*")
    assert of(ClaimPayment, events(reversal_without_clp05.encode()))[0].balanced
    repaid_with_wrong_clp05 = text.replace("*180*120*0*12*", "*180*120*15*12*")
    problems = of(ClaimPayment, events(repaid_with_wrong_clp05.encode()))[1].problems
    assert problems == ("patient responsibility 15 (CLP05) is not the 0 of PR adjustments",)


def test_a_claim_that_does_not_balance_is_still_yielded_with_its_problems():
    found = claims(events(SAMPLES / "unbalanced-claim.835"))
    good, bad = found["PCN-2026-0501"], found["PCN-2026-0502"]
    assert good.balanced
    assert not bad.balanced and bad.paid == D("110")
    assert bad.problems == (
        "line 1 (SVC at segment 22): charge 180 less adjustments 80 is 100, not the 110 paid (SVC03)",
        "claim charge 180 (CLP03) less adjustments 80 is 100, not the 110 paid (CLP04)",
        "patient responsibility 30 (CLP05) is not the 20 of PR adjustments")


def test_malformed_claims_are_quarantined_and_their_siblings_read():
    found = events(SAMPLES / "malformed-claims.835")
    bad = of(BadClaim, found)
    assert [(b.patient_control_number, b.segment_number, b.loop) for b in bad] == [
        (None, 15, "2110"),  # an SVC right after LX, before any CLP
        ("PCN-2026-0602", 22, "2100"),  # CLP02 missing
        ("PCN-2026-0603", 29, "2110"),  # CAS*CO*45: a reason without its amount
        ("PCN-2026-0604", 31, "2100"),  # CLP03 1B0
    ]
    assert "CLP02" in bad[1].reason and "CAS02 reason 45 has no amount" in bad[2].reason
    assert "CLP03 is not a number" in bad[3].reason
    good = claims(found)
    assert sorted(good) == ["PCN-2026-0601", "PCN-2026-0605", "PCN-2026-0606"]
    assert good["PCN-2026-0605"].problems == ("DTM*472 (segment 35) is not a valid date (CCYYMMDD)",)
    assert good["PCN-2026-0605"].services[0].service_date is None
    assert good["PCN-2026-0601"].balanced and good["PCN-2026-0606"].balanced  # K3 after it is skipped
    trailer = found[-1]
    # Quarantined claims' CLP04 still count toward BPR02 when they can be read.
    assert (trailer.claims, trailer.paid_total, trailer.problems) == (6, D("720"), ())


def test_messages_never_repeat_names_or_member_ids():
    text = (SAMPLES / "malformed-claims.835").read_text()
    # Make every claim's patient segment malformed-adjacent: a bad CLP03 beside names and member ids.
    found = events(text.replace("*180*120*0*12*", "*JANE DOE*120*0*12*").encode())
    said = [b.reason for b in of(BadClaim, found)] + [p for e in found for p in getattr(e, "problems", ())]
    assert said and not any(word in message for message in said for word in ("DOE", "JANE", "MEMBER"))


def test_three_payments_in_one_file_each_bring_header_claims_and_trailer():
    found = events(SAMPLES / "three-payments.835")
    assert [type(e).__name__ for e in found] == ["PaymentHeader", "ClaimPayment", "PaymentTrailer"] * 3
    headers = of(PaymentHeader, found)
    assert [(h.control_number, h.trace_number, h.amount, h.payer_id) for h in headers] == [
        ("0001", "EFT20260312A", D("95"), "SHP01"), ("0002", "EFT20260312B", D("90"), "SHP01"),
        ("0003", "EFT20260312C", D("80"), "SMMCO")]
    assert headers[2].payer_name == "SAMPLE MEDICAID MCO"
    assert [c.patient_control_number for c in of(ClaimPayment, found)] == \
        ["PCN-2026-0401", "PCN-2026-0402", "PCN-2026-0403"]
    assert all(t.problems == () for t in of(PaymentTrailer, found))


def test_a_truncated_file_yields_every_complete_claim_then_says_where_it_stopped():
    reader = read_835(SAMPLES / "truncated.835")
    header, claim = next(reader), next(reader)
    assert isinstance(header, PaymentHeader) and claim.patient_control_number == "PCN-2026-0101"
    with pytest.raises(InputError) as raised:
        next(reader)
    message = str(raised.value)
    assert "segment 35" in message and "loop 2110 of the claim at segment 30" in message
    assert "SE of the 835 that began at segment 3" in message


def test_a_file_without_its_iea_still_yields_its_complete_payments_then_raises():
    text = (SAMPLES / "three-payments.835").read_text()
    reader = read_835(text[: text.index("IEA*")].encode())
    found = []
    with pytest.raises(InputError, match="without an IEA"):
        for event in reader:
            found.append(event)
    assert len(of(PaymentTrailer, found)) == 3


def test_a_new_transaction_before_the_se_is_reported_not_merged():
    text = (SAMPLES / "three-payments.835").read_text()
    se = text.index("SE*")
    without_first_se = text[:se] + text[text.index("~", se) + 2:]
    with pytest.raises(InputError, match=r"ST \(segment 22\) comes before the SE"):
        events(without_first_se.encode())


def test_a_payment_that_does_not_add_up_is_a_trailer_problem():
    text = (SAMPLES / "interest-and-recoupment.835").read_text()
    found = events(text.replace("BPR*I*312.83*", "BPR*I*300*").replace("SE*37*", "SE*36*").encode())
    assert found[-1].problems == (
        "SE01 (segment 39) counts 36 segments; the transaction has 37",
        "the payment 300 (BPR02) is not the claims' 355 paid less 42.17 of provider adjustments (PLB): 312.83")


@pytest.mark.parametrize("not_an_835, message", [
    (lambda text: text.replace("ST*835*", "ST*277*"), r"ST \(segment 3\) begins a 277"),
    (lambda text: text.replace("005010X221A1", "005010X222A1"), "declares 005010X222A1"),
    (lambda text: "hello, world", "does not start with an ISA"),
    (lambda text: text.replace("BPR*I*312.83*", "BPR*I*12,50*"), r"BPR \(segment 4\).*BPR02 is not a number"),
])
def test_input_that_is_not_a_readable_835_raises(not_an_835, message):
    text = (SAMPLES / "interest-and-recoupment.835").read_text()
    with pytest.raises(InputError, match=message):
        events(not_an_835(text).encode())


def test_bytes_paths_streams_and_odd_line_breaks_read_alike():
    path = SAMPLES / "recoded-line-and-crossover.835"
    data = path.read_bytes()
    expected = events(path)

    class Trickle(io.RawIOBase):  # 7 bytes at a time: every boundary lands mid-segment
        def __init__(self):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def read(self, size=-1):
            return self.data.read(7)

    assert events(str(path)) == events(data) == events(io.BytesIO(data)) == events(Trickle()) == expected
    assert events(data.replace(b"~\n", b"~")) == expected
    assert events(data.replace(b"~\n", b"~\r\n")) == expected
    assert events(b"\n\n" + data) == expected


def test_a_missing_file_is_an_input_error():
    with pytest.raises(InputError, match="cannot open"):
        events(SAMPLES / "no-such-file.835")


# -- streaming, on a generated remit ---------------------------------------------------------------


@pytest.fixture(scope="module")
def remit_20000(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remit") / "remit-20000.835"
    generator().write(path, 20_000)
    return path


def test_memory_stays_flat_over_20000_claims(remit_20000):
    counted = unbalanced = 0
    tracemalloc.start()
    try:
        for event in read_835(remit_20000):
            if isinstance(event, ClaimPayment):
                counted += 1
                unbalanced += not event.balanced
            elif isinstance(event, (BadClaim, PaymentTrailer)):
                assert not isinstance(event, BadClaim) and event.problems == ()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (counted, unbalanced) == (20_000, 0)
    assert remit_20000.stat().st_size > 5_000_000
    assert peak < 10 * 2**20, f"peak {peak / 2**20:.1f} MB while reading"


def test_claims_come_out_before_the_file_has_been_read(remit_20000):
    class Counting(io.FileIO):
        consumed = 0

        def read(self, size=-1):
            block = super().read(size)
            Counting.consumed += len(block)
            return block

    with Counting(remit_20000) as handle:
        reader = read_835(handle)
        while not isinstance(next(reader), ClaimPayment):
            pass
        assert Counting.consumed < remit_20000.stat().st_size / 10


def test_the_generated_remit_is_valid_per_pyx12(tmp_path):
    if not VALIDATOR.exists() or not shutil.which("x12valid", path=str(Path(sys.executable).parent)):
        pytest.skip("the shared x12valid-check tool or pyx12 is not here")
    path = tmp_path / "remit-40.835"
    generator().write(path, 40)
    run = subprocess.run([sys.executable, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_two_interchanges_back_to_back_each_name_their_own_isa13():
    first = (SAMPLES / "interest-and-recoupment.835").read_bytes()
    second = (SAMPLES / "reversal-then-correction.835").read_bytes()
    headers = of(PaymentHeader, events(first + second))
    assert [h.interchange_control_number for h in headers] == ["000000101", "000000103"]
