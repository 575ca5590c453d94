"""Synthetic FHIR R4 encounter bundles, shaped as US Core EHR exports, for the demo and benchmarks.

Every person is invented (names from a fixed list of obviously fake ones); NPIs pass the check
digit but identify no one. The same seed gives the same bundles.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from bhhub.common.identifiers import npi_check_digit

NPI = "http://hl7.org/fhir/sid/us-npi"
TIN = "urn:oid:2.16.840.1.113883.4.4"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
NUCC = "http://nucc.org/provider-taxonomy"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
BASE = "https://ehr.example.org/fhir"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

GIVEN = ["Alpha", "Bravo", "Casey", "Delta", "Echo", "Foxtrot", "Gamma", "Harper", "Indigo", "Juniper"]
FAMILY = ["Testpatient", "Sampleton", "Mockwell", "Fakely", "Demoson", "Placeholder"]
DIAGNOSES = ["F33.1", "F41.1", "F43.10", "F32.A", "F43.23", "F90.0", "F40.10", "F34.1", "F42.2", "F43.22"]
PAYERS = [("87726", "SAMPLE COMMERCIAL HEALTH PLAN", None), ("00431", "SAMPLE MEDICARE PART B", "MB"),
          ("77027", "SAMPLE MEDICAID MCO", "MC")]
CLINICIANS = [  # taxonomy, prescriber
    ("1041C0700X", False), ("101YP2500X", False), ("103TC0700X", False), ("106H00000X", False),
    ("2084P0800X", True), ("363LP0808X", True),
]


def npi(rng: random.Random, first: str = "1") -> str:
    nine = first + "".join(rng.choice("0123456789") for _ in range(8))
    return nine + npi_check_digit(nine)


def _address(rng: random.Random) -> dict[str, Any]:
    return {"line": [f"{rng.randint(10, 9999)} Sample St"], "city": "Springfield", "state": "IL",
            "postalCode": f"6270{rng.randint(1, 9)}"}


def encounter_bundle(seed: int, *, start: date = date(2026, 10, 1)) -> dict[str, Any]:
    """One encounter with everything a claim needs; ``seed`` varies its shape."""
    rng = random.Random(seed)
    n = str(seed)
    dos = start + timedelta(days=rng.randint(0, 40))
    taxonomy, prescriber = rng.choice(CLINICIANS)
    payer_id, payer_name, filing = rng.choice(PAYERS)
    virtual = rng.random() < 0.35
    dependent = rng.random() < 0.25
    patient_id, sub_id = f"pat-{n}", f"sub-{n}"
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient", "id": patient_id,
            "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                            "system": "urn:example:ehr:mrn", "value": f"MRN{seed:07d}"}],
            "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
            "gender": rng.choice(["female", "male", "unknown"]),
            "birthDate": (date(1960, 1, 1) + timedelta(days=rng.randint(0, 20000))).isoformat(),
            "address": [_address(rng)],
        },
        {
            "resourceType": "Organization", "id": f"payer-{payer_id}",
            "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "NIIP"}]},
                            "system": "urn:example:payer-id", "value": payer_id}],
            "name": payer_name,
        },
        {
            "resourceType": "Organization", "id": "practice",
            "identifier": [{"system": NPI, "value": "1234567893"}, {"system": TIN, "value": "123456789"}],
            "name": "SAMPLE BEHAVIORAL HEALTH PLLC",
            "address": [{"line": ["100 Main St"], "city": "Springfield", "state": "IL", "postalCode": "627010001"}],
        },
        {
            "resourceType": "Practitioner", "id": f"clin-{taxonomy}",
            "identifier": [{"system": NPI, "value": npi(random.Random(taxonomy))}],
            "name": [{"family": "Clinician", "given": [taxonomy[:4]]}],
        },
        {
            "resourceType": "PractitionerRole", "id": f"role-{taxonomy}",
            "practitioner": {"reference": f"Practitioner/clin-{taxonomy}"},
            "specialty": [{"coding": [{"system": NUCC, "code": taxonomy}]}],
        },
    ]
    coverage: dict[str, Any] = {
        "resourceType": "Coverage", "id": f"cov-{n}", "status": "active",
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "subscriberId": f"M{seed:08d}",
        "payor": [{"reference": f"Organization/payer-{payer_id}"}],
        "order": 1,
        "relationship": {"coding": [{"system": RELATIONSHIP, "code": "child" if dependent else "self"}]},
        "class": [{"type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]}, "value": f"GRP{seed % 97:03d}"}],
    }
    if filing:
        coverage["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": "1" if filing == "MB" else "2"}]}
    if dependent:
        coverage["subscriber"] = {"reference": f"RelatedPerson/{sub_id}"}
        resources.append({
            "resourceType": "RelatedPerson", "id": sub_id, "patient": {"reference": f"Patient/{patient_id}"},
            "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
            "gender": "female", "birthDate": "1975-05-05", "address": [_address(rng)],
        })
    resources.append(coverage)
    diagnoses = rng.sample(DIAGNOSES, rng.randint(1, 3))
    conditions = [
        {"resourceType": "Condition", "id": f"cond-{n}-{i}", "subject": {"reference": f"Patient/{patient_id}"},
         "code": {"coding": [{"system": ICD10, "code": code}]}}
        for i, code in enumerate(diagnoses)
    ]
    resources += conditions
    minutes = rng.choice([20, 30, 45, 50, 55, 60])
    encounter: dict[str, Any] = {
        "resourceType": "Encounter", "id": f"enc-{n}", "status": "finished",
        "class": {"system": ACT_CODE, "code": "VR" if virtual else "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF"}]}],
                         "individual": {"reference": f"Practitioner/clin-{taxonomy}"}}],
        "period": {"start": f"{dos.isoformat()}T10:00:00-05:00"},
        "length": {"value": minutes, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"},
        "diagnosis": [{"condition": {"reference": f"Condition/{c['id']}"}, "rank": i + 1}
                      for i, c in enumerate(conditions)],
        "serviceProvider": {"reference": "Organization/practice"},
    }
    resources.append(encounter)
    if prescriber:  # an E/M with a psychotherapy add-on, sent as ChargeItems
        for code in ("99214", "90833" if minutes < 38 else "90836"):
            resources.append({
                "resourceType": "ChargeItem", "id": f"ci-{n}-{code}", "status": "billable",
                "code": {"coding": [{"system": CPT, "code": code}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "context": {"reference": f"Encounter/enc-{n}"},
                "occurrenceDateTime": dos.isoformat(),
                "quantity": {"value": 1},
            })
    return {
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }
