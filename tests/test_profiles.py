"""Clearinghouse profiles are checked by one strict model, and test stays test: ISA15 is the hub's,
which a profile or a mailbox may only narrow to test."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

from bhhub.runtime.config import load_settings
from bhhub.errors import ConfigError
from bhhub.exchange.mailboxes import load_mailboxes, outbound_envelope
from bhhub.exchange.profiles import SUPPLIABLE, ProfileFile, load_profile
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.types import Transport

NOT_PROFILES = {"sandbox_rules.toml"}  # the sandbox clearinghouse's own rules live beside the profiles
PROFILES = sorted(p.name.removesuffix(".toml") for p in resources.files("bhhub.mappings").joinpath("clearinghouses").iterdir()
                  if p.name.endswith(".toml") and p.name not in NOT_PROFILES)
PUBLISHED = ("availity", "optum_change_healthcare", "waystar", "trizetto")
TRANSPORT = Transport(name="sftp", description="fake", configure=lambda table, where: table,
                      connect=lambda settings: None, test=lambda settings, directories: None)
# What a practice fills in for a key its profile leaves to it.
FILLED = {"interchange.sender_id": "PRACTICE01", "interchange.receiver_id": "CHRECEIVER",
          "interchange.receiver_qualifier": "ZZ", "interchange.sender_qualifier": "ZZ",
          "interchange.submitter_id": "PRACTICE01", "interchange.application_sender_code": "PRACTICE01",
          "interchange.application_receiver_code": "CHRECEIVER",
          "folders.outbound": "/practice/in", "folders.inbound": "/practice/out", "folders.archive": "/practice/done",
          "upload.method": "direct", "upload.file_name": "{sender_id}_{date}{time}_{isa13}.837",
          "upload.outbound_names.270": "{sender_id}_{isa13}.270", "upload.outbound_names.276": "{sender_id}_{isa13}.276"}


def _hub(home: Path, hub_usage: str, mailboxes: dict[str, tuple[str, dict]]):
    """A hub home with ``[interchange] usage_indicator`` and one mailbox per (profile, its interchange)."""
    text = f'[interchange]\nusage_indicator = "{hub_usage}"\n'
    for name, (profile, interchange) in mailboxes.items():
        text += f'[mailboxes.{name}]\nprofile = "{profile}"\nhost = "sftp.example.invalid"\n'
        if interchange:
            text += f"[mailboxes.{name}.interchange]\n" + "".join(f'{k} = "{v}"\n' for k, v in interchange.items())
    home.mkdir(parents=True, exist_ok=True)
    (home / "bhhub.toml").write_text(text, encoding="utf-8")
    settings = load_settings(home)
    return SimpleNamespace(settings=settings, mappings=MappingSet(override_dir=settings.mappings_dir),
                           transports=[TRANSPORT])


def _fill_in(home: Path, key: str) -> dict:
    """The practice's part of profile ``key``: its copy of the file keys (written under the home's
    mappings/), and the mailbox interchange ids it must give (returned)."""
    supplied = load_profile(MappingSet(), key).practice_supplies
    files = [k for k in supplied if not k.startswith("interchange.")]
    if files:
        folder = home / "mappings" / "clearinghouses"
        folder.mkdir(parents=True, exist_ok=True)
        sections: dict[str, list[str]] = {}
        for k in files:
            section, _, rest = k.partition(".")
            if rest.startswith("outbound_names."):
                rest = f'outbound_names."{rest.removeprefix("outbound_names.")}"'
            sections.setdefault(section, []).append(f'{rest} = "{FILLED[k]}"')
        (folder / f"{key}.toml").write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))
    return {k.removeprefix("interchange."): FILLED[k] for k in supplied if k.startswith("interchange.")}


def _usable(tmp_path: Path, key: str, hub_usage: str, mailbox_interchange: dict | None = None):
    home = tmp_path / f"home-{key}-{hub_usage}"
    home.mkdir(parents=True)
    interchange = {**_fill_in(home, key), **(mailbox_interchange or {})}
    return _hub(home, hub_usage, {"ch": (key, interchange)})


# --- every shipped profile --------------------------------------------------------------------------


def test_the_four_clearinghouses_practices_use_most_are_shipped():
    assert set(PUBLISHED) <= set(PROFILES)


@pytest.mark.parametrize("key", PROFILES)
def test_every_shipped_profile_loads_by_the_model(key):
    table = MappingSet().load(f"clearinghouses/{key}.toml")
    ProfileFile.model_validate(table)  # the same model load_profile uses; raises on any stray key
    profile = load_profile(MappingSet(), key)
    assert profile.name and profile.max_claims_per_file > 0
    assert set(profile.practice_supplies) <= set(SUPPLIABLE)


@pytest.mark.parametrize("key", PROFILES)
def test_no_shipped_profile_decides_production(key):
    assert load_profile(MappingSet(), key).interchange.get("usage_indicator") in (None, "T")


@pytest.mark.parametrize("key", [k for k in PROFILES if load_profile(MappingSet(), k).practice_supplies])
def test_a_mailbox_is_refused_until_the_practice_fills_in_what_its_profile_leaves_to_it(tmp_path, key):
    supplied = load_profile(MappingSet(), key).practice_supplies
    bare = _hub(tmp_path / "bare", "P", {"ch": (key, {})})
    with pytest.raises(ConfigError) as caught:
        load_mailboxes(bare)
    assert all(k in str(caught.value) for k in supplied), str(caught.value)
    with pytest.raises(ConfigError):
        outbound_envelope(bare, "ch")  # queuing an inquiry is refused the same way

    hub = _usable(tmp_path, key, "P")
    mailbox = load_mailboxes(hub)["ch"]
    envelope = mailbox.envelope
    for k in supplied:  # what the practice wrote is what is used
        section, _, rest = k.partition(".")
        if section == "interchange":
            assert getattr(envelope, rest if rest != "receiver_id" else "receiver_id") == FILLED[k]
        elif k == "upload.method":
            assert mailbox.profile.upload_method == FILLED[k]
        elif k == "upload.file_name":
            assert mailbox.profile.file_name == FILLED[k]
        elif section == "folders":
            assert getattr(mailbox.profile, f"{rest}_dir") == FILLED[k]


def test_availity_is_addressed_by_its_published_receiver_id(tmp_path):
    envelope = load_mailboxes(_usable(tmp_path, "availity", "P"))["ch"].envelope
    assert (envelope.receiver_qualifier, envelope.receiver_id) == ("01", "030240928")


# --- test stays test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", PROFILES)
def test_a_test_hub_sends_test_files_through_every_profile(tmp_path, key):
    hub = _usable(tmp_path, key, "T")
    assert load_mailboxes(hub)["ch"].envelope.usage_indicator == "T"
    assert outbound_envelope(hub, "ch")[0].usage_indicator == "T"


@pytest.mark.parametrize("key", [k for k in PROFILES if k != "sandbox"])
def test_a_production_hub_sends_production_files_unless_the_profile_forces_test(tmp_path, key):
    hub = _usable(tmp_path, key, "P")
    assert load_mailboxes(hub)["ch"].envelope.usage_indicator == "P"
    assert outbound_envelope(hub, "ch")[0].usage_indicator == "P"


def test_the_sandbox_profile_forces_test_even_on_a_production_hub(tmp_path):
    assert load_mailboxes(_usable(tmp_path, "sandbox", "P"))["ch"].envelope.usage_indicator == "T"


def test_office_ally_on_a_test_hub_sends_test_files(tmp_path):
    """The reported bug: office_ally.toml said usage_indicator = "P" and won over bhhub.toml's T."""
    hub = _hub(tmp_path / "home", "T", {"oa": ("office_ally", {"sender_id": "PRACTICE01"})})
    assert load_mailboxes(hub)["oa"].envelope.usage_indicator == "T"


def test_a_profile_saying_production_is_refused_naming_the_file_and_the_key(tmp_path):
    home = tmp_path / "home"
    (home / "mappings" / "clearinghouses").mkdir(parents=True)
    (home / "mappings" / "clearinghouses" / "office_ally.toml").write_text('[interchange]\nusage_indicator = "P"\n')
    hub = _hub(home, "T", {"oa": ("office_ally", {})})
    with pytest.raises(ConfigError) as caught:
        load_mailboxes(hub)
    assert "office_ally.toml" in str(caught.value) and "interchange.usage_indicator" in str(caught.value)
    assert "bhhub.toml" in str(caught.value)  # says where production is decided


def test_a_profile_forcing_test_narrows_a_production_hub(tmp_path):
    home = tmp_path / "home"
    (home / "mappings" / "clearinghouses").mkdir(parents=True)
    (home / "mappings" / "clearinghouses" / "generic.toml").write_text('[interchange]\nusage_indicator = "T"\n')
    assert load_mailboxes(_hub(home, "P", {"ch": ("generic", {})}))["ch"].envelope.usage_indicator == "T"


def test_a_mailbox_may_narrow_a_production_hub_to_test_but_never_widen_a_test_hub(tmp_path):
    narrowed = _hub(tmp_path / "a", "P", {"new": ("generic", {"usage_indicator": "T"}), "live": ("generic", {})})
    mailboxes = load_mailboxes(narrowed)
    assert (mailboxes["new"].envelope.usage_indicator, mailboxes["live"].envelope.usage_indicator) == ("T", "P")
    widened = _hub(tmp_path / "b", "T", {"ch": ("generic", {"usage_indicator": "P"})})
    with pytest.raises(ConfigError, match=r"\[mailboxes\.ch\].*usage_indicator.*hub is in test"):
        load_mailboxes(widened)
    with pytest.raises(ConfigError, match="hub is in test"):
        outbound_envelope(widened, "ch")


def test_a_test_file_to_stedi_goes_to_its_test_receiver(tmp_path):
    """Stedi routes by ISA08 and ISA15 together (STEDITEST with T, STEDI with P)."""
    assert load_mailboxes(_hub(tmp_path / "t", "T", {"s": ("stedi", {})}))["s"].envelope.receiver_id == "STEDITEST"
    assert load_mailboxes(_hub(tmp_path / "p", "P", {"s": ("stedi", {})}))["s"].envelope.receiver_id == "STEDI"


# --- typos and wrong types ------------------------------------------------------------------------------


SECTIONS = {name: field.annotation for name, field in ProfileFile.model_fields.items()
            if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields")}


@pytest.mark.parametrize("section,key", [(s, k) for s, model in SECTIONS.items() for k in model.model_fields])
def test_a_misspelt_profile_key_is_refused_naming_file_key_and_nearest(tmp_path, section, key):
    typo = key[:-1]  # sender_idd / max_claims_per_fil, as reported
    folder = tmp_path / "clearinghouses"
    folder.mkdir()
    (folder / "generic.toml").write_text(f'[{section}]\n{typo} = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_profile(MappingSet(override_dir=tmp_path), "generic")
    message = str(caught.value)
    assert "mappings/clearinghouses/generic.toml" in message and str(folder / "generic.toml") in message
    assert f"unknown key '{section}.{typo}' (did you mean '{key}'?)" in message


def test_the_reported_profile_typos_are_refused(tmp_path):
    folder = tmp_path / "clearinghouses"
    folder.mkdir()
    (folder / "office_ally.toml").write_text('[interchange]\nsender_idd = "PRACTICE01"\n[claims]\nmax_claims_per_fil = 10\n')
    with pytest.raises(ConfigError) as caught:
        load_profile(MappingSet(override_dir=tmp_path), "office_ally")
    assert "did you mean 'sender_id'?" in str(caught.value)
    assert "did you mean 'max_claims_per_file'?" in str(caught.value)


@pytest.mark.parametrize("text,problem", [
    ('[claims]\nmax_claims_per_file = "5000"\n', "claims.max_claims_per_file must be an integer"),
    ('[claims]\nmax_claims_per_file = 0\n', "claims.max_claims_per_file must be greater than 0"),
    ('[claims]\nline_breaks = "no"\n', "claims.line_breaks must be true or false"),
    ('[upload]\nmethod = "ftp"\n', "upload.method must be one of"),
    ('[pickup]\nafter = "archive"\n[folders]\narchive = ""\n', "folders.archive is empty"),
    ('[upload]\noutbound_names = { "835" = "x" }\n', "upload.outbound_names"),
    ('[upload]\nfile_name = "{payer}.837"\n', "837P has an unknown field"),
    ('practice_supplies = ["folders.outbond"]\n', "did you mean 'folders.outbound'?"),
])
def test_a_bad_profile_value_names_its_key(tmp_path, text, problem):
    folder = tmp_path / "clearinghouses"
    folder.mkdir()
    (folder / "generic.toml").write_text(text)
    with pytest.raises(ConfigError, match="generic.toml") as caught:
        load_profile(MappingSet(override_dir=tmp_path), "generic")
    assert problem in str(caught.value)
