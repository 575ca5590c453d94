"""The denial worklist as functions (bhhub.remittance.worklist): the same data `bhhub denials
--json` prints, and actions that record who did them and are done once when two people click."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from bhhub.cli.main import main
from bhhub.cli.output import _plain
from bhhub.errors import InputError, UsageError
from bhhub.intake import inbox as intake
from bhhub.remittance import followups
from bhhub.remittance.worklist import act_on_denial, denial_worklist, resolve_denial
from bhhub.runtime.app import Hub
from bhhub.store import schema
from test_remittance import D, Remit, run_json, sent  # noqa: F401 (sent is a fixture)


def as_json(data):
    return json.loads(json.dumps(data, default=_plain))


@pytest.fixture
def denied(hub, sent) -> dict:
    """b partly denied (CO-151), c denied (CO-197): pcn -> its open denial's id."""
    a, b, c, *_ = sent
    remit = Remit("TRACE001")
    remit.claim(a, sent[a], lines=[[("CO", "45", D("10"))]] * len(sent[a]["lines"]))
    remit.claim(b, sent[b], lines=[[("CO", "45", D("30")), ("CO", "151", D("50"))]])
    remit.claim(c, sent[c], "4", lines=[[("CO", "197", sent[c]["lines"][0][1])]])
    assert intake.receive(hub, remit.bytes(1), "remit.835").outcome == "imported"
    with hub.store.session() as session:
        rows = session.execute(select(schema.Claim.patient_control_number, schema.Denial.id)
                               .join(schema.Claim, schema.Claim.id == schema.Denial.claim_id)).all()
    return dict(rows)


def test_the_worklist_function_is_what_denials_json_prints(hub, hub_home, denied, capsys):
    with hub.store.session() as session:
        data = denial_worklist(hub, session)
        everything = denial_worklist(hub, session, include_resolved=True)
        session.commit()
    assert len(data) == 2 and as_json(data) == run_json(capsys, hub_home, "denials")
    assert as_json(everything) == run_json(capsys, hub_home, "denials", "--all")


def test_resolving_records_the_actor_and_a_second_resolve_is_refused(hub, denied):
    hub.actor = "web:alice"
    resolved = resolve_denial(hub, next(iter(denied.values())), "appealed with records")
    assert resolved["status"] == "resolved" and resolved["resolution"] == "appealed with records"
    with pytest.raises(UsageError, match="not open"):
        resolve_denial(hub, resolved["id"], "appealed again")
    with hub.store.session() as session:
        actors = session.execute(select(schema.AuditEvent.actor, schema.AuditEvent.detail)
                                 .where(schema.AuditEvent.action == "resolve_denial")).all()
        assert actors == [("web:alice", "appealed with records")]
        assert len(denial_worklist(hub, session)) == 1


def test_appeal_done_and_write_off_are_resolutions_with_the_note(hub, denied):
    b_denial, c_denial = sorted(denied.values())
    assert act_on_denial(hub, b_denial, "appeal_done", "fax 12")["resolution"] == "appeal sent: fax 12"
    done = act_on_denial(hub, c_denial, "write_off")
    assert done["resolution"] == "written off" and done["followup"] is None and done["action"] == "write_off"
    with pytest.raises(UsageError, match="no denial action"):
        act_on_denial(hub, c_denial, "shred")


def test_a_corrected_claim_that_cannot_be_built_leaves_the_denial_open(hub, denied):
    denial_id = min(denied.values())
    with pytest.raises(InputError):  # no pending correction, and not asked to resend as billed
        act_on_denial(hub, denial_id, "corrected_claim")
    with hub.store.session() as session:
        assert session.get(schema.Denial, denial_id).status == "open"
    made = act_on_denial(hub, denial_id, "corrected_claim", as_billed=True)
    assert made["followup"]["frequency_code"] == "7" and made["resolution"].startswith("replace claim built")


def test_denials_act_on_the_command_line_prints_what_the_function_returns(hub, hub_home, denied, capsys):
    c = [pcn for pcn in denied][-1]
    out = run_json(capsys, hub_home, "denials", "act", str(denied[c]), "void")
    assert out["followup"]["frequency_code"] == "8" and out["status"] == "resolved"
    capsys.readouterr()
    assert main(["--home", str(hub_home), "denials", "act", str(denied[c]), "void"]) == 2  # worked already
    assert "not open" in capsys.readouterr().err


def test_two_people_voiding_the_same_denial_at_once_void_the_claim_once(hub, hub_home, denied, monkeypatch):
    pcn = [pcn for pcn in denied][-1]
    denial_id = denied[pcn]
    slow_void, entered = followups.create_void, threading.Event()

    def create_void(*args, **kwargs):  # the first click is still building when the second arrives
        entered.set()
        threading.Event().wait(0.5)
        return slow_void(*args, **kwargs)

    monkeypatch.setattr(followups, "create_void", create_void)
    outcomes: list = []

    def click(who: str) -> None:
        with Hub.open(hub_home) as own:
            own.actor = who
            try:
                outcomes.append(act_on_denial(own, denial_id, "void"))
            except UsageError as exc:
                outcomes.append(exc)

    first = threading.Thread(target=click, args=("web:alice",))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=click, args=("web:bob",))
    second.start()
    first.join(30)
    second.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["UsageError", "dict"]
    assert "not open" in str(next(o for o in outcomes if isinstance(o, UsageError)))
    with hub.store.session() as session:
        voids = session.scalar(select(func.count()).select_from(schema.Claim).where(
            schema.Claim.patient_control_number == pcn, schema.Claim.frequency_code == "8"))
        audited = session.scalars(select(schema.AuditEvent.actor).where(
            schema.AuditEvent.action == "followup_void")).all()
    assert voids == 1 and audited == ["web:alice"]
