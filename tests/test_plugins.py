"""The plugin core: discovery through entry points, broken plugins, documented hooks."""

from __future__ import annotations

import inspect
import json
import sys
import types
from importlib import metadata

import pytest

from bhhub import hookimpl, hookspecs
from bhhub.cli.main import main
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.types import ClaimCheck, IntakeFormat

HOOKS = [
    (name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("bhhub_")
]


def test_every_hook_family_is_specified():
    names = {name for name, _ in HOOKS}
    families = {
        "intake": "bhhub_register_intake_formats",
        "eligibility": "bhhub_check_eligibility",
        "coding and scrubbing": "bhhub_register_claim_checks",
        "submission": "bhhub_submit_batch",
        "acknowledgment": "bhhub_acknowledgment_received",
        "remittance": "bhhub_remittance_posted",
        "jobs": "bhhub_register_jobs",
        "CLI": "bhhub_register_commands",
    }
    assert set(families.values()) <= names


@pytest.mark.parametrize("name,spec", HOOKS, ids=[n for n, _ in HOOKS])
def test_every_hook_is_documented_with_when_arguments_and_return(name, spec):
    doc = inspect.getdoc(spec) or ""
    assert len(doc.split()) >= 15, f"{name} needs a docstring saying when, arguments, return"
    assert "return" in doc.lower() or "ignored" in doc.lower(), f"{name}: say what the return value means"
    for arg in inspect.signature(spec).parameters:
        assert f"``{arg}``" in doc, f"{name}: document the argument {arg!r}"


def test_builtin_plugins_load_through_entry_points():
    host = build_plugin_host()
    infos = {i.name: i for i in host.plugin_infos()}
    assert infos["fhir_r4"].loaded and infos["fhir_r4"].distribution == "bhhub"
    assert "bhhub_register_intake_formats" in infos["fhir_r4"].hooks
    assert "bhhub_register_claim_checks" in infos["core_checks"].hooks
    assert [f.name for f in host.hooks.intake_formats()] == ["fhir-r4-bundle", "hl7v2"]
    assert infos["hl7v2"].loaded and infos["mllp"].loaded


def _ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group="bhhub")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load():
    host = build_plugin_host([_ep("broken", "bhhub_no_such_module_xyz"), _ep("fhir_r4", "bhhub.plugins.ehr.fhir_r4")])
    infos = {i.name: i for i in host.plugin_infos()}
    assert not infos["broken"].loaded
    assert "ModuleNotFoundError" in infos["broken"].error
    assert infos["fhir_r4"].loaded
    assert len(host.hooks.intake_formats()) == 1


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def test_a_failing_hook_implementation_is_reported_and_others_still_register(monkeypatch):
    @hookimpl
    def bhhub_register_claim_checks():
        raise RuntimeError("boom")

    _module("bhhub_test_crashing", bhhub_register_claim_checks=bhhub_register_claim_checks)
    monkeypatch.setitem(sys.modules, "bhhub_test_crashing", sys.modules["bhhub_test_crashing"])
    host = build_plugin_host([_ep("crashing", "bhhub_test_crashing"), _ep("core_checks", "bhhub.scrub.core")])
    checks = host.hooks.claim_checks()
    assert {c.name for c in checks} >= {"core.providers", "core.diagnoses"}
    assert any("crashing" in p and "RuntimeError" in p for p in host.problems)


def test_a_duplicate_registration_name_is_refused():
    fmt = IntakeFormat("fhir-r4-bundle", "impostor", lambda b: True, lambda b, c: [])

    class Impostor:
        @hookimpl
        def bhhub_register_intake_formats(self):
            return [fmt]

    host = build_plugin_host([_ep("fhir_r4", "bhhub.plugins.ehr.fhir_r4")], extra=[("impostor", Impostor())])
    formats = host.hooks.intake_formats()
    assert len(formats) == 1 and formats[0] is not fmt
    assert any("impostor" in p and "already registered" in p for p in host.problems)


def test_a_record_of_the_wrong_type_is_refused():
    class Sloppy:
        @hookimpl
        def bhhub_register_claim_checks(self):
            return [{"name": "not-a-ClaimCheck"}]

    host = build_plugin_host([], extra=[("sloppy", Sloppy())])
    assert host.hooks.claim_checks() == []
    assert any("expected ClaimCheck" in p for p in host.problems)
    assert ClaimCheck  # the type named in the message


def test_bhhub_plugins_lists_name_distribution_version_and_hooks(capsys):
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    fhir = next(p for p in listed["plugins"] if p["name"] == "fhir_r4")
    assert fhir["distribution"] == "bhhub"
    assert fhir["version"] == metadata.version("bhhub")
    assert fhir["hooks"] == ["bhhub_register_intake_formats"]


def test_a_coding_plugin_can_take_over_coding(tmp_path):
    from dataclasses import replace
    from decimal import Decimal

    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.demo.synthetic import encounter_bundle
    from bhhub.model import ServiceLine

    class FamilySessions:
        @hookimpl
        def bhhub_code_encounter(self, encounter):
            line = ServiceLine("90847", encounter.service_date, charge=Decimal("175.00"), minutes=50)
            return replace(encounter, services=(line,), place_of_service="11", as_billed=True)

    host = build_plugin_host(extra=[("family", FamilySessions())])
    with Hub.open(tmp_path, plugins=host, create=True) as hub:
        result = intake.receive(hub, json.dumps(encounter_bundle(11)).encode(), "visit.json")
        [claim] = result.claims
        with hub.store.session() as session:
            from bhhub.store import schema

            lines = session.query(schema.ServiceLine).all()
    assert result.outcome == "imported" and claim.status == "ready"
    assert [(l.procedure_code, l.charge) for l in lines] == [("90847", Decimal("175.00"))]


def test_a_vendors_json_format_gets_its_files_and_fhir_still_refuses_other_json_precisely(tmp_path):
    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.errors import InputError

    seen = []

    def parse(content, context):
        seen.append(json.loads(content)["export"])
        raise InputError("the vendor reader was reached")

    class VendorJson:
        @hookimpl
        def bhhub_register_intake_formats(self):
            return [IntakeFormat("vendor-json", "a vendor's JSON export", lambda c: b'"export"' in c[:200], parse)]

    host = build_plugin_host(extra=[("vendor", VendorJson())])
    with Hub.open(tmp_path, plugins=host, create=True) as hub:
        vendor = intake.receive(hub, b'{"export": "visits", "rows": []}', "visits.json")
        other = intake.receive(hub, b'{"patients": []}', "other.json")
        truncated = intake.receive(hub, b'{"resourceType": "Bundle", "type": "collection", "entry": [', "cut.json")
    assert seen == ["visits"] and vendor.format == "vendor-json"  # not shadowed by the FHIR reader
    assert other.format == "fhir-r4-bundle" and "not a FHIR" in other.reason  # nobody else took it
    assert truncated.format == "fhir-r4-bundle" and "truncated" in truncated.reason


def test_a_plugin_command_joins_the_cli_and_cannot_take_a_builtin_name():
    from bhhub.cli.main import BUILTIN, build_parser
    from bhhub.types import Command

    class Reports:
        @hookimpl
        def bhhub_register_commands(self):
            return [Command("aging", "A/R aging", lambda p: p.add_argument("--days", type=int), lambda a, h: 0),
                    Command("claims", "impostor", lambda p: None, lambda a, h: 0)]

    host = build_plugin_host([], extra=[("reports", Reports())])
    parser = build_parser(host.hooks.commands(taken=BUILTIN))
    assert parser.parse_args(["aging", "--days", "90"]).days == 90
    assert any("'claims' is already registered" in p for p in host.problems)


def test_no_plugin_imports_another_plugin_and_the_core_imports_none():
    """Plugins share code through ``connectors/`` and ``hub``, never by importing one another, and
    the core names no plugin (the demo finds the sandbox clearinghouse through the plugin manager)."""
    import ast
    from pathlib import Path

    project = Path(__file__).resolve().parent.parent

    def imported(path: Path) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        return names

    def own_package(path: Path) -> str:
        parts = path.relative_to(project).parts
        # plugins/<family>/<plugin>/...; the payer-portal plugins share their family package
        return "bhhub." + ".".join(parts[:2] if parts[1] == "payer_portals" else parts[:3])

    crossings = []
    for path in sorted((project / "plugins").rglob("*.py")):
        if len(path.relative_to(project).parts) < 4 and path.parts[-2] != "payer_portals":
            continue  # the family packages' own __init__ files
        mine = own_package(path)
        crossings += [f"{path.relative_to(project)} imports {name}" for name in imported(path)
                      if name.startswith("bhhub.plugins.") and not (name + ".").startswith(mine + ".")]
    for folder in ("hub", "connectors"):
        for path in sorted((project / folder).rglob("*.py")):
            crossings += [f"{path.relative_to(project)} imports {name}" for name in imported(path)
                          if name == "bhhub.plugins" or name.startswith("bhhub.plugins.")]
    assert crossings == []
