"""``bhhub demo``: the whole path on the embedded default, start to finish, repeatable.

It builds a fresh hub under ``<home>/demo`` (its own SQLite store), writes sample EHR exports
(synthetic FHIR R4 bundles: one with a diagnosis category, one with a member id the payer will
not take, one truncated file), reads them, and exchanges the claims over real SFTP with bhhub's
sandbox clearinghouse (``plugins/clearinghouse/sandbox``), started on 127.0.0.1 with its own
host key, which the demo's mailbox pins, together with a 270 the eligibility sweep writes about
each patient. The sandbox answers with a 999, a 277CA, an 835 and a 271; the demo picks them up
and prints each claim's status and each patient's coverage from them, then checks the 837P it
sent with pyx12's implementation-guide validator.

The demo never touches a real hub. Whatever ``BHHUB_DATABASE_URL``, ``BHHUB_HOME`` or a practice's
``bhhub.toml`` say, it runs on its own SQLite store in its own folder, and each run starts from
nothing: the folder carries a marker, and a folder without one is never deleted.

The demo needs one plugin, the sandbox (it ships with the hub), and finds it as any caller would:
by its registered name (the ``sandbox`` entry point), through the plugin manager; the core never
imports a plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bhhub.errors import HubError, UsageError

SANDBOX_PLUGIN = "sandbox"  # the entry point the sandbox clearinghouse is registered under
SEEDS = (3, 5, 8, 11, 19, 23, 29, 31)
MARKER = ".bhhub-demo"  # this folder is the demo's: a run may delete it and start again
# What points the hub at a practice's data. The demo runs without them (and with BHHUB_HOME at its
# own folder, for the plugins that look for a practice's files there).
PRACTICE_ENVIRONMENT = ("BHHUB_HOME", "BHHUB_DATABASE_URL")


def cmd_demo(args: argparse.Namespace) -> int:
    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.cli.commands import _intake_line
    from bhhub.cli.eligibility import cmd_list as cmd_eligibility_list
    from bhhub.cli.remit import cmd_denials
    from bhhub.runtime.config import resolve_home
    from bhhub.eligibility.sweep import sweep
    from bhhub.exchange.cycle import exchange
    from bhhub.exchange.mailboxes import load_mailboxes
    from bhhub.store import schema

    home = _fresh_folder(resolve_home(args.home) / "demo")
    inbound = home / "exports"
    inbound.mkdir()
    _write_exports(inbound)

    print(f"bhhub demo: a fresh hub in {home}\n")
    with _own_environment(home), _sandbox_running(args, home) as (plugins, sandbox):
        _write_config(home, sandbox)
        print(f"0. the sandbox clearinghouse listens on 127.0.0.1:{sandbox.port} (SFTP); its host key "
              f"is pinned in {home / 'bhhub.toml'}")
        with Hub.open(home, plugins=plugins) as hub:
            print(f"\n1. intake: {len(SEEDS) + 2} FHIR R4 bundles (one with a diagnosis category instead of a "
                  "billable code, one with a member id the payer will not take) and one truncated file")
            for path in sorted(inbound.iterdir()):
                line = _intake_line(intake.receive(hub, path.read_bytes(), path.name))
                print("   " + line.replace("\n", "\n   "))
            print("\n2. the claims built (needs_attention: a check found an error; the fix is shown)")
            _claims(plugins, home)
            print("\n3. exchange with the clearinghouse over SFTP: upload the 837P and a 270 asking about each "
                  "patient's coverage (the eligibility sweep), pick up what comes back")
            swept = sweep(hub)
            print(f"   {swept.summary()}")
            report = exchange(hub, load_mailboxes(hub)["sandbox"])
            if not report.ok:
                print(f"   the exchange failed: {report.error}")
                return 1
            for sent in report.sent:
                what = f"{sent.claims} claims" if sent.kind == "837P" else f"{sent.kind} inquiry"
                print(f"   sent      {sent.remote_name}: {what}")
            for picked in report.picked_up:
                print(f"   received  {picked.name}: {picked.reason or picked.outcome}")
            print("\n4. each claim's status from the 999, 277CA and 835 the clearinghouse sent back")
            _claims(plugins, home)
            print("\n5. the denial worklist (oldest deadline first) and what is still owed")
            namespace = argparse.Namespace(home=home, all=False, json=False, plugin_host=plugins)
            cmd_denials(namespace)
            _ar_summary(hub)
            print("\n6. what each payer said about coverage (the 271s): active, copay, visits left, "
                  "authorization required")
            cmd_eligibility_list(argparse.Namespace(home=home, patient=None, json=False,
                                                    plugin_host=plugins))
            with hub.store.session() as session:
                batch = session.query(schema.Batch).filter(schema.Batch.kind == "837P").order_by(schema.Batch.id).first()
                content = batch.content if batch else None
    if content is None:
        print("   no claim was ready to bill")
        return 1
    out = home / "out" / "demo-837p.x12"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    print(f"\nthe 837P sent: {out}")
    checked = _validate(out)
    if getattr(args, "serve", False):
        return _serve(args, home) or checked
    return checked


def _serve(args: argparse.Namespace, home: Path) -> int:
    """Leave the demo's hub open in the workspace, with a biller and a viewer to sign in as
    (new passwords each run, printed once; the biller enrols a one-time code at first sign-in)."""
    import secrets

    from bhhub.accounts import add_user
    from bhhub.cli.serve import serve
    from bhhub.runtime.app import Hub

    print("\n7. the workspace on the demo's hub")
    with _own_environment(home), Hub.open(home, plugins=_plugin_host(args)) as hub:
        for name, role in (("biller", "biller"), ("viewer", "viewer")):
            password = secrets.token_urlsafe(12)
            add_user(hub, name, role, password)
            print(f"   sign in as {name:6} password {password}" + (
                "  (then scan the QR code with an authenticator app)" if role == "biller" else
                "  (figures and claims by id, no patient data)"))
        return serve(hub, port=getattr(args, "port", None), users_hint=False)


@contextmanager
def _sandbox_running(args: argparse.Namespace, home: Path) -> Iterator[tuple]:
    """The plugins, loaded in the demo's own environment, and the sandbox they hold, serving."""
    plugins = _plugin_host(args)
    with _sandbox_server(plugins)(home / "sandbox") as sandbox:
        yield plugins, sandbox


def _plugin_host(args: argparse.Namespace):
    """The plugins, loaded once for the whole run (the command line may hand over a builder)."""
    from bhhub.runtime.plugin_host import PluginHost, build_plugin_host

    given = getattr(args, "plugin_host", None)
    if isinstance(given, PluginHost):
        return given
    return given() if callable(given) else build_plugin_host()


def _sandbox_server(plugins):
    """The sandbox plugin's server class (``SandboxClearinghouse(root)``, a context manager)."""
    sandbox = plugins.plugin(SANDBOX_PLUGIN)  # a HubError says why when it is missing
    try:
        return sandbox.SandboxClearinghouse
    except (ImportError, AttributeError) as exc:  # its server needs paramiko and pyx12
        raise HubError(f"bhhub demo needs the sandbox clearinghouse plugin's server, which did not load "
                       f"({type(exc).__name__}: {exc})") from None


def _fresh_folder(home: Path) -> Path:
    """``home`` emptied for a new run, with the marker that says it is the demo's."""
    parent = home.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{parent} is a file, not a folder: give --home a folder")
    if home.exists() or home.is_symlink():
        if home.is_symlink() or not home.is_dir():
            raise UsageError(f"{home} is in the way of the demo's folder and is not a folder; move it")
        if not _made_by_demo(home):
            raise UsageError(f"{home} was not made by `bhhub demo`; the demo deletes its folder on each run, "
                             "so move that folder or give another --home")
        shutil.rmtree(home)
    home.mkdir(mode=0o700, parents=True)
    (home / MARKER).write_text("made by `bhhub demo`; deleted and made again by each run\n", encoding="utf-8")
    return home


def _made_by_demo(folder: Path) -> bool:
    config = folder / "bhhub.toml"
    try:  # folders made before the marker existed carry the demo's own bhhub.toml
        older = config.is_file() and config.read_text(encoding="utf-8").startswith("# written by `bhhub demo`")
    except (OSError, UnicodeDecodeError):
        older = False
    return (folder / MARKER).is_file() or older


@contextmanager
def _own_environment(home: Path) -> Iterator[None]:
    """The process's environment as the demo needs it: no practice database, the demo's home.

    Every hub the demo opens (its own, and those the listing commands open again by folder)
    then reads the demo's ``bhhub.toml`` and store, never the ones the environment names.
    """
    saved = {name: os.environ.get(name) for name in PRACTICE_ENVIRONMENT}
    os.environ.pop("BHHUB_DATABASE_URL", None)
    os.environ["BHHUB_HOME"] = str(home)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _write_exports(inbound: Path) -> None:
    # Visits from the last two months, so they are always within every payer's filing window.
    from bhhub.runtime import clock
    from bhhub.demo.synthetic import encounter_bundle

    start = clock.today() - timedelta(days=60)
    for seed in SEEDS:
        (inbound / f"encounter-{seed:03d}.json").write_text(json.dumps(encounter_bundle(seed, start=start), indent=1))
    # A visit coded with a diagnosis category (F41) instead of a billable code: the checks keep it
    # out of the batch and say how to fix it.
    vague = encounter_bundle(37, start=start)
    for entry in vague["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"]["coding"][0]["code"] = "F41"
    (inbound / "encounter-037-vague-diagnosis.json").write_text(json.dumps(vague, indent=1))
    # A member id typed with a dash: the hub cannot know the payer's format, the clearinghouse
    # rejects the claim in its 277CA, and the biller sees why.
    typo = encounter_bundle(41, start=start)
    for entry in typo["entry"]:
        if entry["resource"]["resourceType"] == "Coverage":
            entry["resource"]["subscriberId"] = entry["resource"]["subscriberId"][:4] + "-" + \
                entry["resource"]["subscriberId"][4:]
    (inbound / "encounter-041-member-id-typo.json").write_text(json.dumps(typo, indent=1))
    good = (inbound / f"encounter-{SEEDS[0]:03d}.json").read_text()
    (inbound / "zz-truncated-export.json").write_text(good[: len(good) // 2])


def _write_config(home: Path, sandbox) -> None:
    """A mailbox for the sandbox: its pinned host key, and the password by file reference."""
    password_file = home / "sandbox.password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(sandbox.password)
    (home / "bhhub.toml").write_text(
        "# written by `bhhub demo`\n"
        "[store]                                  # the demo's own, whatever BHHUB_DATABASE_URL says\n"
        f'url = "sqlite:///{home / "bhhub.db"}"\n'
        "\n"
        "[mailboxes.sandbox]\n"
        'profile = "sandbox"                      # mappings/clearinghouses/sandbox.toml\n'
        'host = "127.0.0.1"\n'
        f"port = {sandbox.port}\n"
        f'username = "{sandbox.username}"\n'
        f'password_file = "{password_file}"\n'
        f'known_hosts = ["{sandbox.known_hosts_line}"]\n'
        "connect_timeout = 10\n"
        "operation_timeout = 30\n",
        encoding="utf-8",
    )


def _ar_summary(hub) -> None:
    from bhhub.remittance.ar import ar_report, percent

    with hub.store.session() as session:
        figures = ar_report(session).figures
    print(f"   A/R: insurance {figures['insurance_ar']}, patient {figures['patient_ar']}; denial rate "
          f"{percent(figures['denial_rate_count'])} of claims with an 835; net collection rate "
          f"{percent(figures['net_collection_rate'])}"
          f" (`bhhub ar` for aging and formulas)")


def _claims(plugins, home: Path) -> None:
    from bhhub.cli.commands import cmd_claims

    cmd_claims(argparse.Namespace(home=home, status=None, json=False, plugin_host=plugins))


def _validate(path: Path) -> int:
    try:
        from bhhub.x12.validate import validate_x12

        errors = validate_x12(path.read_bytes())
    except ImportError:
        print("(pyx12 is not installed; `pip install pyx12` and run x12valid on the file to check it)")
        return 0
    if errors:
        print(f"pyx12 found {len(errors)} errors:")
        for error in errors[:10]:
            print(f"  {error}")
        return 1
    print("pyx12 validator (005010X222A1): no errors")
    return 0
