"""Eligibility (270) and claim status (276) inquiries through the sandbox clearinghouse's mailbox.

The hub queues an inquiry as a batch (bytes and control numbers stored first), the exchange
uploads it over real SFTP on loopback (host key pinned), the sandbox reads it with its own
reader and answers with a 999 and a 271 or 277 written by its own writers, and the hub picks
the answers up into its inbox. The answers are then read with the hub's readers
(``read_271``, ``read_277``) and checked with x12sdk's models: two independent implementations
must agree. A crash around the upload sends the same bytes again, and the clearinghouse sees
the inquiry once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from x12_models import x12sdk_problems

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.claimstatus.records import StatusInquiry, inquiry_for_claim
from bhhub.claimstatus.x277 import read_277
from bhhub.demo.synthetic import encounter_bundle
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.x271 import read_271
from bhhub.errors import ConfigError
from bhhub.exchange.cycle import exchange
from bhhub.exchange.inquiries import queue_270, queue_276
from bhhub.exchange.mailboxes import load_mailboxes, load_profile
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Payer, Person, PersonName, Provider
from bhhub.store import schema
from sandbox_support import sandbox_host_key, sandbox_mailbox
from bhhub.store.repo import claim_record

pytest.importorskip("pyx12")
from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
SEEDS = (3, 5, 8, 11, 19)

# Payer 87726 is one the sandbox knows; the member ids pick its coverage profiles
# (mappings/clearinghouses/sandbox_rules.toml [eligibility]).
COMMERCIAL = Payer(payer_id="87726", name="Sample Commercial Health Plan")
PRACTICE = Provider(npi="1245319599", organization_name="Riverside Counseling", tin="123456789")
SERVICE_DAY = date(2026, 12, 1)
MEMBERS = {  # trace number -> (member id, the patient)
    "ELIG-ACTIVE-1": ("SBXACTIVE0001", Person(PersonName("Doe", "Jane"), date(1985, 2, 14), "F")),
    "ELIG-ENDED-1": ("SBXENDED0002", Person(PersonName("Roe", "Sam"), date(1979, 8, 3), "M")),
    "ELIG-MBHO-1": ("SBXMBHO0003", Person(PersonName("Poe", "Lee"), date(1990, 11, 21), "F")),
}


def eligibility_requests() -> list[EligibilityRequest]:
    return [EligibilityRequest(trace_number=trace, payer=COMMERCIAL, provider=PRACTICE, member_id=member,
                               subscriber=person, service_date=SERVICE_DAY, service_types=("MH", "A6"))
            for trace, (member, person) in MEMBERS.items()]


class Setup:
    """A hub home whose one mailbox is the sandbox clearinghouse, on 127.0.0.1 over SFTP."""

    def __init__(self, tmp_path: Path, request, *, extra_mailboxes: str = ""):
        self.sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
        request.addfinalizer(self.sandbox.stop)
        self.home = tmp_path / "home"
        self.home.mkdir()
        (self.home / "bhhub.toml").write_text(sandbox_mailbox(self.sandbox, timeout=4)
                                              + extra_mailboxes.replace("{key}", sandbox_host_key(self.sandbox)))

    def hub(self) -> Hub:
        return Hub.open(self.home)

    def exchange(self):
        with self.hub() as hub:
            return exchange(hub, load_mailboxes(hub)["sandbox"])

    def queue_270(self, mailbox: str | None = None) -> int:
        with self.hub() as hub, hub.store.session() as session:
            batch_ids = queue_270(hub, session, eligibility_requests(), mailbox=mailbox)
            session.commit()
        assert len(set(batch_ids)) == 1  # one payer, one mailbox: one file
        return batch_ids[0]

    def cli(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BHHUB_HOME": str(self.home)}
        env.pop("BHHUB_CRASH_AT", None)
        if crash_at:
            env["BHHUB_CRASH_AT"] = crash_at
        return subprocess.run([sys.executable, "-m", "bhhub.cli.main", *args], env=env, cwd=PROJECT,
                              capture_output=True, text=True, timeout=120)

    def batch(self, batch_id: int) -> schema.Batch:
        with self.hub() as hub, hub.store.session() as session:
            batch = session.get(schema.Batch, batch_id)
            session.expunge(batch)
            return batch

    def inbox_content(self, item_id: int) -> bytes:
        with self.hub() as hub, hub.store.session() as session:
            return session.get(schema.InboxItem, item_id).content

    def uploads_seen(self) -> list[bytes]:
        """Every file the clearinghouse took from its upload folder, as it received it."""
        return [p.read_bytes() for p in sorted((self.sandbox.private / "processed").iterdir())]


@pytest.fixture
def setup(tmp_path, request) -> Setup:
    return Setup(tmp_path, request)


def picked(report, suffix: str):
    [found] = [p for p in report.picked_up if p.name.endswith(suffix)]
    return found


# --- eligibility -----------------------------------------------------------------------------------


def test_a_270_for_three_members_is_uploaded_once_and_their_271_answers_come_back(setup):
    batch_id = setup.queue_270()
    batch = setup.batch(batch_id)
    assert (batch.kind, batch.claim_count, batch.total_charge) == ("270", 0, Decimal(0))

    report = setup.exchange()
    assert report.ok, report.error
    [sent] = report.sent
    assert (sent.kind, sent.batch_id, sent.how, sent.claims) == ("270", batch_id, "uploaded", 0)
    assert sent.remote_name == f"{batch.sender_id}_{batch.interchange_control_number}.270"  # sandbox.toml
    assert setup.uploads_seen() == [batch.content]  # the stored bytes, exactly, once
    [handled] = setup.sandbox.processed
    assert handled.outcome == "answered" and handled.interchange_control_number == batch.interchange_control_number

    assert sorted(p.name.rsplit(".", 1)[1] for p in report.picked_up) == ["271", "999", "ta1"]
    assert all(p.inbox_item_id for p in report.picked_up)  # every answer stored in the inbox
    answer = setup.inbox_content(picked(report, ".271").inbox_item_id)
    assert x12sdk_problems(answer) == []
    responses = {r.trace_numbers[0]: r for r in read_271(answer)}
    assert set(responses) == set(MEMBERS)  # each inquiry answered, matched by its own trace number
    active, ended, carved = responses["ELIG-ACTIVE-1"], responses["ELIG-ENDED-1"], responses["ELIG-MBHO-1"]
    assert [r.subscriber_member_id for r in (active, ended, carved)] == [m for m, _ in MEMBERS.values()]

    summary = active.mental_health_summary()
    assert (summary.active, summary.copay, summary.coinsurance) == (True, Decimal("30"), Decimal("0.2"))
    assert (summary.deductible, summary.deductible_remaining) == (Decimal("1500"), Decimal("750"))
    assert (summary.visits_allowed, summary.visits_remaining) == (Decimal("20"), Decimal("8"))
    assert summary.auth_required is False and summary.carve_out is None

    assert ended.active is False and ended.mental_health_summary().active is False
    assert ended.coverage_dates["357"].start == date(2026, 6, 30)  # eligibility ended

    carve_out = carved.mental_health_summary().carve_out
    assert carve_out is not None and carve_out.benefit_code == "U"
    assert (carve_out.entity.entity_code, carve_out.entity.id) == ("PR", "77321")

    again = setup.exchange()
    assert again.ok and again.sent == [] and again.picked_up == []
    assert len(setup.sandbox.processed) == 1


def test_the_999_for_a_270_names_its_group_and_is_stored_in_the_inbox(setup):
    batch = setup.batch(setup.queue_270())
    report = setup.exchange()
    from bhhub.acknowledgments.x999 import read_999

    [group] = read_999(setup.inbox_content(picked(report, ".999").inbox_item_id))
    assert (group.functional_id, group.group_control_number) == ("HS", batch.group_control_number)
    assert [t.control_number for t in group.transactions] == [batch.transaction_control_number]
    assert group.transactions[0].accepted


def test_an_unknown_member_is_answered_not_found(setup):
    nobody = Person(PersonName("Moe", "Kim"), date(1970, 1, 2), "M")
    with setup.hub() as hub, hub.store.session() as session:
        queue_270(hub, session, [EligibilityRequest(
            trace_number="ELIG-NONE-1", payer=COMMERCIAL, provider=PRACTICE, member_id="SBXNONE0009",
            subscriber=nobody, service_date=SERVICE_DAY)])
        session.commit()
    report = setup.exchange()
    [response] = read_271(setup.inbox_content(picked(report, ".271").inbox_item_id))
    assert response.trace_numbers == ("ELIG-NONE-1",)
    assert [(r.loop, r.code, r.follow_up_code) for r in response.rejections] == [("2100C", "75", "C")]
    assert response.active is None and not response.benefits


@pytest.mark.parametrize("crash_at", ["upload:before_put", "upload:after_put"])
def test_a_process_killed_around_the_270_upload_sends_the_same_bytes_and_is_answered_once(setup, crash_at):
    batch_id = setup.queue_270()
    stored = setup.batch(batch_id).content
    killed = setup.cli("exchange", crash_at=crash_at)
    assert killed.returncode == -9, killed.stderr
    arrived = crash_at == "upload:after_put"
    assert len(setup.sandbox.processed) == int(arrived)

    report = setup.exchange()
    assert report.ok, report.error
    assert [(s.kind, s.how) for s in report.sent] == [("270", "resent")]
    # Whatever reached the clearinghouse is the stored file, byte for byte, with its ISA13.
    assert all(upload == stored for upload in setup.uploads_seen())
    outcomes = [h.outcome for h in setup.sandbox.processed]
    # A copy that arrived unseen (the sandbox moves uploads away) makes the resend a harmless
    # duplicate: TA1 025 and no second 271.
    assert outcomes == (["answered", "duplicate"] if arrived else ["answered"])
    with setup.hub() as hub, hub.store.session() as session:
        assert len(session.scalars(select(schema.Batch)).all()) == 1
        [transmission] = session.scalars(select(schema.Transmission)).all()
        # The 999 (matched by its group and set numbers) acknowledged the inquiry file.
        assert (transmission.batch_id, transmission.state, transmission.attempts) == (batch_id, "acknowledged", 2)
        answers = session.scalars(select(schema.InboxItem).where(schema.InboxItem.source_name.like("%.271"))).all()
    assert len(answers) == 1
    assert {r.trace_numbers[0] for r in read_271(answers[0].content)} == set(MEMBERS)


def test_an_inquiry_written_for_another_clearinghouse_waits_for_that_mailbox(tmp_path, request):
    other = """
[mailboxes.other]
profile = "generic"
host = "127.0.0.1"
port = 9
username = "nobody"
password_env = "BHHUB_TEST_UNUSED_PASSWORD"
known_hosts = ["{key}"]
"""
    setup = Setup(tmp_path, request, extra_mailboxes=other)
    with pytest.raises(ConfigError, match="no mailbox serves payer"):
        setup.queue_270()  # two mailboxes, no [routing]: a 270 addressed to neither would wait for ever
    elsewhere = setup.queue_270(mailbox="other")
    here = setup.queue_270(mailbox="sandbox")
    report = setup.exchange()
    assert report.ok, report.error
    assert [s.batch_id for s in report.sent] == [here]
    with setup.hub() as hub, hub.store.session() as session:
        assert session.scalar(select(schema.Transmission).where(schema.Transmission.batch_id == elsewhere)) is None
    # It is not left to wait in silence: after an hour the runner's tick raises one alert.
    from bhhub.exchange.cycle import INQUIRIES_WAITING, check_inquiries_waiting

    with setup.hub() as hub:
        assert check_inquiries_waiting(hub) == 0  # just written
        assert check_inquiries_waiting(hub, hours=-1) == 1
        with hub.store.session() as session:
            [alert] = session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None),
                                                                 schema.Alert.key == INQUIRIES_WAITING)).all()
            assert f"batch {elsewhere}" in alert.message
            session.get(schema.Batch, elsewhere).kind = "837P"  # as if taken care of
            session.commit()
        assert check_inquiries_waiting(hub, hours=-1) == 0
        with hub.store.session() as session:
            assert session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None),
                                                              schema.Alert.key == INQUIRIES_WAITING)).all() == []


# --- claim status ----------------------------------------------------------------------------------


HUB_WORD = {"paid": "paid", "partially_paid": "paid", "denied": "denied", "rejected": "rejected"}


def test_a_276_about_sent_claims_is_answered_with_what_the_clearinghouse_decided(setup):
    with setup.hub() as hub:
        for seed in SEEDS:
            received = intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json")
            assert received.outcome == "imported"
    first = setup.exchange()  # the 837P: answered with 999, 277CA and 835
    assert first.ok, first.error
    assert [s.kind for s in first.sent] == ["837P"]
    with setup.hub() as hub, hub.store.session() as session:
        claims = session.scalars(select(schema.Claim).order_by(schema.Claim.id)).all()
        decided = {c.patient_control_number: c.status for c in claims}
        inquiries = [inquiry_for_claim(claim_record(session, c), f"STAT-{n}") for n, c in enumerate(claims, start=1)]
        never_sent = StatusInquiry(
            trace_number="STAT-UNKNOWN", payer=inquiries[0].payer, provider=inquiries[0].provider,
            subscriber=inquiries[0].subscriber, member_id=inquiries[0].member_id,
            patient_control_number="NEVERSENT1", total_charge=Decimal("99.00"), service_date_from=date(2026, 11, 2))
        [batch_id] = set(queue_276(hub, session, [*inquiries, never_sent]))
        session.commit()
    assert set(decided.values()) <= set(HUB_WORD)

    report = setup.exchange()
    assert report.ok, report.error
    assert [(s.kind, s.batch_id) for s in report.sent] == [("276", batch_id)]
    assert sorted(p.name.rsplit(".", 1)[1] for p in report.picked_up) == ["277", "999", "ta1"]
    answer = setup.inbox_content(picked(report, ".277").inbox_item_id)
    assert x12sdk_problems(answer) == []
    results = {r.trace_number: r for r in read_277(answer)}
    assert set(results) == {i.trace_number for i in inquiries} | {"STAT-UNKNOWN"}
    for inquiry in inquiries:
        result = results[inquiry.trace_number]
        assert result.patient_control_number == inquiry.patient_control_number  # REF*EJ echoed
        assert result.status == HUB_WORD[decided[inquiry.patient_control_number]], inquiry.patient_control_number
        if result.status == "paid":
            assert result.paid_amount > 0 and result.payer_claim_control_number.startswith("SBX")
    unknown = results["STAT-UNKNOWN"]
    assert (unknown.status, unknown.category, unknown.patient_control_number) == ("not_found", "A4", "NEVERSENT1")


# --- profiles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["generic", "office_ally", "sandbox", "stedi"])
def test_every_packaged_profile_names_claim_and_inquiry_files_apart(key):
    profile = load_profile(MappingSet(), key)
    names = {kind: profile.remote_name(kind, sender_id="PRACTICE", isa13="000000042", batch_id=7,
                                       date="20261130", time="120000") for kind in ("837P", "270", "276")}
    assert len(set(names.values())) == 3 and all("000000042" in name for name in names.values())


def test_a_profile_written_before_inquiries_still_loads_and_names_them_by_kind(tmp_path):
    (tmp_path / "clearinghouses").mkdir()
    (tmp_path / "clearinghouses" / "old.toml").write_text(
        'name = "old"\n[folders]\noutbound = "/out"\ninbound = "/in"\n'
        '[upload]\nmethod = "direct"\nconfirm = false\nfile_name = "{sender_id}_{isa13}.837"\n'
        '[pickup]\nafter = "delete"\n')
    profile = load_profile(MappingSet(override_dir=tmp_path), "old")
    fields = dict(sender_id="P", isa13="000000002", batch_id=2, date="", time="")
    assert profile.remote_name("837P", **fields) == "P_000000002.837"
    assert profile.remote_name("270", **fields) == "P_000000002.270"
    (tmp_path / "clearinghouses" / "bad.toml").write_text(
        (tmp_path / "clearinghouses" / "old.toml").read_text().replace(
            'file_name = "{sender_id}_{isa13}.837"', 'file_name = "x.837"\noutbound_names = { "270" = "{payer}.270" }'))
    with pytest.raises(ConfigError, match="270 has an unknown field"):
        load_profile(MappingSet(override_dir=tmp_path), "bad")
