"""Payloads of other formats, that an EHR plugin's ``recognizes`` must answer False.

The hub asks every format's ``recognizes`` about every payload and gives it to the first that
says yes (``bhhub.intake.inbox.choose_format``): a recognizer that says yes to what is not its format
either takes files from the format that reads them, or never gets them because a built-in came
first. ``foreign_payloads()`` are the built-in formats' own samples (each labelled with the
format that reads it, so the built-in under test is not asked about its own), X12 and HL7 of
other kinds, and JSON, XML and CSV that are nobody's format, random JSON among them.

All invented: no real patient, NPIs with valid check digits that belong to no one.
"""

from __future__ import annotations

import json
import random
from typing import NamedTuple

FHIR_BUNDLE = json.dumps({
    "resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Testpatient", "given": ["Alpha"]}],
                      "gender": "female", "birthDate": "1985-03-14"}},
        {"resource": {"resourceType": "Coverage", "id": "c1", "status": "active",
                      "beneficiary": {"reference": "Patient/p1"}, "subscriberId": "MEM1001",
                      "payor": [{"display": "SAMPLE COMMERCIAL HEALTH PLAN"}]}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                      "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"},
                      "period": {"start": "2026-11-02T09:00:00-06:00", "end": "2026-11-02T09:55:00-06:00"}}},
        {"resource": {"resourceType": "Condition", "id": "d1", "subject": {"reference": "Patient/p1"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1"}]}}},
    ]}, indent=1).encode()

HL7_DFT = (b"MSH|^~\\&|TheraNotes|SUNRISE_BH|BHHUB|BILLING|20261102170500||DFT^P03|MSG10001|P|2.3\r"
           b"EVN|P03|20261102170500\r"
           b"PID|1||MRN20001^^^SUNRISE_BH^MR||Testperson^Avery^Q||19850314|F|||12 Elm Street^^Springfield^IL^62701\r"
           b"PV1|1|O|OFFICE||||1245319599^Carter^Dana\r"
           b"FT1|1|T1001||20261102|20261102|CG|90834^Psychotherapy 45 min^C4|||1|150.00\r"
           b"DG1|1|I10|F33.1^Major depressive disorder, recurrent, moderate^I10|||F\r"
           b"IN1|1|UHC-PPO|87726^^^^NIIP|UnitedHealthcare\r")
HL7_ADT = (b"MSH|^~\\&|EHR|CLINIC|BHHUB|BILLING|202611020900||ADT^A04|MSG2|P|2.5.1\r"
           b"EVN|A04|202611020900\rPID|1||12345^^^CLINIC^MR||TESTPATIENT^ALPHA||19850314|F\r")
X12_837 = (b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261102*0900*^*00501*"
           b"000000001*0*T*:~GS*HC*SENDER*RECEIVER*20261102*0900*1*X*005010X222A1~ST*837*0001*005010X222A1~"
           b"BHT*0019*00*1*20261102*0900*CH~SE*3*0001~GE*1*1~IEA*1*000000001~")
X12_835 = (b"ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *261110*1200*^*00501*"
           b"000000007*0*T*:~GS*HP*PAYER*PRACTICE*20261110*1200*7*X*005010X221A1~ST*835*0001~"
           b"BPR*I*150*C*ACH~TRN*1*12345*1512345678~SE*4*0001~GE*1*7~IEA*1*000000007~")


class Foreign(NamedTuple):
    label: str
    content: bytes
    owner: str | None  # the built-in format that reads it; None when no format should


def random_json(count: int = 24, seed: int = 14) -> list[bytes]:
    """JSON documents of random shape: objects (some of visit-like words), arrays, scalars."""
    rng = random.Random(seed)
    words = ["visits", "patient", "member_id", "date", "code", "rows", "data", "id", "name", "items",
             "export", "records", "charge", "dx", "claims", "version", "type", "entries"]

    def value(depth: int) -> object:
        kind = rng.randrange(6 if depth < 3 else 3)
        if kind == 0:
            return rng.randrange(-10**6, 10**6)
        if kind == 1:
            return "".join(rng.choice("abcdefXYZ0123456789 -.") for _ in range(rng.randrange(12)))
        if kind == 2:
            return rng.choice([None, True, False, 1.5])
        if kind in (3, 4):
            return {rng.choice(words) + str(rng.randrange(3) or ""): value(depth + 1)
                    for _ in range(rng.randrange(1, 6))}
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    documents = [{rng.choice(words): value(1) for _ in range(rng.randrange(1, 6))} for _ in range(count - 4)]
    documents += [[value(1) for _ in range(3)], {}, [], "text"]
    return [json.dumps(d, indent=rng.choice([None, 2])).encode() for d in documents]


def foreign_payloads() -> list[Foreign]:
    """Payloads of other formats: the built-ins' samples (with their owner), and nobody's."""
    return [
        Foreign("a FHIR R4 bundle (the built-in fhir-r4-bundle format's sample)", FHIR_BUNDLE, "fhir-r4-bundle"),
        Foreign("an HL7 v2 DFT^P03 message (the built-in hl7v2 format's sample)", HL7_DFT, "hl7v2"),
        Foreign("an HL7 v2 ADT^A04 message (read by the built-in hl7v2 format)", HL7_ADT, "hl7v2"),
        Foreign("an HL7 v2 message in MLLP framing", b"\x0b" + HL7_DFT + b"\x1c\r", "hl7v2"),
        Foreign("an X12 837P interchange", X12_837, None),
        Foreign("an X12 835 interchange", X12_835, None),
        Foreign("a FHIR resource that is not a bundle", b'{"resourceType": "Patient", "id": "p1"}', "fhir-r4-bundle"),
        Foreign("NDJSON", b'{"id": 1, "code": "90837"}\n{"id": 2, "code": "90834"}\n', None),
        Foreign("a CDA document (XML)", b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
                                        b'<title>Visit</title></ClinicalDocument>', None),
        Foreign("a CSV of another tool",
                b"Date,Patient,CPT,ICD10,Charge\r\n11/02/2026,TESTPATIENT,90837,F33.1,180.00\r\n", None),
    ] + [Foreign(f"random JSON #{n}", document, None) for n, document in enumerate(random_json(), start=1)]
