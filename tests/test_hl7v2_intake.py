"""HL7 v2 through the hub as a biller uses it: `bhhub intake` of message files, claims out through
`bhhub export-837` checked by pyx12, registrations and appointments stored, bad messages
quarantined while their siblings import. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from sqlalchemy import func, select

from conftest import FIXTURES
from bhhub.intake import inbox as intake
from bhhub.intake import many as intake_many
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.store import schema
from bhhub.x12.validate import validate_x12
from test_hl7v2_plugin import PRACTICE, ZTH_MINUTES

HL7 = FIXTURES / "hl7v2"


def with_practice(home: Path, hl7v2_override: str | None = None) -> Path:
    """``home`` a hub (made as `bhhub init` does, when it is not one yet) with the practice's
    EHR table, and ``hl7v2_override`` as its hl7v2 table."""
    from bhhub.runtime.app import Hub
    from bhhub.runtime.config import is_hub_home

    if not is_hub_home(home):
        Hub.open(home, create=True).close()
    folder = home / "mappings" / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "practices.toml").write_text(PRACTICE, encoding="utf-8")
    if hl7v2_override is not None:
        (folder / "hl7v2.toml").write_text(hl7v2_override, encoding="utf-8")
    return home


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def run_json(capsys, home: Path, *args: str):
    capsys.readouterr()
    code = run(home, *args, "--json")
    return code, json.loads(capsys.readouterr().out)


def counts(home: Path) -> dict[str, int]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (schema.InboxItem, schema.Patient, schema.Coverage, schema.Claim, schema.Appointment)}


def test_dfts_in_v23_and_v251_and_a_z_segment_become_claims_in_one_valid_837p(hub_home, tmp_path, capsys):
    with_practice(hub_home, ZTH_MINUTES)
    files = [HL7 / n for n in ("dft-p03-v23-minimal.hl7", "dft-p03-v251-full.hl7", "dft-p03-ztherapy-minutes.hl7")]
    code, results = run_json(capsys, hub_home, "intake", *map(str, files))
    assert code == 0, results
    assert [r["outcome"] for r in results] == ["imported"] * 3
    assert [c["status"] for r in results for c in r["claims"]] == ["ready"] * 3
    out = tmp_path / "claims.837"
    assert run(hub_home, "export-837", "--out", str(out)) == 0
    assert validate_x12(out.read_bytes()) == []
    text = out.read_text()
    assert "SV1*HC:90837*200*UN*1***1:2~" in text and "SV1*HC:90785*25*UN*1***1~" in text
    assert "PAT*19~" in text  # the child on the parent's plan
    assert "REF*G1*AUTH5566~" in text  # IN1-14's prior authorization
    assert "NM1*85*2*SUNRISE BEHAVIORAL HEALTH*****XX*1234567893~" in text  # from the practice profile
    assert "PRV*PE*PXC*101YP2500X~" in text  # the clinician's taxonomy from the profile
    assert "REF*EI*123456789~" in text
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        # The ZTH minutes (through the practice's mapping) reached the 90837 line; no time warning.
        minutes = session.scalars(select(schema.ServiceLine.minutes).where(
            schema.ServiceLine.procedure_code == "90837").order_by(schema.ServiceLine.id)).all()
        assert minutes == [None, 53]
        codes = session.scalars(select(schema.Finding.code)).all()
        assert codes.count("coding.time_missing") == 2  # the v2.3 and v2.5.1 messages sent no minutes


def test_a_bad_message_in_a_multi_message_file_is_quarantined_and_the_rest_import(hub_home, capsys):
    with_practice(hub_home)
    drop = HL7 / "day-export-three-messages.hl7"
    code, results = run_json(capsys, hub_home, "intake", str(drop))
    assert code == 1
    assert [(Path(r["source"]).name, r["outcome"]) for r in results] == [
        ("day-export-three-messages.hl7#1", "imported"),
        ("day-export-three-messages.hl7#2", "quarantined"),
        ("day-export-three-messages.hl7#3", "imported")]
    assert results[1]["reason"].startswith("FT1 set 1 in message MSG20002: FT1-25/PR1-3/FT1-7 procedure code is empty")
    assert results[2]["records"] == [{"kind": "registration", "id": results[2]["records"][0]["id"], "action": "stored"}]
    code, inbox = run_json(capsys, hub_home, "inbox", "--state", "quarantined")
    assert [Path(i["source"]).name for i in inbox] == ["day-export-three-messages.hl7#2"]
    before = counts(hub_home)
    # The same file again, even renamed: every message is a duplicate, nothing changes.
    code, again = run_json(capsys, hub_home, "intake", str(drop))
    assert [r["outcome"] for r in again] == ["duplicate"] * 3
    assert counts(hub_home) == before
    assert before["inbox_items"] == 3 and before["claims"] == 1


def test_each_stored_message_is_its_own_bytes_without_framing(sqlite_hub):
    with_practice(sqlite_hub.settings.home)
    results = list(intake_many.receive_many(sqlite_hub, [("drop.hl7", (HL7 / "day-export-three-messages.hl7").read_bytes())]))
    with sqlite_hub.store.session() as session:
        stored = session.scalars(select(schema.InboxItem.content).order_by(schema.InboxItem.id)).all()
    assert [r.source_name for r in results] == ["drop.hl7#1", "drop.hl7#2", "drop.hl7#3"]
    assert all(c.startswith(b"MSH|") and b"\x0b" not in c and b"\x1c" not in c for c in stored)
    # The first message sent alone (as the MLLP listener will: one receive per message) is the same item.
    single = intake.receive(sqlite_hub, stored[0], "mllp:peer")
    assert single.outcome == "duplicate"


def test_an_adt_registers_the_patient_and_the_dft_after_it_bills_the_same_patient(hub_home, capsys):
    with_practice(hub_home)
    code, [adt] = run_json(capsys, hub_home, "intake", str(HL7 / "adt-a04-v251.hl7"))
    assert code == 0 and adt["outcome"] == "imported" and adt["claims"] == []
    assert adt["records"][0]["kind"] == "registration"
    after_adt = counts(hub_home)
    assert (after_adt["patients"], after_adt["coverages"], after_adt["claims"]) == (1, 1, 0)
    code, [dft] = run_json(capsys, hub_home, "intake", str(HL7 / "dft-p03-after-adt.hl7"))
    assert code == 0 and dft["claims"][0]["status"] == "ready"
    after_dft = counts(hub_home)
    assert (after_dft["patients"], after_dft["coverages"], after_dft["claims"]) == (1, 1, 1)
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        patient = session.scalars(select(schema.Patient)).one()
        claim = session.scalars(select(schema.Claim)).one()
        assert claim.patient_id == patient.id and patient.key == "hl7:SUNRISE_BH|MR|MRN20004"
        coverage = session.scalars(select(schema.Coverage)).one()
        assert coverage.payer.claim_filing_indicator == "12" and claim.coverage_id == coverage.id
        audited = session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.object_type == "patient")).all()
        assert [(a.action, a.object_ids) for a in audited] == [("intake", [patient.id])]


def test_an_appointment_is_booked_then_cancelled_and_an_older_message_does_not_rebook_it(hub_home, tmp_path, capsys):
    with_practice(hub_home)
    assert run(hub_home, "intake", str(HL7 / "siu-s12-v251.hl7")) == 0
    assert run(hub_home, "intake", str(HL7 / "siu-s15-v251.hl7")) == 0
    # The booking re-sent late with a new control id (other bytes): older than the cancellation.
    late = tmp_path / "late-s12.hl7"
    late.write_bytes((HL7 / "siu-s12-v251.hl7").read_bytes().replace(b"MSG10006", b"MSG10099"))
    code, [result] = run_json(capsys, hub_home, "intake", str(late))
    assert code == 0 and result["records"][0]["action"] == "unchanged"
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        [appointment] = session.scalars(select(schema.Appointment)).all()
        assert appointment.status == "cancelled"
        assert appointment.key == "hl7:SUNRISE_BH|appointment|FL7001"
        assert appointment.provider_npi == "1245319599" and appointment.duration_minutes == 60
        assert str(appointment.service_date) == "2026-12-10"
        patient = session.scalars(select(schema.Patient)).one()  # first seen in the schedule
        assert appointment.patient_id == patient.id


def test_a_cancellation_without_a_patient_keeps_the_appointments_patient(sqlite_hub):
    with_practice(sqlite_hub.settings.home)
    intake.receive(sqlite_hub, (HL7 / "siu-s12-v251.hl7").read_bytes(), "s12.hl7")
    cancel = b"".join(s + b"\r" for s in (HL7 / "siu-s15-v251.hl7").read_bytes().split(b"\r")
                      if s and not s.startswith(b"PID"))
    assert intake.receive(sqlite_hub, cancel, "s15.hl7").outcome == "imported"
    with sqlite_hub.store.session() as session:
        [appointment] = session.scalars(select(schema.Appointment)).all()
        assert appointment.status == "cancelled"
        assert appointment.patient_key == "hl7:SUNRISE_BH|MR|MRN20004" and appointment.patient_id is not None


def test_the_appointment_does_not_overwrite_a_registered_patient(sqlite_hub):
    with_practice(sqlite_hub.settings.home)
    intake.receive(sqlite_hub, (HL7 / "adt-a04-v251.hl7").read_bytes(), "adt.hl7")
    result = intake.receive(sqlite_hub, (HL7 / "siu-s12-v251.hl7").read_bytes(), "siu.hl7")
    assert result.outcome == "imported"
    with sqlite_hub.store.session() as session:
        patient = session.scalars(select(schema.Patient)).one()
        assert patient.address is not None  # the SIU's PID has no address; the ADT's is kept


def test_a_dft_from_a_facility_without_a_profile_is_quarantined_saying_how_to_fix_it(sqlite_hub):
    result = intake.receive(sqlite_hub, (HL7 / "dft-p03-v23-minimal.hl7").read_bytes(), "dft.hl7")
    assert result.outcome == "quarantined"
    assert "MSH-4 sending facility 'SUNRISE_BH' has no practice profile" in result.reason
    assert "practices.toml" in result.reason
    # The practice adds its profile; the kept message imports on retry.
    with_practice(sqlite_hub.settings.home)
    sqlite_hub.__dict__.pop("mappings", None)  # a new command would load the tables afresh
    assert intake.retry(sqlite_hub, result.item_id).outcome == "imported"


def test_parsing_hl7_in_a_worker_process_gives_the_same_records(tmp_path):
    home = with_practice(tmp_path / "home")
    drop = (HL7 / "day-export-three-messages.hl7").read_bytes()
    siu = (HL7 / "siu-s12-v251.hl7").read_bytes()
    with Hub.open(home) as hub:
        results = list(intake_many.receive_many(hub, [("drop.hl7", drop), ("siu.hl7", siu)], parse_in_worker=True))
    assert [r.outcome for r in results] == ["imported", "quarantined", "imported", "imported"]
    assert [r.records[0].kind for r in results if r.records] == ["registration", "appointment"]


def test_no_phi_in_logs(hub_home, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with_practice(hub_home)
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("dft-p03-v251-full.hl7", "adt-a04-v251.hl7", "siu-s12-v251.hl7", "day-export-three-messages.hl7"):
        shutil.copy(HL7 / name, folder / name)
    run(hub_home, "-v", "intake", str(folder))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "inbox item" in logged
    for phi in ("Sampleton", "Demoperson", "Testperson", "20120607", "19780922", "XOF123456789", "C0011223344",
                "MRN20002", "999000111"):
        assert phi not in logged


def test_a_phone_session_from_hl7_is_billed_with_the_payers_telehealth_place_and_modifier(hub_home, capsys):
    from test_hl7v2_plugin import ZTH_TELEHEALTH

    with_practice(hub_home, ZTH_TELEHEALTH)
    content = (HL7 / "dft-p03-ztherapy-minutes.hl7").read_bytes().replace(b"ZTH|1|53", b"ZTH|1|53|PHONE")
    (hub_home / "phone.hl7").write_bytes(content)
    code, [result] = run_json(capsys, hub_home, "intake", str(hub_home / "phone.hl7"))
    assert code == 0 and result["outcome"] == "imported"
    code, [claim] = run_json(capsys, hub_home, "claims")
    # mappings/payers.toml: the commercial default is POS 10 (patient at home) and 93 for audio only
    assert claim["place_of_service"] == "10"
    assert [(l["procedure_code"], l["modifiers"]) for l in claim["lines"]] == [("90837", ["93"])]
