"""Hubs for the workspace's views (issue 16): claims taken in from synthetic bundles, and one that
went through bhhub's sandbox clearinghouse; and the JSON a function's result prints as."""

from __future__ import annotations

import json
from datetime import date

from bhhub.demo.synthetic import encounter_bundle
from bhhub.intake import inbox as intake

SEEDS = (3, 5, 8, 11, 19, 23, 29)


def take_in(hub, seeds=SEEDS) -> None:
    for seed in seeds:
        result = intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json")
        assert result.outcome == "imported", result.reason


def take_in_a_member_id_typo(hub, seed: int = 41) -> None:
    """A visit whose member id has a dash in it, as the demo's: the sandbox's 277CA rejects it."""
    bundle = encounter_bundle(seed)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Coverage":
            member = entry["resource"]["subscriberId"]
            entry["resource"]["subscriberId"] = member[:4] + "-" + member[4:]
    assert intake.receive(hub, json.dumps(bundle).encode(), f"typo{seed}.json").outcome == "imported"


def as_printed(data):
    """``data`` as ``--json`` prints it, read back: money as numbers, dates and times as text."""
    from bhhub.cli.output import _plain

    return json.loads(json.dumps(data, default=_plain))


def start_sandbox(tmp_path, request):
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
    request.addfinalizer(sandbox.stop)
    return sandbox


def with_sandbox_mailbox(hub_home, sandbox) -> None:
    """The sandbox's mailbox added to ``hub_home``'s bhhub.toml (which names the store under test)."""
    from sandbox_support import sandbox_mailbox

    toml = hub_home / "bhhub.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + sandbox_mailbox(sandbox), encoding="utf-8")
