"""No patient data in what the hub says about bad input: quarantine reasons, ACKs, output, logs.

A patient with canary values (a family name, a given name, a date of birth, a member id, a
chart number that appear nowhere else) is sent through every HL7 v2 error path the reader has,
often with the canary in the very field at fault, by `bhhub intake` of files and over MLLP;
then the FHIR R4 reader's refusals the same way. Every message must be refused, and no canary
may appear in the inbox's reasons, the ACK bytes, stdout, stderr or the log.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import select

from conftest import FIXTURES
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.store import schema
from test_hl7v2_intake import with_practice
from test_mllp_listener import MllpClient

from bhhub.connectors.mllp.server import MllpListener

FAMILY, GIVEN, BIRTH, MEMBER, CHART = "Quillfeather", "Zebediah", "19730516", "QXM55501234", "QMRN7781234"
CANARIES = (FAMILY, GIVEN, BIRTH, MEMBER, CHART, "1973-05-16")

DFT = [
    "MSH|^~\\&|TheraNotes|SUNRISE_BH|BHHUB|BILLING|20261103181500||DFT^P03^DFT_P03|MSG30001|P|2.5.1",
    "EVN|P03|20261103181500",
    f"PID|1||{CHART}^^^SUNRISE_BH^MR||{FAMILY}^{GIVEN}||{BIRTH}|M|||44 Oak Avenue^^Springfield^IL^627041234",
    "PV1|1|O|OFFICE^^^SUNRISE_BH||||1245319599^Carter^Dana^^^^^^^^^^NPI||||||||||||V30001",
    "FT1|1|T3001||20261103^20261103|20261103|CG|90837^Psychotherapy 60 min^C4|||1|200.00&USD||||||||"
    "F43.10^PTSD^I10|1245319599^Carter^Dana^^^^^^^^^^NPI|||||90837^Psychotherapy 60 min^C4",
    "DG1|1||F43.10^PTSD^I10|||F",
    f"GT1|1||{FAMILY}^Morgan||44 Oak Avenue^^Springfield^IL^627041234|||{BIRTH}|F||MTH",
    f"IN1|1|BCBS-PPO|BCBSIL^^^^NIIP|Blue Cross||||GRP7700|Acme Plan|||20260101|20261231||PPO|{FAMILY}^{GIVEN}|SEL|"
    f"{BIRTH}||||1||||||||||||||{MEMBER}|||||||F",
]


def field(segments: list[str], name: str, number: int, value: str) -> list[str]:
    """``segments`` with field ``number`` of the first ``name`` segment set to ``value``."""
    out, done = [], False
    for segment in segments:
        if segment.startswith(name + "|") and not done:
            parts = segment.split("|")
            index = number if name != "MSH" else number - 1
            parts += [""] * (index + 1 - len(parts))
            parts[index] = value
            segment, done = "|".join(parts), True
        out.append(segment)
    return out


def without(segments: list[str], name: str) -> list[str]:
    return [s for s in segments if not s.startswith(name + "|")]


# Every way the HL7 v2 reader refuses a message, a canary in the field at fault where one fits.
BROKEN = {
    "PID-7 date of birth that is no date": field(DFT, "PID", 7, f"{BIRTH}{FAMILY}"),
    "IN1-18 insured's birth date that is no date": field(field(DFT, "IN1", 17, "SPO"), "IN1", 18, GIVEN),
    "FT1-4 date of service that is no date": field(DFT, "FT1", 4, FAMILY),
    "FT1-11 amount that is no number": field(DFT, "FT1", 11, f"{BIRTH}{GIVEN}"),
    "FT1-10 quantity that is no number": field(DFT, "FT1", 10, MEMBER),
    "FT1-6 transaction type not billed": field(DFT, "FT1", 6, FAMILY),
    "FT1-1 set id and an empty procedure": field(field(field(DFT, "FT1", 1, CHART), "FT1", 7, ""), "FT1", 25, ""),
    "IN1-17 relationship code not mapped": field(DFT, "IN1", 17, FAMILY),
    "DG1-3 coding system not ICD-10-CM": field(DFT, "DG1", 3, f"F43.10^PTSD^{FAMILY}"),
    "MSH-12 version not read": field(DFT, "MSH", 12, BIRTH),
    "MSH-9 message type not read": field(DFT, "MSH", 9, f"{FAMILY}^{GIVEN}"),
    "MSH-10 control id of another shape": field(field(field(DFT, "MSH", 10, f"{FAMILY} {BIRTH}"), "FT1", 7, ""),
                                                 "FT1", 25, ""),
    "PID-5 without a family name": field(DFT, "PID", 5, f"^{GIVEN}"),
    "PID-3 without a chart number of a known type": field(DFT, "PID", 3, f"{CHART}^^^SUNRISE_BH^{FAMILY}"),
    "IN1-36 member id missing": field(DFT, "IN1", 36, ""),
    "IN1-3 payer id missing": field(field(DFT, "IN1", 3, ""), "IN1", 2, ""),
    "IN1-16 insured's name missing for a spouse": without(field(field(DFT, "IN1", 17, "SPO"), "IN1", 16, ""), "GT1"),
    "no PID segment": without(DFT, "PID"),
    "no IN1 segment": without(DFT, "IN1"),
    "bad encoding characters": [DFT[0].replace("^~\\&", "Q1Z2", 1)] + DFT[1:],
    "SIU appointment start that is no date": [
        "MSH|^~\\&|TheraSched|SUNRISE_BH|BHHUB|BILLING|20261120100000||SIU^S12^SIU_S12|MSG30002|P|2.5.1",
        "SCH|PL7001|FL7001|||||FOLLOWUP^Follow-up visit|ROUTINE|60|min",
        f"PID|1||{CHART}^^^SUNRISE_BH^MR||{FAMILY}^{GIVEN}||{BIRTH}|F",
        f"AIS|1|A|90837^Psychotherapy 60 min^C4|{FAMILY}{BIRTH}"],
}


def message(segments: list[str]) -> bytes:
    return ("\r".join(segments) + "\r").encode()


def assert_no_canary(where: str, text: str) -> None:
    found = [c for c in CANARIES if c in text]
    assert not found, f"{found} in {where}: {text[:2000]}"


def ack_words(ack: bytes) -> str:
    """What the hub wrote in an ACK: every segment but its MSH, and MSA without MSA-2 (those echo
    the sender's own MSH fields, MSH-10 as the standard requires, and are no reason text)."""
    words = []
    for segment in ack.decode("latin-1").split("\r"):
        if segment.startswith("MSA|"):
            parts = segment.split("|")
            segment = "|".join(parts[:2] + parts[3:])
        if segment and not segment.startswith("MSH|"):
            words.append(segment)
    return "\r".join(words)


def reasons(hub) -> list[str]:
    with hub.store.session() as session:
        return [r or "" for r in session.scalars(select(schema.InboxItem.reason))]


def test_no_canary_reaches_a_reason_an_ack_the_output_or_the_log_on_any_hl7_error_path(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    drop = tmp_path / "drop"
    drop.mkdir()
    for number, (name, segments) in enumerate(BROKEN.items()):
        (drop / f"case{number:02d}.hl7").write_bytes(message(segments))
    # Text before the first MSH in a day's export: kept as an item of its own, and refused.
    (drop / "leading-text.hl7").write_bytes(f"{FAMILY} {BIRTH} {MEMBER}\r".encode() + message(BROKEN["no IN1 segment"]))

    home = with_practice(tmp_path / "files")
    capsys.readouterr()
    code = main(["--home", str(home), "-v", "intake", str(drop)])
    out, err = capsys.readouterr()
    assert code == 1
    capsys.readouterr()
    main(["--home", str(home), "intake", str(drop), "--json"])  # the same again, as JSON: duplicates
    json_out = capsys.readouterr().out
    main(["--home", str(home), "inbox", "--state", "quarantined"])
    inbox_out = capsys.readouterr().out
    with Hub.open(home) as hub:
        stored = reasons(hub)
    assert len(stored) == len(BROKEN) + 1 and all(stored), "every broken message is quarantined with a reason"
    assert any("PID-7 date of birth is not a date" in r for r in stored)
    assert any("IN1-17 relationship code is not in the field map" in r for r in stored)
    assert any("MSH-12 version (not shown) is not read" in r for r in stored)
    for where, text in (("stdout", out), ("stderr", err), ("--json", json_out), ("bhhub inbox", inbox_out),
                        ("quarantine reasons", "\n".join(stored))):
        assert_no_canary(where, text)

    # Over MLLP: every message answered AE (stored, quarantined, the reason in MSA-3 and ERR).
    acks = []
    with Hub.open(with_practice(tmp_path / "mllp")) as hub, MllpListener(hub, port=0) as listener:
        client = MllpClient(listener.address)
        for segments in BROKEN.values():
            acks.append(client.call(message(segments)))
        client.close()
        stored = reasons(hub)
    codes = [re.search(rb"MSA\|(A[AER])", ack).group(1) for ack in acks]
    assert set(codes) == {b"AE"} and len(stored) == len(BROKEN)
    assert all(b"ERR|" in ack for ack in acks)
    assert_no_canary("ACKs", "\n".join(ack_words(ack) for ack in acks))
    assert_no_canary("quarantine reasons (MLLP)", "\n".join(stored))
    assert_no_canary("log", caplog.text + "\n".join(str(r.args) for r in caplog.records))


FHIR = FIXTURES / "fhir" / "child-on-parent-plan.json"


def fhir_bundle(change) -> bytes:
    bundle = json.loads(FHIR.read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["name"] = [{"family": FAMILY, "given": [GIVEN]}]
            resource["birthDate"] = "1973-05-16"
            resource["identifier"][0]["value"] = CHART
        if resource["resourceType"] == "Coverage":
            resource["subscriberId"] = MEMBER
    change(bundle)
    return json.dumps(bundle).encode()


def _patient(bundle) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def _coverage(bundle) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")


FHIR_BROKEN = {
    "birthDate that is no date": lambda b: _patient(b).update(birthDate=f"{FAMILY}-1973-05-16"),
    "name that is no list": lambda b: _patient(b).update(name=f"{FAMILY} {GIVEN}"),
    "an element FHIR does not have, holding a canary": lambda b: _patient(b).update(nickname=GIVEN),
    "a resource id that is no FHIR id": lambda b: _patient(b).update(id=f"{FAMILY} {BIRTH}", active=FAMILY),
    "an entry whose resourceType is no FHIR type": lambda b: _patient(b).update(resourceType=FAMILY),
    "a Bundle.type that is no FHIR code": lambda b: b.update(type=FAMILY),
    "a relationship code the field map lacks": lambda b: _coverage(b).update(relationship={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": FAMILY}]}),
    "a resource that is not a Bundle": lambda b: b.update(resourceType=FAMILY),
}


@pytest.mark.parametrize("name", FHIR_BROKEN)
def test_no_canary_reaches_a_fhir_refusal(tmp_path, capsys, caplog, name):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "bundle.json"
    path.write_bytes(fhir_bundle(FHIR_BROKEN[name]))
    home = tmp_path / "home"
    assert main(["--home", str(home), "init"]) == 0
    capsys.readouterr()
    code = main(["--home", str(home), "-v", "intake", str(path), "--json"])
    out, err = capsys.readouterr()
    [result] = json.loads(out)
    assert code == 1 and result["outcome"] == "quarantined", result
    with Hub.open(home) as hub:
        stored = reasons(hub)
    for where, text in (("stdout", out), ("stderr", err), ("reason", "\n".join(stored)), ("log", caplog.text)):
        assert_no_canary(where, text)
