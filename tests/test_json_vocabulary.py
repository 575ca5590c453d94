"""One vocabulary in every ``--json`` (README: "Every listing takes --json"), and one exit code
for the same mistake from every command (README's table).

Every command the parser gives ``--json`` is run on a populated hub, the demo's: claims paid,
denied and rejected through the sandbox clearinghouse's 999, 277CA and 835, a 271 about each
patient, a quarantined file, an alert; this module adds an unmatched 835 claim payment, an
authorization, an enrollment, an advance notice and a 276. A command that gains ``--json``
without a line in ``RUNS`` fails ``test_every_command_with_json_is_walked``.

What every output must say the same way:

- the claim is ``patient_control_number`` (never ``claim``, ``claim_id``, ``pcn``);
- an inbox item is ``inbox_item_id`` (never ``inbox_item``, ``item_id``);
- ``payer_id`` is the claim's payer id (what ``bhhub claims`` shows), not an 835's or a 271's
  trace originator (TRN03);
- money is a JSON number of dollars, never a string; a count is an integer (5, not 5.0); a rate
  or share is a fraction from 0 to 1 (coinsurance 0.2, clean_claim_rate 0.889);
- a time carries its offset (``...T15:43:50+00:00``); a date is ``YYYY-MM-DD``;
- nothing prints a bare ``null``: "nothing to do" is an object or an empty array.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bhhub.cli.main import build_parser, main
from test_ncci import mue_file, ptp_file

# Keys that hold money, wherever they appear (and a string like "12.50" anywhere is refused too).
MONEY = {
    "amount", "charge", "paid", "total_charge", "patient_responsibility", "payment_amount", "paid_total",
    "provider_adjustment_total", "copay", "deductible", "deductible_remaining", "out_of_pocket",
    "out_of_pocket_remaining", "insurance", "patient", "total_ar", "insurance_ar", "patient_ar",
    "net_collection_payments", "net_collection_expected",
}
# Keys that hold counts: integers when whole (5, never 5.0, which reads as money).
COUNTS = {"visits_allowed", "visits_remaining", "authorized", "used", "remaining", "units", "claims", "occurrences",
          "claims_sent", "claims_with_835", "checked", "rows_read", "kept"}
# Keys that hold a rate or share: a fraction from 0 to 1 (coinsurance 0.2), never a percentage.
RATES = {"coinsurance", "clean_claim_rate", "first_pass_resolution_rate", "denial_rate_count", "denial_rate_dollars",
         "net_collection_rate"}
CLAIM_WORDS = {"claim", "claim_id", "pcn", "clm01", "claim_number"}  # the claim is patient_control_number
INBOX_WORDS = {"inbox_item", "item_id", "inbox_id", "item"}  # an inbox item is inbox_item_id
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
OFFSET = re.compile(r"(Z|[+-]\d\d:\d\d)$")
MONEY_TEXT = re.compile(r"^-?\d+\.\d\d$")


# --- the hub walked -------------------------------------------------------------------------


class Walk:
    """The demo's hub, what it holds, and a way to run a command on it."""

    def __init__(self, home: Path, scratch: Path):
        self.home, self.scratch = home, scratch
        self.claims = {c["patient_control_number"]: c for c in self.json("claims", "--json")}
        self.inbox = self.json("inbox", "--json")

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["--home", str(self.home), *argv])
            except SystemExit as exc:  # argparse's own refusal (an unknown option): exit code 2
                code = exc.code
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str):
        code, out, err = self.run(*argv)
        assert code == 0, (argv, err)
        return json.loads(out)

    def pcn(self, status: str) -> str:
        return next(p for p, c in self.claims.items() if c["status"] == status)

    @property
    def payer_ids(self) -> set[str]:
        return {c["payer_id"] for c in self.claims.values()}

    def quarantined(self) -> str:
        return str(next(i["id"] for i in self.inbox if i["state"] == "quarantined"))

    def unmatched_835(self) -> str:
        """The sandbox's 835 again under new traces, its first claim payment for a claim the hub
        never sent: a claim payment that matches nothing (``remit unmatched``)."""
        [remit] = (self.home / "sandbox" / "picked-up").glob("*.835")
        text = remit.read_text().replace("*SBX0000000020", "*SBX0000000090")

        def stranger(clp: re.Match) -> str:  # CLP01 and CLP07 no claim has
            parts = clp.group(0).split("*")
            parts[1], parts[7] = "BH09999999", "NOSUCH000001"
            return "*".join(parts)

        text = re.sub(r"CLP\*[^~]*", stranger, text, count=1)
        text = re.sub(r"NM1\*QC\*[^~]*", "NM1*QC*1*NOBODY*KNOWN****MI*ZZ99999999", text, count=1)  # nor this member
        path = self.scratch / "unmatched.835"
        path.write_text(text)
        return str(path)

    def file(self, name: str, text: str) -> str:
        path = self.scratch / name
        path.write_text(text)
        return str(path)


def _auth_csv(w: Walk) -> str:
    c = next(iter(w.claims.values()))
    return w.file("auth.csv", "payer_id,member_id,number,quantity,start,end\n"
                              f"{c['payer_id']},{c['member_id']},PA-CSV-1,6,2026-10-01,2026-12-31\n")


def _enrollment_csv(w: Walk) -> str:
    return w.file("enroll.csv", f"npi,payer_id,status\n1234567893,{sorted(w.payer_ids)[0]},enrolled\n")


def _retired_mailbox(w: Walk) -> str:
    """A mailbox no longer configured that once sent a file (a name that never held work is a
    usage error): the demo's first transmission, long done, recorded as sent through it."""
    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    with Hub.open(w.home) as hub, hub.store.session() as session:
        sent = session.query(schema.Transmission).order_by(schema.Transmission.id).first()
        batch = schema.Batch(**{column.key: getattr(session.get(schema.Batch, sent.batch_id), column.key)
                                for column in schema.Batch.__table__.columns if column.key != "id"})
        batch.interchange_control_number = "999999999"
        session.add(batch)
        session.flush()
        session.add(schema.Transmission(batch_id=batch.id, mailbox="retired-clearinghouse", remote_name="old.x12",
                                        state="acknowledged"))
        session.commit()
    return "retired-clearinghouse"


def _first_claim(w: Walk) -> dict:
    return next(iter(w.claims.values()))


def _unmatched_payment(w: Walk) -> str:
    return str(next(r["id"] for r in w.json("remit", "unmatched", "--json") if r["state"] == "unmatched"))


def _open_denial(w: Walk) -> str:
    return str(next(d["id"] for d in w.json("denials", "--json")))


def _overridable(w: Walk) -> list[str]:
    """A claim's finding a person may waive (a payer's policy: coding.*), as `override` names it,
    on a claim not yet sent: an override of a claim sent is refused, and the demo sends all its
    clean claims, so a new visit (one whose E/M add-on lacks its minutes) comes in first."""
    from datetime import timedelta

    from bhhub.runtime import clock
    from bhhub.claims.build import OVERRIDABLE
    from bhhub.demo.synthetic import encounter_bundle

    visit = w.file("overridable.json", json.dumps(encounter_bundle(201, start=clock.today() - timedelta(days=60))))
    code, _, err = w.run("intake", visit)
    assert code == 0, err
    w.claims = {c["patient_control_number"]: c for c in w.json("claims", "--json")}
    for pcn, claim in w.claims.items():
        if claim["status"] not in OVERRIDABLE:
            continue
        for f in claim["findings"]:
            if f["code"].startswith("coding."):
                return [pcn, f["code"], *(["--line", str(f["line"])] if f["line"] else [])]
    raise AssertionError("no claim waiting to be sent has a coding finding to override")


# Every command with --json, in the order they run (the ones that change the hub last). Each
# gives the command line; its exit code may be 1 (a refused item, a file the checks quarantined)
# but its output is still JSON.
RUNS: list[tuple[tuple[str, ...], Callable[[Walk], list[str]]]] = [
    (("claims",), lambda w: ["claims"]),
    (("claims", "show"), lambda w: ["claims", "show", w.pcn("paid")]),
    (("inbox",), lambda w: ["inbox"]),
    (("plugins",), lambda w: ["plugins"]),
    (("mailbox", "list"), lambda w: ["mailbox", "list"]),
    (("mailbox", "status"), lambda w: ["mailbox", "status"]),
    (("mailbox",), lambda w: ["mailbox"]),
    (("transmissions",), lambda w: ["transmissions"]),
    (("alerts",), lambda w: ["alerts", "--all"]),
    (("ar",), lambda w: ["ar"]),
    (("eligibility",), lambda w: ["eligibility"]),
    (("eligibility", "list"), lambda w: ["eligibility", "list"]),
    (("intake",), lambda w: ["intake", w.unmatched_835()]),
    (("remit",), lambda w: ["remit"]),
    (("remit", "list"), lambda w: ["remit", "list"]),
    (("remit", "unmatched"), lambda w: ["remit", "unmatched"]),
    (("denials",), lambda w: ["denials", "--all"]),
    (("remit", "match"), lambda w: ["remit", "match", _unmatched_payment(w), w.pcn("paid")]),
    (("denials", "resolve"), lambda w: ["denials", "resolve", _open_denial(w), "--how", "written off"]),
    (("denials", "act"), lambda w: ["denials", "act", _open_denial(w), "write_off", "--note", "small balance"]),
    (("override",), lambda w: ["override", *_overridable(w), "--reason", "payer confirmed by phone"]),
    (("inbox", "retry"), lambda w: ["inbox", "retry", w.quarantined()]),
    (("mailbox", "test"), lambda w: ["mailbox", "test", "sandbox"]),
    (("mailbox", "reroute"), lambda w: ["mailbox", "reroute", "--from", _retired_mailbox(w)]),
    (("notify", "test"), lambda w: ["notify", "test"]),  # none configured: exit 1, still JSON
    (("auth", "add"), lambda w: ["auth", "add", "--payer", _first_claim(w)["payer_id"], "--member",
                                 _first_claim(w)["member_id"], "--number", "PA-1", "--visits", "12",
                                 "--from", "2026-10-01", "--to", "2026-12-31"]),
    (("auth", "import"), lambda w: ["auth", "import", _auth_csv(w)]),
    (("auth",), lambda w: ["auth"]),
    (("auth", "list"), lambda w: ["auth", "list", "--all"]),
    (("auth", "void"), lambda w: ["auth", "void", str(w.json("auth", "list", "--json")[0]["id"])]),
    (("credentialing", "add"), lambda w: ["credentialing", "add", "--npi", "1234567893", "--payer",
                                          sorted(w.payer_ids)[-1], "--status", "enrolled",
                                          "--effective", "2026-01-01"]),
    (("credentialing", "import"), lambda w: ["credentialing", "import", _enrollment_csv(w)]),
    (("credentialing",), lambda w: ["credentialing"]),
    (("credentialing", "list"), lambda w: ["credentialing", "list"]),
    (("notice", "list"), lambda w: ["notice", "list"]),
    (("notice",), lambda w: ["notice"]),
    (("notice", "add"), lambda w: ["notice", "add", w.pcn("denied"), "--signed-on", "2026-09-30"]),
    (("status", "check"), lambda w: ["status", "check", w.pcn("paid")]),
    (("status",), lambda w: ["status"]),
    (("status", "list"), lambda w: ["status", "list"]),
    (("eligibility", "check"), lambda w: ["eligibility", "check", "--patient",
                                          str(_first_claim(w)["patient_id"])]),
    (("eligibility", "sweep"), lambda w: ["eligibility", "sweep"]),
    (("scrub",), lambda w: ["scrub"]),
    (("resubmit",), lambda w: ["resubmit", w.pcn("rejected"), w.pcn("paid")]),
    (("followup",), lambda w: ["followup", "void", w.pcn("paid")]),
    (("export-837",), lambda w: ["export-837", "--out", str(w.scratch / "first.x12")]),
    (("batch", "write"), lambda w: ["batch", "write", "1", "--out", str(w.scratch / "again.x12")]),
    (("exchange",), lambda w: ["exchange"]),
    (("rules", "load-ncci"), lambda w: ["rules", "load-ncci", str(ptp_file(
        w.scratch / "ptp.txt", ["90791\t90832\t\t20200101\t*\t0\tMutually exclusive procedures"]))]),
    (("rules", "load-mue"), lambda w: ["rules", "load-mue", str(mue_file(
        w.scratch / "mue.csv", ['90837,1,"2 Date of Service Edit: Policy","Code Descriptor / CPT Instruction"']))]),
    (("user", "add"), lambda w: ["user", "add", "ann", "--role", "biller", "--password-file", _password_file(w)]),
    (("user", "disable"), lambda w: ["user", "disable", "ann"]),
    (("user", "enable"), lambda w: ["user", "enable", "ann"]),
    (("user", "unlock"), lambda w: ["user", "unlock", "ann"]),
    (("user", "reset-mfa"), lambda w: ["user", "reset-mfa", "ann"]),
    (("user", "list"), lambda w: ["user", "list"]),
    (("audit", "verify"), lambda w: ["audit", "verify"]),
    (("audit", "list"), lambda w: ["audit", "list", "--limit", "200"]),
]
def _password_file(w) -> str:
    path = w.scratch / "password"
    path.write_text("a long enough password\n", encoding="utf-8")
    return str(path)


# Listings the populated hub must fill: the checks below would be empty words on an empty list.
FILLED = {("claims",), ("claims", "show"), ("mailbox", "status"), ("inbox",), ("transmissions",), ("alerts",), ("eligibility",), ("remit",), ("exchange",),
          ("remit", "unmatched"), ("denials",), ("auth",), ("credentialing",), ("status",), ("notice", "list"),
          ("notice",), ("audit", "list"), ("user", "list")}
# Commands that act on one thing: their --json is that thing's object, and says what became of it.
ACTED = {("remit", "match"): {"state": "posted"}, ("denials", "resolve"): {"status": "resolved"},
         ("denials", "act"): {"status": "resolved", "action": "write_off", "followup": None},
         ("override",): {"code": None}, ("notice", "add"): {"signed_on": "2026-09-30"}}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def _needs_an_action(parser: argparse.ArgumentParser) -> bool:
    """A group that does nothing by itself (`bhhub batch`): its --json is its actions', walked there."""
    return any(isinstance(a, argparse._SubParsersAction) and a.required for a in parser._actions)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def commands_with(option: str) -> set[tuple[str, ...]]:
    return {path for path, p in _commands(build_parser()) if option in _options(p)}


@pytest.fixture(scope="module")
def walked(tmp_path_factory) -> tuple[Walk, dict]:
    """The demo's hub after every ``--json`` command ran on it, with each one's (code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("vocabulary")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--home", str(root), "demo"]) == 0
    walk = Walk(root / "demo", root)
    code, _, err = walk.run("notice", "add", walk.pcn("denied"), "--signed-on", "2026-10-01")
    assert code == 0, err
    from bhhub.cli.demo import _write_config
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    results = {}
    # the demo's sandbox again (its folder, host key and password), so `exchange` and `mailbox test` reach it
    with SandboxClearinghouse(walk.home / "sandbox") as sandbox:
        _write_config(walk.home, sandbox)
        for path, argv in RUNS:
            results[path] = walk.run(*argv(walk), "--json")
    return walk, results


def test_every_command_with_json_is_walked():
    from bhhub.cli.main import BUILTIN
    from bhhub.runtime.plugin_host import build_plugin_host

    # the shipped plugins' commands too (`bhhub listen`, `bhhub sandbox`)
    parser = build_parser(build_plugin_host().hooks.commands(taken=BUILTIN))
    with_json = {path for path, p in _commands(parser) if "--json" in _options(p) and not _needs_an_action(p)}
    missing = with_json - {path for path, _ in RUNS}
    assert not missing, f"add these to RUNS: {sorted(missing)}"


@pytest.mark.parametrize("path", [path for path, _ in RUNS], ids=" ".join)
def test_every_json_speaks_the_shared_vocabulary(walked, path):
    walk, results = walked
    code, out, err = results[path]
    assert code in (0, 1), (code, err)
    if path in (("exchange",), ("mailbox", "test")):
        assert code == 0, err  # the sandbox answered: the report is a real one
    data = json.loads(out)  # the whole of stdout is one JSON value
    assert data is not None, "a bare null: say 'nothing to do' with an object or an empty array"
    if path in FILLED:
        assert data, f"{' '.join(path)} listed nothing: the walk checks nothing there"
    problems = list(_problems(data, "$", walk.payer_ids))
    assert not problems, "\n".join(problems)


def _problems(value, where: str, payer_ids: set[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "sources":  # a 271 summary's field -> the service type that said it
                continue
            here = f"{where}.{key}"
            if key in CLAIM_WORDS:
                yield f"{here}: the claim is patient_control_number"
            if key in INBOX_WORDS:
                yield f"{here}: an inbox item is inbox_item_id"
            if key in MONEY and item is not None and (isinstance(item, bool) or not isinstance(item, (int, float))):
                yield f"{here}: money is a JSON number, not {item!r}"
            if key in COUNTS and isinstance(item, float) and item.is_integer():
                yield f"{here}: a count is an integer, not {item!r}"
            if key in RATES and isinstance(item, (int, float)) and not 0 <= item <= 1:
                yield f"{here}: a rate is a fraction from 0 to 1, not {item!r}"
            if key == "payer_id" and item is not None and item not in payer_ids:
                yield f"{here}: {item!r} is no claim's payer id ({sorted(payer_ids)})"
            yield from _problems(item, here, payer_ids)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _problems(item, f"{where}[{n}]", payer_ids)
    elif isinstance(value, str):
        if TIME.match(value) and not OFFSET.search(value):
            yield f"{where}: {value!r} has no timezone offset"
        if MONEY_TEXT.match(value):
            yield f"{where}: {value!r} looks like money written as text"


@pytest.mark.parametrize("path", sorted(ACTED), ids=" ".join)
def test_a_command_that_acts_on_one_thing_prints_that_thing(walked, path):
    walk, results = walked
    code, out, err = results[path]
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict) and isinstance(data["id"], int)
    assert data["patient_control_number"] in walk.claims
    assert all(value is None or data[key] == value for key, value in ACTED[path].items()), data
    if path == ("remit", "match"):
        assert isinstance(data["paid"], float) and isinstance(data["inbox_item_id"], int)
    if path == ("denials", "resolve"):
        assert data["resolution"] == "written off" and data["resolved_at"].endswith("+00:00")


# The listings of the command groups, each run with --json before the action word too.
GROUP_LISTINGS = [("remit", "list"), ("remit", "unmatched"), ("auth", "list"), ("credentialing", "list"),
                  ("eligibility", "list"), ("status", "list"), ("notice", "list"), ("mailbox", "list"), ("audit", "list")]


@pytest.mark.parametrize("path", GROUP_LISTINGS, ids=" ".join)
def test_json_before_the_action_word_is_the_same_json(walked, path):
    walk, _ = walked
    group, action = path
    after = walk.run(group, action, "--json")
    before = walk.run(group, "--json", action)
    assert before[0] == after[0] == 0, before[2]
    assert json.loads(before[1]) == json.loads(after[1])  # not the text table: the flag was honoured


def test_every_command_group_takes_json_on_either_side_of_the_action_word():
    """A group whose actions print JSON takes --json itself, and no action's own --json default
    resets the group's (argparse copies an action's defaults over its group's)."""
    from bhhub.cli.main import BUILTIN
    from bhhub.runtime.plugin_host import build_plugin_host

    parser = build_parser(build_plugin_host().hooks.commands(taken=BUILTIN))
    groups = 0
    for path, group in _commands(parser):
        actions = [sub for a in group._actions if isinstance(a, argparse._SubParsersAction) for sub in a.choices.values()]
        if not path or not any("--json" in _options(sub) for sub in actions):
            continue
        groups += 1
        assert "--json" in _options(group), f"{' '.join(path)} --json ACTION is refused"
        for sub in actions:
            [flag] = [a for a in sub._actions if "--json" in a.option_strings]
            assert flag.default is argparse.SUPPRESS, f"{sub.prog} --json resets `{' '.join(path)} --json`"
    assert groups >= 10


def test_an_action_that_prints_no_json_refuses_it_given_before_it_too():
    from bhhub.cli.json_option import honour_json_before_action
    from bhhub.errors import UsageError

    parser = argparse.ArgumentParser(prog="bhhub")
    group = parser.add_subparsers(dest="command").add_parser("widgets")
    actions = group.add_subparsers(dest="action")
    listing = actions.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=lambda args: "json" if args.json else "table")
    actions.add_parser("poke").set_defaults(func=lambda args: "poked")
    honour_json_before_action(parser)
    run = lambda *argv: (args := parser.parse_args(argv)).func(args)  # noqa: E731
    assert run("widgets", "--json", "list") == run("widgets", "list", "--json") == "json"
    assert run("widgets", "list") == "table" and run("widgets", "poke") == "poked"
    with pytest.raises(UsageError, match="`bhhub widgets poke` prints no JSON"):
        run("widgets", "--json", "poke")


def test_times_are_utc_with_their_offset_and_dates_stay_plain(walked):
    walk, results = walked
    [item] = [i for i in json.loads(results[("inbox",)][1]) if i["id"] == walk.inbox[0]["id"]]
    assert item["received_at"].endswith("+00:00")
    claim = json.loads(results[("claims",)][1])[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", claim["service_date"])


def test_money_is_dollars_as_numbers(walked):
    walk, results = walked
    denial = json.loads(results[("denials",)][1])[0]
    assert isinstance(denial["amount"], float) and denial["amount"] > 0
    answered = next(c for c in json.loads(results[("eligibility",)][1]) if c["state"] == "answered")
    assert answered["mental_health"]["copay"] == 30.0  # the sandbox's 271: EB*B**MH...*30


def test_payer_ids_are_the_claims_not_the_835s_trace_originator(walked):
    walk, results = walked
    payments = json.loads(results[("remit",)][1])
    assert {p["payer_id"] for p in payments} <= walk.payer_ids
    assert all(p["payer_id_835"].startswith("1") and len(p["payer_id_835"]) == 10 for p in payments[:3])
    denial = json.loads(results[("denials",)][1])[0]
    assert denial["payer_id"] == walk.claims[denial["patient_control_number"]]["payer_id"]


def test_export_with_nothing_ready_says_so_in_the_same_object(walked, tmp_path):
    walk, results = walked
    first = json.loads(results[("export-837",)][1])
    code, out, err = walk.run("export-837", "--out", str(tmp_path / "none.x12"), "--json")
    assert code == 0, err
    nothing = json.loads(out)
    assert nothing["written"] is False and nothing["claims"] == 0 and nothing["patient_control_numbers"] == []
    assert "batch_id" not in nothing  # no batch, so no batch id (not a null one)
    assert set(nothing) <= set(first) and first["written"] is True
    assert not (tmp_path / "none.x12").exists()


def test_plugins_json_is_what_its_help_says(walked):
    walk, results = walked
    data = json.loads(results[("plugins",)][1])
    [plugins] = [p for path, p in _commands(build_parser()) if path == ("plugins",)]
    [help_text] = [a.help for a in plugins._actions if "--json" in a.option_strings]
    assert help_text.startswith("JSON object") and isinstance(data, dict)
    assert set(data) == {"plugins", "problems"} and all(f'"{key}"' in help_text for key in data)
    fields = set(re.search(r"\[\{(.*?)\}\]", help_text).group(1).replace(" ", "").split(","))
    assert all(set(p) == fields for p in data["plugins"])


# --- one exit code for one mistake -------------------------------------------------------------


def _required(w: Walk) -> dict[tuple[str, ...], list[str]]:
    """What each command needs besides the option under test, so only that option is wrong."""
    c = _first_claim(w)
    return {
        ("export-837",): ["--out", str(w.scratch / "never.x12")],
        ("exchange",): [],
        ("eligibility", "check"): ["--patient", str(c["patient_id"])],
        ("eligibility", "sweep"): [],
        ("status", "check"): [c["patient_control_number"]],
        ("claims",): [],
        ("ar",): [],
        ("auth", "list"): [],
        ("audit", "list"): [],
        ("auth", "add"): ["--payer", c["payer_id"], "--member", c["member_id"], "--number", "PA-X", "--visits", "1",
                          "--from", "2026-10-01", "--to", "2026-12-31"],
        ("credentialing", "add"): ["--npi", "1234567893", "--payer", c["payer_id"], "--status", "enrolled"],
        ("notice", "add"): [c["patient_control_number"], "--signed-on", "2026-10-01"],
    }


# The commands that name a claim, with the rest of their command line ({} is the claim).
CLAIM_ARGUMENTS = {
    ("claims", "show"): ["claims", "show", "{}"],
    ("status", "check"): ["status", "check", "{}"],
    ("resubmit",): ["resubmit", "{}"],
    ("override",): ["override", "{}", "coding.time_missing", "--reason", "payer said so"],
    ("followup",): ["followup", "void", "{}"],
    ("remit", "match"): ["remit", "match", "1", "{}"],
    ("notice", "add"): ["notice", "add", "{}", "--signed-on", "2026-10-01"],
    ("notice", "list"): ["notice", "list", "{}"],
}


def _with_value(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (replacing the one given, if any)."""
    if option in argv:
        argv = list(argv)
        argv[argv.index(option) + 1] = value
        return argv
    return [*argv, option, value]


def _one_mistake(w: Walk, argv: list[str], before: dict) -> None:
    code, out, err = w.run(*argv)
    assert code == 2, (argv, code, err)
    assert err.startswith("bhhub: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert out == ""
    assert _state(w) == before, f"{argv} changed the hub"


def _state(w: Walk) -> dict:
    return {p: c["status"] for p, c in ((c["patient_control_number"], c) for c in w.json("claims", "--json"))}


def test_an_unknown_mailbox_is_a_usage_error_from_every_command_that_takes_one(walked):
    walk, _ = walked
    takes = commands_with("--mailbox")
    needs = _required(walk)
    assert takes <= set(needs), f"say what {sorted(takes - set(needs))} need in _required"
    before = _state(walk)
    for path in sorted(takes):
        _one_mistake(walk, [*path, *_with_value(needs[path], "--mailbox", "nope")], before)
    code, _, err = walk.run("mailbox", "test", "nope")
    assert code == 2 and "no mailbox 'nope'" in err


def test_an_unknown_claim_is_a_usage_error_from_every_command_that_names_one(walked):
    walk, _ = walked
    names = {path for path, p in _commands(build_parser())
             for a in p._actions if not a.option_strings and a.metavar == "CLAIM"}
    assert names == set(CLAIM_ARGUMENTS), "say how to name a claim to each command in CLAIM_ARGUMENTS"
    before = _state(walk)
    for path, argv in sorted(CLAIM_ARGUMENTS.items()):
        _one_mistake(walk, [a.replace("{}", "BH00NOSUCH") for a in argv], before)
    # among known ones too: nothing is done for the known claim when another is unknown
    _one_mistake(walk, ["resubmit", walk.pcn("rejected"), "BH00NOSUCH"], before)


def test_a_bad_date_is_a_usage_error_from_every_command_that_takes_one(walked):
    walk, _ = walked
    dated = {(path, o) for path, p in _commands(build_parser())
             for a in p._actions if a.metavar == "YYYY-MM-DD" for o in a.option_strings}
    needs = _required(walk)
    assert {path for path, _ in dated} <= set(needs), "say what each dated command needs in _required"
    before = _state(walk)
    for path, option in sorted(dated):
        # one rule, YYYY-MM-DD: the basic form Python would also read is refused like 2026-1-1
        for bad in ("2026-02-30", "11/30/2026", "20261130", "2026-1-1"):
            _one_mistake(walk, [*path, *_with_value(needs[path], option, bad)], before)


def test_a_date_range_that_ends_before_it_starts_is_a_usage_error(walked):
    walk, _ = walked
    _one_mistake(walk, ["claims", "--since", "2026-12-01", "--until", "2026-11-01"], _state(walk))
    code, _, err = walk.run("claims", "--since", "2026-12-01", "--until", "2026-11-01")
    assert "--since 2026-12-01 is after --until 2026-11-01" in err


def test_a_request_the_hub_refuses_as_it_stands_is_a_usage_error(walked):
    """Nothing is wrong with the hub, the request is: exit code 2, as an unknown id is."""
    walk, results = walked
    matched = json.loads(results[("remit", "match")][1])["id"]
    resolved = json.loads(results[("denials", "resolve")][1])["id"]
    acted = json.loads(results[("denials", "act")][1])["id"]
    before = _state(walk)
    for argv in (["remit", "match", str(matched), walk.pcn("paid")],  # posted already
                 ["denials", "resolve", str(resolved), "--how", "again"],  # resolved already
                 ["denials", "act", str(acted), "write_off"],  # worked already
                 ["denials", "resolve", str(acted), "--how", "  "],  # says nothing was done (asked first)
                 ["resubmit", walk.pcn("rejected"), "--reason", " "],  # nor what was fixed
                 ["notice", "add", walk.pcn("denied"), "--signed-on", "2027-01-01"]):  # after the service
        _one_mistake(walk, [*argv, "--json"], before)


# --- the offset on both stores -------------------------------------------------------------------


def test_times_carry_their_offset_on_either_store(hub_home, tmp_path, capsys):
    """SQLite gives back naive times, PostgreSQL aware ones: both print as UTC with the offset."""
    from datetime import datetime, timedelta, timezone

    from bhhub.demo.synthetic import encounter_bundle

    visit = tmp_path / "visit.json"
    visit.write_text(json.dumps(encounter_bundle(4)))
    assert main(["--home", str(hub_home), "intake", str(visit)]) == 0
    capsys.readouterr()
    assert main(["--home", str(hub_home), "inbox", "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    received = datetime.fromisoformat(item["received_at"])
    assert received.utcoffset() is not None
    assert abs(received - datetime.now(timezone.utc)) < timedelta(minutes=5)  # UTC, not local time mislabelled
