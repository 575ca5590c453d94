"""bhhub.toml is a strict model: an unknown key or a wrong type is one clear error naming the
file, the key by its dotted path and the nearest valid key; nothing is silently ignored."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from bhhub.runtime.config import DEFAULT_CONFIG, load_settings
from bhhub.configuration.hub_file import (MAILBOX_KEYS, InterchangeOverrides, Listen, Section, hub_file_model,
                                        load_hub_file)
from bhhub.errors import ConfigError

# [listen] belongs to the mllp connector, which checks it as strictly when `bhhub listen` starts.
CHECKED_SECTIONS = [(key, cls) for key, cls in Section.registry.items() if cls is not Listen]
MAILBOX = {"profile": "generic", "host": "sftp.example.invalid"}


def _write(home, text: str):
    home.mkdir(exist_ok=True)
    (home / "bhhub.toml").write_text(text, encoding="utf-8")
    return home


def _typo(key: str) -> str:
    """A key one letter away from ``key``, as a person mistypes it."""
    return key[:-1] if len(key) > 3 else key + key[-1]


@pytest.mark.parametrize("section,field", [(key, name) for key, cls in CHECKED_SECTIONS for name in cls.model_fields])
def test_a_misspelt_key_in_any_section_is_refused_naming_file_key_and_nearest(tmp_path, section, field):
    home = _write(tmp_path / "home", f'[{section}]\n{_typo(field)} = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(home)
    message = str(caught.value)
    assert str(home / "bhhub.toml") in message
    assert f"unknown key '{section}.{_typo(field)}'" in message
    assert f"did you mean '{field}'?" in message
    assert "\n" not in message


@pytest.mark.parametrize("field", list(InterchangeOverrides.model_fields))
def test_a_misspelt_key_in_a_mailbox_interchange_is_refused_with_the_nearest(tmp_path, field):
    home = _write(tmp_path / "home", '[mailboxes.oa]\nprofile = "office_ally"\n'
                                     f'[mailboxes.oa.interchange]\n{_typo(field)} = "x"\n')
    with pytest.raises(ConfigError, match=rf"unknown key 'mailboxes\.oa\.interchange\.{_typo(field)}' "
                                          rf"\(did you mean '{field}'\?\)"):
        load_settings(home)


@pytest.mark.parametrize("key", sorted(set(MAILBOX_KEYS) - {"interchange"}))
def test_a_misspelt_mailbox_key_is_not_passed_to_the_transport_as_its_own(tmp_path, key):
    table = {k: v for k, v in MAILBOX.items() if k != key}
    lines = "".join(f'{k} = "{v}"\n' for k, v in table.items())
    home = _write(tmp_path / "home", f'[mailboxes.oa]\n{lines}{_typo(key)} = "x"\n')
    with pytest.raises(ConfigError, match=rf"mailboxes\.oa\.{_typo(key)}' \(did you mean '{key}'\?\)"):
        load_settings(home)


def test_a_mailbox_keeps_the_transport_settings_apart_from_its_own(tmp_path):
    home = _write(tmp_path / "home", '[mailboxes.oa]\nprofile = "office_ally"\nschedule = "*/15 * * * *"\n'
                                     'host = "sftp.example.invalid"\nport = 22\n')
    mailbox = load_settings(home).file.mailboxes["oa"]
    assert (mailbox.profile, mailbox.transport, mailbox.schedule) == ("office_ally", "sftp", "*/15 * * * *")
    assert mailbox.connection == {"host": "sftp.example.invalid", "port": 22}


def test_a_misspelt_section_is_refused_with_the_nearest_section(tmp_path):
    home = _write(tmp_path / "home", '[mailbox.oa]\nprofile = "generic"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'mailbox' \(did you mean 'mailboxes'\?\)"):
        load_settings(home)


@pytest.mark.parametrize("section,field", [(key, name) for key, cls in CHECKED_SECTIONS for name in cls.model_fields])
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(tmp_path, section, field):
    home = _write(tmp_path / "home", f"[{section}]\n{field} = [1, 2]\n")  # a list fits no setting
    with pytest.raises(ConfigError, match=rf"{section}\.{field} must be"):
        load_settings(home)


@pytest.mark.parametrize("text,key", [
    ('[submitter]\nphone = 5555550100\n', "submitter.phone must be a string"),  # leading zeros would be lost
    ('[interchange]\nusage_indicator = "X"\n', "interchange.usage_indicator must be one of 'T' or 'P'"),
    ('[interchange]\nsender_id = "ABCDEFGHIJKLMNOP"\n', "interchange.sender_id must have at most 15 characters"),
    ('[interchange]\nsender_qualifier = "XX"\n', "interchange.sender_qualifier must be one of"),
    ('[eligibility]\nprovider_npi = "12345"\n', "eligibility.provider_npi must be 10 digits"),
    ('[mailboxes.oa]\nhost = "h"\n', "required key 'mailboxes.oa.profile' is missing"),
])
def test_a_bad_value_names_its_key_and_never_repeats_the_value(tmp_path, text, key):
    home = _write(tmp_path / "home", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(home)
    assert key in str(caught.value)
    value = tomllib.loads(text)
    shown = [v for table in value.values() for v in table.values() if isinstance(v, str) and len(v) > 2]
    assert not any(v in str(caught.value).replace(key, "") for v in shown)


def test_what_bhhub_init_writes_is_the_model_defaults(tmp_path):
    written = load_hub_file(tomllib.loads(DEFAULT_CONFIG), "bhhub.toml")
    assert written == load_hub_file({}, "bhhub.toml")
    assert load_settings(tmp_path / "no-file").envelope.usage_indicator == "T"


def test_a_new_section_is_one_class(tmp_path):
    class Routing(Section, key="routing_under_test"):
        default_mailbox: str | None = None

    try:
        home = _write(tmp_path / "home", '[routing_under_test]\ndefault_mailbox = "oa"\n')
        assert load_settings(home).section(Routing).default_mailbox == "oa"
        assert load_settings(tmp_path / "empty").section(Routing).default_mailbox is None
        _write(home, '[routing_under_test]\ndefault_mailbx = "oa"\n')
        with pytest.raises(ConfigError, match="did you mean 'default_mailbox'"):
            load_settings(home)
    finally:
        del Section.registry["routing_under_test"]
    assert "routing_under_test" not in hub_file_model().model_fields


def test_the_cli_prints_a_config_error_as_one_line_and_exits_1(tmp_path):
    home = _write(tmp_path / "home", '[mailboxes.oa]\nprofile = "office_ally"\n'
                                     '[mailboxes.oa.interchange]\nsender_idd = "PRACTICE1"\n')
    done = subprocess.run([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "claims"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "bhhub.toml" in lines[0] and "'mailboxes.oa.interchange.sender_idd'" in lines[0]
    assert "did you mean 'sender_id'?" in lines[0]


# --- payers.toml, the payer table a practice edits --------------------------------------------------


@pytest.mark.parametrize("text,problem", [
    ('[payer."87726"]\nremitance_ids = ["ERA-1"]\n', "unknown key 'payer.87726.remitance_ids' (did you mean 'remittance_ids'?)"),
    ('[payers."87726"]\nname = "X"\n', "unknown key 'payers' (did you mean 'payer'?)"),
    ('[payer."87726"]\nclaim_filing_indicator = "commercial"\n', "payer.87726.claim_filing_indicator must be a code"),
    ('[payer."87726"]\nremittance_ids = "ERA-1"\n', "payer.87726.remittance_ids must be a list"),
])
def test_a_mistake_in_the_payer_table_is_refused_naming_file_key_and_nearest(tmp_path, text, problem):
    from bhhub.errors import MappingError
    from bhhub.runtime.mapping_tables import MappingSet

    (tmp_path / "payers.toml").write_text(text)
    with pytest.raises(MappingError) as caught:
        MappingSet(override_dir=tmp_path).load("payers.toml")
    assert problem in str(caught.value)
    assert str(tmp_path / "payers.toml") in str(caught.value)


def test_the_packaged_payer_table_and_a_correct_override_load(tmp_path):
    from bhhub.runtime.mapping_tables import MappingSet

    (tmp_path / "payers.toml").write_text('[payer."87726"]\nname = "A PLAN"\nremittance_ids = ["ERA-1"]\n'
                                          'claim_filing_indicator = "CI"\n[payer."87726".telehealth]\nvideo_modifier = "95"\n')
    assert MappingSet(override_dir=tmp_path).load("payers.toml")["payer"]["87726"]["remittance_ids"] == ["ERA-1"]
    assert "telehealth" in MappingSet().load("payers.toml")


def test_a_misspelt_transport_setting_is_refused_by_the_transport_with_the_nearest(tmp_path):
    from types import SimpleNamespace

    from bhhub.connectors.sftp import bhhub_register_transports
    from bhhub.exchange.mailboxes import load_mailboxes
    from bhhub.runtime.mapping_tables import MappingSet

    home = _write(tmp_path / "home", '[mailboxes.oa]\nprofile = "office_ally"\nhots = "sftp.example.invalid"\n'
                                     'username = "u"\npassword_env = "X"\nknown_hosts = []\n')
    settings = load_settings(home)
    hub = SimpleNamespace(settings=settings, mappings=MappingSet(override_dir=settings.mappings_dir), transports=bhhub_register_transports())
    with pytest.raises(ConfigError, match=r"\[mailboxes\.oa\].*unknown setting 'hots' \(did you mean 'host'\?\)"):
        load_mailboxes(hub)


# --- practices.toml, the HL7 feeds' billing providers ---------------------------------------------------


def test_a_misspelt_key_in_a_practice_profile_names_the_nearest(tmp_path):
    from bhhub.errors import MappingError
    from bhhub.runtime.mapping_tables import MappingSet
    from bhhub.plugins.ehr.hl7v2.practices import load_practices

    (tmp_path / "ehr").mkdir()
    (tmp_path / "ehr" / "practices.toml").write_text(
        '[practices.SUNRISE_BH]\nnpi = "1234567893"\norganisation_name = "Sunrise"\ntin = "123456789"\n'
        '[practices.SUNRISE_BH.address]\nline1 = "1 Main"\ncity = "Springfield"\nstate = "IL"\npostal_code = 627011234\n')
    with pytest.raises(MappingError) as caught:
        load_practices(MappingSet(override_dir=tmp_path))
    text = str(caught.value)
    assert "unknown key 'practices.SUNRISE_BH.organisation_name' (did you mean 'organization_name'?)" in text
    assert "'practices.SUNRISE_BH.organization_name' is missing" in text
    assert "practices.SUNRISE_BH.address.postal_code must be a string" in text  # a ZIP keeps its leading zero
