"""Killed at every step boundary, the next run finishes the work: nothing lost, nothing twice.

For each fault point of intake, batching, upload, pickup and posting (``bhhub.runtime.crashpoints``), the
`bhhub` command runs in a real process on the store under test and is killed there with SIGKILL
(no cleanup, no commit), the way a power cut or an OOM kill would; then the same command (or the
next scheduled one) runs again. ``Practice.invariants`` then holds: every stored file applied,
every visit one claim, every claim in one batch, every batch processed once by the
clearinghouse, every claim payment posted once. Promises 1-5 and 9 (docs/architecture.md).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fault_support import Practice, sandbox
from bhhub.runtime.crashpoints import POINTS
from bhhub.store import schema

pytest.importorskip("pyx12")  # the sandbox validates what it receives


@pytest.fixture
def practice(tmp_path, database_url):
    return Practice(tmp_path, database_url)


@pytest.fixture
def practice_with_clearinghouse(tmp_path, database_url, request):
    return Practice(tmp_path, database_url, sandbox=sandbox(tmp_path, request))


def test_every_fault_point_is_named_in_the_module_and_reached_by_this_suite():
    tested = set(INTAKE) | set(BATCHING) | set(EXCHANGE) | set(NOTIFY) | set(REROUTE)
    assert tested == set(POINTS)


INTAKE = ("intake:after_store_raw", "intake:before_commit")
NOTIFY = ("notify:after_send",)  # tests/test_notify.py: killed between sending an alert and recording it
REROUTE = ("reroute:before_commit",)  # tests/test_reroute.py: killed with every transmission moved, not committed


@pytest.mark.parametrize("point", INTAKE)
def test_a_folder_intake_killed_at_each_step_is_finished_by_running_it_again(practice, point):
    first = practice.bhhub("intake", str(practice.exports), crash_at=point)
    assert first.killed
    again = practice.here("intake", str(practice.exports), "--json")
    assert again.returncode == 0, again.stderr
    practice.invariants()
    assert len(practice.inbox()) == practice.visits
    assert {c.status for c in practice.claims()} <= {"ready", "needs_attention"}


BATCHING = ("batch:after_take", "batch:before_commit", "export:staged", "export:before_file", "export:placed")


@pytest.mark.parametrize("point", BATCHING)
def test_an_export_killed_at_each_step_writes_every_claim_once_when_run_again(practice, point, tmp_path):
    assert practice.here("intake", str(practice.exports)).returncode == 0
    ready = {c.patient_control_number for c in practice.claims() if c.status == "ready"}
    out = tmp_path / "out" / "batch.x12"
    assert practice.bhhub("export-837", "--out", str(out), crash_at=point).killed
    again = practice.here("export-837", "--out", str(out))
    assert again.returncode == 0, again.stderr
    practice.invariants(billed=True)
    [batch] = practice.batches()
    # The file on disk is the batch the store recorded, whoever wrote it: never a second batch.
    assert out.read_bytes() == batch.content
    assert {c.patient_control_number for c in practice.claims() if c.batch_id == batch.id} == ready


EXCHANGE = ("transmission:after_create", "upload:before_put", "upload:after_put", "pickup:after_download",
            "pickup:before_remote_cleanup", "apply:before_commit")


@pytest.mark.parametrize("point", EXCHANGE + ("intake:after_store_raw",))
def test_an_exchange_killed_at_each_step_sends_once_and_applies_every_answer_once(practice_with_clearinghouse,
                                                                                  point):
    practice = practice_with_clearinghouse
    assert practice.here("intake", str(practice.exports)).returncode == 0
    assert practice.bhhub("exchange", crash_at=point).killed
    for _ in range(2):  # the next scheduled runs
        run = practice.here("exchange", "--json")
        assert run.returncode == 0, run.stderr
    practice.invariants(billed=True, adjudicated=True)
    answered = [h for h in practice.sandbox.processed if h.outcome == "answered"]
    assert len(answered) == 1
    with practice.hub() as hub, hub.store.session() as session:
        formats = [i.format for i in session.scalars(select(schema.InboxItem).where(
            schema.InboxItem.format.like("x12-%")))]
        # each answer stored once and applied (a resend after a kill is answered by a TA1 025 only)
        assert sorted(f for f in formats if f != "x12-ta1") == ["x12-277ca", "x12-835", "x12-999"]
        remitted = set(answered[0].remitted_claims)
        posted = {c.patient_control_number for c in session.scalars(
            select(schema.Claim).join(schema.RemitClaim, schema.RemitClaim.claim_id == schema.Claim.id)
            .where(schema.RemitClaim.state == "posted"))}
        assert posted == remitted, "a payment the 835 carried was never posted"
