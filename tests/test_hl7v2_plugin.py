"""The HL7 v2 plugin as a reader: messages in, canonical records out (no store).

Fixtures in tests/fixtures/hl7v2/ are messages we wrote (invented people, valid check-digit
NPIs); the practice profile for their MSH-4 (SUNRISE_BH) is written into each test's mapping
folder, as a practice would.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import FIXTURES
from bhhub.errors import InputError, MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Encounter
from bhhub.intake.records import Appointment, Registration
from bhhub.types import IntakeContext
from bhhub.plugins.ehr.hl7v2 import FORMAT, bhhub_register_intake_formats, parse, recognizes, split
from bhhub.plugins.ehr.hl7v2.wire import Delimiters, read_message, unescape

HL7 = FIXTURES / "hl7v2"

PRACTICE = """
[practices.SUNRISE_BH]
npi = "1234567893"
organization_name = "Sunrise Behavioral Health"
tin = "123456789"
taxonomy = "261QM0801X"

[practices.SUNRISE_BH.address]
line1 = "100 Main Street"
city = "Springfield"
state = "IL"
postal_code = "627011234"

[practices.SUNRISE_BH.clinicians.1245319599]
taxonomy = "101YP2500X"
"""

ZTH_MINUTES = """
[encounter]
minutes = ["ZTH-2"]
"""


def practice_mappings(tmp_path: Path, hl7v2_override: str | None = None) -> MappingSet:
    folder = tmp_path / "mappings" / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "practices.toml").write_text(PRACTICE, encoding="utf-8")
    if hl7v2_override is not None:
        (folder / "hl7v2.toml").write_text(hl7v2_override, encoding="utf-8")
    return MappingSet(override_dir=tmp_path / "mappings")


def read(name_or_bytes: str | bytes, mappings: MappingSet) -> list:
    content = (HL7 / name_or_bytes).read_bytes() if isinstance(name_or_bytes, str) else name_or_bytes
    return list(parse(content, IntakeContext("test.hl7", mappings)))


def refusal(content: bytes | str, mappings: MappingSet) -> InputError:
    with pytest.raises(InputError) as caught:
        read(content, mappings)
    return caught.value


def test_the_plugin_registers_one_format_that_splits_files():
    [fmt] = bhhub_register_intake_formats()
    assert fmt is FORMAT and fmt.name == "hl7v2" and fmt.split is not None


def test_recognizes_hl7_with_or_without_mllp_framing_and_nothing_else():
    message = (HL7 / "dft-p03-v23-minimal.hl7").read_bytes()
    assert recognizes(message)
    assert recognizes(b"\x0b" + message + b"\x1c\r")
    assert not recognizes(b'{"resourceType": "Bundle"}')
    assert not recognizes(b"ISA*00*          *00*")
    assert not recognizes(b"MSHALLOW text")


def test_a_v23_dft_without_in2_gt1_or_pr1_becomes_one_encounter(tmp_path):
    [visit] = read("dft-p03-v23-minimal.hl7", practice_mappings(tmp_path))
    assert isinstance(visit, Encounter)
    assert visit.service_date == date(2026, 11, 2)
    assert visit.patient.key == "hl7:SUNRISE_BH|MR|MRN20001"
    assert visit.billing_provider.npi == "1234567893" and visit.billing_provider.tin == "123456789"
    assert visit.rendering_provider.npi == "1245319599" and visit.rendering_provider.taxonomy == "101YP2500X"
    assert visit.diagnoses == ("F33.1",)
    [line] = visit.services
    assert (line.procedure_code, line.charge, line.units) == ("90834", Decimal("150.00"), Decimal(1))
    [coverage] = visit.coverages
    assert (coverage.payer.payer_id, coverage.member_id, coverage.relationship) == ("87726", "U1234567801", "18")


def test_a_v251_dft_with_every_optional_segment(tmp_path):
    [visit] = read("dft-p03-v251-full.hl7", practice_mappings(tmp_path))
    # DG1-15 priority 1 is principal, whatever the set order; FT1-19 codes point into the list.
    assert visit.diagnoses == ("F43.10", "F90.2")
    assert [(s.procedure_code, s.charge, s.diagnosis_pointers) for s in visit.services] == [
        ("90837", Decimal("200.00"), (1, 2)), ("90785", Decimal("25.00"), (1,))]
    primary, secondary = visit.coverages
    # IN1-17 MTH: the insured is the patient's mother, so the patient is the insured's child.
    assert primary.relationship == "19" and primary.subscriber.name.family == "Sampleton"
    assert primary.subscriber.birth_date == date(1984, 2, 10)
    assert (primary.group_number, primary.plan_name) == ("GRP7700", "Acme Corp Plan")
    assert secondary.payer.payer_id == "ILMCD" and secondary.payer.claim_filing_indicator == "MC"
    assert secondary.order == 2 and secondary.relationship == "18"
    assert visit.prior_authorization == "AUTH5566"  # IN1-14 authorization information
    # The SSN in PID-3 is never the key.
    assert visit.patient.key == "hl7:SUNRISE_BH|MR|MRN20002"


def test_a_z_segment_carries_minutes_only_with_a_practice_mapping(tmp_path):
    [plain] = read("dft-p03-ztherapy-minutes.hl7", practice_mappings(tmp_path / "a"))
    assert plain.minutes is None
    [mapped] = read("dft-p03-ztherapy-minutes.hl7", practice_mappings(tmp_path / "b", ZTH_MINUTES))
    assert mapped.minutes == 53
    assert mapped.services[0].charge is None  # no amount sent: the fee schedule prices it


ZTH_TELEHEALTH = """
[encounter]
minutes = ["ZTH-2"]
telehealth = ["ZTH-3"]
telehealth_video = ["VIDEO"]
telehealth_audio_only = ["PHONE"]
"""


@pytest.mark.parametrize(("value", "virtual", "audio_only"), [
    ("PHONE", True, True), ("video", True, False), ("OFFICE", False, False), ("", False, False)])
def test_a_telehealth_session_is_told_by_the_field_the_mapping_names(tmp_path, value, virtual, audio_only):
    content = (HL7 / "dft-p03-ztherapy-minutes.hl7").read_bytes().replace(b"ZTH|1|53", f"ZTH|1|53|{value}".encode())
    [visit] = read(content, practice_mappings(tmp_path, ZTH_TELEHEALTH))
    assert (visit.virtual, visit.audio_only) == (virtual, audio_only)
    [unmapped] = read(content, practice_mappings(tmp_path / "plain"))
    assert (unmapped.virtual, unmapped.audio_only) == (False, False)  # without the mapping, an office visit


def test_ft1s_for_two_clinicians_in_one_dft_become_two_visits(tmp_path):
    text = (HL7 / "dft-p03-v251-full.hl7").read_bytes().decode()
    second = "1987654328^Lopez^Sam^^^^^^^^^^NPI"
    lines = text.split("\r")
    lines = [line.replace("1245319599^Carter^Dana^^^^^^^^^^NPI", second) if line.startswith("FT1|2|") else line
             for line in lines]
    visits = read("\r".join(lines).encode(), practice_mappings(tmp_path))
    assert sorted(v.rendering_provider.npi for v in visits) == ["1245319599", "1987654328"]
    assert len({v.key for v in visits}) == 2


@pytest.mark.parametrize("change, reason", [
    (lambda t: t.replace("90834^Psychotherapy 45 min^C4", ""), "FT1-25/PR1-3/FT1-7 procedure code is empty"),
    (lambda t: t.replace("|20261102|20261102|CG|", "||20261102|CG|").replace("20261102|CG", "|CG"),
     "transaction date is empty"),
    (lambda t: t.replace("|CG|", "|PY|"), "nothing to bill: no FT1 with a billed transaction type"),
    (lambda t: "\r".join(s for s in t.split("\r") if not s.startswith("IN1")), "no IN1 segment"),
    (lambda t: t.replace("F33.1^Major depressive disorder, recurrent, moderate^I10", "35489007^Depression^SCT"),
     "DG1-3 diagnosis is coded in another system, not ICD-10-CM"),  # the code is never quoted
    (lambda t: t.replace("SUNRISE_BH|BHHUB", "OTHER_CLINIC|BHHUB"), "MSH-4 sending facility 'OTHER_CLINIC' has no"),
    (lambda t: t.replace("DFT^P03", "ORU^R01"), "MSH-9 message type ORU^R01 is not one the hub reads"),
    (lambda t: t.replace("|SEL|", "|XYZ|"), "IN1-17 relationship code is not in the field map"),
    (lambda t: t.replace("|150.00|", "|-150.00|"), "FT1-11 amount is negative on a charge"),
    # FT1-20 names a clinician without a name: PV1-7's name (another person) is not borrowed.
    (lambda t: t.replace("|1245319599^Carter^Dana|", "|1987654328|"),
     "FT1-20 performing provider has an id but no family name"),
])
def test_a_bad_dft_is_refused_naming_the_segment_field_and_message(tmp_path, change, reason):
    text = (HL7 / "dft-p03-v23-minimal.hl7").read_bytes().decode()
    error = refusal(change(text).encode(), practice_mappings(tmp_path))
    assert reason in str(error)
    assert "MSG10001" in str(error)
    assert "Testperson" not in str(error) and "U1234567801" not in str(error)  # no PHI in reasons


def test_an_adt_is_a_registration_and_an_siu_an_appointment(tmp_path):
    mappings = practice_mappings(tmp_path)
    [registration] = read("adt-a04-v251.hl7", mappings)
    assert isinstance(registration, Registration)
    assert registration.patient.key == "hl7:SUNRISE_BH|MR|MRN20004"
    assert [c.member_id for c in registration.coverages] == ["C0011223344"]
    [booked] = read("siu-s12-v251.hl7", mappings)
    [cancelled] = read("siu-s15-v251.hl7", mappings)
    assert isinstance(booked, Appointment) and booked.key == cancelled.key
    assert (booked.status, cancelled.status) == ("booked", "cancelled")
    assert booked.starts_at == datetime(2026, 12, 10, 14, 0) and booked.duration_minutes == 60
    assert booked.provider_npi == "1245319599" and booked.patient.key == registration.patient.key


def test_registrations_and_appointments_need_no_practice_profile(tmp_path):
    mappings = MappingSet(override_dir=tmp_path)  # the packaged profiles: none
    assert isinstance(read("adt-a04-v251.hl7", mappings)[0], Registration)
    assert "no practice profile" in str(refusal("dft-p03-v23-minimal.hl7", mappings))


def test_a_file_of_messages_splits_at_each_msh_whatever_the_line_endings_and_framing():
    parts = split((HL7 / "day-export-three-messages.hl7").read_bytes())
    assert [read_message(p).control_id for p in parts] == ["MSG20001", "MSG20002", "MSG20003"]
    assert all(b"\x0b" not in p and b"\x1c" not in p for p in parts)
    one = (HL7 / "dft-p03-v23-minimal.hl7").read_bytes()
    assert split(one) == [one]  # a one-message file is stored as it came (same sha256)
    crlf = one.replace(b"\r", b"\r\n")
    assert len(split(crlf + crlf.replace(b"MSG10001", b"MSG10009"))) == 2
    batch = b"FHS|^~\\&|EHR\rBHS|^~\\&|EHR\r" + one + one.replace(b"MSG10001", b"MSG10009") + b"BTS|2\rFTS|1\r"
    assert [read_message(p).control_id for p in split(batch)] == ["MSG10001", "MSG10009"]
    assert split(b"garbage line\n" + one)[0] == b"garbage line"  # kept, to be quarantined
    [unwrapped] = split(b"FHS|^~\\&|EHR\rBHS|^~\\&|EHR\r" + one + b"BTS|1\rFTS|1\r")
    assert unwrapped.startswith(b"MSH|") and b"BTS" not in unwrapped  # a batch of one, unwrapped


def test_an_item_holding_two_messages_is_refused_by_parse(tmp_path):
    one = (HL7 / "dft-p03-v23-minimal.hl7").read_bytes()
    error = refusal(one + one.replace(b"MSG10001", b"MSG10009"), practice_mappings(tmp_path))
    assert "holds 2 messages" in str(error)


def test_escape_sequences_are_decoded_with_the_messages_own_delimiters():
    d = Delimiters()
    assert unescape(r"A\T\E \F\ pipe \S\ hat \R\ tilde \E\ slash \X41\ \.br\end", d) == \
        "A&E | pipe ^ hat ~ tilde \\ slash A  end"
    custom = read_message(b"MSH#*~\\@#APP#FAC\rPID#1##ID1*X*X*X*MR##Doe*Jane\r")
    assert custom.first("PID").value(5, 2) == "Jane" and custom.first("PID").value(3, 5) == "MR"


def test_the_fast_reader_cuts_messages_into_the_same_segments_and_fields_as_hl7apy(corpora):
    """Every segment, and every field the packaged map reads, as hl7apy's full parse sees it."""
    from hl7apy.parser import parse_message

    from bhhub.plugins.ehr.hl7v2.fieldmap import load_field_map

    read_by_the_map = {(p.segment, p.field) for p in _all_paths(load_field_map(MappingSet()).data)}
    files = sorted(HL7.glob("*.hl7")) + sorted((corpora / "fhir-converter-hl7v2").glob("*.hl7"))
    compared = 0
    for path in files:
        for part in split(path.read_bytes()):
            ours = read_message(part)
            theirs = parse_message(part.decode().replace("\r\n", "\r").replace("\n", "\r").strip("\r"),
                                   find_groups=False)
            assert [s.name for s in ours.segments] == [s.name for s in theirs.children], path.name
            for mine, other in zip(ours.segments[1:], theirs.children[1:]):
                fields: dict[int, list[str]] = {}
                for f in other.children:  # hl7apy keeps each repetition as its own child
                    if f.name is not None:  # None: a Z-segment's fields
                        fields.setdefault(int(f.name.rsplit("_", 1)[1]), []).append(f.to_er7())
                for number, repetitions in fields.items():
                    if (mine.name, number) in read_by_the_map:  # hl7apy rewrites some types (SI "001" as "1")
                        compared += 1
                        assert [_trimmed(r) for r in mine.repetitions(number)] == [_trimmed(r) for r in repetitions], \
                            (path.name, mine.name, number)
    assert compared > 100


def _all_paths(table):
    for value in table.values():
        if isinstance(value, dict):
            yield from _all_paths(value)
        elif isinstance(value, tuple):
            yield from (p for p in value if hasattr(p, "segment"))


def _trimmed(raw: str) -> str:
    """hl7apy writes a field back without trailing empty components or sub-components."""
    return "^".join(c.rstrip("& ") for c in raw.strip().split("^")).rstrip("^")


# --- the mapping file ---------------------------------------------------------------------


def test_every_problem_in_a_mapping_file_is_reported_at_once(tmp_path):
    bad = """
[charge]
procedure_code = "FT1-25.x"
modifiers = 26
quantitty = "FT1-10"
rendering_npi = ["FT1-99.1", "ZPR-3.1"]

[widgets]
size = 3
"""
    error = refusal("dft-p03-v23-minimal.hl7", practice_mappings(tmp_path, bad))
    assert isinstance(error, MappingError)
    text = str(error)
    assert "5 problem(s)" in text
    for expected in ("'FT1-25.x' is not a field path", "charge.modifiers must be a field path or a list",
                     "unknown key 'charge.quantitty'", "'FT1-99.1': segment FT1 has", "unknown key 'widgets'"):
        assert expected in text
    assert "ZPR" not in text  # a Z-segment path is fine


def test_a_practice_profile_with_mistakes_is_reported_whole(tmp_path):
    folder = tmp_path / "ehr"
    folder.mkdir()
    (folder / "practices.toml").write_text("""
[practices.SUNRISE_BH]
npi = "1234567890"
organization_name = "Sunrise"
tin = "12-3456789"
colour = "blue"
[practices.SUNRISE_BH.address]
line1 = "1 Main"
city = "Springfield"
state = "IL"
""", encoding="utf-8")
    error = refusal("dft-p03-v23-minimal.hl7", MappingSet(override_dir=tmp_path))
    text = str(error)
    assert "unknown key 'practices.SUNRISE_BH.colour'" in text
    assert "'practices.SUNRISE_BH.address.postal_code' is missing" in text
    # Check digits are checked once the shape is right; the shape problems come first.
    assert isinstance(error, MappingError)


def test_the_packaged_mapping_files_pass_their_own_schema():
    from bhhub.plugins.ehr.hl7v2.fieldmap import load_field_map
    from bhhub.plugins.ehr.hl7v2.practices import load_practices

    mappings = MappingSet()
    assert load_field_map(mappings).charges >= {"DFT^P03"}
    assert load_practices(mappings) == {}


# --- messages written by others --------------------------------------------------------------


def test_corpus_messages_become_records_or_clear_refusals(corpora, tmp_path):
    """fhir-converter's HL7 v2.8 samples: every one is read or refused with a reason naming
    where; none crashes the reader."""
    folder = corpora / "fhir-converter-hl7v2"
    if not folder.is_dir():
        pytest.skip("the fhir-converter HL7 v2 samples are not present")
    mappings = practice_mappings(tmp_path)
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.hl7")):
        for part in split(path.read_bytes()):
            try:
                records = read(part, mappings)
            except InputError as exc:
                assert exc.where and exc.where.startswith(("message MSG", "FT1 set", "DG1 set", "IN1 set")), exc
                assert exc.fix
                seen[path.name] = f"refused: {exc}"
            else:
                assert records
                seen[path.name] = ", ".join(type(r).__name__ for r in records)
    assert seen["ADT-A04-01.hl7"] == "Registration"
    assert seen["SIU-S12-01.hl7"] == "Appointment" and seen["SIU-S15-01.hl7"] == "Appointment"
    assert "BAR^P01 is not one the hub reads" in seen["BAR-P01-01.hl7"]
    # Their sending facility has no practice profile here: the DFTs are refused, saying so.
    assert "MSH-4 sending facility 'GHHSFacility' has no practice profile" in seen["DFT-P03-01.hl7"]


def test_corpus_dfts_with_a_profile_are_refused_for_their_snomed_diagnoses(corpora, tmp_path):
    folder = corpora / "fhir-converter-hl7v2"
    if not folder.is_dir():
        pytest.skip("the fhir-converter HL7 v2 samples are not present")
    practice_mappings(tmp_path)
    profile = PRACTICE.replace("SUNRISE_BH", "GHHSFacility")  # a profile for their sending facility
    (tmp_path / "mappings" / "ehr" / "practices.toml").write_text(profile, encoding="utf-8")
    mappings = MappingSet(override_dir=tmp_path / "mappings")
    for name in ("DFT-P03-01.hl7", "DFT-P03-02.hl7"):
        error = refusal((folder / name).read_bytes(), mappings)
        assert "diagnosis is coded in another system, not ICD-10-CM" in str(error)
