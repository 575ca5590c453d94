"""``bhhub serve`` and ``bhhub demo --serve`` as a person runs them: a real uvicorn on a loopback
port, stopped with Ctrl-C (SIGINT), and the one-line refusals when it cannot start."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from web_support import PASSWORD, fill

BHHUB = [str(Path(sys.executable).parent / "bhhub")]  # the installed command, as a person runs it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(BHHUB + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "bhhub workspace on http" in line:
            return process, lines
    process.kill()
    pytest.fail("the workspace did not start:\n" + "\n".join(lines))


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on {port}")


def test_serve_answers_on_its_port_and_stops_on_ctrl_c_with_130(tmp_path):
    home = tmp_path / "hub"
    subprocess.run(BHHUB + ["--home", str(home), "init"], check=True, capture_output=True)
    port = _free_port()
    process, lines = _start(["--home", str(home), "serve", "--port", str(port)])
    try:
        assert any("bhhub user add" in line for line in lines)  # no users yet: it says how to make one
        _wait_listening(port)
        page = httpx.get(f"http://127.0.0.1:{port}/claims", timeout=10)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fclaims"
        login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert login.status_code == 200 and "Sign in" in login.text
        assert "server" not in login.headers  # uvicorn's banner is off
    finally:
        code = _stop(process)
    assert code == 130  # interrupted (Ctrl-C), as the README's exit codes say, after a clean shutdown


def test_a_taken_port_is_one_line_and_exit_2(tmp_path):
    home = tmp_path / "hub"
    subprocess.run(BHHUB + ["--home", str(home), "init"], check=True, capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(BHHUB + ["--home", str(home), "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"bhhub: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in done.stdout + done.stderr


def test_demo_serve_leaves_the_demo_hub_open_with_users_to_sign_in_as(tmp_path):
    pytest.importorskip("pyx12")
    port = _free_port()
    process, lines = _start(["--home", str(tmp_path), "demo", "--serve", "--port", str(port)])
    try:
        passwords = dict(re.findall(r"sign in as (\w+)\s+password (\S+)", "\n".join(lines)))
        assert set(passwords) == {"biller", "viewer"}
        _wait_listening(port)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=20) as client:
            # the cookies are Secure, which a browser sends to 127.0.0.1 over http; httpx does not, so by hand
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            pre = re.search(r"bhhub_login=([^;]+)", form.headers["set-cookie"]).group(1)
            signed = client.post("/login", data={"name": "viewer", "password": passwords["viewer"], "csrf": csrf},
                                 headers={"cookie": f"bhhub_login={pre}"})
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            session = re.search(r"bhhub_session=([^;]+)", signed.headers["set-cookie"]).group(1)
            overview = client.get("/", headers={"cookie": f"bhhub_session={session}"})
            assert overview.status_code == 200
            assert "days in A/R" in overview.text and "<svg" in overview.text
            claims = client.get("/api/claims", headers={"cookie": f"bhhub_session={session}"}).json()["claims"]
            assert len(claims) >= 8 and all("member_id" not in c for c in claims)  # a viewer's: no PHI
    finally:
        code = _stop(process)
    assert code == 130  # interrupted (Ctrl-C), as the README's exit codes say, after a clean shutdown


def _field(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _audit(hub, action: str):
    from sqlalchemy import select

    from bhhub.store import schema

    with hub.store.session() as session:
        return session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.action == action)
                               .order_by(schema.AuditEvent.id)).all()


# From tests/test_web_hostile.py's attacks: the real server, another process on the store.
def test_the_audit_source_is_the_connection_not_a_header_the_client_sends(tmp_path, request):
    """On a hub of its own: the real `bhhub serve` here is another process on the store."""
    import os
    import time

    import httpx

    from bhhub.runtime.app import Hub

    filled = tmp_path / "home"
    fill(filled, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, request)
    hub = Hub.open(filled)
    request.addfinalizer(hub.close)

    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("bhhub")), "serve", "--port", str(port)],
                              env={**os.environ, "BHHUB_HOME": str(filled)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        typed = f"x{uuid.uuid4().hex[:8]}"
        from bhhub.accounts import add_user

        add_user(hub, typed, "viewer", PASSWORD)  # a known name: its failures are recorded under it
        with httpx.Client(base_url=base) as browser:
            form = browser.get("/login")
            csrf = _field(form.text, "csrf")
            # the cookie is Secure (loopback counts as secure for browsers); httpx keeps it to https
            pre = re.search(r"bhhub_login=([^;]+)", form.headers["set-cookie"]).group(1)
            refused = browser.post("/login", data={"name": typed, "password": "wrong", "csrf": csrf},
                                   headers={"x-forwarded-for": "203.0.113.9", "cookie": f"bhhub_login={pre}"})
            assert refused.status_code == 401, refused.text[:300]
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = [r for r in _audit(hub, action="login_failed") if r.actor == typed]
    assert rows and rows[0].source == "web:127.0.0.1", [r.source for r in rows]
