"""Notifications as a reader of bhhub.toml and as a sender: which targets ``[notify]`` makes, what
leaves the hub, what is never sent, and delivery that survives a twin and a kill."""

from __future__ import annotations

import dataclasses

import pytest

from hub.config import load_settings
from hub.errors import ConfigError
from hub.notify import EmailTarget, WebhookTarget, targets


def _settings(tmp_path, text: str):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "bhhub.toml").write_text(text, encoding="utf-8")
    return load_settings(home)


EMAIL = '[notify.email]\nhost = "smtp.example.org"\nsender = "bhhub@example.org"\nto = "billing@example.org"\n'
WEBHOOK = '[notify.webhook]\nurl = "https://chat.example.org/hook"\n'


def test_the_targets_come_from_the_checked_model_not_a_second_reading_of_the_file(tmp_path):
    settings = _settings(tmp_path, EMAIL + WEBHOOK)
    # The raw TOML is what the model was built from; the notifiers must not read it again.
    found = targets(dataclasses.replace(settings, raw={}))
    assert [type(t) for t in found] == [EmailTarget, WebhookTarget]
    email = found[0]
    assert email.to == ("billing@example.org",) and email.port == 587 and email.starttls


def test_the_smtp_port_defaults_to_587_with_starttls_and_25_without(tmp_path):
    plain = _settings(tmp_path, EMAIL + "starttls = false\n")
    assert targets(plain)[0].port == 25
    named = _settings(tmp_path, EMAIL + "port = 2525\n")
    assert targets(named)[0].port == 2525


def test_secrets_are_looked_up_where_the_file_names_them(tmp_path, monkeypatch):
    secret = tmp_path / "smtp.pw"
    secret.write_text("from-a-file\n")
    by_file = _settings(tmp_path, EMAIL + f'username = "u"\npassword_file = "{secret}"\n')
    assert targets(by_file)[0].password == "from-a-file"
    monkeypatch.setenv("BHHUB_TEST_TOKEN", "from-the-env")
    by_env = _settings(tmp_path, WEBHOOK + 'token_env = "BHHUB_TEST_TOKEN"\n')
    assert targets(by_env)[0].token == "from-the-env"
    monkeypatch.delenv("BHHUB_TEST_TOKEN")
    with pytest.raises(ConfigError, match="BHHUB_TEST_TOKEN"):
        targets(by_env)


@pytest.mark.parametrize("extra, complaint", [
    ('password = "hunter2"\n', "secrets are never written here"),
    ('starttls = false\nusername = "u"\npassword_env = "X"\n', "password in clear"),
    ('username = "u"\npassword_env = "X"\npassword_file = "/f"\n', "password_env or password_file"),
])
def test_a_password_in_clear_is_refused_when_the_file_is_read(tmp_path, extra, complaint):
    with pytest.raises(ConfigError, match=complaint) as refused:
        _settings(tmp_path, EMAIL + extra)
    assert "hunter2" not in str(refused.value)


def test_a_ca_file_that_is_not_there_is_named(tmp_path):
    settings = _settings(tmp_path, EMAIL + f'ca_file = "{tmp_path / "missing.pem"}"\n')
    with pytest.raises(ConfigError, match="ca_file"):
        targets(settings)
