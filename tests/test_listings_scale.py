"""Listings at a practice's scale (issue 14 item 10): ``bhhub claims`` and ``bhhub inbox`` stream
their rows a chunk at a time, filter in SQL, and page by a keyset cursor that no insert between
pages can fool. How fast and how small is ``benchmarks/listings.py``'s business; here: every
claim exactly once, the filters' answers, valid JSON, and no query that reads every row at once.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, insert, select

from hub.cli.main import build_parser, main
from hub.plugins import build_plugin_host
from hub.store import schema

PAYERS = ("AETNA", "BCBS01", "UHC77")
STATUSES = ("ready", "needs_attention", "accepted", "paid", "denied")
NO_PLUGINS = build_plugin_host([])  # a listing needs none; loading the installed ones costs seconds


def seed(hub) -> dict:
    """A payer per id, one patient covered by each, one stored visit: what claims point at."""
    with hub.store.engine.begin() as conn:
        conn.execute(insert(schema.Provider.__table__), [{"npi": "1234567893", "organization_name": "Practice"}])
        conn.execute(insert(schema.Patient.__table__), [{"key": "p1", "family_name": "Synthetic"}])
        patient = conn.scalar(select(schema.Patient.id))
        provider = conn.scalar(select(schema.Provider.id))
        coverages = {}
        for payer_id in PAYERS:
            payer = conn.execute(insert(schema.Payer.__table__).values(payer_id=payer_id, name=payer_id)
                                 ).inserted_primary_key[0]
            coverages[payer_id] = conn.execute(insert(schema.Coverage.__table__).values(
                patient_id=patient, payer_id=payer, member_id=f"M-{payer_id}")).inserted_primary_key[0]
        item = conn.execute(insert(schema.InboxItem.__table__).values(
            sha256="0" * 64, source_name="visit.json", size=2, content=b"{}", state="processed")).inserted_primary_key[0]
        encounter = conn.execute(insert(schema.Encounter.__table__).values(
            key="e1", source_ref="Encounter/1", inbox_item_id=item, patient_id=patient,
            service_date=date(2026, 1, 1))).inserted_primary_key[0]
    return {"patient": patient, "provider": provider, "coverages": coverages, "encounter": encounter,
            "rng": random.Random(10), "next": 1}


def add_claims(hub, seeded: dict, count: int) -> None:
    """``count`` claims with ids the store assigns, as new claims arrive: varied status, payer, day."""
    rng = seeded["rng"]
    with hub.store.engine.begin() as conn:
        for _ in range(count):
            n = seeded["next"]
            seeded["next"] += 1
            day = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
            claim = conn.execute(insert(schema.Claim.__table__).values(
                patient_control_number=f"C{n:06d}", status=rng.choice(STATUSES), encounter_id=seeded["encounter"],
                patient_id=seeded["patient"], coverage_id=seeded["coverages"][rng.choice(PAYERS)],
                billing_provider_id=seeded["provider"], place_of_service="11", service_date=day,
                total_charge=Decimal("150.00"), diagnoses=["F41.1"])).inserted_primary_key[0]
            for line in range(1, rng.randrange(1, 3) + 1):
                conn.execute(insert(schema.ServiceLine.__table__).values(
                    claim_id=claim, line_number=line, procedure_code="90834", modifiers=["95"] if line == 1 else [],
                    charge=Decimal("75.00"), units=Decimal(1), diagnosis_pointers=[1], service_date=day,
                    control_number=f"{n}-{line}"))
            if rng.random() < 0.3:
                conn.execute(insert(schema.Finding.__table__).values(
                    claim_id=claim, line_number=1, code="CHECK", severity="error", message="a finding",
                    fix="fix it", check_name="test"))
            conn.execute(insert(schema.ClaimStatusEvent.__table__).values(claim_id=claim, status="ready",
                                                                          reason=f"reason {n}"))


def listing(capsys, home, *argv: str) -> tuple[list, str | None]:
    """The listing's JSON (parsed: it must be valid) and the next page's cursor, if stderr gives one."""
    args = build_parser().parse_args(["--home", str(home), *argv])
    args.plugin_host = NO_PLUGINS
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    cursor = re.search(r"--after (\d+)", err)
    return json.loads(out), cursor.group(1) if cursor else None


def all_claim_ids(hub) -> list[int]:
    with hub.store.engine.connect() as conn:
        return list(conn.scalars(select(schema.Claim.id).order_by(schema.Claim.id)))


@pytest.mark.parametrize("limit", [1, 5, 7])
def test_pages_show_every_claim_exactly_once_though_claims_arrive_between_pages(hub, hub_home, capsys, limit):
    seeded = seed(hub)
    add_claims(hub, seeded, 23)
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = listing(capsys, hub_home, "claims", "--json", "--limit", str(limit),
                               *(["--after", cursor] if cursor else []))
        assert len(page) <= limit
        seen += [c["id"] for c in page]
        pages += 1
        if pages <= 4:
            add_claims(hub, seeded, 3)  # new visits come in while someone pages through
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a claim was shown twice"
    assert seen == all_claim_ids(hub), "a claim was skipped"
    assert len(seen) == 23 + 3 * min(pages, 4)


def test_a_filtered_listing_pages_through_the_same_claims_as_the_whole_filtered_listing(hub, hub_home, capsys):
    seeded = seed(hub)
    add_claims(hub, seeded, 40)
    whole, none_follow = listing(capsys, hub_home, "claims", "--json", "--status", "ready")
    assert none_follow is None
    paged, cursor = [], None
    while True:
        page, cursor = listing(capsys, hub_home, "claims", "--json", "--status", "ready", "--limit", "3",
                               *(["--after", cursor] if cursor else []))
        paged += page
        if cursor is None:
            break
    assert paged == whole and whole


def test_each_filter_agrees_with_filtering_the_whole_listing(hub, hub_home, capsys):
    seeded = seed(hub)
    add_claims(hub, seeded, 60)
    everything, _ = listing(capsys, hub_home, "claims", "--json")
    assert len(everything) == 60
    days = sorted({c["service_date"] for c in everything})
    since, until = days[len(days) // 3], days[2 * len(days) // 3]
    cases = [
        (["--status", "paid"], lambda c: c["status"] == "paid"),
        (["--payer", "BCBS01"], lambda c: c["payer_id"] == "BCBS01"),
        (["--since", since], lambda c: c["service_date"] >= since),
        (["--until", until], lambda c: c["service_date"] <= until),
        (["--since", since, "--until", until, "--payer", "UHC77", "--status", "ready"],
         lambda c: since <= c["service_date"] <= until and c["payer_id"] == "UHC77" and c["status"] == "ready"),
        (["--payer", "NO-SUCH-PAYER"], lambda c: False),
    ]
    for options, wanted in cases:
        found, _ = listing(capsys, hub_home, "claims", "--json", *options)
        assert found == [c for c in everything if wanted(c)], options


def test_the_listing_keeps_every_field_and_each_claims_own_lines_findings_and_reason(hub, hub_home, capsys):
    seeded = seed(hub)
    add_claims(hub, seeded, 12)
    claims, _ = listing(capsys, hub_home, "claims", "--json")
    with hub.store.session() as session:
        for shown in claims:
            row = session.get(schema.Claim, shown["id"])
            assert set(shown) == {
                "id", "patient_control_number", "patient_id", "revision", "frequency_code", "status", "payer_id",
                "member_id", "service_date", "total_charge", "place_of_service", "prior_authorization", "diagnoses",
                "lines", "batch_id", "payer_claim_control_number", "acknowledgment", "status_reason", "findings",
                "remittance"}
            assert shown["patient_control_number"] == row.patient_control_number
            assert [l["line"] for l in shown["lines"]] == [l.line_number for l in row.lines]
            assert len(shown["findings"]) == len(row.findings)
            assert shown["status_reason"] == f"reason {int(row.patient_control_number[1:])}"
            assert shown["member_id"] == f"M-{shown['payer_id']}"


def test_an_empty_listing_and_a_page_past_the_end_are_valid_json(hub, hub_home, capsys):
    assert listing(capsys, hub_home, "claims", "--json") == ([], None)
    seeded = seed(hub)
    add_claims(hub, seeded, 3)
    last = all_claim_ids(hub)[-1]
    assert listing(capsys, hub_home, "claims", "--json", "--after", str(last)) == ([], None)
    assert listing(capsys, hub_home, "inbox", "--json", "--after", "999999") == ([], None)


def test_a_bad_cursor_or_limit_is_one_line_and_a_usage_error(sqlite_hub, capsys):
    home = str(sqlite_hub.settings.home)
    for argv in (["claims", "--after", "abc"], ["claims", "--limit", "0"], ["inbox", "--after", "-3"],
                 ["claims", "--since", "yesterday"]):
        assert main(["--home", home, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("bhhub: ") and err.count("\n") == 1, err


def test_each_page_is_audited_with_the_claims_it_showed(hub, hub_home, capsys):
    seeded = seed(hub)
    add_claims(hub, seeded, 9)
    first, cursor = listing(capsys, hub_home, "claims", "--json", "--limit", "4")
    second, _ = listing(capsys, hub_home, "claims", "--json", "--limit", "4", "--after", cursor)
    with hub.store.engine.connect() as conn:
        audited = list(conn.scalars(select(schema.AuditEvent.object_ids).where(
            schema.AuditEvent.action == "list_claims").order_by(schema.AuditEvent.id)))
    assert audited == [[c["id"] for c in first], [c["id"] for c in second]]


@pytest.mark.parametrize("status", [None, "ready"])  # consecutive ids (asked by range) and scattered ones
def test_the_claims_listing_streams_and_never_asks_for_every_claims_rows_at_once(hub, capsys, monkeypatch, status):
    """With chunks of 4, a listing of 80 claims: one SELECT of claims, read as a stream; every
    other query names at most 4 claims; the first claim comes out before the 5th is asked about."""
    from hub import listings as listings_module
    from hub.listings import Page
    from hub.listings.claims import ClaimFilter, claim_listing

    seeded = seed(hub)
    add_claims(hub, seeded, 80)
    monkeypatch.setattr(listings_module, "CHUNK", 4)
    with hub.store.engine.connect() as conn:
        ids = list(conn.scalars(select(schema.Claim.id).where(schema.Claim.status == (status or schema.Claim.status))
                                .order_by(schema.Claim.id)))
    assert len(ids) > 8
    statements: list[tuple[str, object, dict]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters, dict(context.execution_options)))

    event.listen(hub.store.engine, "before_cursor_execute", record)
    try:
        with hub.store.session() as session:
            claims = claim_listing(session, ClaimFilter(status=status), Page())
            first = next(claims)
            named_before_first = _claim_ids_named(statements, ids)
            rest = list(claims)
    finally:
        event.remove(hub.store.engine, "before_cursor_execute", record)
    assert [first["id"], *(c["id"] for c in rest)] == ids
    assert named_before_first <= set(ids[:4]), "the first claim waited for later claims' rows"
    listings = [s for s in statements if re.search(r"FROM claims JOIN coverages", s[0])]
    assert len(listings) == 1 and listings[0][2].get("yield_per") == 4, "claims not read as one stream"
    for statement, parameters, _ in statements:
        if statement is not listings[0][0]:
            assert len(_claim_ids_named([(statement, parameters, {})], ids)) <= 4, statement


def _claim_ids_named(statements, ids) -> set[int]:
    """Claim ids a statement asks about: the parameters of its IN list (claim_id IN / claims.id
    IN; on PostgreSQL claim_id = ANY(array)), or every id inside its range (claim_id BETWEEN)."""
    wanted = set(ids)
    named: set[int] = set()
    for statement, parameters, _ in statements:
        values = list(parameters.values() if isinstance(parameters, dict) else parameters)
        values += [v for listed in values if isinstance(listed, (list, tuple)) for v in listed]  # ANY(array)
        if re.search(r"claim_id IN|claims\.id IN|claim_id = ANY", statement):
            named |= {v for v in values if isinstance(v, int) and v in wanted}
        elif re.search(r"claim_id BETWEEN", statement):
            low, high = [v for v in values if isinstance(v, int)][:2]
            named |= {v for v in wanted if low <= v <= high}
    return named


def test_the_inbox_listing_never_reads_the_stored_payloads(hub, hub_home, capsys):
    with hub.store.engine.begin() as conn:
        conn.execute(insert(schema.InboxItem.__table__), [
            {"sha256": f"{n:064x}", "source_name": f"f{n}.json", "size": 3, "content": b"abc",
             "state": "quarantined" if n % 3 == 0 else "processed", "reason": "truncated" if n % 3 == 0 else None}
            for n in range(1, 12)])
    statements: list[str] = []
    event.listen(hub.store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    everything, _ = listing(capsys, hub_home, "inbox", "--json")
    assert [i["id"] for i in everything] == sorted(i["id"] for i in everything) and len(everything) == 11
    assert not [s for s in statements if "inbox_items" in s and re.search(r"\bcontent\b", s)]
    quarantined, _ = listing(capsys, hub_home, "inbox", "--json", "--state", "quarantined")
    assert quarantined == [i for i in everything if i["state"] == "quarantined"]
    paged, cursor = [], None
    while True:
        page, cursor = listing(capsys, hub_home, "inbox", "--json", "--limit", "4",
                               *(["--after", cursor] if cursor else []))
        paged += page
        if cursor is None:
            break
    assert paged == everything


def test_the_listings_benchmark_runs_and_reports_every_figure():
    import subprocess
    import sys

    from conftest import PROJECT

    run = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "listings.py"), "--claims", "300", "--no-cli",
                          "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["claims"] == 300
    assert [row["listing"] for row in figures["rows"]] == ["claims --json", "inbox --json"]
    for row in figures["rows"]:
        assert row["seconds"] > 0 and row["peak_mb"] > 0 and row["baseline_seconds"] > 0 and row["ratio"] > 0
