"""Scrubbing is made faster without changing a single finding.

The scrub's hot paths (the coding pass, NCCI, the core checks, the eligibility answers) keep
per-run and per-table work out of the per-claim loop. That must never change what a biller is
told: the same codes, severities, lines, messages and fixes, claim by claim. This test scrubs a
varied set of claims against a stocked store (stored visits, an eligibility answer, an
authorization rule and enrollments) and compares every finding with a reference recorded before
the speed work (``tests/data/scrub_reference.json``), both as ``bhhub scrub`` checks many claims
(one ``BulkContext``) and as one claim is checked on its own (the hub as context).

The varied claims are drawn with a fixed seed from what each rule looks at: procedure codes
(timed, add-on, crisis, NCCI pairs and MUEs, deleted, prescriber-only, HCPCS time units),
minutes, units, modifiers (telehealth, licensure, NCCI bypass), places of service, dates (before
ICD-10, deleted and not-yet-valid diagnoses, future, late filing), diagnoses, providers, payers,
coverage order and frequency, and the patient's data.

A rule change that changes findings on purpose regenerates the reference:
``BHHUB_WRITE_SCRUB_REFERENCE=1 .venv/bin/python -m pytest tests/test_scrub_same_findings.py -k sqlite``.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.model import Address, Coverage, Payer, Person, PersonName, Provider, ServiceLine
from bhhub.scrub.engine import BulkContext, scrub
from bhhub.store import schema
from bhhub.store.repo import claim_record
from test_eligibility_claims import MEMBER, PAYER, a_271, bhhub, give, import_visits

REFERENCE = Path(__file__).parent / "data" / "scrub_reference.json"
CLAIMS = 400

CODES = ["90791", "90792", "90832", "90833", "90834", "90836", "90837", "90838", "90839", "90840", "90785",
         "90846", "90847", "90853", "96116", "96127", "96130", "96131", "99213", "H0004", "H2019", "H0031",
         "90801", "90802", "90863", "96136", "96137", "99214"]
MINUTES = [None, 5, 10, 16, 20, 30, 37, 38, 45, 52, 53, 60, 75, 90, 105, 150]
UNITS = [1, 1, 1, 2, 3, 4, 8]
MODIFIERS = [(), (), (), ("95",), ("GT",), ("FQ",), ("93",), ("95", "93"), ("GT", "95"), ("59",), ("XE",), ("25",),
             ("HO",), ("AJ",), ("95", "59"), ("FR",)]
PLACES = ["11", "11", "02", "10", "03", "99", "ZZ", "12"]
LINE_PLACES = [None, None, None, None, "02", "10", "11", "ZZ"]
DAYS = [date(2026, 10, 16), date(2026, 10, 16), date(2026, 9, 1), date(2026, 11, 20), date(2025, 3, 1),
        date(2024, 9, 30), date(2023, 10, 2), date(2015, 9, 1), date(2027, 1, 5), date(2026, 1, 2)]
DIAGNOSES = ["F33.1", "F32.A", "F41.1", "Z63.0", "Z71.9", "F32", "F43.10", "F84.0", "XX1.1", "F90.0", "U07.1",
             "F32.9", "Z00.00"]
TAXONOMIES = ["1041C0700X", "101YP2500X", "103TC0700X", "2084P0800X", "363LP0808X", None, "BAD", "261QR1300X"]
NPIS = ["1999999984", "1234567893", "1234567890"]
PAYERS = [Payer(PAYER, "ACME HEALTH PLAN", "CI"), Payer("MCR01", "Medicare Part B", "MB"),
          Payer("EXAMPLE-MEDICAID", "Example State Medicaid", "MC"), Payer("99999", "Sample Health Plan", "CI"),
          Payer("", "", None), Payer("60054", "Aetna", "CI")]


def _line(rng: random.Random, day: date, diagnoses: int) -> ServiceLine:
    pointers = rng.choice([(1,), (1,), (1, 2), (2,), (), (1, 2, 3, 4, 5), (9,)])
    return ServiceLine(
        rng.choice(CODES), rng.choice([day, day, day, day + timedelta(days=1)]),
        modifiers=rng.choice(MODIFIERS), charge=rng.choice([Decimal("150"), Decimal("0"), None, Decimal("90")]),
        units=Decimal(rng.choice(UNITS)), diagnosis_pointers=pointers if diagnoses else (1,),
        place_of_service=rng.choice(LINE_PLACES), minutes=rng.choice(MINUTES))


def _provider(rng: random.Random, base: Provider) -> Provider:
    return replace(base, npi=rng.choice(NPIS + [base.npi] * 3), taxonomy=rng.choice(TAXONOMIES + [base.taxonomy] * 3))


def _varied(rng: random.Random, base, n: int):
    """A claim like ``base`` (a stored one: its patient, payer and member are in the store) with
    what the rules look at drawn at random."""
    day = rng.choice(DAYS)
    diagnoses = tuple(rng.sample(DIAGNOSES, rng.choice([0, 1, 1, 2, 3])))
    lines = tuple(_line(rng, day, len(diagnoses)) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])))
    coverage = base.coverage
    if rng.random() < 0.3:
        coverage = replace(coverage, payer=rng.choice(PAYERS))
    if rng.random() < 0.1:
        coverage = replace(coverage, order=2)
    if rng.random() < 0.1:
        coverage = replace(coverage, member_id=rng.choice(["", MEMBER]))
    if rng.random() < 0.05:
        coverage = replace(coverage, relationship="19", subscriber=None)
    patient = base.patient
    if rng.random() < 0.1:
        patient = replace(patient, birth_date=rng.choice([None, date(2027, 1, 1)]))
    if rng.random() < 0.05:
        patient = replace(patient, address=rng.choice([None, Address("", "Springfield", "IL", "62702")]))
    billing = base.billing_provider
    if rng.random() < 0.15:
        billing = replace(billing, tin=rng.choice([None, "000000000", "071234567", "12345"]),
                          address=rng.choice([None, Address("1 Main St", "Springfield", "IL", "62701"),
                                              billing.address]))
    if rng.random() < 0.1:
        billing = replace(billing, taxonomy=rng.choice(TAXONOMIES))
    rendering = base.rendering_provider
    if rendering is not None and rng.random() < 0.4:
        rendering = _provider(rng, rendering)
    elif rng.random() < 0.1:
        rendering = None
    other = ()
    if coverage.order == 2 and rng.random() < 0.5:
        other = (replace(base.coverage, order=1),)
    return replace(
        base, patient_control_number=rng.choice([f"V{n:04d}", f"V{n:04d}-LONG-CONTROL-NUMBER"]),
        patient=patient, coverage=coverage, billing_provider=billing, rendering_provider=rendering,
        diagnoses=diagnoses, lines=lines, place_of_service=rng.choice(PLACES),
        frequency_code=rng.choice(["1", "1", "1", "1", "7", "8", "3"]), other_coverages=other)


def _stock(home: Path, tmp_path: Path, capsys) -> None:
    """Stored visits (duplicates), an authorization rule and an authorization, enrollments and an
    eligibility answer, so every database-backed check has something to say."""
    overrides = home / "mappings" / "rules"
    overrides.mkdir(parents=True)
    (overrides / "authorization.toml").write_text(
        f'[payers."{PAYER}"]\nrequires_authorization = ["90834", "90837"]\n'
        f'[payers."MCR01"]\nsession_limit = {{ visits = 2, procedure_codes = ["90834", "90837"] }}\n')
    import_visits(home, tmp_path, capsys, [encounter_bundle(n) for n in range(8)])
    assert bhhub(home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "AUTH-1", "--visits", "2",
                 "--cpt", "90837", "--from", "2026-10-01", "--to", "2026-10-31") == 0
    give(home, tmp_path, capsys, a_271(
        "EB*1**30*PR*GOLD PPO", "EB*I**MH", "EB*1**CF~MSG*PRIOR AUTHORIZATION REQUIRED AFTER 2 VISITS"))
    capsys.readouterr()
    with Hub.open(home) as hub, hub.store.session() as session:
        stored = [claim_record(session, row)
                  for row in session.scalars(select(schema.Claim).order_by(schema.Claim.id))]
        for n, claim in enumerate(stored[:5]):
            npi = (claim.rendering_provider or claim.billing_provider).npi
            status = ["enrolled", "pending", "terminated", "enrolled", "enrolled"][n]
            session.add(schema.Enrollment(npi=npi, payer_id=claim.coverage.payer.payer_id, status=status,
                                          effective_date=date(2026, 1, 1), end_date=date(2026, 10, 31),
                                          in_network=n != 3))
        session.commit()


def _findings(findings) -> list[list]:
    return [[f.code, f.severity.value, f.line, f.message, f.fix] for f in findings]


def test_scrub_findings_match_the_reference_claim_by_claim(hub_home, tmp_path, capsys, database_url):
    _stock(hub_home, tmp_path, capsys)
    rng = random.Random(20261207)
    with Hub.open(hub_home) as hub:
        with hub.store.session() as session:
            stored = [claim_record(session, row)
                      for row in session.scalars(select(schema.Claim).order_by(schema.Claim.id))]
        claims = stored + [_varied(rng, rng.choice(stored), n) for n in range(CLAIMS)]
        checks = hub.claim_checks
        context = BulkContext(hub)
        bulk = {c.patient_control_number + f"#{n}": _findings(scrub(c, checks, context)) for n, c in enumerate(claims)}
        one_by_one = {c.patient_control_number + f"#{n}": _findings(scrub(c, checks, hub))
                      for n, c in enumerate(claims)}
    assert bulk == one_by_one  # many claims at once say what one claim on its own is told
    if os.environ.get("BHHUB_WRITE_SCRUB_REFERENCE") == "1" and database_url.startswith("sqlite"):
        REFERENCE.write_text(json.dumps(bulk, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert set(bulk) == set(reference)
    changed = [key for key in reference if bulk[key] != reference[key]]
    assert not changed, f"{len(changed)} claims' findings changed, e.g. {changed[0]}: " \
                        f"{bulk[changed[0]]} != {reference[changed[0]]}"
    # the set is varied enough to mean something: most of the rules speak somewhere in it
    codes = {finding[0] for found in reference.values() for finding in found}
    assert len(codes) >= 40, sorted(codes)
    # and no built-in check gives up on any of these claims (a claim with no lines is told
    # claim.no_lines, not "the check failed" by every check that wanted a date of service)
    assert "scrub.check_failed" not in codes
