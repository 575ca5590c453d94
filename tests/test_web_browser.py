"""The workspace in a real browser: Debian's chromium, driven by Playwright, against ``bhhub
serve``'s app run by uvicorn in this process over a hub the tests filled (web_support.fill).

A person signs in with a password and a one-time code read off the enrolment page, walks every
page by its links, works a denial and retries a quarantined file from the forms; a viewer never
sees a patient's name or member id; a browser that is not signed in is sent to sign in from every
URL and brought back after; a form stripped of its CSRF token is refused; an idle session ends;
and every one of those visits left audit rows that verify. The same forms work with JavaScript
off. The last test photographs the overview of the demo's hub for the README.

Chromium is launched by path, never downloaded (``BHHUB_CHROMIUM`` names another path). Outside
CI a machine without it skips these tests; in CI (``BHHUB_REQUIRE_CHROMIUM=1``, set by .ci/run,
which installs it) that is a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from bhhub.store import schema
from web_support import PASSWORD, fill, phi_of, serving

pytest.importorskip("pyx12")  # the sandbox clearinghouse checks what it is sent

CHROMIUM = Path(os.environ.get("BHHUB_CHROMIUM", "/usr/bin/chromium"))
PROJECT = Path(__file__).resolve().parent.parent
SCREENSHOT = PROJECT / "docs" / "images" / "workspace-overview.png"
PAGES = ["/", "/claims", "/claims/BH00000002", "/work", "/authorizations", "/inbox", "/inbox?state=quarantined",
         "/eligibility", "/claims?status=denied"]
NAV = ["Overview", "Claims", "Work to do", "Authorizations", "Inbox & mailboxes", "Eligibility"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        problem = f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("BHHUB_REQUIRE_CHROMIUM") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """The filled hub (SQLite: the TestClient tests cover PostgreSQL) and the workspace's URL."""
    from bhhub.runtime.app import Hub

    work = tmp_path_factory.mktemp("browser")
    fill(work / "home", f"sqlite:///{work / 'store.db'}", work, request)
    with Hub.open(work / "home") as hub, serving(hub) as url:
        yield hub, url


@pytest.fixture
def hub(served):
    return served[0]


@pytest.fixture
def url(served):
    return served[1]


def _user(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _path(page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _sign_in_form(page, name: str) -> None:
    assert urlsplit(page.url).path == "/login", page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state("load")  # with JavaScript off the click does not wait for the next page


def sign_in(browser, url: str, hub, role: str, *, name: str | None = None, start: str = "/",
            **context_options):
    """A new user ``name`` signs in on a fresh browser context from ``start`` (sent to the form);
    a biller or admin enrols the one-time code by typing the key the enrolment page shows.
    Returns the page (on ``start`` again), the user's name, TOTP secret and the code it used."""
    from bhhub.accounts import add_user

    name = name or _user(role[0])
    add_user(hub, name, role, PASSWORD)
    context = browser.new_context(base_url=url, **context_options)
    page = context.new_page()
    page.goto(start)
    _sign_in_form(page, name)
    secret = code = ""
    if role != "viewer":
        page.wait_for_url("**/login/enrol**")
        page.locator("figure.qr svg").wait_for()  # the QR code to scan
        assert page.locator("figure.qr svg").count() == 1
        secret = page.inner_text("code.secret").strip()
        code = pyotp.TOTP(secret).now()
        page.fill("input[name=code]", code)
        page.click("button:has-text('Turn on and continue')")
        page.wait_for_load_state("load")  # the next page, loaded
        page.wait_for_url(lambda u: urlsplit(u).path != "/login/enrol")
    page.locator("form.who").wait_for()
    assert _path(page) == start, page.url
    assert page.locator("form.who").inner_text().startswith(f"{name} ({role})")
    return page, name, secret, code


def _trail(hub, actor: str) -> list:
    with hub.store.session() as session:
        return session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.actor == actor)
                               .order_by(schema.AuditEvent.id)).all()


def _verified(hub) -> None:
    from bhhub.audit.chain import verify

    with hub.store.session() as session:
        assert verify(session).ok


def _viewed(hub, name: str) -> set[str]:
    return {r.detail for r in _trail(hub, f"web:{name}") if r.action == "view_page"}


def _open_denial(hub) -> int | None:
    with hub.store.session() as session:
        return session.scalars(select(schema.Denial.id).where(schema.Denial.status == "open")
                               .order_by(schema.Denial.id)).first()


@pytest.fixture
def open_denial(hub) -> int:
    """A denial on the worklist. The filled hub has one; a test that worked it earlier in this
    module had it written off or appealed (resolutions that build nothing), so it is put back."""
    from sqlalchemy import update

    found = _open_denial(hub)
    if found is None:
        with hub.store.writer() as session:
            found = session.scalars(select(schema.Denial.id).where(schema.Denial.status == "resolved")
                                    .order_by(schema.Denial.id)).first()
            session.execute(update(schema.Denial).where(schema.Denial.id == found)
                            .values(status="open", resolved_at=None, resolution=None))
            session.commit()
    return found


def test_a_biller_signs_in_with_password_and_code_and_again_with_the_code_page(browser, url, hub):
    page, name, secret, used = sign_in(browser, url, hub, "biller")
    assert page.locator("#days-in-ar").is_visible()
    page.context.close()
    # A second sign-in on another browser: the code page this time. The code just used is
    # refused (replay); the next 30 s step's, which the window accepts, lets them in.
    context = browser.new_context(base_url=url)
    page = context.new_page()
    page.goto("/claims")
    _sign_in_form(page, name)
    assert urlsplit(page.url).path == "/login/code"
    page.fill("input[name=code]", used)
    page.click("button:has-text('Continue')")
    page.wait_for_load_state("load")  # the next page, loaded
    assert urlsplit(page.url).path == "/login/code"
    assert "was used already" in page.inner_text("p.error")
    page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("button:has-text('Continue')")
    page.wait_for_load_state("load")  # the next page, loaded
    assert _path(page) == "/claims"
    assert page.locator("#claims tr").count() > 5
    context.close()
    outcomes = [(r.action, r.outcome) for r in _trail(hub, name)]
    for row in [("login_password", "ok"), ("totp_enrol", "ok"), ("login_totp", "failed"), ("login_totp", "ok")]:
        assert row in outcomes
    assert {"/", "/claims"} <= _viewed(hub, name)
    _verified(hub)


def test_a_biller_walks_every_page_by_its_links_and_each_shows_its_content(browser, url, hub):
    page, name, *_ = sign_in(browser, url, hub, "biller")
    nav = page.locator("header nav a")
    assert nav.all_inner_texts() == NAV

    # Overview: the figures, and the charts drawn as inline SVG (pipeline, aging, four trends)
    for figure in ("#days-in-ar", "#clean-claim-rate", "#denial-rate", "#net-collection-rate", "#total-ar"):
        assert page.inner_text(figure).strip() not in ("", "-"), figure
    page.wait_for_load_state("networkidle")  # the stylesheet in, for the sizes measured below
    panels = page.locator("main section.panel")
    assert panels.count() == 6
    for i in range(6):  # each panel draws its chart, or says there is nothing to draw yet
        assert panels.nth(i).locator("svg.chart, p.chart-empty").count() == 1, panels.nth(i).inner_text()
    assert panels.nth(0).locator("svg.chart rect").count() > 3  # the pipeline's bars
    assert panels.nth(1).locator("svg.chart rect").count() >= 1  # A/R aging by payer
    assert page.locator("main svg.chart").count() >= 4
    for i in range(6):  # at a laptop's width every chart fits its panel, its labels not cut off
        panel = panels.nth(i).bounding_box()
        for chart in panels.nth(i).locator("svg.chart").all():
            box = chart.bounding_box()
            assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"], \
                panels.nth(i).locator("h2").inner_text()
    page.click("details.formulas summary")
    page.wait_for_load_state("load")  # the next page, loaded
    assert page.locator("details.formulas dd").count() >= 4

    nav.get_by_text("Claims", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/claims"
    assert page.locator("#claims tr").count() > 5
    sent = page.locator("#claims tr", has_text="paid").locator("a").first
    pcn = sent.inner_text().strip()
    sent.click()
    page.wait_for_load_state("load")  # the next page, loaded
    assert _path(page) == f"/claims/{pcn}"
    assert page.inner_text("h1").startswith(f"Claim {pcn}")
    history = page.inner_text("#history")
    assert "batch" in history and page.locator("#history tr").count() > 3
    assert f"CLM*{pcn}*" in page.inner_text("#segments")
    assert page.inner_text("#patient-name").strip()  # a biller sees who the patient is

    nav.get_by_text("Work to do", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/work"
    assert page.locator("#denials tr[id^=denial-]").count() >= 1
    assert page.locator("#attention tr").count() >= 2  # the claim that needs attention, with its fix

    nav.get_by_text("Authorizations", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/authorizations"
    assert "AUTH-WEB-1" in page.inner_text("#authorizations")
    assert "AUTH-WEB-1" in page.inner_text("#runs-out")
    assert page.locator("main svg.chart").count() >= 1  # its burn-down

    nav.get_by_text("Inbox & mailboxes", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/inbox"
    assert "sandbox" in page.locator("#mailboxes tr").nth(1).inner_text()
    assert page.locator("#inbox tr[id^=item-]").count() > 5

    nav.get_by_text("Eligibility", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/eligibility"
    assert page.locator("#eligibility tr").count() > 2

    nav.get_by_text("Overview", exact=True).click()
    page.wait_for_load_state("load")
    assert _path(page) == "/"
    page.context.close()
    walked = {"/", "/claims", f"/claims/{pcn}", "/work", "/authorizations", "/inbox", "/eligibility"}
    assert walked <= _viewed(hub, name)
    actions = {r.action for r in _trail(hub, f"web:{name}")}
    assert {"list_claims", "show_claim", "list_denials"} <= actions
    _verified(hub)


def test_a_biller_writes_off_a_denial_from_its_form_and_it_leaves_the_worklist(browser, url, hub, open_denial):
    page, name, *_ = sign_in(browser, url, hub, "biller", start="/work")
    denial = open_denial
    row = page.locator(f"#denial-{denial}")
    row.locator("select[name=action]").select_option("write_off")
    row.locator("input[name=note]").fill("too small to appeal")
    row.locator("button:has-text('Do')").click()
    page.wait_for_load_state("load")
    assert urlsplit(page.url).path == "/work"
    assert page.inner_text("p.notice") == f"denial {denial}: written off"
    assert page.locator(f"#denial-{denial}").count() == 0
    page.context.close()
    with hub.store.session() as session:
        assert session.get(schema.Denial, denial).status != "open"
    resolved = [r for r in _trail(hub, f"web:{name}") if r.action == "resolve_denial"]
    assert len(resolved) == 1 and resolved[0].detail == "write_off"
    _verified(hub)


def test_a_biller_retries_a_quarantined_file_from_the_inbox_and_sees_what_happened(browser, url, hub):
    page, name, *_ = sign_in(browser, url, hub, "biller", start="/inbox")
    page.click("main a:has-text('quarantined')")
    page.wait_for_load_state("load")  # the next page, loaded
    assert _path(page) == "/inbox?state=quarantined"
    row = page.locator("#inbox tr[id^=item-]").first
    item = int(row.get_attribute("id").removeprefix("item-"))
    row.locator("button:has-text('Retry')").click()
    page.wait_for_load_state("load")
    assert urlsplit(page.url).path == "/inbox"
    notice = page.inner_text("p.notice")
    # the truncated file is still truncated: quarantined again, and its row says why
    assert notice == f"item {item}: quarantined again (its reason is below)"
    assert "quarantined" in page.inner_text(f"#item-{item}")
    assert len(page.inner_text(f"#item-{item}")) > len(f"{item} quarantined") + 20  # the reason is shown
    # the API's retry (the session's cookie, its CSRF token in a header) is audited the same way
    csrf = page.locator("form.who input[name=csrf]").get_attribute("value")
    answer = page.request.post(f"/api/inbox/{item}/retry", headers={"X-CSRF-Token": csrf})
    assert answer.ok and answer.json()["inbox_item_id"] == item
    page.context.close()
    with hub.store.session() as session:
        assert session.get(schema.InboxItem, item).state == "quarantined"
    retries = [r for r in _trail(hub, f"web:{name}") if r.action == "inbox_retry"]
    assert len(retries) == 2, "a retry is not in the audit trail"
    assert all(r.object_type == "inbox_item" and r.outcome == "failed" for r in retries)
    _verified(hub)


def test_a_viewer_never_sees_a_patient_name_or_member_id_on_any_page(browser, url, hub):
    names = phi_of(hub)
    assert len(names) > 10  # the hub holds some: a test with none could not fail
    page, name, *_ = sign_in(browser, url, hub, "viewer")

    def clean(where: str) -> None:
        shown = page.content() + page.inner_text("body")
        leaked = [x for x in names if x in shown]
        assert not leaked, f"{where} shows {len(leaked)} names or member ids to a viewer"

    clean("/")
    for label in NAV[1:]:
        page.locator("header nav a").get_by_text(label, exact=True).click()
        page.wait_for_load_state("load")
        clean(_path(page))
    page.goto("/claims")
    claims = page.locator("#claims a[href^='/claims/']").all_inner_texts()
    assert len(claims) > 5
    for pcn in claims:
        page.goto(f"/claims/{pcn}")
        assert page.inner_text("h1").startswith(f"Claim {pcn}")
        assert page.locator("#patient-name").count() == 0 and page.locator("#segments").count() == 0
        clean(f"/claims/{pcn}")
    for path in PAGES:
        page.goto(path)
        clean(path)
    # no action forms for a viewer
    page.goto("/work")
    assert page.locator("#denials form").count() == 0
    page.context.close()
    assert {f"/claims/{pcn}" for pcn in claims} <= _viewed(hub, name)
    _verified(hub)


def test_a_browser_not_signed_in_is_sent_to_sign_in_from_every_url_and_brought_back(browser, url, hub):
    context = browser.new_context(base_url=url)
    page = context.new_page()
    for path in PAGES + ["/claims/NOSUCH"]:
        page.goto(path)
        assert urlsplit(page.url).path == "/login", path
        assert parse_qs(urlsplit(page.url).query)["next"] == [path]
        assert page.locator("main form input[name=password]").count() == 1
    context.close()
    # signed in from a deep link, each lands where it asked, through the code enrolment too
    page, *_ = sign_in(browser, url, hub, "viewer", start="/inbox?state=quarantined")
    page.context.close()
    page, *_ = sign_in(browser, url, hub, "biller", start="/claims/BH00000002")
    assert "CLM*BH00000002*" in page.inner_text("#segments")
    page.context.close()
    # and a next that leaves the workspace is not followed
    context = browser.new_context(base_url=url)
    page = context.new_page()
    from bhhub.accounts import add_user

    name = _user("v")
    add_user(hub, name, "viewer", PASSWORD)
    page.goto("/login?next=//example.com/")
    _sign_in_form(page, name)
    assert page.url == f"{url}/"
    context.close()
    _verified(hub)


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(browser, url, hub, open_denial):
    # bypass_csp: the page's Content-Security-Policy would stop the forger's script, which is
    # not what this test is about
    page, name, *_ = sign_in(browser, url, hub, "biller", start="/work", bypass_csp=True)
    denial = open_denial
    row = page.locator(f"#denial-{denial}")
    row.locator("input[name=csrf]").evaluate("input => input.remove()")
    row.locator("select[name=action]").select_option("write_off")
    with page.expect_response(lambda r: r.url.endswith(f"/work/denials/{denial}")) as answer:
        row.locator("button:has-text('Do')").click()
        page.wait_for_load_state("load")
    assert answer.value.status == 403
    assert page.inner_text("h1") == "Not done"
    assert "did not come from this workspace" in page.inner_text("p.error")
    # a token that is not this session's is refused the same way
    page.goto("/work")
    row = page.locator(f"#denial-{denial}")
    row.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    with page.expect_response(lambda r: r.url.endswith(f"/work/denials/{denial}")) as answer:
        row.locator("button:has-text('Do')").click()
        page.wait_for_load_state("load")
    assert answer.value.status == 403
    # another site's page posting the same form into this signed-in browser: the SameSite=Strict
    # cookie stays home, so the post is a stranger's and is sent to sign in
    other = page.context.new_page()
    other.set_content(f'<form method="post" action="{url}/work/denials/{denial}">'
                      '<input name="action" value="write_off"><button>Win a prize</button></form>')
    other.click("button")
    other.wait_for_load_state()
    assert urlsplit(other.url).path == "/login", other.url
    page.context.close()
    assert _open_denial(hub) == denial
    assert not [r for r in _trail(hub, f"web:{name}") if r.action == "resolve_denial"]
    _verified(hub)


def test_an_idle_session_ends_and_the_next_click_asks_to_sign_in(browser, url, hub, monkeypatch):
    from bhhub.accounts import clock
    from bhhub.configuration.hub_file import Workspace

    page, name, *_ = sign_in(browser, url, hub, "viewer")
    idle = hub.settings.section(Workspace).idle_minutes
    later = clock.now() + timedelta(minutes=idle + 1)
    monkeypatch.setattr(clock, "now", lambda: later)  # the server runs in this process
    page.locator("header nav a").get_by_text("Claims", exact=True).click()
    page.wait_for_load_state("load")
    assert urlsplit(page.url).path == "/login"
    assert parse_qs(urlsplit(page.url).query)["next"] == ["/claims"]
    assert page.context.cookies() and "bhhub_session" not in {c["name"] for c in page.context.cookies()}
    page.context.close()
    assert "session_expired" in {r.action for r in _trail(hub, name)}
    assert "/claims" not in _viewed(hub, name)
    _verified(hub)


def test_the_workspace_works_with_javascript_off(browser, url, hub, open_denial):
    page, name, *_ = sign_in(browser, url, hub, "biller", start="/work", java_script_enabled=False)
    denial = open_denial
    row = page.locator(f"#denial-{denial}")
    row.locator("select[name=action]").select_option("appeal_done")
    row.locator("button:has-text('Do')").click()
    page.wait_for_load_state("load")
    assert page.inner_text("p.notice") == f"denial {denial}: appeal sent"
    page.locator("header nav a").get_by_text("Claims", exact=True).click()
    page.wait_for_load_state("load")
    page.select_option("select[name=status]", "denied")
    page.click("form.filters button:has-text('Show')")
    page.wait_for_load_state("load")  # the next page, loaded
    assert _path(page).startswith("/claims?status=denied")
    page.click("button:has-text('Sign out')")
    page.wait_for_load_state("load")  # the next page, loaded
    assert urlsplit(page.url).path == "/login"
    page.go_back()  # the claims page is not kept (no-store): going back asks the server, which says sign in
    assert urlsplit(page.url).path == "/login" and page.locator("#claims").count() == 0
    page.context.close()
    assert any(r.action == "resolve_denial" and r.detail == "appeal_done" for r in _trail(hub, f"web:{name}"))
    assert "logout" in {r.action for r in _trail(hub, name)}
    _verified(hub)


def test_a_screenshot_of_the_overview_from_the_demos_hub(browser, tmp_path, monkeypatch, capsys):
    """The README's picture: the demo run into a fresh home, served, a viewer signed in, the
    overview photographed whole. ``BHHUB_UPDATE_SCREENSHOT=1`` writes it into docs/images/."""
    from bhhub.cli.demo import cmd_demo
    from bhhub.runtime.app import Hub

    monkeypatch.delenv("BHHUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("BHHUB_TODAY", raising=False)  # the demo dates its visits from today: as a person sees it
    assert cmd_demo(argparse.Namespace(home=tmp_path, serve=False, plugin_host=None)) == 0
    capsys.readouterr()
    with Hub.open(tmp_path / "demo") as hub, serving(hub) as url:
        page, *_ = sign_in(browser, url, hub, "viewer", name="viewer", viewport={"width": 1280, "height": 900})
        assert page.locator("main svg.chart").count() >= 4
        text = page.content()
        assert not [x for x in phi_of(hub) if x in text]
        page.wait_for_load_state("networkidle")  # the stylesheet in: the page's height is its styled one
        shot = page.screenshot(path=str(tmp_path / "workspace-overview.png"), full_page=True)
        page.context.close()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < len(shot) < 2_000_000
    width, height = int.from_bytes(shot[16:20], "big"), int.from_bytes(shot[20:24], "big")
    assert width == 1280 and height >= 900
    if os.environ.get("BHHUB_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)


def test_the_picture_in_the_readme_is_there():
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.search(r"!\[[^\]]*\]\(docs/images/workspace-overview\.png\)", (PROJECT / "README.md").read_text())
