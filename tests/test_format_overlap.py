"""When two intake formats recognize the same payload (docs/plugins.md): the first registered
reads it (bhhub's built-ins, then other plugins by entry-point name), the hub logs a warning
naming both formats and the inbox item, and the intake result carries a note that `bhhub
intake` prints. A payload one format recognizes has no note."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from conftest import FIXTURES
from contract_plugins.visits import GOLDENS
from bhhub import hookimpl
from bhhub.intake import inbox as intake
from bhhub.intake import many as intake_many
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.types import IntakeFormat
from test_contract_kit import _installed

HL7_MESSAGE = (FIXTURES / "hl7v2" / "dft-p03-v23-minimal.hl7").read_bytes()
HL7_FULL = (FIXTURES / "hl7v2" / "dft-p03-v251-full.hl7").read_bytes()


class GreedyHl7:
    """A vendor's reader whose recognizer takes any HL7 v2 message."""

    @hookimpl
    def bhhub_register_intake_formats(self):
        def parse(content, context):
            raise AssertionError("the second format to recognize a payload is never asked to parse it")

        return [IntakeFormat("greedy-hl7", "a vendor's HL7 reader", lambda c: c.startswith(b"MSH|"), parse)]


def test_a_payload_a_builtin_and_a_vendor_format_both_recognize_is_read_by_the_builtin_and_noted(hub_home, caplog):
    (hub_home / "mappings" / "ehr").mkdir(parents=True)
    shutil.copy(FIXTURES / "contract" / "hl7v2" / "mappings" / "ehr" / "practices.toml", hub_home / "mappings" / "ehr")
    host = build_plugin_host(extra=[("greedy", GreedyHl7())])
    with Hub.open(hub_home, plugins=host) as hub, caplog.at_level(logging.WARNING, logger="bhhub.intake.inbox"):
        one = intake.receive(hub, HL7_MESSAGE, "dft.hl7")
        [many] = intake_many.receive_many(hub, [("full.hl7", HL7_FULL)])
        plain = intake.receive(hub, (FIXTURES / "fhir" / "lcsw-office-90837.json").read_bytes(), "visit.json")
    for result in (one, many):
        assert result.outcome == "imported" and result.format == "hl7v2"
        [note] = result.notes
        assert note.startswith("also recognized by greedy-hl7; read as hl7v2, the first registered")
    assert plain.outcome == "imported" and plain.notes == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bhhub.intake.inbox"]
    assert warnings == [f"inbox item {item} is recognized by intake formats hl7v2 and greedy-hl7; read as hl7v2"
                        for item in (one.item_id, many.item_id)]
    assert not any("Testperson" in w or "Sampleton" in w for w in warnings)  # ids only, no PHI


def test_a_refused_payload_two_formats_recognize_is_noted_too(sqlite_hub):
    host = build_plugin_host(extra=[("greedy", GreedyHl7())])
    with Hub.open(sqlite_hub.settings.home, plugins=host) as hub:  # no practice profile: refused
        result = intake.receive(hub, HL7_MESSAGE, "dft.hl7")
    assert result.outcome == "quarantined" and result.format == "hl7v2"
    assert result.notes and "greedy-hl7" in result.notes[0]


@pytest.mark.parametrize("first,second", [("any_json", "good_visits"), ("good_visits", "any_json")])
def test_between_two_vendors_the_first_entry_point_by_name_reads_it_and_bhhub_intake_prints_the_note(
        first, second, tmp_path, monkeypatch, capsys):
    formats = {"any_json": "kit-any-json", "good_visits": "kit-good-visits"}
    # Installed in the opposite order to their names: the name decides, not the install.
    monkeypatch.syspath_prepend(str(_installed(tmp_path / "site", "bhhub-kit-two", {
        "b_kit": f"contract_plugins.{second}", "a_kit": f"contract_plugins.{first}"})))
    home, golden = str(tmp_path / "home"), str(GOLDENS / "two-visits.json")
    assert main(["--home", home, "init"]) == 0  # bhhub makes a hub only with `init`
    capsys.readouterr()
    assert main(["--home", home, "intake", golden, "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["format"] == formats[first]
    assert result["notes"] == [f"also recognized by {formats[second]}; read as {formats[first]}, the first registered "
                               "(a recognizer is too broad: tell the plugin's author)"]
    copy = tmp_path / "copy.json"  # other bytes (the same would be a duplicate), printed as text
    copy.write_bytes((GOLDENS / "two-visits.json").read_bytes().replace(b"V1001", b"V3001"))
    assert main(["--home", home, "intake", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"note: also recognized by {formats[second]}; read as {formats[first]}" in out
