"""A vendor's story: a payer sends its own acknowledgment, an X12 interchange bhhub does not
know (a made-up "Acme claim receipt": ST01 864 under the payer's guide 005010ACME1). A plugin
registers it (``bhhub_register_x12_transactions``), and the hub applies such files like its own
999s: from ``bhhub intake FILE`` and from a clearinghouse mailbox pickup, once, with a malformed
file quarantined for its reason while the files beside it go through."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

import bhhub.cli.main as cli_main
from bhhub import hookimpl
from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.errors import InputError
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.store import schema
from bhhub.types import Applied, X12Transaction
from bhhub.x12.recognize import recognize
from bhhub.x12.registry import TransactionRegistry

KIND = "ACME-RECEIPT"
ALERT = "acme_receipt"


def receipt_file(isa13: int, receipts: list[tuple[str, str]]) -> bytes:
    """An Acme receipt interchange: one RCT segment per claim (its CLM01 and A or R)."""
    number = f"{isa13:09d}"
    isa = (f"ISA*00*{'':10}*00*{'':10}*ZZ*{'ACMEPAYER':15}*ZZ*{'BHHUBPRACTICE':15}*261130*0900*^*00501*"
           f"{number}*0*T*:~")
    assert len(isa) == 106
    body = [f"ST*864*0001~", f"BGN*00*RCPT{isa13}*20261130~"]
    body += [f"RCT*{pcn}*{status}~" for pcn, status in receipts]
    body.append(f"SE*{len(body) + 1}*0001~")
    return (isa + f"GS*TX*ACMEPAYER*BHHUBPRACTICE*20261130*0900*{isa13}*X*005010ACME1~" + "".join(body)
            + f"GE*1*{isa13}~IEA*1*{number}~").encode()


def read_receipts(content: bytes) -> list[tuple[str, str]]:
    """(claim's control number, A accepted or R rejected) per RCT segment."""
    receipts = []
    for number, segment in enumerate(content.decode().split("~"), start=1):
        fields = segment.strip().split("*")
        if fields[0] != "RCT":
            continue
        if len(fields) != 3 or not fields[1] or fields[2] not in ("A", "R"):
            raise InputError(f"RCT (segment {number}) needs a claim's control number and A or R")
        receipts.append((fields[1], fields[2]))
    if not receipts:
        raise InputError("an Acme receipt with no RCT segment")
    return receipts


def apply_receipts(context, receipts) -> Applied:
    """One alert per claim the payer received; a receipt already applied changes nothing."""
    new = 0
    for pcn, status in receipts:
        key = f"{ALERT}:claim:{pcn}"
        if context.session.scalar(select(schema.Alert.id).where(schema.Alert.key == key)) is not None:
            continue
        context.session.add(schema.Alert(key=key, kind=ALERT, message=f"claim {pcn}: Acme says {status}"))
        new += 1
    return Applied(KIND, f"Acme receipt: {new} new, {len(receipts) - new} already known")


class AcmeReceipts:
    @hookimpl
    def bhhub_register_x12_transactions(self):
        return [X12Transaction(KIND, "Acme claim receipt", "864", read_receipts, apply_receipts,
                               guides=("005010ACME",))]


def host(*extra):
    return build_plugin_host(extra=[("acme_receipts", AcmeReceipts()), *extra])


def alerts(home: Path) -> dict[str, str]:
    with Hub.open(home) as opened, opened.store.session() as session:
        return {a.key: a.message for a in session.scalars(select(schema.Alert).where(schema.Alert.kind == ALERT))}


def inbox(home: Path) -> list[tuple[str, str, str | None]]:
    with Hub.open(home) as opened, opened.store.session() as session:
        rows = session.scalars(select(schema.InboxItem).order_by(schema.InboxItem.id))
        return [(row.state, row.format, row.reason) for row in rows]


@pytest.fixture
def with_plugin(monkeypatch):
    monkeypatch.setattr(cli_main, "build_plugin_host", host)


def bhhub_json(home: Path, capsys, *argv: str) -> list[dict]:
    capsys.readouterr()
    cli_main.main(["--home", str(home), *argv, "--json"])
    return json.loads(capsys.readouterr().out)


# --- recognition ----------------------------------------------------------------------------


def test_a_payload_under_the_plugins_transaction_set_and_guide_is_recognized_as_its_kind():
    content = receipt_file(201, [("PCN1", "A")])
    registry = TransactionRegistry(host().hooks.x12_transactions())
    assert recognize(content, registry).kind == KIND
    assert recognize(content, registry).transaction_set == "864"
    assert recognize(content).kind == "X12"  # bhhub alone does not know it


def test_bhhubs_own_kinds_are_registered_through_the_same_hook():
    registered = build_plugin_host().hooks.x12_transactions()
    assert {t.name for t in registered} >= {"TA1", "999", "277CA", "835", "271", "277", "999-270", "999-276"}


# --- bhhub intake FILE ----------------------------------------------------------------------


def test_bhhub_intake_applies_a_plugins_acknowledgment_as_its_own_kind(hub_home, tmp_path, capsys, with_plugin):
    (tmp_path / "receipt.x12").write_bytes(receipt_file(201, [("PCN1", "A"), ("PCN2", "R")]))
    [result] = bhhub_json(hub_home, capsys, "intake", str(tmp_path / "receipt.x12"))
    assert result["outcome"] == "imported", result
    assert result["format"] == "x12-acme-receipt"
    assert "2 new" in result["summary"]
    assert alerts(hub_home) == {f"{ALERT}:claim:PCN1": "claim PCN1: Acme says A",
                                f"{ALERT}:claim:PCN2": "claim PCN2: Acme says R"}


def test_the_same_receipts_again_in_a_resent_file_change_nothing(hub_home, tmp_path, capsys, with_plugin):
    (tmp_path / "first.x12").write_bytes(receipt_file(201, [("PCN1", "A")]))
    (tmp_path / "resent.x12").write_bytes(receipt_file(202, [("PCN1", "A")]))
    bhhub_json(hub_home, capsys, "intake", str(tmp_path / "first.x12"))
    [again] = bhhub_json(hub_home, capsys, "intake", str(tmp_path / "resent.x12"))
    assert again["outcome"] == "imported" and "0 new, 1 already known" in again["summary"]
    [same_bytes] = bhhub_json(hub_home, capsys, "intake", str(tmp_path / "first.x12"))
    assert same_bytes["outcome"] == "duplicate"
    assert list(alerts(hub_home)) == [f"{ALERT}:claim:PCN1"]


def test_a_malformed_receipt_is_quarantined_with_its_reason_and_its_siblings_are_applied(
        hub_home, tmp_path, capsys, with_plugin):
    (tmp_path / "a.x12").write_bytes(receipt_file(201, [("PCN1", "A")]))
    (tmp_path / "b.x12").write_bytes(receipt_file(202, [("PCN2", "maybe")]))
    (tmp_path / "c.x12").write_bytes(receipt_file(203, [("PCN3", "R")]))
    results = bhhub_json(hub_home, capsys, "intake", *(str(tmp_path / f"{n}.x12") for n in "abc"))
    assert [r["outcome"] for r in results] == ["imported", "quarantined", "imported"]
    assert "RCT (segment 5) needs a claim's control number and A or R" in results[1]["reason"]
    assert "maybe" not in results[1]["reason"] and "PCN2" not in results[1]["reason"]
    assert sorted(alerts(hub_home)) == [f"{ALERT}:claim:PCN1", f"{ALERT}:claim:PCN3"]


def test_without_the_plugin_the_same_file_is_quarantined_as_a_kind_bhhub_does_not_read(hub_home, tmp_path):
    with Hub.open(hub_home) as opened:
        result = intake.receive(opened, receipt_file(201, [("PCN1", "A")]), "receipt.x12")
    assert result.outcome == "quarantined"
    assert "the hub does not read this kind yet" in result.reason


def test_a_crashing_apply_quarantines_its_file_only(hub_home):
    class Buggy:
        @hookimpl
        def bhhub_register_x12_transactions(self):
            return [X12Transaction("BUGGY", "crashes", "864", read_receipts,
                                   lambda context, receipts: 1 / 0, guides=("005010BUGGY",))]

    content = receipt_file(201, [("PCN1", "A")]).replace(b"005010ACME1", b"005010BUGGY")
    with Hub.open(hub_home, plugins=host(("buggy", Buggy()))) as opened:
        crashed = intake.receive(opened, content, "buggy.x12")
        fine = intake.receive(opened, receipt_file(202, [("PCN1", "A")]), "fine.x12")
    assert crashed.outcome == "quarantined" and "the BUGGY transaction failed (ZeroDivisionError)" in crashed.reason
    assert fine.outcome == "imported"


# --- a clearinghouse mailbox pickup (the sandbox) ---------------------------------------------


def test_a_mailbox_pickup_applies_the_plugins_files_and_quarantines_the_malformed_one(tmp_path):
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    from bhhub.exchange.inbound import pick_up
    from bhhub.exchange.mailboxes import load_mailboxes
    from sandbox_support import sandbox_mailbox

    sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
    try:
        home = tmp_path / "home"
        (home / "mappings" / "clearinghouses").mkdir(parents=True)
        (home / "bhhub.toml").write_text(sandbox_mailbox(sandbox))
        # The practice adds the payer's file names to what it picks up from the sandbox.
        (home / "mappings" / "clearinghouses" / "sandbox.toml").write_text(
            '[pickup]\npatterns = ["*.ta1", "*.999", "*.271", "*.277", "*.835", "*.rct"]\n')
        outbox = sandbox.root / "from-clearinghouse"
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / "000000201.rct").write_bytes(receipt_file(201, [("PCN1", "A")]))
        (outbox / "000000202.rct").write_bytes(receipt_file(202, [("PCN2", "maybe")]))
        (outbox / "000000203.rct").write_bytes(receipt_file(203, [("PCN3", "R"), ("PCN1", "A")]))
        for _ in range(2):  # the second pickup finds nothing new: nothing is applied twice
            with Hub.open(home, plugins=host(), create=True) as opened:
                mailbox = load_mailboxes(opened)["sandbox"]
                with mailbox.transport.connect(mailbox.connection) as connection:
                    picked = {p.name: p for p in pick_up(opened, mailbox, connection)}
            if _ == 0:
                first = picked
    finally:
        sandbox.stop()
    assert {name: p.outcome for name, p in first.items()} == {
        "000000201.rct": "imported", "000000202.rct": "quarantined", "000000203.rct": "imported"}
    assert "RCT (segment 5)" in first["000000202.rct"].reason
    assert "1 new, 1 already known" in first["000000203.rct"].reason
    assert sorted(alerts(home)) == [f"{ALERT}:claim:PCN1", f"{ALERT}:claim:PCN3"]
    assert [row[1] for row in inbox(home)] == ["x12-acme-receipt"] * 3


# --- registration problems are reported, not crashes ------------------------------------------


def test_two_plugins_claiming_the_same_transaction_set_and_guide_is_an_error_naming_both():
    class Rival:
        @hookimpl
        def bhhub_register_x12_transactions(self):
            return [X12Transaction("RIVAL-RECEIPT", "the same files", "864", read_receipts, apply_receipts,
                                   guides=("005010ACME",))]

    plugins = host(("rival", Rival()))
    assert [t.name for t in plugins.hooks.x12_transactions() if t.transaction_set == "864"] == [KIND]
    [problem] = [p for p in plugins.problems if "RIVAL-RECEIPT" in p]
    assert "'rival'" in problem and "'acme_receipts'" in problem and "864" in problem and "005010ACME" in problem


def test_bhhub_plugins_reports_the_clash_naming_both_plugins(monkeypatch, capsys):
    class Rival:
        @hookimpl
        def bhhub_register_x12_transactions(self):
            return [X12Transaction("RIVAL-RECEIPT", "the same files", "864", read_receipts, apply_receipts,
                                   guides=("005010ACME",))]

    monkeypatch.setattr(cli_main, "build_plugin_host", lambda: host(("rival", Rival())))
    capsys.readouterr()
    cli_main.main(["plugins", "--json"])
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any("'rival'" in p and "'acme_receipts'" in p and "RIVAL-RECEIPT" in p for p in problems), problems


def test_a_plugin_cannot_take_over_a_builtin_kind_and_a_failing_registration_is_reported():
    class Greedy:
        @hookimpl
        def bhhub_register_x12_transactions(self):
            return [X12Transaction("MY-835", "payments", "835", read_receipts, apply_receipts)]

    class Broken:
        @hookimpl
        def bhhub_register_x12_transactions(self):
            raise RuntimeError("no")

    plugins = build_plugin_host(extra=[("greedy", Greedy()), ("broken", Broken())])
    names = [t.name for t in plugins.hooks.x12_transactions()]
    assert "835" in names and "MY-835" not in names
    assert any("'greedy'" in p and "'remit_transactions'" in p for p in plugins.problems)
    assert any("'broken'" in p and "bhhub_register_x12_transactions" in p for p in plugins.problems)
