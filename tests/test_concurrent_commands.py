"""The same command twice at once (a cron job and a person) has the effect of one run.

Each test starts one `bhhub` command in a real process, holds it inside its transaction at a
named step (``BHHUB_PAUSE_AT``), and starts the second one meanwhile, on SQLite and PostgreSQL.
Both finish without a traceback, and ``Practice.invariants`` holds: no claim in two batches, no
visit two claims, no file applied twice (promise 9).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from fault_support import PROJECT, Practice, finish, sandbox
from bhhub.demo.synthetic import encounter_bundle


@pytest.fixture
def practice(tmp_path, database_url):
    return Practice(tmp_path, database_url)


def _clean(run) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr


def test_two_exports_at_once_put_each_ready_claim_in_exactly_one_batch(practice, tmp_path):
    assert practice.here("intake", str(practice.exports)).returncode == 0
    ready = {c.patient_control_number for c in practice.claims() if c.status == "ready"}
    a, b = practice.together(("export-837", "--out", str(tmp_path / "a.x12")),
                             ("export-837", "--out", str(tmp_path / "b.x12")), pause_at="batch:after_take")
    _clean(a), _clean(b)
    practice.invariants(billed=True)
    batched = [c.patient_control_number for c in practice.claims() if c.batch_id is not None]
    assert sorted(batched) == sorted(ready)
    assert len(practice.batches()) == 1  # the second found nothing left to bill
    assert "nothing written" in b.stdout


def test_two_batching_transactions_take_disjoint_claims_even_without_the_lock(practice):
    """The claims' move to ``batched`` is atomic by itself (row locks / the write lock), not only
    because commands take the exchange lock: two raw batching transactions never share a claim."""
    assert practice.here("intake", str(practice.exports)).returncode == 0
    script = textwrap.dedent(f"""
        from bhhub.runtime.app import Hub
        from bhhub.claims.batches import create_batch
        with Hub.open({str(practice.home)!r}) as hub, hub.store.writer() as session:
            batch = create_batch(hub, session, hub.settings.envelope, 5000)
            session.commit()
            print(batch.claim_count if batch else 0)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], env=practice.env(pause_at="batch:after_take"),
                             cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    time.sleep(1.5)
    second = subprocess.Popen([sys.executable, "-c", script], env=practice.env(), cwd=PROJECT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    a, b = finish(first), finish(second)
    _clean(a), _clean(b)
    practice.invariants(billed=True)
    ready = sum(1 for c in practice.claims() if c.batch_id is not None)
    assert int(a.stdout) + int(b.stdout) == ready


def test_the_same_folder_taken_in_twice_at_once_is_imported_once(practice):
    a, b = practice.together(("intake", str(practice.exports)), ("intake", str(practice.exports)),
                             pause_at="intake:before_commit")
    _clean(a), _clean(b)
    practice.invariants()
    assert len(practice.inbox()) == practice.visits


def test_two_intakes_of_the_same_visits_at_once_make_one_claim_per_visit(practice, tmp_path):
    """The same encounters in different files (the EHR exported them twice, a field changed):
    both intakes store their files; each visit is one claim, updated by the later file."""
    second = tmp_path / "second-export"
    second.mkdir()
    for path in practice.exports.iterdir():
        bundle = json.loads(path.read_text())
        bundle["id"] = "re-exported"  # other bytes, same encounters
        (second / path.name).write_text(json.dumps(bundle))
    a, b = practice.together(("intake", str(practice.exports)), ("intake", str(second)),
                             pause_at="intake:before_commit")
    _clean(a), _clean(b)
    practice.invariants()
    assert len(practice.inbox()) == 2 * practice.visits


def test_one_visit_sent_twice_at_once_in_single_files_is_one_claim(practice, tmp_path):
    """As above through the single-payload path (``bhhub intake FILE``) that MLLP and pickup use."""
    visit = json.dumps(encounter_bundle(7))
    (tmp_path / "one.json").write_text(visit)
    (tmp_path / "two.json").write_text(visit.replace('"type": "collection"', '"type": "collection", "id": "x"'))
    practice.visits = 1
    a, b = practice.together(("intake", str(tmp_path / "one.json")), ("intake", str(tmp_path / "two.json")),
                             pause_at="intake:before_commit")
    _clean(a), _clean(b)
    assert len(practice.inbox()) == 2
    assert len([c for c in practice.claims()]) == 1


@pytest.fixture
def practice_with_clearinghouse(tmp_path, database_url, request):
    return Practice(tmp_path, database_url, sandbox=sandbox(tmp_path, request))


def test_two_exchanges_at_once_send_each_claim_once_and_post_each_payment_once(practice_with_clearinghouse):
    practice = practice_with_clearinghouse
    assert practice.here("intake", str(practice.exports)).returncode == 0
    a, b = practice.together(("exchange",), ("exchange",), pause_at="batch:after_take")
    _clean(a), _clean(b)
    _clean(practice.here("exchange"))
    practice.invariants(billed=True, adjudicated=True)
    assert len([h for h in practice.sandbox.processed if h.outcome == "answered"]) == 1


def test_an_export_beside_an_exchange_bills_each_claim_once(practice_with_clearinghouse, tmp_path):
    practice = practice_with_clearinghouse
    assert practice.here("intake", str(practice.exports)).returncode == 0
    a, b = practice.together(("exchange",), ("export-837", "--out", str(tmp_path / "manual.x12")),
                             pause_at="batch:after_take")
    _clean(a), _clean(b)
    practice.invariants(billed=True)
    assert not (tmp_path / "manual.x12").exists()  # the exchange had taken every claim
