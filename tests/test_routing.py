"""Claims, 270s and 276s go to the clearinghouse that serves their payer ([routing] in bhhub.toml).

Two sandbox clearinghouses on 127.0.0.1, two mailboxes, one routing table: each file must reach
the sandbox its payers are routed to, as the sandboxes themselves record what they were sent,
and no file mixes mailboxes."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.errors import ConfigError, UsageError
from bhhub.exchange.cycle import exchange
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.exchange.routing import known_mailbox, mailbox_for_payer, routes
from bhhub.store import schema
from sandbox_support import sandbox_mailbox

pytest.importorskip("pyx12")
from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse  # noqa: E402

SEEDS = (1, 3, 6, 7, 19)  # payers 87726, 77027, 00431, 00431, 87726 (bhhub.demo.synthetic)
MEDICARE = "00431"
PAYER = re.compile(rb"NM1\*PR\*2\*[^*~]*\*\*\*\*\*PI\*([^*~]+)")


@pytest.fixture
def two(tmp_path, database_url, request):
    boxes = {}
    for name in ("alpha", "beta"):
        boxes[name] = SandboxClearinghouse(tmp_path / name, today=date(2026, 11, 30)).start()
        request.addfinalizer(boxes[name].stop)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n' + "".join(
        sandbox_mailbox(s, n) for n, s in boxes.items()))
    return home, boxes


def _route(home, table: str) -> None:
    path = home / "bhhub.toml"
    path.write_text(path.read_text() + table)


def _exchange_all(home) -> None:
    with Hub.open(home) as hub:
        for mailbox in load_mailboxes(hub).values():
            report = exchange(hub, mailbox)
            assert report.ok, report.error


def _sent_files(hub) -> list[tuple[str, str, str, set[str]]]:
    """(mailbox, kind, remote name, payer ids named in the file) of every transmission."""
    with hub.store.session() as session:
        rows = session.execute(select(schema.Transmission.mailbox, schema.Batch.kind, schema.Transmission.remote_name,
                                      schema.Batch.content)
                               .join(schema.Batch, schema.Batch.id == schema.Transmission.batch_id)).all()
    return [(m, k or "837P", name, {p.decode() for p in PAYER.findall(content)}) for m, k, name, content in rows]


def test_claims_270s_and_276s_each_reach_the_clearinghouse_their_payer_is_routed_to(two):
    home, boxes = two
    _route(home, f'\n[routing]\ndefault = "alpha"\n[routing.payers]\n"{MEDICARE}" = "beta"\n')
    with Hub.open(home) as hub:
        for seed in SEEDS:
            assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
        with hub.store.session() as session:
            claims = session.execute(select(schema.Claim.patient_control_number, schema.Claim.patient_id,
                                            schema.Payer.payer_id)
                                     .join(schema.Coverage, schema.Coverage.id == schema.Claim.coverage_id)
                                     .join(schema.Payer, schema.Payer.id == schema.Coverage.payer_id)).all()
    assert {p for *_, p in claims} == {"87726", "77027", MEDICARE}
    _exchange_all(home)  # the 837Ps, one per mailbox
    from bhhub.claimstatus.service import status_checks
    from bhhub.eligibility.service import check_many

    with Hub.open(home) as hub:
        outcomes = check_many(hub, [(patient, None, None) for _, patient, _ in claims], "asked")
        assert all(o.batch_id for o in outcomes), [o.error for o in outcomes]
        status_checks(hub, [pcn for pcn, *_ in claims])
    _exchange_all(home)  # the 270s and 276s, and the answers
    with Hub.open(home) as hub:
        files = _sent_files(hub)
        table = routes(hub)
    assert sorted(kind for _, kind, _, _ in files) == ["270", "270", "276", "276", "837P", "837P"]
    for mailbox, kind, name, payers in files:
        assert payers, f"{kind} {name} names no payer"
        assert {table.mailbox_for(p) for p in payers} == {mailbox}, f"{kind} to {mailbox} carries {payers}"
    # What each clearinghouse says it was sent: exactly its mailbox's files.
    for mailbox, sandbox in boxes.items():
        uploaded = {h.upload for h in sandbox.processed}
        assert uploaded == {name for m, _, name, _ in files if m == mailbox}
    claims_seen = {pcn for h in boxes["beta"].processed for pcn in (*h.accepted_claims, *h.rejected_claims)}
    assert claims_seen == {pcn for pcn, _, payer in claims if payer == MEDICARE}


def test_with_two_mailboxes_and_no_route_a_payers_claims_wait_with_one_alert_until_routed(two):
    home, _ = two
    _route(home, f'\n[routing.payers]\n"{MEDICARE}" = "beta"\n"87726" = "alpha"\n')  # 77027: no route, no default
    with Hub.open(home) as hub:
        for seed in SEEDS:
            intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json")
    _exchange_all(home)
    _exchange_all(home)
    with Hub.open(home) as hub, hub.store.session() as session:
        waiting = session.execute(select(schema.Payer.payer_id, schema.Claim.status)
                                  .join(schema.Coverage, schema.Coverage.id == schema.Claim.coverage_id)
                                  .join(schema.Payer, schema.Payer.id == schema.Coverage.payer_id)).all()
        alerts = session.scalars(select(schema.Alert).where(schema.Alert.kind == "claims_unrouted")).all()
    assert {s for p, s in waiting if p == "77027"} == {"ready"}
    assert "ready" not in {s for p, s in waiting if p != "77027"}
    assert len(alerts) == 1 and alerts[0].cleared_at is None and "77027" in alerts[0].message
    assert alerts[0].occurrences == 4  # each exchange of each mailbox, twice: counted, not raised again
    _route(home, '\n[routing]\ndefault = "alpha"\n')
    _exchange_all(home)
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.scalar(select(schema.Alert.cleared_at).where(schema.Alert.kind == "claims_unrouted"))
        assert "ready" not in set(session.scalars(select(schema.Claim.status)))


def test_one_mailbox_needs_no_table_and_a_table_naming_no_mailbox_is_refused_with_the_nearest(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "bhhub.toml").write_text(
        '[mailboxes.officeally]\nprofile = "generic"\nhost = "127.0.0.1"\nusername = "u"\n'
        'password_env = "UNUSED"\nknown_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]\n')
    with Hub.open(home) as hub:
        assert mailbox_for_payer(hub, "99999") == "officeally"
        # a name a person typed (--mailbox) is their mistake: a usage error (exit code 2)
        with pytest.raises(UsageError, match="no mailbox 'ofiiceally'.*did you mean 'officeally'"):
            mailbox_for_payer(hub, "99999", "ofiiceally")
    _route(home, '\n[routing.payers]\n"87726" = "availty"\n')
    with Hub.open(home) as hub, pytest.raises(ConfigError, match=r'payers\."87726" names the mailbox .availty.'):
        routes(hub)


def test_export_837_with_several_mailboxes_writes_one_mailboxs_claims_in_its_envelope(two, tmp_path, capsys):
    from bhhub.cli.main import main

    home, boxes = two
    _route(home, f'\n[routing]\ndefault = "alpha"\n[routing.payers]\n"{MEDICARE}" = "beta"\n')
    with Hub.open(home) as hub:
        for seed in SEEDS:
            intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json")
    out = tmp_path / "beta.x12"
    assert main(["--home", str(home), "export-837", "--out", str(out)]) == 2  # which mailbox? refused
    assert "--mailbox" in capsys.readouterr().err and not out.exists()
    assert main(["--home", str(home), "export-837", "--out", str(out), "--mailbox", "beat"]) == 2  # a name typed wrong: usage
    assert "did you mean 'beta'" in capsys.readouterr().err and not out.exists()
    assert main(["--home", str(home), "export-837", "--out", str(out), "--mailbox", "beta", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    content = out.read_bytes()
    assert {p.decode() for p in PAYER.findall(content)} == {MEDICARE}
    with Hub.open(home) as hub, hub.store.session() as session:
        statuses = dict(session.execute(select(schema.Claim.patient_control_number, schema.Claim.status)).all())
        envelope = load_mailboxes(hub)["beta"].envelope
    assert content.split(b"*")[8].strip() == envelope.receiver_id.encode()  # ISA08: beta's clearinghouse
    assert {pcn for pcn, s in statuses.items() if s == "batched"} == set(written["patient_control_numbers"])
    assert len(written["patient_control_numbers"]) == 2  # seeds 6 and 7; the others wait for alpha
    assert written["remaining_ready"] == 0  # none left for beta (alpha's are not beta's to send)


def test_a_payer_id_written_with_spaces_is_refused_not_sent_to_the_default(tmp_path):
    from bhhub.runtime.config import load_settings

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "bhhub.toml").write_text('[routing]\ndefault = "alpha"\n[routing.payers]\n" 00431" = "beta"\n')
    with pytest.raises(ConfigError, match="spaces around it"):
        load_settings(home)


def test_a_transmission_left_for_a_mailbox_no_longer_configured_raises_one_alert(two):
    from bhhub.exchange.cycle import ORPHANED, check_orphaned_transmissions
    from bhhub.exchange.outbound import _new_transmission

    home, _ = two
    _route(home, f'\n[routing]\ndefault = "alpha"\n[routing.payers]\n"{MEDICARE}" = "beta"\n')
    with Hub.open(home) as hub:
        for seed in SEEDS:
            intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json")
        beta = load_mailboxes(hub)["beta"]
        transmission = _new_transmission(hub, beta, routes(hub).payers_of("beta"))  # batched, not yet sent
        assert check_orphaned_transmissions(hub, {"alpha", "beta"}) == 0
        assert check_orphaned_transmissions(hub, {"alpha"}) == 1  # beta taken out of bhhub.toml
        assert check_orphaned_transmissions(hub, {"alpha"}) == 1
        with hub.store.session() as session:
            [alert] = session.scalars(select(schema.Alert).where(schema.Alert.kind == ORPHANED)).all()
        assert alert.cleared_at is None and alert.occurrences == 2 and "beta" in alert.message
        assert f"first: {transmission}" in alert.message
        assert check_orphaned_transmissions(hub, {"alpha", "beta"}) == 0  # configured again
        with hub.store.session() as session:
            assert session.get(schema.Alert, alert.id).cleared_at is not None


def _two_offline(tmp_path, database_url):
    """Two mailboxes nobody connects to: a name is checked before any connection."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    box = ('profile = "generic"\nhost = "127.0.0.1"\nusername = "u"\npassword_env = "UNUSED"\n'
           'known_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]\n')
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n[routing]\ndefault = "alpha"\n'
                                     f'[mailboxes.alpha]\n{box}[mailboxes.beta]\n{box}')
    return home


def test_known_mailbox_names_the_nearest_and_every_configured_one(tmp_path, database_url):
    home = _two_offline(tmp_path, database_url)
    with Hub.open(home) as hub:
        assert known_mailbox(hub, "beta") == "beta"
        with pytest.raises(UsageError) as refused:
            known_mailbox(hub, "beat")
        assert "no mailbox 'beat'" in str(refused.value) and "did you mean 'beta'?" in str(refused.value)
        assert "configured: alpha, beta" in str(refused.value)
        with pytest.raises(UsageError, match="configured: alpha, beta"):
            known_mailbox(hub, "zzz")


@pytest.mark.parametrize("argv", [
    ["export-837", "--out", "{tmp}/out.x12", "--mailbox", "beat"],
    ["eligibility", "check", "--patient", "{patient}", "--mailbox", "beat"],
    ["eligibility", "sweep", "--mailbox", "beat"],
    ["status", "check", "{claim}", "--mailbox", "beat"],
    ["exchange", "--mailbox", "beat"],
    ["mailbox", "test", "beat"],
])
def test_every_command_refuses_a_mailbox_name_nobody_configured_before_changing_anything(
        tmp_path, database_url, capsys, argv):
    from sqlalchemy import func

    from bhhub.cli.main import main

    home = _two_offline(tmp_path, database_url)
    with Hub.open(home) as hub:
        assert intake.receive(hub, json.dumps(encounter_bundle(1)).encode(), "e1.json").outcome == "imported"
        with hub.store.session() as session:
            patient, claim = session.execute(select(schema.Claim.patient_id, schema.Claim.patient_control_number)).one()

    def counts():
        with Hub.open(home) as hub, hub.store.session() as session:
            return [session.scalar(select(func.count()).select_from(t)) for t in
                    (schema.Batch, schema.EligibilityCheck, schema.Transmission)], \
                sorted(session.scalars(select(schema.Claim.status)))

    before = counts()
    filled = [a.format(tmp=tmp_path, patient=patient, claim=claim) for a in argv]
    assert main(["--home", str(home), *filled]) == 2  # the person's mistake, as every usage error
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no mailbox 'beat'" in err and "did you mean 'beta'?" in err, err
    assert "configured: alpha, beta" in err
    assert counts() == before and not (tmp_path / "out.x12").exists()
