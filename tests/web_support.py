"""A hub the workspace tests fill as a practice would: the demo's exports (claims paid, one denied,
one rejected, one that needs attention, a truncated file quarantined) exchanged with bhhub's
sandbox clearinghouse over SFTP, eligibility asked and answered, and an authorization with
appointments booked past what it has left; on whichever store ``database_url`` names.

And a signed-in client: ``signed_in(client, hub, role)`` makes a user, signs in with the
password and, for admins and billers, enrols a one-time code from the QR page's key, as a
person with an authenticator app would. And ``serving(hub)``: the workspace run by uvicorn in
this process, for a real browser (tests/test_web_browser.py).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pyotp

PASSWORD = "correct horse battery staple"


def fill(home: Path, database_url: str, work: Path, request) -> None:
    from bhhub.cli.demo import _write_exports
    from bhhub.eligibility.sweep import sweep
    from bhhub.exchange.cycle import exchange
    from bhhub.exchange.mailboxes import load_mailboxes
    from bhhub.intake import inbox as intake
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse
    from bhhub.runtime.app import Hub
    from sandbox_support import sandbox_mailbox

    sandbox = SandboxClearinghouse(work / "sandbox").start()
    request.addfinalizer(sandbox.stop)
    home.mkdir(exist_ok=True)
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n' + sandbox_mailbox(sandbox, timeout=10),
                                     encoding="utf-8")
    exports = work / "exports"
    exports.mkdir()
    _write_exports(exports)
    with Hub.open(home) as hub:
        for path in sorted(exports.iterdir()):
            intake.receive(hub, path.read_bytes(), path.name)
        sweep(hub)
        report = exchange(hub, load_mailboxes(hub)["sandbox"])
        assert report.ok, report.error
        _authorization(hub)


def _authorization(hub) -> None:
    """Two visits authorized for the first paid claim's patient, one used by its claim, and three
    appointments booked after today (as an SIU feed would leave them): it runs out before the second."""
    from sqlalchemy import select

    from bhhub.ledger import authorization_uses
    from bhhub.ledger import authorizations as ledger
    from bhhub.runtime.clock import today
    from bhhub.store import schema

    with hub.store.writer() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.status == "paid")
                                .order_by(schema.Claim.id)).first()
        cov = session.get(schema.Coverage, claim.coverage_id)
        payer = session.get(schema.Payer, cov.payer_id)
        ledger.add(session, payer_id=payer.payer_id, member_id=cov.member_id, number="AUTH-WEB-1", quantity=2,
                   start=claim.service_date - timedelta(days=5), end=today() + timedelta(days=60))
        session.flush()
        assert authorization_uses.consume(session, claim)  # the claim came before the authorization
        item = session.scalars(select(schema.InboxItem.id).order_by(schema.InboxItem.id)).first()
        for days in (3, 10, 17):
            session.add(schema.Appointment(key=f"web-test-{days}", patient_key="web-test",
                                           patient_id=claim.patient_id, service_date=today() + timedelta(days=days),
                                           status="booked", inbox_item_id=item))
        session.commit()


@contextmanager
def serving(hub) -> Iterator[str]:
    """The workspace over ``hub``, served by uvicorn in a thread of this process on a free
    loopback port (a socket bound before the server starts: no race for the port); its base URL.
    In process, so a test can move ``bhhub.accounts.clock`` under the running server."""
    import uvicorn

    from bhhub.web.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(hub), log_config=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="bhhub-workspace", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the workspace did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def phi_of(hub) -> list[str]:
    """Every patient name and member id the hub holds: what a viewer must never see."""
    from sqlalchemy import select

    from bhhub.store import schema

    with hub.store.session() as session:
        found = set(session.scalars(select(schema.Coverage.member_id)))
        for p in session.scalars(select(schema.Patient)):
            found |= {p.family_name, p.given_name}
    return sorted(x for x in found if x and len(x) > 2)


def signed_in(client, hub, name: str, role: str) -> str:
    """Sign ``client`` in as a new user ``name``; the TOTP secret for admins and billers."""
    from bhhub.accounts import add_user

    add_user(hub, name, role, PASSWORD)
    page = client.get("/login")
    csrf = _field(page.text, "csrf")
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf, "next": "/"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    if role == "viewer":
        assert answer.headers["location"] == "/"
        return ""
    assert answer.headers["location"].startswith("/login/enrol")
    page = client.get(answer.headers["location"])
    secret = _field(page.text, "secret")
    done = client.post("/login/enrol", data={"csrf": _field(page.text, "csrf"), "secret": secret, "next": "/",
                                             "code": pyotp.TOTP(secret).now()}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/", done.text
    return secret


def csrf_of(client) -> str:
    return _field(client.get("/work").text, "csrf")


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)
