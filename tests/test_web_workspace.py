"""The workspace over HTTP, in process (FastAPI's TestClient over httpx), on SQLite and PostgreSQL:
who gets in, what each role sees, that forms need their CSRF token, that sessions end, that each
page is the CLI's ``--json`` object, and that every visit and action is in an audit trail that
verifies. The browser walks the same pages in tests/test_web_browser.py.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import create_engine, select, text

from bhhub.store import schema
from web_support import PASSWORD, csrf_of, fill, phi_of, signed_in

pytest.importorskip("pyx12")  # the sandbox clearinghouse checks what it is sent
from fastapi.testclient import TestClient  # noqa: E402

PAGES = ["/", "/claims", "/claims/BH00000002", "/work", "/authorizations", "/inbox", "/inbox?state=quarantined",
         "/eligibility", "/claims?status=denied"]
API = ["/api/overview", "/api/claims", "/api/claims/BH00000002", "/api/work", "/api/authorizations", "/api/inbox",
       "/api/eligibility", "/api/openapi.json"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request, tmp_path_factory):
    """A hub the demo's exports went through (module-wide: filling it takes an SFTP exchange)."""
    from conftest import PG_URL, _postgres_problem

    work = tmp_path_factory.mktemp(f"web-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{work / 'store.db'}"
    else:
        problem = _postgres_problem()
        if problem:
            if os.environ.get("BHHUB_REQUIRE_POSTGRES") == "1":
                pytest.fail(problem)
            pytest.skip(problem)
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'create schema "{name}"'))
        request.addfinalizer(lambda: _drop(admin, name))
        url = f"{PG_URL}?options=-csearch_path%3D{name}"
    fill(work / "home", url, work, request)
    return work / "home"


def _drop(admin, name: str) -> None:
    with admin.begin() as conn:
        conn.execute(text(f'drop schema "{name}" cascade'))
    admin.dispose()


@pytest.fixture
def hub(filled):
    from bhhub.runtime.app import Hub

    with Hub.open(filled) as opened:
        yield opened


@pytest.fixture
def client(hub):
    from bhhub.web.app import create_app

    # https: the session cookie is Secure, and httpx (as a browser) sends it only over TLS
    with TestClient(create_app(hub), base_url="https://testserver") as c:
        yield c


def _user() -> str:
    return f"u{uuid.uuid4().hex[:8]}"


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in_from_every_url(client):
    for path in PAGES + ["/claims/NOSUCH", "/work/denials/1"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 or (answer.status_code == 405 and path.startswith("/work/denials")), path
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/login?next="), path
    for path in API:
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.json() == {"error": "sign in first"}
    # an action is refused too, and changes nothing
    assert client.post("/work/denials/1", data={"action": "write_off"}, follow_redirects=False).status_code == 303
    assert client.post("/api/inbox/1/retry").status_code == 401


def test_a_biller_signs_in_with_password_and_code_and_every_page_answers(client, hub):
    signed_in(client, hub, _user(), "biller")
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert "Sign out" in answer.text
    for path in API:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
    # a biller sees the patient on the claim's page and the 837P it went out as
    page = client.get("/claims/BH00000002").text
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == "BH00000002")).one()
        patient = session.get(schema.Patient, claim.patient_id)
    assert patient.family_name in page
    assert "CLM*BH00000002*" in page


def test_an_admin_without_the_code_is_not_in(client, hub):
    from bhhub.accounts import add_user

    name = _user()
    add_user(hub, name, "admin", PASSWORD)
    csrf = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf}, follow_redirects=False)
    assert answer.headers["location"].startswith("/login/enrol")
    # the password alone opens nothing: every page asks for the code
    for path in PAGES[:3]:
        assert client.get(path, follow_redirects=False).headers["location"].startswith("/login/code")
    assert client.get("/api/claims").status_code == 401


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(client, hub):
    from bhhub.accounts import add_user

    name = _user()
    add_user(hub, name, "viewer", PASSWORD)
    csrf = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    for _ in range(5):
        answer = client.post("/login", data={"name": name, "password": "wrong password!", "csrf": csrf})
        assert answer.status_code == 401
    # locked: the right password is refused too, in the same words as a wrong one
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_own_token(client, hub):
    from bhhub.accounts import add_user

    name = _user()
    add_user(hub, name, "viewer", PASSWORD)
    client.get("/login")
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": "forged"},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303  # not signed in


def test_a_viewer_never_sees_a_patient_name_or_member_id(client, hub):
    names = phi_of(hub)
    assert len(names) > 10  # the hub holds some: a test with none could not fail
    signed_in(client, hub, _user(), "viewer")
    claims = [c["patient_control_number"] for c in client.get("/api/claims").json()["claims"]]
    for path in PAGES + API[:-1] + [f"/claims/{pcn}" for pcn in claims] + [f"/api/claims/{pcn}" for pcn in claims]:
        body = client.get(path).text
        leaked = [x for x in names if x in body]
        assert not leaked, f"{path} shows {len(leaked)} names or member ids to a viewer"
    # and may not act
    assert client.post("/work/denials/1", data={"action": "write_off", "csrf": "x"}).status_code == 403


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(client, hub, filled):
    from bhhub.web.app import create_app

    signed_in(client, hub, _user(), "biller")
    denial = _open_denial(hub)
    for forged in ({}, {"csrf": "not-the-token"}):
        answer = client.post(f"/work/denials/{denial}", data={"action": "write_off", **forged})
        assert answer.status_code == 403
    # another session's token is not this one's
    with TestClient(create_app(hub), base_url="https://testserver") as other:
        signed_in(other, hub, _user(), "biller")
        theirs = csrf_of(other)
    assert client.post(f"/work/denials/{denial}", data={"action": "write_off", "csrf": theirs}).status_code == 403
    assert client.post(f"/api/denials/{denial}", json={"action": "write_off"}).status_code == 403
    assert _open_denial(hub) == denial


def test_a_session_ends_after_the_idle_minutes(client, hub, monkeypatch):
    from bhhub.accounts import clock

    signed_in(client, hub, _user(), "viewer")
    assert client.get("/", follow_redirects=False).status_code == 200
    later = clock.now() + timedelta(minutes=16)  # [workspace] idle_minutes defaults to 15
    monkeypatch.setattr(clock, "now", lambda: later)
    answer = client.get("/claims", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert client.get("/api/claims").status_code == 401


def test_signing_out_ends_the_session(client, hub):
    signed_in(client, hub, _user(), "viewer")
    token = client.cookies.get("bhhub_session")
    assert client.post("/logout", data={"csrf": csrf_of(client)}, follow_redirects=False).status_code == 303
    client.cookies.set("bhhub_session", token, domain="testserver.local")  # the old cookie, kept by someone
    assert client.get("/", follow_redirects=False).status_code == 303


def test_every_answer_carries_the_security_headers_and_a_strict_cookie(client, hub):
    page = client.get("/login")
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert header in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    from bhhub.accounts import add_user

    name = _user()
    add_user(hub, name, "viewer", PASSWORD)
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert "bhhub_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=strict" in cookie.lower()


def test_the_pages_show_what_the_commands_print(client, hub):
    """Each API answer is the object the CLI's --json prints (one query for both)."""
    import json

    from bhhub.common.jsontext import dumps
    from bhhub.listings.claims import claim_page
    from bhhub.remittance.ar import ar_report, report_json

    signed_in(client, hub, _user(), "biller")
    with hub.store.session() as session:
        rows, _ = claim_page(hub, session, status="paid", limit=50)
        ar = report_json(ar_report(session))
    assert client.get("/api/claims?status=paid").json()["claims"] == json.loads(dumps(rows))
    assert client.get("/api/overview").json()["ar"] == json.loads(dumps(ar))


def test_a_biller_works_a_denial_and_retries_a_quarantined_file_and_the_trail_says_who(client, hub):
    from bhhub.audit.chain import verify

    name = _user()
    signed_in(client, hub, name, "biller")
    denial = _open_denial(hub)
    answer = client.post(f"/work/denials/{denial}", data={"action": "write_off", "note": "too small to appeal",
                                                          "csrf": csrf_of(client)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert f'id="denial-{denial}"' not in client.get("/work").text
    with hub.store.session() as session:
        assert session.get(schema.Denial, denial).status != "open"
    # the same click again (a second tab) does nothing twice
    again = client.post(f"/work/denials/{denial}", data={"action": "write_off", "csrf": csrf_of(client)})
    assert again.status_code == 400
    quarantined = client.get("/api/inbox?state=quarantined").json()["items"]
    assert quarantined
    item = quarantined[0]["id"]
    answer = client.post(f"/inbox/{item}/retry", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert answer.status_code == 303
    assert f"item {item}" in client.get(answer.headers["location"]).text
    with hub.store.session() as session:
        rows = session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.actor == f"web:{name}")).all()
        logins = session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.actor == name)).all()
        assert "login_password" in {r.action for r in logins} and {"login_totp", "totp_enrol"} & {r.action for r in logins}
        assert "view_page" in {r.action for r in rows}
        # the action itself, under the biller's name, naming the claim
        assert any(r.object_type == "claim" and r.action not in ("view_page", "list_claims", "list_denials")
                   for r in rows)
        rows += logins
        assert all(r.source and r.source.startswith("web:") for r in rows)
        assert verify(session).ok


def _open_denial(hub) -> int | None:
    with hub.store.session() as session:
        return session.scalars(select(schema.Denial.id).where(schema.Denial.status == "open")
                               .order_by(schema.Denial.id)).first()


def test_a_used_code_does_not_sign_in_again(client, hub):
    from bhhub.web.app import create_app

    name = _user()
    secret = signed_in(client, hub, name, "biller")
    code = pyotp.TOTP(secret).now()
    with TestClient(create_app(hub), base_url="https://testserver") as other:
        csrf = other.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        answer = other.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf}, follow_redirects=False)
        assert answer.headers["location"].startswith("/login/code")
        page = other.get(answer.headers["location"])
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        replay = other.post("/login/code", data={"csrf": csrf, "code": code}, follow_redirects=False)
        assert replay.status_code == 401
        assert other.get("/", follow_redirects=False).status_code == 303


@pytest.fixture
def own_hub(tmp_path, database_url, request):
    """A filled hub of this test's own (its denial is worked here, not by another test)."""
    from bhhub.runtime.app import Hub

    fill(tmp_path / "own", database_url, tmp_path, request)
    with Hub.open(tmp_path / "own") as opened:
        yield opened


def test_the_overview_figures_follow_the_data(own_hub):
    """The overview keeps its A/R figures until the data changes (bhhub.web.figures); working a
    denial changes what is owed, and the next visit shows ``bhhub ar``'s figures as they are now."""
    import json

    from bhhub.claims.pipeline import status_counts
    from bhhub.common.jsontext import dumps
    from bhhub.remittance.ar import ar_report, report_json

    from bhhub.web.app import create_app

    hub = own_hub
    client = TestClient(create_app(hub), base_url="https://testserver")
    signed_in(client, hub, _user(), "biller")
    before = client.get("/api/overview").json()
    with hub.store.session() as session:
        assert before["ar"] == json.loads(dumps(report_json(ar_report(session))))
        assert before["pipeline"] == json.loads(dumps(status_counts(session)))
    assert before["figures"]["updating"] is False
    denial = _open_denial(hub)
    assert denial is not None
    client.post(f"/api/denials/{denial}", json={"action": "appeal_done"}, headers={"X-CSRF-Token": csrf_of(client)})
    after = client.get("/api/overview").json()
    with hub.store.session() as session:
        now = json.loads(dumps(report_json(ar_report(session))))
    assert after["ar"] == now
    assert after["ar"]["figures"] != before["ar"]["figures"]  # the worked denial left insurance A/R


def test_the_data_version_moves_with_each_kind_of_write(sqlite_hub):
    from bhhub.web.figures import data_version

    hub = sqlite_hub
    with hub.store.session() as session:
        first = data_version(session)
        again = data_version(session)
    assert first == again
    with hub.store.writer() as session:
        session.add(schema.Payer(payer_id="99999", name="A payer"))
        session.commit()
    with hub.store.session() as session:
        assert data_version(session) != first


def test_a_payers_free_text_is_not_shown_to_a_viewer(client, hub):
    """A 271's MSG text is the payer's own words and may name the patient: a biller reads it on the
    eligibility page, a viewer does not (the key is not a PHI key; the value may be)."""
    said = "Coverage for Zelda Q. Canarypatient ends 12/31"
    with hub.store.writer() as session:
        check = session.scalars(select(schema.EligibilityCheck).where(schema.EligibilityCheck.state == "answered")
                                .order_by(schema.EligibilityCheck.id.desc())).first()
        before = check.response
        check.response = {**(before or {}), "messages": [said]}
        session.commit()
    try:
        signed_in(client, hub, _user(), "biller")
        assert said in client.get("/eligibility").text
        assert said in json_text(client.get("/api/eligibility"))
        client.cookies.clear()
        signed_in(client, hub, _user(), "viewer")
        assert said not in client.get("/eligibility").text
        assert said not in json_text(client.get("/api/eligibility"))
    finally:
        with hub.store.writer() as session:
            session.get(schema.EligibilityCheck, check.id).response = before
            session.commit()


def json_text(answer) -> str:
    assert answer.status_code == 200, answer.text[:200]
    return answer.text
