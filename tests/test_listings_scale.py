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

from bhhub.cli.main import build_parser, main
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.store import schema

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
    ]
    for options, wanted in cases:
        found, _ = listing(capsys, hub_home, "claims", "--json", *options)
        assert found == [c for c in everything if wanted(c)], options


def test_a_payer_the_hub_does_not_know_is_a_usage_error_not_an_empty_listing(hub, hub_home, capsys):
    from bhhub.cli.main import main

    seeded = seed(hub)
    add_claims(hub, seeded, 6)
    (hub_home / "mappings").mkdir(exist_ok=True)
    (hub_home / "mappings" / "payers.toml").write_text('[payer."NAMED01"]\nname = "A payer with no claims yet"\n')
    capsys.readouterr()
    for output in ([], ["--json"]):
        assert main(["--home", str(hub_home), "claims", "--payer", "NO-SUCH-PAYER", *output]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "'NO-SUCH-PAYER' is no payer the hub knows" in err and err.count("\n") == 1, err
    # a payer the practice names, with no claims yet, is known: an empty listing, exit code 0
    assert listing(capsys, hub_home, "claims", "--json", "--payer", "NAMED01") == ([], None)


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
    from bhhub import listings as listings_module
    from bhhub.listings import Page
    from bhhub.listings.claims import ClaimFilter, claim_listing

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
    assert named_before_first, "no query named the first chunk's claims (were their parameters read?)"
    listings = [s for s in statements if re.search(r"FROM claims JOIN coverages", s[0])]
    assert len(listings) == 1 and listings[0][2].get("yield_per") == 4, "claims not read as one stream"
    for statement, parameters, _ in statements:
        if statement is not listings[0][0]:
            assert len(_claim_ids_named([(statement, parameters, {})], ids)) <= 4, statement


def _claim_ids_named(statements, ids) -> set[int]:
    """Claim ids a statement asks about: the parameters of its IN list (claim_id IN / claims.id
    IN; on PostgreSQL claim_id = ANY(array); on SQLite claim_id IN json_each(one JSON text)), or
    every id inside its range (claim_id BETWEEN)."""
    wanted = set(ids)
    named: set[int] = set()
    for statement, parameters, _ in statements:
        values = list(parameters.values() if isinstance(parameters, dict) else parameters)
        values += [v for text in values if isinstance(text, str) and text.startswith("[") for v in json.loads(text)]
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


# --- the streamed listing is the straightforward one -----------------------------------------


def add_every_kind_of_claim(hub) -> None:
    """Claims of every shape the listing has a branch for, on payers the rows interleave:
    revisions of one claim (replaced after a denial), findings with and without a line, some
    overridden twice (the latest speaks), status histories, acknowledgments of every kind (a
    file's 999 and TA1 verdicts, a claim's 277CAs in any order, one stored before outcomes were
    kept, one without an effective date), 835 postings with claim and line remarks, a reversal,
    a crossover still waiting and one answered, a payment not posted, and PLB amounts naming a
    claim by its control number, by a payer claim number (the claim's or an 835's) and by none."""
    from datetime import datetime, timezone

    seeded = seed(hub)
    at = datetime(2026, 11, 3, 9, 30, tzinfo=timezone.utc)
    with hub.store.engine.begin() as conn:
        def put(table, **values):
            return conn.execute(insert(table.__table__).values(**values)).inserted_primary_key[0]

        item = put(schema.InboxItem, sha256="1" * 64, source_name="answers.x12", size=1, content=b"x",
                   state="processed")
        batches = [put(schema.Batch, sender_id="SENDER", interchange_control_number=f"{b:09d}",
                       group_control_number=str(b), transaction_control_number=f"{b:04d}", usage_indicator="T",
                       claim_count=0, total_charge=Decimal(0), content=b"", sha256=f"{b:064x}") for b in (1, 2, 3)]
        payments = [put(schema.RemitPayment, inbox_item_id=item, payer_id=payer, payer_name=payer,
                        trace_number=f"TRACE{n}", amount=Decimal(0), credit_debit="C",
                        payment_date=date(2026, 11, 10 + n) if n else None, method="ACH", handling="I",
                        payee_id="1234567893", transaction_control_number=f"{n:04d}")
                    for n, payer in enumerate(("AETNA", "BCBS01", "UHC77"))]
        rng = random.Random(14)
        for n in range(1, 61):
            payer = PAYERS[n % 3]
            status = ("needs_attention", "ready", "batched", "accepted", "rejected", "paid", "denied",
                      "partially_paid")[n % 8]
            billed = status not in ("needs_attention", "ready")
            day = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
            pcn = f"K{n // 2:05d}"  # claims 2k and 2k+1 are revisions of one claim
            revision = n % 2
            claim = put(schema.Claim, patient_control_number=pcn, revision=revision,
                        frequency_code="7" if revision else "1", status=status, encounter_id=seeded["encounter"],
                        patient_id=seeded["patient"], coverage_id=seeded["coverages"][payer],
                        billing_provider_id=seeded["provider"], place_of_service=("11", "02", "10")[n % 3],
                        prior_authorization=f"AUTH{n}" if n % 4 == 0 else None, service_date=day,
                        total_charge=Decimal("150.00") + n, diagnoses=["F41.1", "F33.1", "Z63.0"][:1 + n % 3],
                        batch_id=batches[n % 3] if billed else None,
                        payer_claim_control_number=f"ICN{n}" if billed and n % 3 else None)
            for line in range(1, 1 + n % 3 + 1):
                put(schema.ServiceLine, claim_id=claim, line_number=line, procedure_code=("90837", "90785")[line % 2],
                    modifiers=[["95"], [], ["HO", "GT"]][(n + line) % 3], charge=Decimal("75.50"),
                    units=Decimal(n % 2 + 1), diagnosis_pointers=[1, 2][:line], service_date=day,
                    control_number=f"{n}-{line}")
            for k in range(n % 4):
                put(schema.ClaimStatusEvent, claim_id=claim, status=status, at=at,
                    reason=None if (n + k) % 5 == 0 else f"reason {n}.{k}")
            if status == "needs_attention" or n % 7 == 0:
                put(schema.Finding, claim_id=claim, line_number=1, code="DX_NOT_BILLABLE", severity="error",
                    message="diagnosis 1 is a category", fix="use a billable code", check_name="coding")
                put(schema.Finding, claim_id=claim, line_number=None, code="TIMELY", severity="warning",
                    message="close to the filing limit", fix="", check_name="timely")
                if n % 3 == 0:
                    for reason in ("first look", "payer confirmed by phone"):
                        put(schema.FindingOverride, claim_id=claim, code="TIMELY", line_number=None, reason=reason,
                            actor="biller")
                if n % 2 == 0:
                    put(schema.FindingOverride, claim_id=claim, code="DX_NOT_BILLABLE", line_number=2,
                        reason="another line", actor="biller")
            if not billed:
                continue
            batch = batches[n % 3]
            answers = [("277CA", True, "A1", "received", "clearinghouse", day)]
            if status in ("accepted", "paid", "denied", "partially_paid"):
                answers.append(("277CA", True, "A2", "accepted", "payer", day + timedelta(days=n % 3)))
            if status == "rejected":
                answers += [("277CA", False, "A3", "rejected", "payer", day),
                            ("277CA", True, "A2", None, None, None)]  # stored before outcomes were kept
            rng.shuffle(answers)
            for kind, accepted, code, outcome, source, effective in answers:
                put(schema.Acknowledgment, inbox_item_id=item, kind=kind, batch_id=batch, claim_id=claim,
                    accepted=accepted, code=code, detail=f"{code} said", outcome=outcome, source=source,
                    effective_on=effective, at=at)
            if status in ("paid", "denied", "partially_paid") or n % 9 == 0:
                for k in range(1 + n % 2):
                    put(schema.RemitClaim, payment_id=payments[(n + k) % 3], sequence=n * 10 + k, claim_id=claim,
                        state="posted" if (n + k) % 6 else "unmatched", patient_control_number=pcn,
                        status_code=("1", "2", "4", "22", "19")[(n + k) % 5], charge=Decimal("150.00"),
                        paid=Decimal("99.99"), patient_responsibility=Decimal("20.00"), contractual=Decimal("30.01"),
                        other_adjustments=Decimal(0), payer_claim_control_number=f"RICN{n}.{k}" if k else "",
                        remarks=[["N862"], [], ["M15", "N4"]][(n + k) % 3],
                        services=[{"code": "90837", "remarks": ["N4"]}, {"code": "90785"}][:1 + k],
                        segment_number=n, fingerprint=f"{n * 10 + k:064x}", generation=1,
                        crossed_over=(n + k) % 4 == 0, crossover_payer="MEDIGAP1" if n % 8 == 0 else "")
        for n, batch in enumerate(batches):
            put(schema.Acknowledgment, inbox_item_id=item, kind=("999", "TA1", "999")[n], batch_id=batch,
                claim_id=None, accepted=n != 1, code="A" if n != 1 else "022", detail="file said",
                outcome=None if n == 2 else ("received" if n != 1 else "rejected"),
                source="clearinghouse", effective_on=None if n == 2 else date(2026, 6, 1), at=at)
        posted = conn.scalars(select(schema.RemitClaim.id).where(schema.RemitClaim.state == "posted")
                              .order_by(schema.RemitClaim.id)).all()
        conn.execute(schema.RemitClaim.__table__.update().where(schema.RemitClaim.id == posted[1])
                     .values(reversed_by_id=posted[2]))
        for reason, reference, amount in (("WO", "K00003", "12.50"), ("L6", "ICN7", "-3.10"), ("72", "ICN10", "5"),
                                          ("FB", "RICN13.1", "1.00"), ("WO", "NOBODY", "9.99")):
            put(schema.ProviderAdjustment, payment_id=payments[0], provider_id="1234567893", reason=reason,
                reference=reference, amount=Decimal(amount))


def straightforward_listing(session, rules, status: str | None = None) -> list[dict]:
    """``bhhub claims --json`` the plain way: each claim by itself, through the ORM and the
    per-claim functions (no chunks, no ranges, no batched decoding)."""
    from bhhub.acknowledgments.standing import acknowledgment_json
    from bhhub.remittance import crossovers, plb

    c = schema.Claim
    claims = session.scalars(select(c).where(c.status == (status or c.status)).order_by(c.id)).all()
    shown = []
    for claim in claims:
        coverage = session.get(schema.Coverage, claim.coverage_id)
        waived = {}
        for o in session.scalars(select(schema.FindingOverride).where(schema.FindingOverride.claim_id == claim.id)
                                 .order_by(schema.FindingOverride.id)):
            waived[(o.code, o.line_number)] = o.reason
        latest = session.scalars(select(schema.ClaimStatusEvent).where(schema.ClaimStatusEvent.claim_id == claim.id)
                                 .order_by(schema.ClaimStatusEvent.id.desc()).limit(1)).first()
        remittance = None
        if claim.batch_id is not None:
            r, p = schema.RemitClaim, schema.RemitPayment
            postings = session.execute(select(r, p, c).join(p, p.id == r.payment_id).join(c, c.id == r.claim_id)
                                       .where(c.patient_control_number == claim.patient_control_number,
                                              r.state == "posted").order_by(r.id)).all()
            pending = crossovers.pending(session, claim)
            remittance = {
                "postings": [{
                    # the payer of the claim revision it posted to; the 835's own name for it beside
                    "payer_id": session.get(schema.Coverage, posted_to.coverage_id).payer.payer_id,
                    "payer_id_835": pay.payer_id, "trace_number": pay.trace_number, "payment_date": pay.payment_date,
                    "status_code": row.status_code, "charge": row.charge, "paid": row.paid,
                    "patient_responsibility": row.patient_responsibility,
                    "payer_claim_control_number": row.payer_claim_control_number or None,
                    "remarks": [{"code": code, "meaning": rules.remark_description(code)} for code in row.remarks],
                    "line_remarks": [{"line": number, "code": code, "meaning": rules.remark_description(code)}
                                     for number, service in enumerate(row.services, start=1)
                                     for code in service.get("remarks", ())],
                    "crossover": {"to": row.crossover_payer or None} if row.crossed_over else None,
                    "reversed": row.reversed_by_id is not None,
                } for row, pay, posted_to in postings],
                "crossover": None if pending is None else {
                    "forwarded_by": pending.payer_id, "forwarded_by_835": pending.payer_id_835,
                    "to": pending.to or None, "trace_number": pending.trace_number,
                    "waiting_for_835": True, "note": pending.sentence(claim.patient_control_number)},
                "provider_adjustments": plb.for_claim(session, rules.mappings, claim),
            }
        shown.append({
            "id": claim.id, "patient_control_number": claim.patient_control_number, "patient_id": claim.patient_id,
            "revision": claim.revision, "frequency_code": claim.frequency_code, "status": claim.status,
            "payer_id": coverage.payer.payer_id, "member_id": coverage.member_id, "service_date": claim.service_date,
            "total_charge": claim.total_charge, "place_of_service": claim.place_of_service,
            "prior_authorization": claim.prior_authorization, "diagnoses": claim.diagnoses,
            "lines": [{"line": l.line_number, "procedure_code": l.procedure_code, "modifiers": l.modifiers,
                       # a count: an integer when whole (README's --json vocabulary)
                       "units": int(l.units) if l.units == int(l.units) else l.units, "charge": l.charge,
                       "diagnosis_pointers": l.diagnosis_pointers,
                       "service_date": l.service_date} for l in claim.lines],
            "batch_id": claim.batch_id, "payer_claim_control_number": claim.payer_claim_control_number,
            "acknowledgment": acknowledgment_json(session, claim),
            "status_reason": latest.reason if latest else None,
            "findings": [{"code": f.code, "severity": f.severity, "line": f.line_number, "message": f.message,
                          "fix": f.fix, "overridden": waived.get((f.code, f.line_number))} for f in claim.findings],
            "remittance": remittance,
        })
    return shown


def printed(claims) -> str:
    """What ``bhhub claims --json`` prints for these objects: the same printer, so keys in order."""
    import contextlib
    import io

    from bhhub.cli.output import print_json_array

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_json_array(iter(claims))
    return out.getvalue()


@pytest.mark.parametrize("chunk", [3, 16, 500])
def test_the_streamed_listing_prints_exactly_what_the_straightforward_listing_prints(
        hub, hub_home, capsys, monkeypatch, chunk):
    """Byte for byte, keys in order, for every kind of claim, whether a chunk holds a few claims
    (revisions and a batch's claims split across chunks) or all of them, unfiltered (ids asked
    for by range) and filtered (scattered ids asked for as a list)."""
    from bhhub import listings as listings_module
    from bhhub.remittance.denials import DenialRules

    add_every_kind_of_claim(hub)
    monkeypatch.setattr(listings_module, "CHUNK", chunk)
    rules = DenialRules.load(hub.mappings)
    for status in (None, "paid", "rejected", "accepted"):
        args = build_parser().parse_args(["--home", str(hub_home), "claims", "--json",
                                          *(["--status", status] if status else [])])
        args.plugin_host = NO_PLUGINS
        assert args.func(args) == 0
        streamed = capsys.readouterr().out
        with hub.store.session() as session:
            expected = printed(straightforward_listing(session, rules, status))
        assert streamed == expected, status
        assert len(json.loads(streamed)) == len(json.loads(expected)) > 0
    everything = json.loads(expected if status is None else streamed)
    assert everything


def test_every_kind_of_claim_is_in_the_reference_hub(hub):
    """The comparison above is only as good as the hub it runs on: each branch is taken."""
    add_every_kind_of_claim(hub)
    from bhhub.remittance.denials import DenialRules

    with hub.store.session() as session:
        claims = straightforward_listing(session, DenialRules.load(hub.mappings))
    remittances = [c["remittance"] for c in claims if c["remittance"]]
    postings = [p for r in remittances for p in r["postings"]]
    assert {c["acknowledgment"]["outcome"] for c in claims if c["acknowledgment"]} >= {"accepted", "rejected"}
    assert any(c["acknowledgment"] and c["acknowledgment"]["kind"] == "TA1" for c in claims)
    assert any(f["overridden"] == "payer confirmed by phone" for c in claims for f in c["findings"])
    assert any(f["overridden"] is None for c in claims for f in c["findings"])
    assert any(p["reversed"] for p in postings) and any(p["line_remarks"] for p in postings)
    assert any(p["crossover"] for p in postings) and any(r["crossover"] for r in remittances)
    assert {a["reason"] for r in remittances for a in r["provider_adjustments"]} == {"WO", "L6", "72", "FB"}
    assert len({c["patient_control_number"] for c in claims}) < len(claims)  # revisions
    assert any(c["status_reason"] for c in claims) and any(c["status_reason"] is None for c in claims)
    assert any(c["lines"] and len(c["lines"]) == 3 for c in claims)


def test_a_listing_leaves_the_garbage_collector_as_it_found_it(sqlite_hub, monkeypatch):
    """The listing freezes what is alive while it streams (so full collections skip it); after
    it, read to the end or closed part way, nothing stays frozen: a long-running process that
    lists (the workspace, the runner) collects its garbage as before."""
    import gc

    from bhhub import listings as listings_module
    from bhhub.listings import Page
    from bhhub.listings.claims import ClaimFilter, claim_listing

    add_claims(sqlite_hub, seed(sqlite_hub), 12)
    monkeypatch.setattr(listings_module, "CHUNK", 5)
    assert gc.get_freeze_count() == 0
    with sqlite_hub.store.session() as session:
        claims = claim_listing(session, ClaimFilter(), Page())
        next(claims)
        assert gc.get_freeze_count() > 0  # frozen while it streams
        claims.close()
        assert gc.get_freeze_count() == 0
        assert len(list(claim_listing(session, ClaimFilter(), Page()))) == 12
        assert gc.get_freeze_count() == 0
        outer = claim_listing(session, ClaimFilter(), Page())
        next(outer)
        assert len(list(claim_listing(session, ClaimFilter(status="paid"), Page()))) < 12  # a listing inside
        assert gc.get_freeze_count() > 0, "the inner listing undid the outer one's freeze"
        outer.close()
        assert gc.get_freeze_count() == 0
