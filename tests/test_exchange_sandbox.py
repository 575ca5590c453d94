"""Faults between the hub and the sandbox clearinghouse, which answers every upload as a real one.

The sandbox reads each 837 the moment it is renamed into place and answers with TA1, 999,
277CA and 835; it keeps the ISA13s it has seen and answers a repeat with a TA1 025 only. So
these tests see the invariants from the receiver's side: the clearinghouse processes each
batch once, never a partial file, and the hub applies each answer once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.errors import RetriableError
from bhhub.exchange.cycle import exchange
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.exchange.outbound import submit
from bhhub.store import schema
from sandbox_support import sandbox_mailbox
from sftp_support import FaultProxy

pytest.importorskip("pyx12")
from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
SEEDS = (3, 5, 8, 11, 19)


class Setup:
    def __init__(self, tmp_path: Path, request):
        self.sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
        request.addfinalizer(self.sandbox.stop)
        self.proxy = FaultProxy((self.sandbox.host, self.sandbox.port))
        request.addfinalizer(self.proxy.close)
        self.home = tmp_path / "home"
        self.home.mkdir()
        # the key pinned for whatever port reaches it: here the proxy's
        (self.home / "bhhub.toml").write_text(sandbox_mailbox(self.sandbox, port=self.proxy.port, timeout=4))
        with self.hub() as hub:
            for seed in SEEDS:
                assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"

    def hub(self) -> Hub:
        return Hub.open(self.home)

    def exchange(self):
        with self.hub() as hub:
            return exchange(hub, load_mailboxes(hub)["sandbox"])

    def cli(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BHHUB_HOME": str(self.home)}
        env.pop("BHHUB_CRASH_AT", None)
        if crash_at:
            env["BHHUB_CRASH_AT"] = crash_at
        return subprocess.run([sys.executable, "-m", "bhhub.cli.main", *args], env=env, cwd=PROJECT,
                              capture_output=True, text=True, timeout=120)

    def statuses(self) -> dict[str, str]:
        with self.hub() as hub, hub.store.session() as session:
            return {c.patient_control_number: c.status for c in session.scalars(select(schema.Claim))}

    def answered(self) -> list:
        return [h for h in self.sandbox.processed if h.outcome == "answered"]

    def inbox(self, kind: str) -> list[schema.InboxItem]:
        with self.hub() as hub, hub.store.session() as session:
            return list(session.scalars(select(schema.InboxItem).where(schema.InboxItem.format == kind)))


@pytest.fixture
def setup(tmp_path, request) -> Setup:
    return Setup(tmp_path, request)


ADJUDICATED = {"paid", "partially_paid", "denied", "rejected"}


def test_one_exchange_sends_and_applies_every_answer_once(setup):
    report = setup.exchange()
    assert report.ok, report.error
    assert len(setup.answered()) == 1
    assert sorted(p.name.rsplit(".", 1)[1] for p in report.picked_up) == ["277", "835", "999", "ta1"]
    assert set(setup.statuses().values()) <= ADJUDICATED
    again = setup.exchange()
    assert again.sent == [] and again.picked_up == []
    assert len(setup.inbox("x12-999")) == 1 and len(setup.inbox("x12-835")) == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upload_cut_midway_is_never_processed_half_and_is_answered_once_after_the_resend(setup, seed):
    with setup.hub() as hub:
        mailbox = load_mailboxes(hub)["sandbox"]
        with mailbox.transport.connect(mailbox.connection) as connection:
            setup.proxy.cut("client_to_server", after=random.Random(seed).randrange(150, 3000))
            with pytest.raises(RetriableError):
                submit(hub, mailbox, connection)
    assert setup.sandbox.processed == []  # the clearinghouse never saw a file under its final name
    setup.proxy.heal()
    report = setup.exchange()
    assert report.ok, report.error
    assert [s.how for s in report.sent] == ["resent"]
    [handled] = setup.sandbox.processed
    assert handled.outcome == "answered" and len(handled.accepted_claims) + len(handled.rejected_claims) == len(SEEDS)
    assert set(setup.statuses().values()) <= ADJUDICATED


def test_killed_after_the_upload_the_resend_is_a_harmless_duplicate_for_the_clearinghouse(setup):
    killed = setup.cli("exchange", crash_at="upload:after_put")
    assert killed.returncode == -9
    [first] = setup.sandbox.processed  # it arrived and was answered; the hub did not record that
    assert first.outcome == "answered"
    report = setup.exchange()
    assert report.ok, report.error
    # The sandbox moved the file away, so it cannot be found: the same bytes and ISA13 go again,
    # and the clearinghouse's duplicate check answers with a TA1 025 and nothing else.
    assert [s.how for s in report.sent] == ["resent"]
    assert [h.outcome for h in setup.sandbox.processed] == ["answered", "duplicate"]
    assert setup.sandbox.processed[1].interchange_control_number == first.interchange_control_number
    summaries = " | ".join(p.reason or "" for p in report.picked_up)
    assert "duplicate of an interchange the clearinghouse already has" in summaries
    assert set(setup.statuses().values()) <= ADJUDICATED  # the first copy's answers applied
    with setup.hub() as hub, hub.store.session() as session:
        [transmission] = session.scalars(select(schema.Transmission)).all()
        assert transmission.state == "acknowledged" and transmission.attempts == 2
        assert len(session.scalars(select(schema.Batch)).all()) == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_a_pickup_cut_midway_loses_no_answer_and_applies_none_twice(setup, seed):
    with setup.hub() as hub:
        mailbox = load_mailboxes(hub)["sandbox"]
        with mailbox.transport.connect(mailbox.connection) as connection:
            submit(hub, mailbox, connection)
    replies = sorted((setup.sandbox.root / "from-clearinghouse").iterdir())
    assert len(replies) == 4
    setup.proxy.cut("server_to_client", after=random.Random(seed).randrange(4000, 9000))
    first = setup.exchange()
    assert not first.ok
    setup.proxy.heal()
    second = setup.exchange()
    assert second.ok, second.error
    assert list((setup.sandbox.root / "from-clearinghouse").iterdir()) == []
    assert sorted(p.name for p in (setup.sandbox.root / "picked-up").iterdir()) == [p.name for p in replies]
    for kind in ("x12-ta1", "x12-999", "x12-277ca", "x12-835"):
        assert len(setup.inbox(kind)) == 1, kind
    with setup.hub() as hub, hub.store.session() as session:
        events = session.scalars(select(schema.ClaimStatusEvent.claim_id).where(
            schema.ClaimStatusEvent.status.in_(("paid", "partially_paid", "denied")))).all()
        assert len(events) == len(set(events))  # each claim adjudicated once


def test_killed_before_the_remote_cleanup_the_answers_are_not_applied_twice(setup):
    killed = setup.cli("exchange", crash_at="pickup:before_remote_cleanup")
    assert killed.returncode == -9
    [stored] = setup.inbox("x12-ta1")  # the first answer was committed before the kill
    report = setup.exchange()
    assert report.ok, report.error
    assert [p.outcome for p in report.picked_up] == ["duplicate", "imported", "imported", "imported"]
    assert set(setup.statuses().values()) <= ADJUDICATED
    for kind in ("x12-ta1", "x12-999", "x12-277ca", "x12-835"):
        assert len(setup.inbox(kind)) == 1, kind
    assert list((setup.sandbox.root / "from-clearinghouse").iterdir()) == []
