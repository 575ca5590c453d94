"""The workspace's users: passwords, lockout, TOTP without replay, sessions that expire, and the
`bhhub user` commands; on SQLite and PostgreSQL. Time moves by replacing bhhub.accounts.clock.now."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from sqlalchemy import select

from bhhub import accounts
from bhhub.accounts import clock
from bhhub.audit import chain
from bhhub.cli.main import main
from bhhub.errors import UsageError
from bhhub.runtime.app import Hub
from bhhub.store import schema

PASSWORD = "correct horse battery staple"
WEB = "web:127.0.0.1"


class Clock:
    def __init__(self):
        self.at = datetime(2026, 12, 1, 9, 0, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.at

    def move(self, **delta):
        self.at += timedelta(**delta)


@pytest.fixture
def now(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(clock, "now", moved)
    return moved


def _audited(hub, action: str | None = None) -> list[schema.AuditEvent]:
    with hub.store.session() as session:
        query = select(schema.AuditEvent).order_by(schema.AuditEvent.id)
        if action:
            query = query.where(schema.AuditEvent.action == action)
        return session.scalars(query).all()


def _user(hub, name: str) -> schema.User:
    with hub.store.session() as session:
        return session.scalars(select(schema.User).where(schema.User.name == name)).one()


def _refused(hub, name, password):
    with pytest.raises(accounts.LoginRefused) as caught:
        accounts.check_password(hub, name, password, source=WEB)
    return str(caught.value)


def _enrolled(hub, now, name="ann", role="biller") -> tuple[int, pyotp.TOTP]:
    user_id = accounts.add_user(hub, name, role, PASSWORD)
    offer = accounts.begin_totp(hub, user_id)
    totp = pyotp.TOTP(offer.secret)
    assert accounts.finish_totp(hub, user_id, offer.secret, totp.at(now()), source=WEB)
    now.move(seconds=30)
    return user_id, totp


def test_the_right_password_logs_in_and_says_whether_a_code_must_follow(hub, now):
    ann = accounts.add_user(hub, "ann", "biller", PASSWORD)
    accounts.add_user(hub, "vic", "viewer", PASSWORD)
    login = accounts.check_password(hub, "ann", PASSWORD, source=WEB)
    assert login == accounts.Login(user_id=ann, name="ann", role="biller", totp_enrolled=False, mfa_required=True)
    assert accounts.check_password(hub, "vic", PASSWORD, source=WEB).mfa_required is False
    assert _user(hub, "ann").password_hash.startswith("$argon2id$")
    [row] = _audited(hub, "login_password")[:1]
    assert (row.actor, row.source, row.outcome, row.object_ids) == ("ann", WEB, "ok", [ann])


def test_wrong_password_unknown_name_and_disabled_all_get_one_message(hub, now):
    accounts.add_user(hub, "ann", "admin", PASSWORD)
    accounts.add_user(hub, "old", "viewer", PASSWORD)
    accounts.set_disabled(hub, "old", True)
    messages = {_refused(hub, "ann", "wrong password!!"), _refused(hub, "nobody", PASSWORD), _refused(hub, "old", PASSWORD)}
    assert messages == {"wrong name or password, or the account is locked"}
    failed = _audited(hub, "login_failed")
    assert [(r.actor, r.detail, r.outcome) for r in failed] == [
        ("ann", "wrong password", "failed"), ("(unknown name)", "unknown name (6 characters)", "failed"),
        ("old", "disabled", "failed")]
    assert all(PASSWORD not in (r.detail or "") + r.actor for r in _audited(hub))


def test_the_account_locks_after_five_failures_and_opens_again_after_fifteen_minutes(hub, now):
    accounts.add_user(hub, "vic", "viewer", PASSWORD)
    for _ in range(4):
        _refused(hub, "vic", "not the password")
    assert accounts.check_password(hub, "vic", PASSWORD, source=WEB)  # 4 failures: still open
    for _ in range(5):
        _refused(hub, "vic", "not the password")
    _refused(hub, "vic", PASSWORD)  # locked: even the right password is refused
    assert [u["locked"] for u in accounts.list_users(hub)] == [True]
    assert _audited(hub, "account_locked")[0].object_ids == [_user(hub, "vic").id]
    now.move(minutes=14)
    _refused(hub, "vic", PASSWORD)
    now.move(minutes=2)
    assert accounts.check_password(hub, "vic", PASSWORD, source=WEB).name == "vic"


def test_a_right_password_resets_the_count(hub, now):
    accounts.add_user(hub, "vic", "viewer", PASSWORD)
    for _ in range(4):
        _refused(hub, "vic", "not the password")
    accounts.check_password(hub, "vic", PASSWORD, source=WEB)
    assert _user(hub, "vic").failed_logins == 0
    for _ in range(4):
        _refused(hub, "vic", "not the password")
    assert accounts.check_password(hub, "vic", PASSWORD, source=WEB)  # 4 again, not 8: not locked


def test_unlock_ends_a_lockout(hub, now):
    accounts.add_user(hub, "vic", "viewer", PASSWORD)
    for _ in range(5):
        _refused(hub, "vic", "not the password")
    accounts.unlock(hub, "vic")
    assert accounts.check_password(hub, "vic", PASSWORD, source=WEB)


def test_lockout_follows_the_workspace_settings(hub_home, now):
    with (hub_home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write("[workspace]\nlockout_after = 2\nlockout_minutes = 1\nidle_minutes = 5\n")
    with Hub.open(hub_home) as hub:
        accounts.add_user(hub, "vic", "viewer", PASSWORD)
        _refused(hub, "vic", "not the password")
        _refused(hub, "vic", "not the password")
        _refused(hub, "vic", PASSWORD)
        now.move(minutes=1, seconds=1)
        login = accounts.check_password(hub, "vic", PASSWORD, source=WEB)
        token, _ = accounts.open_session(hub, login.user_id, mfa_done=False, source=WEB)
        now.move(minutes=5, seconds=1)
        assert accounts.session_for(hub, token) is None


def test_a_totp_code_is_accepted_once(hub, now):
    ann, totp = _enrolled(hub, now)
    code = totp.at(now())
    assert accounts.check_totp(hub, ann, code, source=WEB)
    assert not accounts.check_totp(hub, ann, code, source=WEB)  # replayed
    now.move(seconds=30)
    assert not accounts.check_totp(hub, ann, code, source=WEB)  # the previous step's, used already
    assert accounts.check_totp(hub, ann, totp.at(now()), source=WEB)
    outcomes = [(r.detail, r.outcome) for r in _audited(hub, "login_totp")]
    assert outcomes == [(None, "ok"), ("code used before", "failed"), ("code used before", "failed"), (None, "ok")]


def test_the_enrolment_code_cannot_log_in_again(hub, now):
    user_id = accounts.add_user(hub, "ann", "biller", PASSWORD)
    offer = accounts.begin_totp(hub, user_id)
    assert offer.uri.startswith("otpauth://totp/bhhub:ann?") and "issuer=bhhub" in offer.uri
    assert offer.qr_svg.lstrip().startswith("<svg") or "<svg" in offer.qr_svg[:200]
    code = pyotp.TOTP(offer.secret).at(now())
    assert not accounts.finish_totp(hub, user_id, offer.secret, "000000" if code != "000000" else "111111", source=WEB)
    assert _user(hub, "ann").totp_secret is None
    assert accounts.finish_totp(hub, user_id, offer.secret, code, source=WEB)
    assert not accounts.check_totp(hub, user_id, code, source=WEB)
    with pytest.raises(UsageError, match="reset-mfa"):  # a password alone never replaces the factor
        accounts.finish_totp(hub, user_id, pyotp.random_base32(), code, source=WEB)


def test_a_code_one_step_off_is_accepted_two_steps_off_is_not(hub, now):
    ann, totp = _enrolled(hub, now)
    assert not accounts.check_totp(hub, ann, totp.at(now() + timedelta(seconds=60)), source=WEB)
    assert accounts.check_totp(hub, ann, totp.at(now() + timedelta(seconds=30)), source=WEB)


def test_wrong_codes_lock_the_account_and_right_passwords_between_them_do_not_reset_the_count(hub, now):
    ann, totp = _enrolled(hub, now)
    for _ in range(4):
        assert accounts.check_password(hub, "ann", PASSWORD, source=WEB).totp_enrolled
        assert not accounts.check_totp(hub, ann, "123456" if totp.at(now()) != "123456" else "654321", source=WEB)
    accounts.check_password(hub, "ann", PASSWORD, source=WEB)
    assert not accounts.check_totp(hub, ann, "12345x", source=WEB)
    assert not accounts.check_totp(hub, ann, totp.at(now()), source=WEB)  # locked: even the right code
    _refused(hub, "ann", PASSWORD)


def test_reset_mfa_forgets_the_secret_and_ends_the_sessions(hub, now):
    ann, _ = _enrolled(hub, now)
    token, _ = accounts.open_session(hub, ann, mfa_done=True, source=WEB)
    accounts.reset_totp(hub, "ann")
    assert _user(hub, "ann").totp_secret is None
    assert accounts.session_for(hub, token) is None
    assert accounts.check_password(hub, "ann", PASSWORD, source=WEB).totp_enrolled is False


def test_a_session_lives_while_used_and_expires_when_idle(hub, now):
    ann = accounts.add_user(hub, "ann", "biller", PASSWORD)
    token, csrf = accounts.open_session(hub, ann, mfa_done=False, source=WEB)
    found = accounts.session_for(hub, token)
    assert (found.user_id, found.name, found.role, found.csrf_token, found.mfa_done) == (ann, "ann", "biller", csrf, False)
    assert accounts.mark_mfa_done(hub, token)
    for _ in range(3):  # used every 10 minutes: 30 minutes in all, alive
        now.move(minutes=10)
        assert accounts.session_for(hub, token).mfa_done
    now.move(minutes=15, seconds=1)
    assert accounts.session_for(hub, token) is None
    with hub.store.session() as session:
        assert session.scalars(select(schema.WebSession)).all() == []  # deleted, not just refused
    assert _audited(hub, "session_expired")[0].actor == "ann"


def test_the_token_is_stored_only_as_its_hash(hub, now):
    ann = accounts.add_user(hub, "ann", "viewer", PASSWORD)
    token, _ = accounts.open_session(hub, ann, mfa_done=True, source=WEB)
    with hub.store.session() as session:
        [row] = session.scalars(select(schema.WebSession)).all()
    assert row.token_hash != token and token not in row.token_hash and len(row.token_hash) == 64
    assert accounts.session_for(hub, row.token_hash) is None  # the stored hash is no key
    assert accounts.session_for(hub, "") is None and accounts.session_for(hub, "made-up") is None


def test_a_disabled_or_locked_users_session_is_refused(hub, now):
    ann = accounts.add_user(hub, "ann", "viewer", PASSWORD)
    bob = accounts.add_user(hub, "bob", "viewer", PASSWORD)
    ann_token, _ = accounts.open_session(hub, ann, mfa_done=True, source=WEB)
    bob_token, _ = accounts.open_session(hub, bob, mfa_done=True, source=WEB)
    accounts.set_disabled(hub, "ann", True)
    assert accounts.session_for(hub, ann_token) is None
    for _ in range(5):
        _refused(hub, "bob", "not the password")
    assert accounts.session_for(hub, bob_token) is None
    accounts.set_disabled(hub, "ann", False)
    assert accounts.session_for(hub, ann_token) is None  # ended, not paused
    assert accounts.check_password(hub, "ann", PASSWORD, source=WEB)


def test_logout_ends_the_session(hub, now):
    ann = accounts.add_user(hub, "ann", "viewer", PASSWORD)
    token, _ = accounts.open_session(hub, ann, mfa_done=True, source=WEB)
    accounts.close_session(hub, token, source=WEB)
    assert accounts.session_for(hub, token) is None
    accounts.close_session(hub, token, source=WEB)  # twice: nothing more
    assert [r.actor for r in _audited(hub, "logout")] == ["ann"]


def test_bad_users_are_refused(hub):
    accounts.add_user(hub, "ann", "admin", PASSWORD)
    for name, role, password, said in [("ann", "viewer", PASSWORD, "exists already"),
                                       ("bob", "owner", PASSWORD, "no role 'owner'"),
                                       ("bob", "viewer", "short pass", "shorter than 12"),
                                       ("cli:bob", "viewer", PASSWORD, "user name is"),
                                       ("", "viewer", PASSWORD, "user name is")]:
        with pytest.raises(UsageError, match=said):
            accounts.add_user(hub, name, role, password)
    assert [u["name"] for u in accounts.list_users(hub)] == ["ann"]


def _add_same(home: str, start, results) -> None:
    start.wait(60)
    with Hub.open(home) as hub:
        try:
            results.put(("added", accounts.add_user(hub, "ann", "viewer", PASSWORD)))
        except UsageError as exc:
            results.put(("refused", str(exc)))


def test_two_adds_of_one_name_at_once_one_wins_the_other_is_told(hub, hub_home):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_add_same, args=(str(hub_home), start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = sorted(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(60)
    assert [kind for kind, _ in outcomes] == ["added", "refused"]
    assert outcomes[1][1] == "a user named ann exists already"
    assert len(accounts.list_users(hub)) == 1


def test_every_login_row_verifies_in_the_chain(hub, now):
    _enrolled(hub, now)
    _refused(hub, "ann", "nope nope nope")
    with hub.store.session() as session:
        assert chain.verify(session).ok


def test_user_commands(sqlite_hub, tmp_path, monkeypatch, capsys):
    home = str(sqlite_hub.settings.home)
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    assert main(["--home", home, "user", "add", "ann", "--role", "biller", "--password-file", str(secret)]) == 0
    assert accounts.check_password(sqlite_hub, "ann", PASSWORD, source="cli")  # the newline is not the password's
    monkeypatch.setenv("BHHUB_USER_PASSWORD", "another long password")
    assert main(["--home", home, "user", "add", "vic", "--role", "viewer"]) == 0
    monkeypatch.delenv("BHHUB_USER_PASSWORD")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    capsys.readouterr()
    assert main(["--home", home, "user", "add", "bob", "--role", "viewer"]) == 2
    assert "--password-file" in capsys.readouterr().err
    assert main(["--home", home, "user", "disable", "vic"]) == 0
    assert main(["--home", home, "user", "reset-mfa", "nobody"]) == 2
    capsys.readouterr()
    assert main(["--home", home, "user", "list", "--json"]) == 0
    users = {u["name"]: u for u in json.loads(capsys.readouterr().out)}
    assert users["vic"]["disabled"] and users["ann"]["role"] == "biller" and set(users) == {"ann", "vic"}
    assert not any("hash" in key or "secret" in key for u in users.values() for key in u)
    assert [(r.actor, r.source) for r in _audited(sqlite_hub, "user_disable")] == [(sqlite_hub.actor, "cli")]
