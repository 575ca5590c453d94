"""``bhhub mailbox reroute``: transmissions left for a mailbox taken out of bhhub.toml go to the
mailbox that replaced it, or back to the queue for the one their payer is routed to now; once,
audited, and a file that may already have reached the old clearinghouse (cut off while
uploading) only when the person says so (``--include-uploading``), told of the risk. Killed
before its commit it changes nothing; two at once move each transmission once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.exchange.cycle import ORPHANED, check_orphaned_transmissions
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.exchange.outbound import _new_transmission
from bhhub.exchange.routing import routes
from bhhub.store import schema

MEDICARE = "00431"  # seed 6's payer (bhhub.demo.synthetic); seed 1's is 87726
BOX = ('profile = "generic"\nhost = "127.0.0.1"\nusername = "u"\npassword_env = "UNUSED"\n'
       'known_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]\n')


def _configure(home, database_url, mailboxes: dict[str, str], medicare_to: str | None = None) -> None:
    """bhhub.toml with these mailboxes (name -> extra TOML), alpha the default route."""
    text = f'[store]\nurl = "{database_url}"\n[routing]\ndefault = "alpha"\n'
    if medicare_to:
        text += f'[routing.payers]\n"{MEDICARE}" = "{medicare_to}"\n'
    for name, extra in mailboxes.items():
        text += f"[mailboxes.{name}]\n{BOX}{extra}"
    (home / "bhhub.toml").write_text(text)


@pytest.fixture
def stranded(tmp_path, database_url):
    """A Medicare claim batched for mailbox beta (a clearinghouse of its own), not yet sent."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    other = '[mailboxes.beta.interchange]\nreceiver_id = "OTHERCH"\n'
    _configure(home, database_url, {"alpha": "", "beta": other}, medicare_to="beta")
    with Hub.open(home) as hub:
        for seed in (1, 6):
            assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
        transmission = _new_transmission(hub, load_mailboxes(hub)["beta"], routes(hub).payers_of("beta"))
    return home, transmission


def _claims(hub) -> dict[str, tuple[str, int | None]]:
    with hub.store.session() as session:
        return {pcn: (status, batch) for pcn, status, batch in session.execute(
            select(schema.Claim.patient_control_number, schema.Claim.status, schema.Claim.batch_id))}


def _reroute(home, capsys, *argv: str) -> tuple[int, dict | str]:
    from bhhub.cli.main import main

    code = main(["--home", str(home), "mailbox", "reroute", *argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err)


def test_released_claims_go_with_the_next_exchange_to_the_mailbox_their_payer_is_routed_to_now(
        stranded, database_url, capsys):
    home, transmission = stranded
    with Hub.open(home) as hub:
        batched = {pcn for pcn, (status, _) in _claims(hub).items() if status == "batched"}
    _configure(home, database_url, {"alpha": ""})  # beta taken out; Medicare now goes by the default
    with Hub.open(home) as hub:
        assert check_orphaned_transmissions(hub, {"alpha"}) == 1

    code, result = _reroute(home, capsys, "--from", "beta")
    assert code == 0, result
    assert result["released_transmission_ids"] == [transmission] and result["moved_transmission_ids"] == []
    assert set(result["patient_control_numbers"]) == batched and batched
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.get(schema.Transmission, transmission).state == "released"
        claims = _claims(hub)
        assert all(claims[pcn] == ("ready", None) for pcn in batched)
        alert = session.scalar(select(schema.Alert).where(schema.Alert.kind == ORPHANED))
        assert alert.cleared_at is not None
        [audit] = session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.action == "reroute_transmissions"))
        assert audit.object_ids == [transmission]

    assert _reroute(home, capsys, "--from", "beta")[1]["released_transmission_ids"] == []  # again: nothing
    with Hub.open(home) as hub:
        with hub.store.session() as session:
            events = session.scalars(select(schema.ClaimStatusEvent.reason).where(
                schema.ClaimStatusEvent.reason.like("rerouted:%"))).all()
        assert len(events) == len(batched)  # each claim released once
        alpha = load_mailboxes(hub)["alpha"]
        again = _new_transmission(hub, alpha, routes(hub).payers_of("alpha"))
        with hub.store.session() as session:
            batch = session.scalar(select(schema.Batch).join(schema.Transmission,
                                                             schema.Transmission.batch_id == schema.Batch.id)
                                   .where(schema.Transmission.id == again))
        sent = {pcn for pcn, (status, b) in _claims(hub).items() if b == batch.id}
    assert batched <= sent  # the next exchange of alpha carries them, in alpha's envelope
    assert b"OTHERCH" not in batch.content


def test_a_renamed_mailbox_takes_the_transmission_as_it_is(tmp_path, database_url, capsys):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    _configure(home, database_url, {"alpha": "", "beta": ""}, medicare_to="beta")
    with Hub.open(home) as hub:
        intake.receive(hub, json.dumps(encounter_bundle(6)).encode(), "e6.json")
        transmission = _new_transmission(hub, load_mailboxes(hub)["beta"], routes(hub).payers_of("beta"))
        with hub.store.session() as session:
            content = session.get(schema.Batch, session.get(schema.Transmission, transmission).batch_id).content
    _configure(home, database_url, {"alpha": "", "gamma": ""}, medicare_to="gamma")  # beta renamed gamma

    code, result = _reroute(home, capsys, "--from", "beta", "--to", "gamma")
    assert code == 0 and result["moved_transmission_ids"] == [transmission] and result["released_transmission_ids"] == []
    with Hub.open(home) as hub, hub.store.session() as session:
        row = session.get(schema.Transmission, transmission)
        assert (row.mailbox, row.state) == ("gamma", "ready")
        assert session.get(schema.Batch, row.batch_id).content == content  # the same bytes, the same ISA13
        assert {status for status, _ in _claims(hub).values()} == {"batched"}
        assert check_orphaned_transmissions(hub, {"alpha", "gamma"}) == 0


def test_a_second_reroute_after_a_move_says_nothing_waits_and_changes_nothing(tmp_path, database_url, capsys):
    from bhhub.cli.main import main

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    _configure(home, database_url, {"alpha": "", "beta": ""}, medicare_to="beta")
    with Hub.open(home) as hub:
        intake.receive(hub, json.dumps(encounter_bundle(6)).encode(), "e6.json")
        transmission = _new_transmission(hub, load_mailboxes(hub)["beta"], routes(hub).payers_of("beta"))
    _cut_off_while_uploading(home, transmission)
    _configure(home, database_url, {"alpha": "", "gamma": ""}, medicare_to="gamma")  # beta renamed gamma
    code, result = _reroute(home, capsys, "--from", "beta", "--to", "gamma", "--include-uploading")
    assert code == 0 and result["moved_transmission_ids"] == [transmission]
    with Hub.open(home) as hub, hub.store.session() as session:
        before = (_claims(hub), session.scalar(select(func.count()).select_from(schema.AuditEvent)))

    # No row says beta any more; the move's audit event still does.
    code = main(["--home", str(home), "mailbox", "reroute", "--from", "beta", "--to", "gamma"])
    out, err = capsys.readouterr()
    assert code == 0 and "nothing waits for mailbox beta" in out and err == ""
    with Hub.open(home) as hub, hub.store.session() as session:
        row = session.get(schema.Transmission, transmission)
        assert (row.mailbox, row.state) == ("gamma", "uploading")
        assert (_claims(hub), session.scalar(select(func.count()).select_from(schema.AuditEvent))) == before


def test_a_file_that_may_have_reached_the_old_clearinghouse_is_left_alone(stranded, database_url, capsys):
    home, transmission = stranded
    with Hub.open(home) as hub, hub.store.session() as session:
        session.get(schema.Transmission, transmission).state = "uploading"  # a crash during the upload
        session.commit()
    _configure(home, database_url, {"alpha": ""})
    code, result = _reroute(home, capsys, "--from", "beta", "--to", "alpha")
    assert code == 0 and result["in_doubt_transmission_ids"] == [transmission]
    assert result["moved_transmission_ids"] == result["released_transmission_ids"] == []
    with Hub.open(home) as hub:
        assert "batched" in {status for status, _ in _claims(hub).values()}


def test_a_configured_or_unknown_mailbox_is_a_usage_error(stranded, database_url, capsys):
    home, transmission = stranded
    code, err = _reroute(home, capsys, "--from", "beta")  # beta is still configured: its exchange sends it
    assert code == 2 and "is configured" in err
    _configure(home, database_url, {"alpha": ""})
    code, err = _reroute(home, capsys, "--from", "beta", "--to", "alpah")
    assert code == 2 and "did you mean 'alpha'?" in err and err.count("\n") == 1
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.get(schema.Transmission, transmission).state == "ready"


def _cut_off_while_uploading(home, transmission) -> None:
    with Hub.open(home) as hub, hub.store.session() as session:
        session.get(schema.Transmission, transmission).state = "uploading"  # killed during the upload
        session.commit()


def test_a_claim_behind_an_upload_cut_off_for_a_removed_mailbox_has_a_way_out(stranded, database_url, capsys):
    from bhhub.cli.main import main

    home, transmission = stranded
    _cut_off_while_uploading(home, transmission)
    _configure(home, database_url, {"alpha": ""})  # beta taken out before its upload was finished
    with Hub.open(home) as hub:
        batched = {pcn for pcn, (status, _) in _claims(hub).items() if status == "batched"}
    assert batched

    code = main(["--home", str(home), "mailbox", "reroute", "--from", "beta"])  # without the flag: named, kept
    out = capsys.readouterr().out
    assert code == 0 and "--include-uploading" in out and str(transmission) in out
    code = main(["--home", str(home), "mailbox", "reroute", "--from", "beta", "--include-uploading"])
    out = capsys.readouterr().out
    assert code == 0 and "released" in out and "billed twice" in out
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.get(schema.Transmission, transmission).state == "released"
        claims = _claims(hub)
        assert all(claims[pcn] == ("ready", None) for pcn in batched)
        [event] = session.scalars(select(schema.TransmissionEvent.detail).where(
            schema.TransmissionEvent.transmission_id == transmission, schema.TransmissionEvent.state == "released"))
        assert "may have reached" in event
    code, again = _reroute(home, capsys, "--from", "beta", "--include-uploading")
    assert code == 0 and again["released_transmission_ids"] == again["uploading_transmission_ids"] == []


def test_an_upload_cut_off_goes_to_a_renamed_mailbox_as_the_same_bytes(tmp_path, database_url, capsys):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    _configure(home, database_url, {"alpha": "", "beta": ""}, medicare_to="beta")
    with Hub.open(home) as hub:
        intake.receive(hub, json.dumps(encounter_bundle(6)).encode(), "e6.json")
        transmission = _new_transmission(hub, load_mailboxes(hub)["beta"], routes(hub).payers_of("beta"))
    _cut_off_while_uploading(home, transmission)
    _configure(home, database_url, {"alpha": "", "gamma": ""}, medicare_to="gamma")

    code, result = _reroute(home, capsys, "--from", "beta", "--to", "gamma", "--include-uploading")
    assert code == 0 and result["moved_transmission_ids"] == result["uploading_transmission_ids"] == [transmission]
    with Hub.open(home) as hub, hub.store.session() as session:
        row = session.get(schema.Transmission, transmission)
        # gamma's exchange looks for the file, else sends the same bytes and ISA13 (a duplicate: TA1 025)
        assert (row.mailbox, row.state) == ("gamma", "uploading")
        assert {status for status, _ in _claims(hub).values()} == {"batched"}


@pytest.mark.parametrize("name, said", [("", "needs the name"), ("   ", "needs the name"),
                                        ("zeta", "ever held work"), ("betta", "did you mean 'beta'?")])
def test_a_mailbox_name_that_never_held_work_is_a_usage_error_not_nothing_waits(stranded, database_url, capsys,
                                                                               name, said):
    home, transmission = stranded
    _configure(home, database_url, {"alpha": ""})
    code, err = _reroute(home, capsys, "--from", name)
    assert code == 2 and said in err and err.count("\n") == 1 and "Traceback" not in err
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.get(schema.Transmission, transmission).state == "ready"


def test_a_mailbox_that_held_work_long_done_says_nothing_waits(stranded, database_url, capsys):
    home, transmission = stranded
    with Hub.open(home) as hub, hub.store.session() as session:
        session.get(schema.Transmission, transmission).state = "acknowledged"
        session.commit()
    _configure(home, database_url, {"alpha": ""})
    code, result = _reroute(home, capsys, "--from", "beta")
    assert code == 0 and result["released_transmission_ids"] == [] and result["in_doubt_transmission_ids"] == []


# --- killed, and twice at once: real processes ----------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent


def _start(home, *argv: str, **env: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BHHUB_")} | env
    return subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "mailbox", "reroute",
                             "--from", "beta", "--include-uploading", "--json", *argv],
                            env=environment, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _released_once(home, transmission, batched) -> None:
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.get(schema.Transmission, transmission).state == "released"
        claims = _claims(hub)
        assert all(claims[pcn] == ("ready", None) for pcn in batched)
        reasons = session.scalars(select(schema.ClaimStatusEvent.reason).where(
            schema.ClaimStatusEvent.reason.like("rerouted:%"))).all()
        assert len(reasons) == len(batched)
        audits = session.scalars(select(schema.AuditEvent).where(
            schema.AuditEvent.action == "reroute_transmissions")).all()
        assert len(audits) == 1


def test_killed_before_its_commit_a_reroute_changes_nothing_and_the_next_one_does_it_once(
        stranded, database_url, capsys):
    home, transmission = stranded
    _cut_off_while_uploading(home, transmission)
    _configure(home, database_url, {"alpha": ""})
    with Hub.open(home) as hub:
        before = _claims(hub)
    batched = {pcn for pcn, (status, _) in before.items() if status == "batched"}

    killed = _start(home, BHHUB_CRASH_AT="reroute:before_commit")
    killed.communicate(timeout=180)
    assert killed.returncode == -9
    with Hub.open(home) as hub, hub.store.session() as session:
        assert _claims(hub) == before and session.get(schema.Transmission, transmission).state == "uploading"

    code, result = _reroute(home, capsys, "--from", "beta", "--include-uploading")
    assert code == 0 and result["released_transmission_ids"] == [transmission]
    _released_once(home, transmission, batched)


def test_two_reroutes_at_once_release_each_transmission_once(stranded, database_url, tmp_path):
    home, transmission = stranded
    _cut_off_while_uploading(home, transmission)
    _configure(home, database_url, {"alpha": ""})
    with Hub.open(home) as hub:
        batched = {pcn for pcn, (status, _) in _claims(hub).items() if status == "batched"}

    mark = tmp_path / "paused"
    first = _start(home, BHHUB_PAUSE_AT="reroute:before_commit", BHHUB_PAUSE_SECONDS="3", BHHUB_PAUSE_MARK=str(mark))
    deadline = time.monotonic() + 120
    while not mark.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = _start(home)  # inside the first one's transaction
    outputs = [process.communicate(timeout=180) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    released = [json.loads(out)["released_transmission_ids"] for out, _ in outputs]
    assert sorted(released) == [[], [transmission]]
    _released_once(home, transmission, batched)
