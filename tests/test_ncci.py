"""NCCI procedure-to-procedure pairs and medically unlikely edits (bhhub.scrub.ncci), and loading
CMS's quarterly files into a hub's mappings (bhhub.scrub.ncci_files, `bhhub rules load-ncci/load-mue`).

The files written here follow CMS's published layouts: the practitioner PTP text export (title
lines, then a tab-separated header "Column 1, Column 2, * = In existence prior to 1996, Effective
Date, Deletion Date *=no data, Modifier 0=not allowed 1=allowed 9=not applicable, PTP Edit
Rationale", dates as YYYYMMDD, "*" for none) and the practitioner MUE CSV (a quoted copyright
cell, a header whose first name spans two lines, the MAI as its digit and words). The pairs and
values in them are made up for the test.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bhhub.cli.main import main
from bhhub.errors import InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import ServiceLine, Severity
from bhhub.scrub import ncci, ncci_files
from test_rule_validity import DOS, claim

PTP_HEADER = ("Column 1\tColumn 2\t* = In existence prior to 1996\tEffective Date\tDeletion Date *=no data\t"
              "Modifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale")
MUE_HEADER = ('"HCPCS/\nCPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator",'
              '"MUE Rationale"')


def ptp_file(path, rows: list[str]):
    path.write_text("CPT codes and descriptions only are copyright 2025 American Medical Association.\n"
                    "Practitioner PTP Edits v321r0\n\n" + PTP_HEADER + "\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return path


def mue_file(path, rows: list[str]):
    path.write_text('"CPT codes, descriptions and other data only are copyright 2025 American Medical\n'
                    'Association. All Rights Reserved.",,,\n' + MUE_HEADER + "\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return path


def lines(*specs) -> tuple[ServiceLine, ...]:
    """(code, units, modifiers) on DOS."""
    return tuple(ServiceLine(code, DOS, modifiers=tuple(mods), charge=Decimal(100), units=Decimal(units))
                 for code, units, mods in specs)


def found(c, context=None) -> list[tuple[str, Severity, int | None]]:
    return [(f.code, f.severity, f.line) for f in ncci.check_ncci(c, context)]


def hub_like(tmp_path) -> SimpleNamespace:
    return SimpleNamespace(mappings=MappingSet(override_dir=tmp_path / "mappings"))


# ---- the packaged subset --------------------------------------------------------------------

def test_96127_times_five_is_over_its_mue_with_the_mai_in_the_message():
    c = claim(lines=lines(("90837", 1, ()), ("96127", 5, ())))
    [finding] = ncci.check_ncci(c)
    assert (finding.code, finding.severity, finding.line) == ("ncci.mue_exceeded", Severity.ERROR, 2)
    assert "96127" in finding.message and "5 units" in finding.message and "MUE is 3" in finding.message
    assert "MAI 3" in finding.message and "bill at most 3" in finding.fix


def test_a_date_of_service_edit_adds_the_units_of_every_line_that_day():
    c = claim(lines=lines(("96127", 2, ()), ("96127", 2, ("59",))))
    assert found(c) == [("ncci.mue_exceeded", Severity.ERROR, 2)]
    assert found(claim(lines=lines(("96127", 3, ())))) == []


def test_the_packaged_tables_say_their_values_are_unverified_and_load_clean():
    assert ncci_files.table_problems(MappingSet()) == []
    assert "unverified" in MappingSet().load(ncci.MUE).get("source", {}).get("note", "").lower()


# ---- loaded from CMS files -------------------------------------------------------------------

def test_a_modifier_0_pair_is_an_error_no_modifier_can_lift(tmp_path):
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp.txt", [
        "90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])])
    context = hub_like(tmp_path)
    both = claim(lines=lines(("90791", 1, ()), ("90832", 1, ("59",))))
    [finding] = ncci.check_ncci(both, context)
    assert (finding.code, finding.severity, finding.line) == ("ncci.ptp_never_together", Severity.ERROR, 2)
    assert "90791" in finding.message and "90832" in finding.message and "modifier indicator 0" in finding.message
    assert "remove 90832" in finding.fix
    # the order of the lines does not matter: column 1 is column 1
    assert found(replace(both, lines=tuple(reversed(both.lines))), context) == [
        ("ncci.ptp_never_together", Severity.ERROR, 1)]


def test_a_modifier_1_pair_passes_only_with_an_ncci_modifier_on_the_column_2_code(tmp_path):
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp.txt", [
        "90834\t90846\t\t20200101\t*\t1\tStandards of medical/surgical services",
        "99214\t90791\t\t20200101\t*\t1\tMutually exclusive procedures"])])
    context = hub_like(tmp_path)
    plain = claim(lines=lines(("90834", 1, ()), ("90846", 1, ())))
    assert found(plain, context) == [("ncci.ptp_needs_modifier", Severity.ERROR, 2)]
    for modifier in ("59", "XE", "XS", "XP", "XU"):
        assert found(claim(lines=lines(("90834", 1, ()), ("90846", 1, (modifier,)))), context) == []
    assert found(claim(lines=lines(("90834", 1, ("59",)), ("90846", 1, ()))), context) != []  # on column 1
    # 25 lifts an edit only on an E/M code
    assert found(claim(lines=lines(("90834", 1, ()), ("90846", 1, ("25",)))), context) != []
    assert found(claim(lines=lines(("99214", 1, ()), ("90791", 1, ("25",)))), context) != []
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp2.txt", [
        "90791\t99214\t\t20200101\t*\t1\tMutually exclusive procedures"])])
    assert found(claim(lines=lines(("90791", 1, ()), ("99214", 1, ("25",)))), hub_like(tmp_path)) == []


def test_a_pair_applies_from_its_effective_date_until_its_deletion_date(tmp_path):
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp.txt", [
        f"90791\t90832\t\t{DOS:%Y%m%d}\t*\t0\tMutually exclusive procedures",
        "90792\t90832\t\t20200101\t20261102\t0\tMutually exclusive procedures",
        "90792\t90834\t\t20200101\t*\t9\tDeleted edit"])])
    context = hub_like(tmp_path)
    both = lines(("90791", 1, ()), ("90832", 1, ()))
    assert found(claim(lines=both), context) != []
    day_before = tuple(replace(ln, service_date=date(2026, 11, 1)) for ln in both)
    assert found(claim(lines=day_before), context) == []  # before its effective date
    assert found(claim(lines=lines(("90792", 1, ()), ("90832", 1, ()))), context) == []  # deleted on DOS
    assert found(claim(lines=tuple(replace(ln, service_date=date(2026, 11, 1)) for ln in
                                   lines(("90792", 1, ()), ("90832", 1, ())))), context) != []
    assert found(claim(lines=lines(("90792", 1, ()), ("90834", 1, ()))), context) == []  # indicator 9


def test_pairs_on_different_dates_of_service_are_not_an_edit(tmp_path):
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp.txt", [
        "90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])])
    two_days = (ServiceLine("90791", date(2026, 11, 2), charge=Decimal(100)),
                ServiceLine("90832", date(2026, 11, 3), charge=Decimal(100)))
    assert found(claim(lines=two_days), hub_like(tmp_path)) == []


def test_a_loaded_mue_file_replaces_the_packaged_values_and_keeps_only_behavioral_codes(tmp_path):
    result = ncci_files.load_mue(tmp_path / "mappings", [mue_file(tmp_path / "mue.csv", [
        '96127,4,"3 Date of Service Edit: Clinical","Clinical: Data"',
        '90837,1,"2 Date of Service Edit: Policy","Code Descriptor / CPT Instruction"',
        '90785,2,"1 Line Edit","Clinical: Data"',
        '36415,3,"3 Date of Service Edit: Clinical","Clinical: Data"'])])
    assert (result.rows, result.kept) == (4, 3)  # 36415 (a venipuncture) is not behavioral health
    context = hub_like(tmp_path)
    assert found(claim(lines=lines(("96127", 4, ()))), context) == []
    assert found(claim(lines=lines(("96127", 5, ()))), context) == [("ncci.mue_exceeded", Severity.ERROR, 1)]
    [policy] = ncci.check_ncci(claim(lines=lines(("90837", 2, ()))), context)
    assert "MAI 2" in policy.message and "not payable" in policy.fix
    # MAI 1 is a claim-line edit: two lines of 2 are within it, one line of 3 is not
    assert found(claim(lines=lines(("90837", 1, ()), ("90785", 2, ()), ("90785", 2, ("59",)))), context) == []
    assert found(claim(lines=lines(("90837", 1, ()), ("90785", 3, ()))), context) == [
        ("ncci.mue_exceeded", Severity.ERROR, 2)]
    assert "36415" not in (tmp_path / "mappings" / ncci.MUE).read_text()


def test_loading_the_same_file_twice_writes_the_same_table(tmp_path):
    source = ptp_file(tmp_path / "ptp.txt", ["90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])
    ncci_files.load_ptp(tmp_path / "mappings", [source])
    first = (tmp_path / "mappings" / ncci.PTP).read_bytes()
    ncci_files.load_ptp(tmp_path / "mappings", [source])
    assert (tmp_path / "mappings" / ncci.PTP).read_bytes() == first


def test_a_packaged_pair_the_loaded_file_lacks_no_longer_applies(tmp_path):
    packaged = ncci.rules(MappingSet())
    col1, col2 = next((a, b) for a, seconds in packaged.pairs.items() for b in seconds)
    ncci_files.load_ptp(tmp_path / "mappings", [ptp_file(tmp_path / "ptp.txt", [
        "90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])])
    loaded = ncci.rules(hub_like(tmp_path).mappings)
    assert not loaded.edits(col1, col2, DOS)


def test_a_zip_as_cms_publishes_it_is_read(tmp_path):
    source = ptp_file(tmp_path / "ptp.txt", ["90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])
    with zipfile.ZipFile(tmp_path / "ptp.zip", "w") as archive:
        archive.write(source, "ccipra-v321r0-f1.txt")
    assert ncci_files.load_ptp(tmp_path / "mappings", [tmp_path / "ptp.zip"]).kept == 1


@pytest.mark.parametrize(("text", "why"), [
    ("just some text\nwith no header\n", "no header"),
    (PTP_HEADER + "\n90791\t90832\t\tsoon\t*\t0\tx\n", "line 2"),
])
def test_a_file_that_is_not_a_cms_ptp_export_is_refused_with_the_reason(tmp_path, text, why):
    (tmp_path / "bad.txt").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        ncci_files.load_ptp(tmp_path / "mappings", [tmp_path / "bad.txt"])
    assert why in str(raised.value)
    assert not (tmp_path / "mappings" / ncci.PTP).exists()


def test_bhhub_rules_load_commands_write_the_tables_under_the_hub_home(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["--home", str(home), "init"]) == 0  # bhhub makes a hub only with `init`
    ptp = ptp_file(tmp_path / "ptp.txt", ["90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"])
    mue = mue_file(tmp_path / "mue.csv", ['96127,4,"3 Date of Service Edit: Clinical","Clinical: Data"'])
    assert main(["--home", str(home), "rules", "load-ncci", str(ptp)]) == 0
    assert main(["--home", str(home), "rules", "load-mue", str(mue)]) == 0
    out = capsys.readouterr().out
    assert "1 pair" in out and "1 code" in out
    assert (home / "mappings" / ncci.PTP).is_file() and (home / "mappings" / ncci.MUE).is_file()
    assert main(["--home", str(home), "rules", "load-mue", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv" in capsys.readouterr().err


def test_the_check_is_registered_like_the_other_rule_packs_and_runs_in_a_hubs_scrub(sqlite_hub):
    from bhhub.scrub.engine import scrub

    checks = sqlite_hub.claim_checks
    assert "ncci" in {c.name for c in checks}
    findings = scrub(claim(lines=lines(("90837", 1, ()), ("96127", 5, ()))), checks, sqlite_hub)
    assert "ncci.mue_exceeded" in {f.code for f in findings}
