"""Shared fixtures: a hub on SQLite and on the machine's PostgreSQL, and the shared corpora;
a fixed "today" for the rules that count days (``BHHUB_TODAY``).

PostgreSQL tests use a fresh schema per test on ``BHHUB_TEST_POSTGRES_URL`` (default: the
local server's ``test`` database). Where no server answers they are skipped, unless
``BHHUB_REQUIRE_POSTGRES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_CORPORA = PROJECT.parent / "shared" / "corpora"
PG_URL = os.environ.get("BHHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# The fixtures' dates of service are fixed (October-November 2026); the rules that count days
# (timely filing, future dates) count them from this day, whenever the suite runs. Subprocesses
# (the CLI, benchmarks) inherit it. A test about those rules sets its own day.
TODAY = "2026-11-29"
os.environ.setdefault("BHHUB_TODAY", TODAY)

_pg_status: str | None = None


def _postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per run)."""
    global _pg_status
    if _pg_status is None:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_status = ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not here"
            _pg_status = f"PostgreSQL at {PG_URL} unavailable: {type(exc).__name__}"
    return _pg_status or None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    problem = _postgres_problem()
    if problem:
        if os.environ.get("BHHUB_REQUIRE_POSTGRES") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()


@pytest.fixture
def hub_home(tmp_path, database_url):
    """A hub home whose bhhub.toml points at the backend under test."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n', encoding="utf-8")
    return home


@pytest.fixture
def hub(hub_home):
    from bhhub.runtime.app import Hub

    with Hub.open(hub_home) as opened:
        yield opened


@pytest.fixture
def sqlite_hub(tmp_path):
    """A hub on SQLite only, for tests about behaviour rather than storage."""
    from bhhub.runtime.app import Hub

    with Hub.open(tmp_path / "home", create=True) as opened:
        yield opened


@pytest.fixture
def corpora() -> Path:
    if not SHARED_CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present (a user's clone has none)")
    return SHARED_CORPORA


# --- content written by others: the official FHIR R4 examples (CC0) -------------------------

EXAMPLES = "hl7.fhir.r4.examples@4.0.1"


@pytest.fixture(scope="session")
def official(request, tmp_path_factory) -> dict[str, bytes]:
    """The official FHIR R4 examples (CC0), fetched once with npm and cached by pytest."""
    cache_provider = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(cache_provider.mkdir("fhir-r4-examples")) if cache_provider else tmp_path_factory.mktemp("fhir")
    tarball = cache / "hl7.fhir.r4.examples-4.0.1.tgz"
    if not tarball.is_file():
        try:
            subprocess.run(["npm", "pack", EXAMPLES, "--silent"], cwd=cache, check=True,
                           capture_output=True, timeout=180)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot fetch {EXAMPLES} with npm: {type(exc).__name__}")
        if not tarball.is_file():
            pytest.skip(f"npm pack did not produce {tarball.name}")
    wanted = ("Bundle-", "Claim-", "Coverage-", "Encounter-", "ChargeItem-", "ClaimResponse-",
              "Patient-example.json", "Organization-2.json", "Organization-hl7.json")
    files = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            name = member.name.removeprefix("package/")
            if member.isfile() and name.startswith(wanted) and name.endswith(".json"):
                files[name] = archive.extractfile(member).read()
    return files


def official_visit_bundle(official) -> dict:
    """Official Patient, Coverage, payer and Organization examples, ids re-pointed at each other."""
    patient = json.loads(official["Patient-example.json"])
    coverage = json.loads(official["Coverage-7546D.json"])  # order 2, group WESTAIR, relationship "self"
    coverage["beneficiary"] = coverage["subscriber"] = {"reference": "Patient/example"}
    payer = json.loads(official["Organization-2.json"])  # XYZ Insurance, id in an OID system
    practice = json.loads(official["Organization-hl7.json"])
    practice["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}]
    bundle_809 = json.loads(official["Bundle-3ad0687e-f477-468c-afd5-fcc2bf897809.json"])
    clinician = next(e["resource"] for e in bundle_809["entry"]
                     if e["resource"]["resourceType"] == "Practitioner" and e["resource"]["id"] == "1")
    condition = {"resourceType": "Condition", "id": "dx", "subject": {"reference": "Patient/example"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F43.21"}]}}
    encounter = {"resourceType": "Encounter", "id": "visit", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": "Patient/example"},
                 "participant": [{"individual": {"reference": "Practitioner/1"}}],
                 "period": {"start": "2011-06-01T10:00:00-04:00", "end": "2011-06-01T10:45:00-04:00"},
                 "diagnosis": [{"condition": {"reference": "Condition/dx"}}],
                 "serviceProvider": {"reference": "Organization/hl7"}}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"http://hl7.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
        for r in (patient, coverage, payer, practice, clinician, condition, encounter)]}
