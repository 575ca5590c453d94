"""The contract every EHR (intake) plugin must keep, as checks its own tests run.

In a plugin's tests, either subclass ``EhrPluginContract``::

    class TestContract(EhrPluginContract):
        plugin, goldens, entry_point = my_plugin, Path(__file__).parent / "goldens", "my_plugin"

or call ``check_plugin(my_plugin, goldens_dir)``, which runs every check below and reports every
failure at once. Golden files are the plugin's example inputs, one payload per file, in
``goldens_dir`` (hidden files skipped); files in ``goldens_dir/refused/`` are inputs the plugin
must refuse with an ``InputError``. Goldens that need a practice's tables (a practice profile, a
field-map override) name that ``mappings/`` folder with ``mappings_dir``.

The checks, in order:

1. ``check_registers_formats``: the plugin registers, implements only hooks bhhub specifies,
   and registers at least one ``IntakeFormat`` with a name and a description that no built-in
   format already uses.
2. ``check_recognizes_any_bytes``: ``recognizes`` answers a ``bool`` and never raises, on empty,
   binary, non-UTF-8 and other formats' payloads, and on damaged goldens; each golden is
   recognized by one of the plugin's formats.
3. ``check_recognizes_only_its_format``: ``recognizes`` answers False for the built-in formats'
   sample payloads, X12, HL7 v2, random JSON and other formats (``bhhub.testing.samples``): the
   hub gives a payload to the first format that recognizes it (docs/plugins.md).
4. ``check_goldens_parse``: each golden parses into ``bhhub.model.Encounter`` records with every
   field the 837P needs (``bhhub.testing.records``), unique keys, the same records when parsed
   again; nothing the plugin logs while reading contains the patients' names, member ids or
   dates of birth (no PHI in logs).
5. ``check_goldens_match_expected``: each golden with a sibling ``NAME.expected.json``
   (``bhhub.testing.expected``) parses into exactly those fields (patient, coverages, providers,
   diagnoses in order, lines with codes, modifiers, units, charges, dates); at least one golden
   must have one.
6. ``check_goldens_become_claims``: in a temporary hub (SQLite, bhhub's built-in plugins plus
   this one), ``bhhub.intake.inbox.receive`` imports each golden with the plugin's format (and no other
   format recognizes it too); every claim comes out ``ready`` (its error findings are listed if
   not); one 837P batch is exported with every claim and passes pyx12's implementation-guide
   check when pyx12 is installed. Dates are judged as of the day after the goldens' last date of
   service (``today=`` to choose), so timely filing never makes a golden rot.
7. ``check_malformed_input``: ``parse`` on odd payloads and damaged goldens (cut, garbled, a
   column or a JSON key removed, a value of the wrong type) returns encounters or raises a
   ``bhhub.errors.HubError``, never another exception (``KeyError``, ``TypeError``...: the hub
   would quarantine the file as a plugin crash); goldens in ``refused/`` raise ``InputError``.
8. ``check_refuses_rather_than_skips``: there is at least one golden in ``refused/`` (without
   one the kit cannot tell refusing from swallowing), and a golden with one field damaged is
   refused or keeps every visit: a visit silently left out is a claim never billed.
9. ``check_no_network_at_import`` (``bhhub.testing.common``): importing the plugin's module in a
   fresh interpreter reaches no network. Checks 2 to 8 run with the network refused as well.
10. ``check_mapping_file`` (``bhhub.testing.common``): the plugin declares its ``MAPPING_FILE``,
    which is non-empty TOML and passes its ``validate_mapping`` (required with it). A plugin
    that truly reads no mapping says so (``require_mapping=False``) and is reported, not passed.
11. ``check_entry_point`` (``bhhub.testing.common``, when ``entry_point`` is given): the installed
    distribution's ``bhhub`` entry point of that name loads this plugin, and is not a name a
    built-in plugin already uses (the hub would load the built-in and refuse this one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

from bhhub.errors import HubError, InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Encounter
from bhhub.testing.common import (
    UNDER_TEST, ContractFailure, check_calls_need_no_network, check_entry_point, check_mapping_file,
    check_no_network_at_import, check_registers_cleanly, check_registration_problems, fail,
    module_name_of, plugin_label, run_all,
)
from bhhub.testing.expected import differences, expected_of, expected_path, is_expected_file
from bhhub.testing.logs import captured_logs, phi_of
from bhhub.testing.payloads import damaged_copies, field_damages, odd_payloads
from bhhub.testing.records import encounter_problems
from bhhub.testing.samples import foreign_payloads
from bhhub.testing.temporary_hub import bill_in_temporary_hub, validated
from bhhub.types import IntakeContext, IntakeFormat

__all__ = [
    "EhrPluginContract", "check_plugin", "check_registers_formats", "check_recognizes_any_bytes",
    "check_recognizes_only_its_format", "check_goldens_parse", "check_goldens_match_expected",
    "check_goldens_become_claims", "check_malformed_input", "check_refuses_rather_than_skips", "golden_files",
    "refused_files",
]

REFUSED = "refused"


def golden_files(goldens_dir: Path) -> list[Path]:
    """The golden payloads: every non-hidden file directly in ``goldens_dir``, sorted, but the
    expected files (``NAME.expected.json``)."""
    goldens_dir = Path(goldens_dir)
    files = sorted(p for p in goldens_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                   and not is_expected_file(p)) if goldens_dir.is_dir() else []
    if not files:
        raise fail(f"no golden files in {goldens_dir}", "add example exports of the EHR, one payload per file")
    return files


def refused_files(goldens_dir: Path | str | None) -> list[Path]:
    """The payloads in ``goldens_dir/refused/`` (hidden files skipped), sorted."""
    folder = Path(goldens_dir or ".") / REFUSED
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def _context(path: Path, mappings_dir: Path | None = None) -> IntakeContext:
    return IntakeContext(path.name, MappingSet(override_dir=Path(mappings_dir) if mappings_dir else None))


def check_registers_formats(plugin: object) -> list[IntakeFormat]:
    """Check 1: the plugin's intake formats, registered without problems; returns them."""
    host = check_registers_cleanly(plugin)
    impls = [i for i in host.manager.hook.bhhub_register_intake_formats.get_hookimpls() if i.plugin_name == UNDER_TEST]
    if not impls:
        raise fail(f"{plugin_label(plugin)} does not implement bhhub_register_intake_formats",
                   "an EHR plugin returns its bhhub.types.IntakeFormat records from that hook")
    formats = check_calls_need_no_network(lambda: list(impls[0].function() or ()), "bhhub_register_intake_formats")
    if not formats:
        raise fail("bhhub_register_intake_formats returned no formats")
    for fmt in formats:
        if not isinstance(fmt, IntakeFormat):
            raise fail(f"bhhub_register_intake_formats returned a {type(fmt).__name__}", "return bhhub.types.IntakeFormat")
        if not fmt.name or not fmt.name.strip() or fmt.name != fmt.name.strip():
            raise fail(f"intake format {fmt.name!r} needs a name (shown by `bhhub inbox` and stored per file)")
        if not fmt.description or not fmt.description.strip():
            raise fail(f"intake format {fmt.name!r} needs a description")
        if not callable(fmt.recognizes) or not callable(fmt.parse):
            raise fail(f"intake format {fmt.name!r}: recognizes and parse must be callables")
    host.hooks.intake_formats()  # the hub's registry: refuses names a built-in already uses
    check_registration_problems(host, "intake formats")
    return formats


def check_recognizes_any_bytes(formats: Sequence[IntakeFormat], goldens: Sequence[Path]) -> None:
    """Check 2: ``recognizes`` is a cheap, total question: a bool for any bytes, never an error."""
    samples = odd_payloads() + [(f"{g.name}, {what}", data) for g in goldens for what, data in
                                damaged_copies(g.read_bytes())]

    def ask() -> None:
        for fmt in formats:
            for label, content in samples:
                try:
                    answer = fmt.recognizes(content)
                except Exception as exc:  # noqa: BLE001 - the point of the check
                    raise fail(f"{fmt.name}.recognizes raised {type(exc).__name__} on {label}: {exc}",
                               "answer False for anything that is not this format") from None
                if not isinstance(answer, bool):
                    raise fail(f"{fmt.name}.recognizes returned {type(answer).__name__} on {label}, not a bool")
        for golden in goldens:
            if not any(fmt.recognizes(golden.read_bytes()) for fmt in formats):
                raise fail(f"no format of the plugin recognizes its golden file {golden.name}")

    check_calls_need_no_network(ask, "recognizes")


def check_recognizes_only_its_format(formats: Sequence[IntakeFormat]) -> int:
    """Check 3: ``recognizes`` says no to what is not its format: the built-in formats' samples
    (but a built-in's own), X12, other HL7 v2 and JSON, XML and CSV of nobody's format, random
    JSON among them. A yes takes payloads from the format that reads them, or, when a built-in
    recognizes them first, is never asked. Returns how many payloads were asked about."""
    names = {fmt.name for fmt in formats}
    samples = [s for s in foreign_payloads() if s.owner not in names]

    def ask() -> int:
        for fmt in formats:
            for sample in samples:
                try:
                    answer = fmt.recognizes(sample.content)
                except Exception:  # noqa: BLE001 - check 2 reports a recognizer that raises
                    continue
                if answer is True:
                    raise fail(f"{fmt.name}.recognizes claims {sample.label}, which is not its format",
                               "recognize only what is this format's: a marker, its header's columns, its own "
                               "keys (docs/plugins.md: when two formats recognize a payload)")
        return len(samples) * len(formats)

    return check_calls_need_no_network(ask, "recognizes")


def _format_for(formats: Sequence[IntakeFormat], content: bytes) -> IntakeFormat | None:
    return next((fmt for fmt in formats if fmt.recognizes(content)), None)


def check_goldens_parse(formats: Sequence[IntakeFormat], goldens: Sequence[Path],
                        mappings_dir: Path | None = None) -> dict[str, list[Encounter]]:
    """Check 3: each golden becomes complete, stable encounters; no PHI in the plugin's logs.
    Returns the encounters by golden file name."""
    parsed: dict[str, list[Encounter]] = {}

    def read_all() -> list[str]:
        with captured_logs() as logs:
            for golden in goldens:
                content = golden.read_bytes()
                fmt = _format_for(formats, content)
                if fmt is None:
                    raise fail(f"no format of the plugin recognizes its golden file {golden.name}")
                try:
                    first = list(fmt.parse(content, _context(golden, mappings_dir)))
                    again = list(fmt.parse(content, _context(golden, mappings_dir)))
                except Exception as exc:  # noqa: BLE001 - a golden must parse
                    raise fail(f"{fmt.name} cannot parse its golden file {golden.name}: "
                               f"{type(exc).__name__}: {exc}") from None
                if not first:
                    raise fail(f"{golden.name} parsed into no encounters", "a golden file should bill something")
                problems = [f"{golden.name} encounter {n} ({getattr(e, 'source_ref', '?')}): {p}"
                            for n, e in enumerate(first, start=1) for p in encounter_problems(e)]
                if problems:
                    raise fail("encounters lack what the 837P needs:\n    " + "\n    ".join(problems),
                               "see hub/model.py for each field's convention")
                keys = [e.key for e in first]
                if len(set(keys)) != len(keys):
                    raise fail(f"{golden.name}: two encounters share a key", "make each visit's key unique")
                if first != again:
                    raise fail(f"{golden.name} parsed twice gives different encounters",
                               "keys and values must not depend on the time or on chance (a re-sent file "
                               "must update the same claims)")
                parsed[golden.name] = first
        return logs.texts

    logged = check_calls_need_no_network(read_all, "parsing the golden files")
    phi = phi_of([e for encounters in parsed.values() for e in encounters])
    leaks = sorted({text.split(":", 1)[0] for text in logged if any(p in text for p in phi)})
    if leaks:
        raise fail(f"the plugin logged patient data (names, member ids or dates of birth) from: {', '.join(leaks)}",
                   "log inbox ids, row numbers and resource ids only, never PHI")
    return parsed


def check_goldens_match_expected(formats: Sequence[IntakeFormat], goldens: Sequence[Path],
                                 mappings_dir: Path | None = None) -> dict[str, Any]:
    """Check 5: each golden with an expected file (``bhhub.testing.expected``) parses into exactly
    its fields, every difference named; at least one golden has one (without, a silent default
    or a dropped diagnosis passes as long as the claim is ready). Returns
    ``{"compared": [names], "without expected file": [names]}``."""
    with_file = [g for g in goldens if expected_path(g).is_file()]
    if not with_file:
        raise fail("no golden has an expected file, so no value the plugin reads is checked "
                   "(a wrong column, a silent default, a dropped diagnosis would all pass)",
                   "write NAME.expected.json beside a golden: `python -m bhhub.testing.expected MODULE GOLDEN`, "
                   "then check every value in it against the export by hand")
    problems: list[str] = []

    def compare() -> None:
        for golden in with_file:
            try:
                expected = json.loads(expected_path(golden).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise fail(f"{expected_path(golden).name} is not JSON: {exc}") from None
            if not isinstance(expected, list):
                raise fail(f"{expected_path(golden).name} must be a list, one object per encounter")
            content = golden.read_bytes()
            fmt = _format_for(formats, content)
            if fmt is None:
                raise fail(f"no format of the plugin recognizes its golden file {golden.name}")
            try:
                records = list(fmt.parse(content, _context(golden, mappings_dir)))
            except Exception as exc:  # noqa: BLE001 - check 4 names why; nothing to compare here
                problems.append(f"{golden.name} does not parse ({type(exc).__name__}), so it cannot be compared")
                continue
            actual = [expected_of(e) for e in records if isinstance(e, Encounter)]
            if len(actual) != len(expected):
                problems.append(f"{golden.name}: {len(actual)} encounter(s), the expected file has {len(expected)}")
            for n, (want, got) in enumerate(zip(expected, actual), start=1):
                problems.extend(f"{golden.name} encounter {n} {d}" for d in differences(want, got))

    check_calls_need_no_network(compare, "parsing the golden files")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise fail("the goldens do not parse into their expected files:\n    " + "\n    ".join(shown),
                   "fix the reader (a wrong column, a default where the export has a value, a dropped code); "
                   "change the expected file only if the export really says otherwise")
    return {"compared": [g.name for g in with_file],
            "without expected file": [g.name for g in goldens if g not in with_file]}


def check_goldens_become_claims(plugin: object, goldens: Sequence[Path], *, today: date | None = None,
                                require_ready: bool = True, require_pyx12: bool = False,
                                mappings_dir: Path | None = None) -> dict[str, Any]:
    """Check 4: through a temporary hub, the goldens become ready claims in a valid 837P.

    Returns ``{"claims": n, "pyx12": "valid" | "not installed"}``.
    """
    formats = check_registers_formats(plugin)
    names = {fmt.name for fmt in formats}
    parsed = check_goldens_parse(formats, goldens, mappings_dir)
    if today is None:
        today = max(e.service_date for es in parsed.values() for e in es) + timedelta(days=1)
    expected = len({e.key for es in parsed.values() for e in es})

    outcome = check_calls_need_no_network(
        lambda: bill_in_temporary_hub(plugin, goldens, names, expected, today, require_ready, mappings_dir),
        "intake of the golden files")
    outcome["pyx12"] = validated(outcome.pop("content"), require_pyx12)
    return outcome


def check_malformed_input(formats: Sequence[IntakeFormat], goldens: Sequence[Path],
                          refused: Sequence[Path] = (), mappings_dir: Path | None = None) -> int:
    """Check 5: damaged and foreign input raises only ``HubError``; ``refused`` goldens raise
    ``InputError``. Returns how many payloads were tried."""
    samples = odd_payloads() + [(f"{g.name}, {what}", data) for g in goldens for what, data in
                                damaged_copies(g.read_bytes())]

    def attempt() -> int:
        tried = 0
        for fmt in formats:
            for label, content in samples:
                tried += 1
                try:
                    result = fmt.parse(content, _context(Path("damaged"), mappings_dir))
                except HubError:
                    continue
                except Exception as exc:  # noqa: BLE001 - the point of the check
                    raise fail(f"{fmt.name}.parse raised {type(exc).__name__} (not a bhhub.errors.HubError) on "
                               f"{label}: {exc}",
                               "wrap what your parser raises: raise InputError('...', where=..., fix=...) "
                               "from exc") from None
                bad = [type(e).__name__ for e in (result or ()) if not isinstance(e, Encounter)]
                if bad:
                    raise fail(f"{fmt.name}.parse returned {bad[0]} records on {label}, not Encounters")
            for path in refused:
                tried += 1
                try:
                    result = fmt.parse(path.read_bytes(), _context(path, mappings_dir))
                except InputError:
                    continue
                except Exception as exc:  # noqa: BLE001
                    raise fail(f"{fmt.name}.parse raised {type(exc).__name__} on {REFUSED}/{path.name}, "
                               f"not an InputError: {exc}") from None
                if len(formats) == 1 or _format_for(formats, path.read_bytes()) is fmt:
                    raise fail(f"{fmt.name} accepted {REFUSED}/{path.name}, which it must refuse "
                               f"({len(list(result or ()))} encounters)")
        return tried

    return check_calls_need_no_network(attempt, "parsing damaged input")


def check_refuses_rather_than_skips(formats: Sequence[IntakeFormat], goldens: Sequence[Path],
                                    refused: Sequence[Path], mappings_dir: Path | None = None) -> int:
    """Check 8: the plugin refuses bad input rather than skipping it. There must be a golden in
    ``refused/`` (else a reader that swallows every error passes); and each golden with one field
    damaged (``bhhub.testing.payloads.field_damages``) is refused or still gives every visit it
    gave whole. Returns how many damaged copies were read."""
    if not refused:
        raise fail(f"no golden in {REFUSED}/: nothing shows the plugin refuses what it cannot read "
                   "(a reader that skips bad rows or swallows its errors would pass)",
                   f"add an export the plugin must refuse to goldens/{REFUSED}/ (a missing member id, a date "
                   "that does not exist)")

    def attempt() -> int:
        tried = 0
        for golden in goldens:
            content = golden.read_bytes()
            fmt = _format_for(formats, content)
            if fmt is None:
                continue  # check 2 reports it
            try:
                whole = len(list(fmt.parse(content, _context(golden, mappings_dir))))
            except Exception:  # noqa: BLE001 - check 4 reports a golden that does not parse
                continue
            for what, damaged in field_damages(content):
                tried += 1
                try:
                    got = len(list(fmt.parse(damaged, _context(golden, mappings_dir)) or ()))
                except Exception:  # noqa: BLE001 - refused (or check 7 reports the crash)
                    continue
                if got < whole:
                    raise fail(f"{fmt.name} read {golden.name} with its {what} as {got} record(s) instead of "
                               f"{whole}, without an error: a visit was left out silently",
                               "refuse the whole file with an InputError naming the record and the field; "
                               "never skip a record the plugin cannot read")
        return tried

    return check_calls_need_no_network(attempt, "parsing damaged goldens")


def check_plugin(plugin: object, goldens_dir: Path | str, *, entry_point: str | None = None,
                 today: date | None = None, require_ready: bool = True, require_pyx12: bool = False,
                 check_import: bool = True, mappings_dir: Path | str | None = None,
                 require_mapping: bool = True) -> dict[str, Any]:
    """Run every check in this module on ``plugin`` and its golden files; raise one
    ``ContractFailure`` listing every failure. Returns each check's result by name.

    ``mappings_dir`` is a practice's ``mappings/`` folder the goldens need (a practice profile,
    a field-map override): laid over the packaged tables when parsing, and copied into the
    temporary hub's home. ``require_mapping=False`` is for a plugin that reads no mapping at
    all: its result is then "no mapping file (not required)", never a pass that checked nothing."""
    goldens_dir = Path(goldens_dir)
    state: dict[str, Any] = {}

    def formats() -> list[IntakeFormat]:
        if "formats" not in state:
            state["formats"] = check_registers_formats(plugin)
        return state["formats"]

    goldens = golden_files(goldens_dir)
    refused = refused_files(goldens_dir)
    checks = [
        ("registers intake formats", formats),
        ("recognizes answers a bool for any bytes", lambda: check_recognizes_any_bytes(formats(), goldens)),
        ("recognizes only its own format", lambda: check_recognizes_only_its_format(formats())),
        ("goldens parse into complete encounters", lambda: check_goldens_parse(formats(), goldens, mappings_dir)),
        ("goldens match their expected files",
         lambda: check_goldens_match_expected(formats(), goldens, mappings_dir)),
        ("goldens become ready claims in a valid 837P", lambda: check_goldens_become_claims(
            plugin, goldens, today=today, require_ready=require_ready, require_pyx12=require_pyx12,
            mappings_dir=mappings_dir)),
        ("malformed input raises only hub errors",
         lambda: check_malformed_input(formats(), goldens, refused, mappings_dir)),
        ("bad input is refused, never skipped",
         lambda: check_refuses_rather_than_skips(formats(), goldens, refused, mappings_dir)),
        ("mapping file loads", lambda: check_mapping_file(plugin, required=require_mapping)
         or "no mapping file (not required)"),
    ]
    if check_import:
        checks.append(("no network at import", lambda: check_no_network_at_import(module_name_of(plugin))))
    if entry_point:
        checks.append(("entry point", lambda: check_entry_point(entry_point, plugin)))
    return run_all(checks)


class EhrPluginContract:
    """The contract as pytest tests: subclass it in a ``Test...`` class and set ``plugin`` and
    ``goldens`` (and ``entry_point`` once the package is installable). Each test is one check
    of this module; see the module docstring for what each one holds the plugin to."""

    plugin: ClassVar[object] = None
    goldens: ClassVar[Path | str | None] = None
    entry_point: ClassVar[str | None] = None  # the name under [project.entry-points.bhhub]
    today: ClassVar[date | None] = None  # default: the day after the goldens' last date of service
    require_ready: ClassVar[bool] = True
    require_pyx12: ClassVar[bool] = False
    require_mapping: ClassVar[bool] = True  # False only for a plugin that reads no mapping at all
    mappings_dir: ClassVar[Path | str | None] = None  # a practice's mappings/ the goldens need

    def _plugin(self) -> object:
        if self.plugin is None:
            raise ContractFailure(f"{type(self).__name__} must set `plugin` to the plugin module or object")
        return self.plugin

    def _goldens(self) -> list[Path]:
        if self.goldens is None:
            raise ContractFailure(f"{type(self).__name__} must set `goldens` to the folder of golden files")
        return golden_files(Path(self.goldens))

    def _formats(self) -> list[IntakeFormat]:
        return check_registers_formats(self._plugin())

    def test_registers_intake_formats(self):
        self._formats()

    def test_recognizes_answers_a_bool_for_any_bytes(self):
        check_recognizes_any_bytes(self._formats(), self._goldens())

    def test_recognizes_only_its_own_format(self):
        check_recognizes_only_its_format(self._formats())

    def test_goldens_parse_into_complete_encounters_without_phi_in_logs(self):
        check_goldens_parse(self._formats(), self._goldens(), self.mappings_dir)

    def test_goldens_match_their_expected_files(self):
        check_goldens_match_expected(self._formats(), self._goldens(), self.mappings_dir)

    def test_goldens_become_ready_claims_in_a_valid_837p(self):
        check_goldens_become_claims(self._plugin(), self._goldens(), today=self.today,
                                    require_ready=self.require_ready, require_pyx12=self.require_pyx12,
                                    mappings_dir=self.mappings_dir)

    def test_malformed_input_raises_only_hub_errors(self):
        check_malformed_input(self._formats(), self._goldens(), refused_files(self.goldens), self.mappings_dir)

    def test_bad_input_is_refused_never_skipped(self):
        check_refuses_rather_than_skips(self._formats(), self._goldens(), refused_files(self.goldens),
                                        self.mappings_dir)

    def test_no_network_at_import(self):
        check_no_network_at_import(module_name_of(self._plugin()))

    def test_mapping_file_loads_and_validates(self):
        if check_mapping_file(self._plugin(), required=self.require_mapping) is None:
            import pytest

            pytest.skip("the plugin declares no MAPPING_FILE (require_mapping = False): nothing was checked")

    def test_entry_point_loads_this_plugin(self):
        if not self.entry_point:
            import pytest

            pytest.skip("set entry_point to the name under [project.entry-points.bhhub] to check it")
        check_entry_point(self.entry_point, self._plugin())
