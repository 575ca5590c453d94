"""``bhhub mailbox reroute`` and the eligibility (270) and claim status (276) questions written for
a mailbox taken out of bhhub.toml: the file is moved to a renamed mailbox, or released and each
question asked again, exactly once, through the mailbox its payer is routed to now; not a third
time when a person asked it again first; named with the command to ask it by hand when the hub
cannot. Killed before its commit nothing changes; two at once ask each question again once."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.exchange.cycle import check_inquiries_waiting
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.exchange.outbound import _inquiry_transmissions, _new_transmission
from bhhub.exchange.routing import routes
from bhhub.store import schema
from test_reroute import BOX, MEDICARE, _configure, _reroute, _start

OTHER = '[mailboxes.beta.interchange]\nreceiver_id = "OTHERCH"\n'


@pytest.fixture
def asked(tmp_path, database_url):
    """A Medicare patient's eligibility and their sent claim's status, asked through mailbox beta
    (a clearinghouse of its own): one 270 and one 276 written for beta, not yet sent."""
    from bhhub.claimstatus.service import status_checks
    from bhhub.eligibility.service import check

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    _configure(home, database_url, {"alpha": "", "beta": OTHER}, medicare_to="beta")
    with Hub.open(home) as hub:
        for seed in (1, 6):
            assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
        sent = _new_transmission(hub, load_mailboxes(hub)["beta"], routes(hub).payers_of("beta"))
        with hub.store.session() as session:
            session.get(schema.Transmission, sent).state = "uploaded"  # the 837P went; only the inquiries wait
            claim = session.scalar(select(schema.Claim).where(schema.Claim.batch_id.is_not(None)))
            pcn, patient = claim.patient_control_number, claim.patient_id
            session.commit()
        eligibility = check(hub, patient)
        [status] = status_checks(hub, [pcn])
    assert eligibility.batch_id and status.batch_id and eligibility.batch_id != status.batch_id
    return home, {"270": eligibility, "276": status}, patient, pcn


def _check_table(kind):
    return schema.EligibilityCheck if kind == "270" else schema.ClaimStatusCheck


def _checks(hub, kind) -> list[tuple[int, str, int | None]]:
    table = _check_table(kind)
    with hub.store.session() as session:
        return [tuple(r) for r in session.execute(select(table.id, table.state, table.batch_id).order_by(table.id))]


def _inquiry_batches(hub) -> int:
    with hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(schema.Batch).where(schema.Batch.kind.in_(("270", "276"))))


@pytest.mark.parametrize("given_a_transmission", [False, True], ids=["never-picked-up", "transmission-ready"])
def test_released_questions_are_asked_again_once_through_the_mailbox_their_payer_is_routed_to_now(
        asked, database_url, capsys, given_a_transmission):
    home, outcomes, _, _ = asked
    old_batches = sorted(o.batch_id for o in outcomes.values())
    if given_a_transmission:  # beta's exchange gave them a transmission; beta was removed before the upload
        with Hub.open(home) as hub:
            transmissions = _inquiry_transmissions(hub, load_mailboxes(hub)["beta"])
        assert len(transmissions) == 2
    _configure(home, database_url, {"alpha": ""})  # beta taken out; Medicare now goes by the default, alpha
    if not given_a_transmission:
        with Hub.open(home) as hub, hub.store.session() as session:
            assert check_inquiries_waiting(hub, hours=-1) == 2
            alert = session.scalar(select(schema.Alert.message).where(schema.Alert.key == "inquiries_waiting"))
            assert "`bhhub mailbox reroute --from beta [--to NEW]`" in alert  # the way out is named

    code, result = _reroute(home, capsys, "--from", "beta")
    assert code == 0, result
    if given_a_transmission:
        assert sorted(result["released_transmission_ids"]) == sorted(transmissions)
        assert result["released_inquiry_batch_ids"] == []
    else:
        assert result["released_inquiry_batch_ids"] == old_batches
    questions = {q["kind"]: q for q in result["questions"]}
    assert set(questions) == {"270", "276"}
    with Hub.open(home) as hub, hub.store.session() as session:
        alpha = load_mailboxes(hub)["alpha"]
        for kind, outcome in outcomes.items():
            q = questions[kind]
            assert (q["check_id"], q["state"], q["mailbox"]) == (outcome.check_id, "asked_again", "alpha")
            old, new = session.get(_check_table(kind), q["check_id"]), session.get(_check_table(kind), q["new_check_id"])
            assert old.state == "failed" and f"asked again as check {new.id}" in old.error
            assert (new.state, new.batch_id) == ("requested", q["batch_id"])
            assert new.trace_number != old.trace_number
            batch = session.get(schema.Batch, new.batch_id)
            assert (batch.kind, batch.mailbox) == (kind, "alpha") and b"OTHERCH" not in batch.content
    with Hub.open(home) as hub:
        # alpha's next exchange sends the two new files, and only those
        picked = _inquiry_transmissions(hub, alpha)
        with hub.store.session() as session:
            assert sorted(session.get(schema.Transmission, t).batch_id for t in picked) == sorted(
                q["batch_id"] for q in questions.values())
        assert check_inquiries_waiting(hub, hours=-1) == 0  # the released files wait for no one
        before = {kind: _checks(hub, kind) for kind in outcomes}

    code, again = _reroute(home, capsys, "--from", "beta")  # again: nothing, nobody asked a third time
    assert code == 0 and again["questions"] == [] and again["released_inquiry_batch_ids"] == []
    assert again["released_transmission_ids"] == []
    _configure(home, database_url, {"alpha": "", "beta": OTHER}, medicare_to="beta")  # beta configured again
    with Hub.open(home) as hub:
        assert {kind: _checks(hub, kind) for kind in outcomes} == before
        assert _inquiry_transmissions(hub, load_mailboxes(hub)["beta"]) == []  # the released files never go


def test_a_renamed_mailbox_takes_the_inquiries_as_they_are(asked, database_url, capsys):
    home, outcomes, _, _ = asked
    gamma = '[mailboxes.gamma.interchange]\nreceiver_id = "OTHERCH"\n'  # beta renamed: the same clearinghouse
    _configure(home, database_url, {"alpha": "", "gamma": gamma}, medicare_to="gamma")
    with Hub.open(home) as hub, hub.store.session() as session:
        contents = {o.batch_id: session.get(schema.Batch, o.batch_id).content for o in outcomes.values()}

    code, result = _reroute(home, capsys, "--from", "beta", "--to", "gamma")
    assert code == 0 and result["moved_inquiry_batch_ids"] == sorted(contents) and result["questions"] == []
    with Hub.open(home) as hub:
        picked = _inquiry_transmissions(hub, load_mailboxes(hub)["gamma"])
    with Hub.open(home) as hub, hub.store.session() as session:
        assert sorted(session.get(schema.Transmission, t).batch_id for t in picked) == sorted(contents)
        for batch_id, content in contents.items():
            assert session.get(schema.Batch, batch_id).content == content  # the same bytes, trace numbers and ISA13
        for kind, outcome in outcomes.items():
            assert session.get(_check_table(kind), outcome.check_id).state == "requested"


def test_a_second_reroute_after_inquiries_moved_finds_nothing_waiting(asked, database_url, capsys):
    home, outcomes, _, _ = asked
    # The 837P said to have gone through alpha: only the inquiries ever named beta, and a move renames them.
    with Hub.open(home) as hub, hub.store.session() as session:
        for transmission in session.scalars(select(schema.Transmission).where(schema.Transmission.mailbox == "beta")):
            transmission.mailbox = "alpha"
        session.commit()
    gamma = '[mailboxes.gamma.interchange]\nreceiver_id = "OTHERCH"\n'  # beta renamed: the same clearinghouse
    _configure(home, database_url, {"alpha": "", "gamma": gamma}, medicare_to="gamma")
    code, result = _reroute(home, capsys, "--from", "beta", "--to", "gamma")
    assert code == 0 and len(result["moved_inquiry_batch_ids"]) == len(outcomes)

    # Those batches now name gamma, and none has a transmission: only the move's audit names beta.
    code, again = _reroute(home, capsys, "--from", "beta", "--to", "gamma")
    assert code == 0 and again["moved_inquiry_batch_ids"] == again["released_inquiry_batch_ids"] == []
    with Hub.open(home) as hub, hub.store.session() as session:
        for outcome in outcomes.values():
            assert session.get(schema.Batch, outcome.batch_id).mailbox == "gamma"


def test_a_question_asked_again_by_hand_first_is_not_asked_a_third_time(asked, database_url, capsys):
    from bhhub.cli.main import main

    home, outcomes, patient, pcn = asked
    _configure(home, database_url, {"alpha": ""})
    for argv in (["eligibility", "check", "--patient", str(patient)], ["status", "check", pcn]):
        assert main(["--home", str(home), *argv, "--json"]) == 0
        capsys.readouterr()
    with Hub.open(home) as hub:
        batches = _inquiry_batches(hub)

    code, result = _reroute(home, capsys, "--from", "beta")
    assert code == 0 and {q["state"] for q in result["questions"]} == {"asked_since"}
    with Hub.open(home) as hub, hub.store.session() as session:
        assert _inquiry_batches(hub) == batches  # no 270 or 276 written by the reroute
        for q in result["questions"]:
            old = session.get(_check_table(q["kind"]), q["check_id"])
            assert old.state == "failed" and f"asked again since as check {q['new_check_id']}" in old.error


def test_a_question_the_hub_cannot_ask_now_is_named_with_the_command_to_ask_it(asked, database_url, capsys):
    from bhhub.cli.main import main

    home, outcomes, patient, pcn = asked
    # alpha and gamma, and Medicare routed to neither: the hub has nowhere to ask
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n[routing.payers]\n"87726" = "alpha"\n'
                                     f'[mailboxes.alpha]\n{BOX}[mailboxes.gamma]\n{BOX}')
    with Hub.open(home) as hub:
        batches = _inquiry_batches(hub)
    assert main(["--home", str(home), "mailbox", "reroute", "--from", "beta"]) == 0
    out = capsys.readouterr().out
    assert "released unsent" in out and "nothing waits" not in out
    assert f"ask with `bhhub eligibility check --patient {patient} --payer {MEDICARE}" in out
    assert f"ask with `bhhub status check {pcn}`" in out
    with Hub.open(home) as hub, hub.store.session() as session:
        assert _inquiry_batches(hub) == batches
        for kind, outcome in outcomes.items():
            row = session.get(_check_table(kind), outcome.check_id)
            assert row.state == "failed" and "not asked again" in row.error and "ask with" in row.error


# --- killed, and twice at once: real processes ----------------------------------------------------


def _asked_again_once(home, outcomes) -> None:
    with Hub.open(home) as hub, hub.store.session() as session:
        for kind, outcome in outcomes.items():
            checks = _checks(hub, kind)
            assert [state for _, state, _ in checks] == ["failed", "requested"]  # the released one, asked once again
            assert checks[1][2] != outcome.batch_id
        released = session.scalars(select(schema.Transmission.batch_id).where(schema.Transmission.state == "released"))
        assert sorted(released) == sorted(o.batch_id for o in outcomes.values())
        assert len(session.scalars(select(schema.AuditEvent).where(
            schema.AuditEvent.action == "reroute_inquiries")).all()) == 1


def test_killed_before_its_commit_nothing_is_released_nor_asked_and_the_next_reroute_asks_once(
        asked, database_url, capsys):
    home, outcomes, _, _ = asked
    _configure(home, database_url, {"alpha": ""})
    with Hub.open(home) as hub:
        before = {kind: _checks(hub, kind) for kind in outcomes}

    killed = _start(home, BHHUB_CRASH_AT="reroute:before_commit")
    killed.communicate(timeout=180)
    assert killed.returncode == -9
    with Hub.open(home) as hub, hub.store.session() as session:
        assert {kind: _checks(hub, kind) for kind in outcomes} == before
        assert session.scalar(select(func.count()).select_from(schema.Transmission).where(
            schema.Transmission.state == "released")) == 0

    code, result = _reroute(home, capsys, "--from", "beta")
    assert code == 0 and {q["state"] for q in result["questions"]} == {"asked_again"}
    _asked_again_once(home, outcomes)


def test_two_reroutes_at_once_ask_each_question_again_once(asked, database_url, tmp_path):
    home, outcomes, _, _ = asked
    _configure(home, database_url, {"alpha": ""})

    mark = tmp_path / "paused"
    first = _start(home, BHHUB_PAUSE_AT="reroute:before_commit", BHHUB_PAUSE_SECONDS="3", BHHUB_PAUSE_MARK=str(mark))
    deadline = time.monotonic() + 120
    while not mark.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = _start(home)  # inside the first one's transaction
    outputs = [process.communicate(timeout=180) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    released = sorted(json.loads(out)["released_inquiry_batch_ids"] for out, _ in outputs)
    assert released == [[], sorted(o.batch_id for o in outcomes.values())]
    _asked_again_once(home, outcomes)
