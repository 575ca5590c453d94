"""A plugin author's story: `bhhub plugin new` writes a package that installs in a fresh virtual
environment and passes its own tests there (the bhhub.testing contract kit); and the kit fails
plugins that break the contract."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

import bhhub
import bhhub.plugins.ehr.fhir_r4 as fhir_r4
from conftest import FIXTURES
from bhhub.cli.main import main
from bhhub.scaffold import generate
from bhhub.testing import ContractFailure, clearinghouse, ehr, payer_portal, transaction
from bhhub.testing.common import check_no_network_at_import, check_registers_cleanly

# --- a fresh virtual environment that sees this bhhub, installed without the network ---------


def fresh_venv(where: Path) -> Path:
    """A new venv whose only view of bhhub (and pytest, pyx12...) is this environment's
    site-packages, added with a .pth file; returns its python. No pip download, no network."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, capture_output=True)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]  # where bhhub is installed (editable) and its dependencies
    # bhhub itself comes through its editable install's finder in ``ours``: under the name bhhub
    # only, as from a wheel (the repository's folders are not on this venv's path).
    Path(purelib, "bhhub_under_test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def _can_build_wheels(python: Path) -> bool:
    probe = ("import importlib.util, setuptools; v = tuple(int(p) for p in setuptools.__version__.split('.')[:2]); "
             "raise SystemExit(0 if v >= (70, 1) or importlib.util.find_spec('wheel') else 1)")
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def install(python: Path, package: Path) -> subprocess.CompletedProcess:
    """Install ``package`` (editable, no dependencies, no build isolation: no network)."""
    if _can_build_wheels(python):
        command = [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "-e", str(package)]
    else:
        # setuptools older than 70.1 builds wheels (and so pip's editable installs) only with the
        # `wheel` package; without it, setuptools' own editable install reads the same
        # pyproject.toml (metadata, src layout, package data, the bhhub entry point).
        command = [str(python), "-c", "from setuptools import setup; setup()", "-q", "develop", "--no-deps"]
    done = subprocess.run(command, cwd=package, capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 0, f"installing {package.name} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BHHUB_HOME", "BHHUB_DATABASE_URL")}
    env["PIP_NO_INDEX"] = "1"  # never the network, whatever pip.conf says
    return env


def run_in(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, env=_clean_env(),
                          timeout=300)


def bhhub_in(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_in(python, "-c", "import sys; from bhhub.cli.main import main; sys.exit(main(sys.argv[1:]))",
                  *args, cwd=cwd)


# --- the generated package, installed and tested in a fresh environment --------------------

FAMILIES = {"ehr": "acme_ehr", "clearinghouse": "acme_mailbox", "payer-portal": "acme_portal",
            "transaction": "acme_receipts"}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_generated_plugin_installs_in_a_fresh_venv_and_passes_its_contract_tests(family, tmp_path, capsys):
    name = FAMILIES[family]
    assert main(["plugin", "new", family, name, "--out", str(tmp_path / "work")]) == 0
    assert f"wrote {family} plugin {name}" in capsys.readouterr().out
    package = tmp_path / "work" / name
    python = fresh_venv(tmp_path / "venv")
    install(python, package)

    tests = run_in(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=package)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "skipped" not in tests.stdout  # the entry-point check ran too

    listing = bhhub_in(python, package, "plugins", "--json")  # no hub needed
    assert listing.returncode == 0, listing.stderr
    mine = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}[name]
    assert mine["loaded"] and mine["distribution"] == f"bhhub-{name.replace('_', '-')}"


def test_the_generated_ehr_plugin_bills_its_golden_file_through_bhhub_intake(tmp_path):
    package = generate("ehr", "acme_clinic", tmp_path / "work")
    python = fresh_venv(tmp_path / "venv")
    install(python, package)
    home = str(tmp_path / "home")
    assert bhhub_in(python, package, "--home", home, "init").returncode == 0  # bhhub makes a hub only with `init`
    intake = bhhub_in(python, package, "--home", home, "intake", "tests/goldens/two-visits.txt", "--json")
    assert intake.returncode == 0, intake.stdout + intake.stderr
    [result] = json.loads(intake.stdout)
    assert result["format"] == "acme-clinic-visits"
    assert [c["status"] for c in result["claims"]] == ["ready", "ready"]


# --- `bhhub plugin new` refuses clearly -----------------------------------------------------


def test_plugin_new_refuses_an_existing_folder_and_changes_nothing(tmp_path, capsys):
    (tmp_path / "acme_ehr").mkdir()
    (tmp_path / "acme_ehr" / "mine.txt").write_text("keep")
    assert main(["plugin", "new", "ehr", "acme_ehr", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already exists; nothing was written" in err and "Traceback" not in err
    assert [p.name for p in (tmp_path / "acme_ehr").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("name,reason", [
    ("AcmeEHR", "capital letters"), ("acme ehr", "not usable"), ("1acme", "not usable"), ("acme__ehr", "not usable"),
    ("class", "clash"), ("json", "clash"), ("hub", "clash"), ("acme-", "not usable"),
])
def test_plugin_new_refuses_a_name_python_or_pypi_cannot_use(name, reason, tmp_path, capsys):
    assert main(["plugin", "new", "ehr", name, "--out", str(tmp_path)]) == 2
    assert reason in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_dashed_name_becomes_an_importable_package_and_a_dashed_distribution(tmp_path):
    package = generate("payer-portal", "acme-portal", tmp_path)
    assert package.name == "acme_portal" and (package / "src" / "acme_portal" / "__init__.py").is_file()
    assert 'name = "bhhub-acme-portal"' in (package / "pyproject.toml").read_text()
    assert 'acme_portal = "acme_portal"' in (package / "pyproject.toml").read_text()


def test_plugin_without_an_action_says_what_to_do_and_plugins_still_lists(tmp_path, capsys):
    assert main(["plugin"]) == 2
    assert "bhhub plugin new FAMILY NAME" in capsys.readouterr().err
    assert main(["plugins", "--json"]) == 0  # no hub needed
    assert "fhir_r4" in capsys.readouterr().out


# --- the kit fails what breaks the contract -------------------------------------------------


def _generated_module(tmp_path: Path, family: str, edit=None):
    """Generate a plugin under a unique name, apply ``edit(package_dir, name)``, import it."""
    name = f"kit_{uuid.uuid4().hex[:8]}"
    package = generate(family, name, tmp_path)
    if edit:
        edit(package, name)
    sys.path.insert(0, str(package / "src"))
    try:
        return importlib.import_module(name), package
    finally:
        sys.path.remove(str(package / "src"))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_the_kit_passes_the_plugin_as_generated(tmp_path):
    module, package = _generated_module(tmp_path, "ehr")
    results = ehr.check_plugin(module, package / "tests" / "goldens", check_import=False)
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 2


def test_goldens_that_need_a_practice_mapping_pass_with_it_and_fail_without_it(tmp_path):
    module, package = _generated_module(tmp_path, "ehr", lambda p, n: _replace(
        p / "tests" / "goldens" / "two-visits.txt", "|member_id|", "|insurance_number|"))
    practice = tmp_path / "practice-mappings"
    (practice / "ehr").mkdir(parents=True)
    (practice / "ehr" / f"{module.__name__}.toml").write_text('[fields]\nmember_id = "insurance_number"\n')
    goldens = package / "tests" / "goldens"
    with pytest.raises(ContractFailure, match="member_id is empty"):
        ehr.check_plugin(module, goldens, check_import=False)
    results = ehr.check_plugin(module, goldens, check_import=False, mappings_dir=practice)
    assert results["goldens become ready claims in a valid 837P"]["claims"] == 2


def test_the_kit_fails_an_ehr_plugin_whose_parser_raises_value_error(tmp_path):
    def unguarded_dates(package, name):
        _replace(package / "src" / name / "encounters.py",
                 "    try:\n        return date.fromisoformat(value)\n"
                 "    except ValueError:\n        raise InputError(f\"{field} is not a date (YYYY-MM-DD)\", "
                 "where=where) from None\n",
                 "    return date.fromisoformat(value)\n")

    module, package = _generated_module(tmp_path, "ehr", unguarded_dates)
    with pytest.raises(ContractFailure, match=r"parse raised ValueError \(not a bhhub.errors.HubError\)"):
        ehr.check_plugin(module, package / "tests" / "goldens", check_import=False)


def test_the_kit_fails_a_plugin_that_logs_patient_names(tmp_path):
    def chatty(package, name):
        _replace(package / "src" / name / "reader.py", "    seen: dict[str, str] = {}\n",
                 "    seen: dict[str, str] = {}\n    log.info('read %s', encounters[0].patient.name.family)\n")

    module, package = _generated_module(tmp_path, "ehr", chatty)
    with pytest.raises(ContractFailure, match="logged patient data"):
        ehr.check_goldens_parse(ehr.check_registers_formats(module), ehr.golden_files(package / "tests" / "goldens"))


def test_the_kit_fails_a_golden_whose_claim_is_not_ready_and_names_the_finding(tmp_path):
    module, package = _generated_module(tmp_path, "ehr", lambda p, n: _replace(
        p / "tests" / "goldens" / "two-visits.txt", "|F33.1 F41.1", "|F99.99"))
    with pytest.raises(ContractFailure, match=r"1 claim\(s\) not ready: .*F99.99"):
        ehr.check_goldens_become_claims(module, ehr.golden_files(package / "tests" / "goldens"))


def test_the_kit_fails_a_recognizer_that_raises_on_binary(tmp_path):
    module, package = _generated_module(tmp_path, "ehr", lambda p, n: _replace(
        p / "src" / n / "reader.py", "    head = content[:256]\n", "    head = content[:256].decode('utf-8').encode()\n"))
    with pytest.raises(ContractFailure, match="recognizes raised UnicodeDecodeError on random binary"):
        ehr.check_recognizes_any_bytes(ehr.check_registers_formats(module), [])


def _receipt_sample(package: Path) -> bytes:
    return (package / "tests" / "samples" / "receipt.x12").read_bytes()


def test_the_kit_passes_the_transaction_plugin_as_generated(tmp_path):
    module, package = _generated_module(tmp_path, "transaction")
    results = transaction.check_plugin(module, {module.KIND: _receipt_sample(package)}, check_import=False)
    assert "rejection(s) raised" in results[f"{module.KIND}: applied once"]["first"].summary


def test_the_kit_fails_a_transaction_whose_apply_is_not_a_no_op_on_a_repeat(tmp_path):
    module, package = _generated_module(tmp_path, "transaction", lambda p, n: _replace(
        p / "src" / n / "receipt.py", "        elif _open_alert(context.session, key) is None:\n",
        "        else:\n"))
    with pytest.raises(ContractFailure, match=r"changed things the second time: alerts 1 -> 2 rows"):
        transaction.check_applies_once(module, module.KIND, _receipt_sample(package))


def test_the_kit_fails_a_transaction_whose_sample_is_under_another_guide(tmp_path):
    module, package = _generated_module(tmp_path, "transaction")
    sample = _receipt_sample(package).replace(b"*X*005010", b"*X*004010")
    with pytest.raises(ContractFailure, match=r"recognized as X12 \(ST01 864, GS08 004010"):
        transaction.check_recognizes(module, module.KIND, sample)


def test_the_kit_fails_a_transaction_that_claims_a_builtin_kinds_transaction_set(tmp_path):
    def steal_835s(package, name):
        init = package / "src" / name / "__init__.py"
        text = re.sub(r'"864",(\s+)read_receipts, apply_receipts, guides=\("\w+",\)\)',
                      r'"835",\1read_receipts, apply_receipts)', init.read_text())
        assert '"835"' in text
        init.write_text(text)

    module, _ = _generated_module(tmp_path, "transaction", steal_835s)
    with pytest.raises(ContractFailure, match=r"already claimed by '835' of plugin 'remit_transactions'"):
        transaction.check_registers_transactions(module)


def test_the_kit_fails_a_misspelt_hook(tmp_path):
    module, _ = _generated_module(tmp_path, "ehr", lambda p, n: _replace(
        p / "src" / n / "__init__.py", "def bhhub_register_intake_formats()", "def bhhub_register_intake_format()"))
    with pytest.raises(ContractFailure, match="implements a hook bhhub does not specify"):
        check_registers_cleanly(module)


def test_the_kit_fails_a_plugin_that_reaches_the_network_at_import_even_if_it_swallows_the_error(tmp_path):
    name = f"kit_{uuid.uuid4().hex[:8]}"
    package = generate("payer-portal", name, tmp_path)
    _replace(package / "src" / name / "__init__.py", "MAPPING_FILE = ",
             "import socket\ntry:\n    socket.create_connection(('portal.example.com', 443), timeout=1)\n"
             "except OSError:\n    pass\nMAPPING_FILE = ")
    sys.path.insert(0, str(package / "src"))  # never imported here: only the kit's guarded probe runs it
    try:
        with pytest.raises(ContractFailure, match=r"reached for the network: getaddrinfo\(portal.example.com\)"):
            check_no_network_at_import(name)
    finally:
        sys.path.remove(str(package / "src"))


def test_the_kit_fails_a_payer_portal_that_answers_for_every_payer(tmp_path):
    module, _ = _generated_module(tmp_path, "payer-portal", lambda p, n: _replace(
        p / "src" / n / "__init__.py", "    if coverage.payer.payer_id not in portal.payer_ids:\n        return None\n",
        "    return {t: {'active': True} for t in service_types}\n"))
    with pytest.raises(ContractFailure, match="answered for payer 'ZZ-NO-SUCH-PAYER'"):
        payer_portal.check_not_my_payer(module)


def test_the_kit_fails_a_transport_whose_settings_check_raises_key_error(tmp_path):
    module, _ = _generated_module(tmp_path, "clearinghouse", lambda p, n: _replace(
        p / "src" / n / "settings.py", "        root = table.get(\"root\")\n", "        root = table[\"root\"]\n"))
    with pytest.raises(ContractFailure, match="raised KeyError on an empty table"):
        clearinghouse.check_plugin(module, settings={module.TRANSPORT.name: {"root": "/srv/x"}}, check_import=False)


# --- the kit is not tailored to the templates: bhhub's own plugins pass it ---------------------


def test_the_builtin_fhir_plugin_and_sftp_transport_pass_the_kit(tmp_path):
    for name in ("lcsw-office-90837.json", "primary-secondary.json", "telehealth-video-45min.json"):
        (tmp_path / name).write_bytes((FIXTURES / "fhir" / name).read_bytes())
        expected = f"{name}.expected.json"  # what each must read as (bhhub.testing.expected)
        (tmp_path / expected).write_bytes((FIXTURES / "contract" / "fhir" / expected).read_bytes())
    (tmp_path / "refused").mkdir()
    (tmp_path / "refused" / "bad-no-coverage.json").write_bytes((FIXTURES / "fhir" / "bad-no-coverage.json").read_bytes())
    results = ehr.check_plugin(fhir_r4, tmp_path, entry_point="fhir_r4")
    assert results["goldens become ready claims in a valid 837P"] == {"claims": 3, "pyx12": "valid"}

    import bhhub.connectors.sftp as sftp

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    clearinghouse.check_plugin(sftp, entry_point="sftp", settings={"sftp": {
        "host": "sftp.example.com", "username": "practice", "password_env": "X", "known_hosts": [key]}})
