"""The practice workspace at a practice's scale: ``bhhub serve`` on a hub of 100,000 claims,
timed over HTTP as a signed-in admin, beside the same query run directly on the store.

    python benchmarks/workspace.py [--claims 100000] [--small 10000] [--requests 30]
                                   [--overview-requests 5] [--load-seconds 30] [--json]
                                   [--database-url URL] [--keep DIR] [--save FILE]

For each size (``--small`` claims, then ``--claims``) it fills a fresh hub (``listings.py``'s
filler: claims with lines, status history, 277CAs, 835 postings; plus denials: a quarter of the
paid claims denied outright (CO-50, on the worklist) and some others partly denied (CO-16)),
starts the real server as a user would (``bhhub --home H serve --port P``, a process of its own),
makes an admin, enrols their one-time code, signs in over HTTP as a browser does (the login
form's CSRF field and cookie, password, then a fresh TOTP code), and measures:

  latency     p50/p95 of GET /  (the overview), GET /claims?status=denied (a filtered page),
              GET /claims/PCN (a claim's page), and their /api/ twins, one request at a time
  direct      the same bhhub.web.views function the page calls (overview, claims, claim), in
              this process on the same store, timed the same way: the query without HTTP,
              sessions, audit of the view, templates or JSON
  throughput  requests per second with 8 concurrent clients (threads, each its own connection,
              one signed-in session) over a mix of the six URLs, then over the pages without
              the overview (whose seconds-long answers are otherwise the whole figure)
  memory      the server process's VmRSS and VmHWM (its peak) from /proc/PID/status after the run

Targets (issue 16): p95 under 200 ms, at most 2x the direct query (p50 against p50 and p95
against p95), and the server's peak memory flat from --small to --claims (here: within 1.25x).
Timings are wall clock on this machine; the README names the machine the figures are from.

With --database-url each hub is filled in a schema of its own in that PostgreSQL database
(``bhhub_workspace_SIZE_PID``), dropped at the end (kept with --keep); nothing else is touched.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # listings.py's filler
sys.path.insert(0, str(HERE.parent))  # the hub, when not installed

TARGET_P95_MS = 200.0
TARGET_RATIO = 2.0
TARGET_MEMORY_GROWTH = 1.25  # "flat": the peak at --claims within this of the peak at --small
CLIENTS = 8
PASSWORD = "benchmark password, long enough"
USER = "bench-admin"
CHUNK = 5000


# --- filling ---------------------------------------------------------------------------------

def fill(home: Path, claims: int, database_url: str | None) -> dict:
    """listings.py's hub of ``claims`` claims, then denials on some of its paid claims."""
    from listings import fill as fill_claims

    fill_claims(home, claims, database_url)
    add_batch_content(home)
    return add_denials(home)


def scratch_schema(database_url: str, name: str, *, drop: bool = False) -> str:
    """A PostgreSQL schema of its own for one hub (created, or dropped), and the URL that puts
    the hub in it: nothing else in the database is touched."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE' if drop else f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    return f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{name}"


def interchange(number: int, claims: list) -> bytes:
    """An 837P interchange of ``claims`` ((pcn, charge, service date) each) as a batch's stored
    bytes: listings.py stores none, and a claim's page cuts its CLM loop from them."""
    isa = (f"ISA*00*{'':10}*00*{'':10}*ZZ*{'SENDER':15}*ZZ*{'RECEIVER':15}*261129*1200*^*00501*{number:09d}*0*T*:~")
    assert len(isa) == 106
    out = [isa, f"GS*HC*SENDER*RECEIVER*20261129*1200*{number}*X*005010X222A1~",
           f"ST*837*{number:04d}*005010X222A1~", f"BHT*0019*00*{number}*20261129*1200*CH~",
           "NM1*41*2*PRACTICE*****46*SENDER~", "PER*IC*BILLING*TE*5555550100~", "NM1*40*2*RECEIVER*****46*RECEIVER~",
           "HL*1**20*1~", "NM1*85*2*PRACTICE*****XX*1234567893~", "N3*1 MAIN ST~", "N4*SPRINGFIELD*IL*627010000~",
           "REF*EI*123456789~"]
    for hl, (pcn, charge, day) in enumerate(claims, start=2):
        out += [f"HL*{hl}*1*22*0~", "SBR*P*18*******CI~", f"NM1*IL*1*SYNTHETIC*P****MI*M{hl:09d}~",
                "N3*2 ELM ST~", "N4*SPRINGFIELD*IL*627010000~", "DMG*D8*19800101*F~",
                "NM1*PR*2*PAYER*****PI*PAYER01~", f"CLM*{pcn}*{charge}***11:B:1*Y*A*Y*Y~",
                "HI*ABK:F411*ABF:F331~", "LX*1~", "SV1*HC:90837:95*150.00*UN*1***1:2~", f"DTP*472*D8*{day:%Y%m%d}~",
                f"REF*6R*{pcn}-1~"]
        if charge > 150:
            out += ["LX*2~", "SV1*HC:90785*40.00*UN*1***1:2~", f"DTP*472*D8*{day:%Y%m%d}~", f"REF*6R*{pcn}-2~"]
    count = len(out) - 1
    out += [f"SE*{count}*{number:04d}~", f"GE*1*{number}~", f"IEA*1*{number:09d}~"]
    return "\n".join(out).encode()


def add_batch_content(home: Path) -> None:
    import hashlib

    from sqlalchemy import bindparam, select, update

    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    c, b = schema.Claim.__table__, schema.Batch.__table__
    with Hub.open(home, plugins=_no_plugins()) as hub, hub.store.engine.begin() as conn:
        batches: dict[int, list] = {}
        for batch, pcn, charge, day in conn.execute(
                select(c.c.batch_id, c.c.patient_control_number, c.c.total_charge, c.c.service_date)
                .where(c.c.batch_id.is_not(None)).order_by(c.c.id)):
            batches.setdefault(batch, []).append((pcn, charge, day))
        rows = []
        for batch, claims in batches.items():
            content = interchange(batch, claims)
            rows.append({"bid": batch, "content": content, "sha256": hashlib.sha256(content).hexdigest(),
                         "claim_count": len(claims), "total_charge": sum(charge for _, charge, _ in claims)})
        for start in range(0, len(rows), CHUNK):
            conn.execute(update(b).where(b.c.id == bindparam("bid"))
                         .values(content=bindparam("content"), sha256=bindparam("sha256"),
                                 claim_count=bindparam("claim_count"), total_charge=bindparam("total_charge")),
                         rows[start:start + CHUNK])


def add_denials(home: Path) -> dict:
    """A quarter of the paid claims denied outright (the 835 paid nothing: CO-50, appeal; the
    claim's status ``denied``), a tenth of the rest partly (CO-16 on a line, resubmit with
    information), so the worklist, the denied filter and the denial rate have data."""
    from sqlalchemy import bindparam, insert, select, update

    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    rng = random.Random(16)
    now = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)  # listings.py's
    c, r = schema.Claim.__table__, schema.RemitClaim.__table__
    with Hub.open(home, plugins=_no_plugins()) as hub, hub.store.engine.begin() as conn:
        paid = conn.execute(select(r.c.id, r.c.claim_id, r.c.charge, c.c.service_date)
                            .join(c, c.c.id == r.c.claim_id).where(r.c.state == "posted").order_by(r.c.id)).all()
        denied, partly, denials, events, remits = [], [], [], [], []
        for remit_id, claim_id, charge, day in paid:
            roll = rng.random() if denied else 0.0  # at least one, however small the hub
            if roll < 0.25:
                denied.append({"cid": claim_id})
                remits.append({"rid": remit_id, "paid": Decimal(0), "status_code": "4", "patient_responsibility": Decimal(0),
                               "contractual": charge, "remarks": ["N115"],
                               "adjustments": [{"level": "claim", "line": None, "group": "CO", "reason": "50",
                                                "amount": str(charge)}]})
                events.append({"claim_id": claim_id, "status": "denied", "at": now, "reason": "835: CO-50"})
                worked = rng.random() < 0.2
                denials.append({"remit_claim_id": remit_id, "claim_id": claim_id, "line": None, "procedure_code": None,
                                "group_code": "CO", "reason_code": "50", "remark_codes": ["N115"], "amount": charge,
                                "category": "medical_necessity", "action": "appeal",
                                "action_text": "appeal with the treatment plan and progress notes",
                                "deadline": day + timedelta(days=rng.randrange(120, 540)),
                                "status": "resolved" if worked else "open", "created_at": now,
                                "resolved_at": now if worked else None,
                                "resolution": "appealed" if worked else None, "patient_owes": False})
            elif roll < 0.33:
                partly.append(claim_id)
                denials.append({"remit_claim_id": remit_id, "claim_id": claim_id, "line": 1, "procedure_code": "90837",
                                "group_code": "CO", "reason_code": "16", "remark_codes": ["M51"],
                                "amount": Decimal("20.00"), "category": "missing_data", "action": "resubmit_with_info",
                                "action_text": "add the missing information and send a corrected claim",
                                "deadline": day + timedelta(days=rng.randrange(90, 365)), "status": "open",
                                "created_at": now, "resolved_at": None, "resolution": None, "patient_owes": False})
        for start in range(0, len(denied), CHUNK):
            conn.execute(update(c).where(c.c.id == bindparam("cid")).values(status="denied"),
                         denied[start:start + CHUNK])
        for start in range(0, len(remits), CHUNK):
            conn.execute(update(r).where(r.c.id == bindparam("rid"))
                         .values(paid=bindparam("paid"), status_code=bindparam("status_code"),
                                 patient_responsibility=bindparam("patient_responsibility"),
                                 contractual=bindparam("contractual"), remarks=bindparam("remarks"),
                                 adjustments=bindparam("adjustments")), remits[start:start + CHUNK])
        for table, rows in ((schema.ClaimStatusEvent, events), (schema.Denial, denials)):
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(table.__table__), rows[start:start + CHUNK])
    return {"denied": len(denied), "partly_denied": len(partly), "denials": len(denials)}


def _no_plugins():
    from bhhub.runtime.plugin_host import build_plugin_host

    return build_plugin_host([])


# --- the server and a browser-like client ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen:
    """``bhhub --home HOME serve --port PORT`` in a process of its own, once it answers."""
    import requests

    sink = log.open("wb")
    server = subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "serve", "--port", str(port)],
                              stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bhhub serve exited ({server.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"bhhub serve did not answer within 120 s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def make_admin(home: Path) -> tuple[int, str]:
    """An admin with a one-time code enrolled, as the QR page does it; (user id, TOTP secret).
    Enrolled with the previous 30 s step's code, so the sign-in's current code is a new one
    (a code is accepted once)."""
    import pyotp

    from bhhub.accounts import add_user, begin_totp, finish_totp
    from bhhub.runtime.app import Hub

    with Hub.open(home, plugins=_no_plugins()) as hub:
        user_id = add_user(hub, USER, "admin", PASSWORD)
        secret = begin_totp(hub, user_id).secret
        assert finish_totp(hub, user_id, secret, pyotp.TOTP(secret).at(time.time() - 30), source="benchmark")
    return user_id, secret


class Browser:
    """A requests session that keeps the workspace's cookies by hand: they are ``Secure`` on
    loopback (as a browser treats it), which Python's cookie jar will not send over http://."""

    def __init__(self, base: str, cookies: dict | None = None):
        import requests

        self.base, self.http, self.cookies = base, requests.Session(), dict(cookies or {})

    def request(self, method: str, path: str, **kwargs):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        answer = self.http.request(method, self.base + path, headers=headers, allow_redirects=False, timeout=600,
                                   **kwargs)
        for header in answer.raw.headers.getlist("set-cookie"):
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def get(self, path: str):
        return self.request("GET", path)


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    if not found:
        raise SystemExit(f"no {name} field in the page")
    return found.group(1)


def sign_in(base: str, secret: str) -> dict:
    """Sign in as a browser does; the signed-in cookies."""
    import pyotp

    browser = Browser(base)
    form = browser.get("/login")
    answer = browser.request("POST", "/login", data={"name": USER, "password": PASSWORD, "next": "/",
                                                     "csrf": field(form.text, "csrf")})
    if answer.status_code != 303 or not answer.headers["location"].startswith("/login/code"):
        raise SystemExit(f"password refused: {answer.status_code} {answer.headers.get('location')}")
    form = browser.get(answer.headers["location"])
    answer = browser.request("POST", "/login/code", data={"csrf": field(form.text, "csrf"), "next": "/",
                                                          "code": pyotp.TOTP(secret).now()})
    if answer.status_code != 303 or answer.headers["location"] != "/":
        raise SystemExit(f"one-time code refused: {answer.status_code}")
    if browser.get("/claims?status=denied").status_code != 200:
        raise SystemExit("signed in, but the claims page did not answer 200")
    return browser.cookies


def memory(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of process ``pid``, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


# --- timing ----------------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(call, arguments: list, requests: int) -> dict:
    """p50/p95 in ms of ``call(argument)``, cycling through ``arguments``, after one warm-up."""
    call(arguments[0])
    samples = []
    for n in range(requests):
        started = time.perf_counter()
        call(arguments[n % len(arguments)])
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(samples, 0.5), "p95_ms": percentile(samples, 0.95), "n": len(samples)}


def targets(pcns: list[str]) -> list[tuple[str, list[str], str]]:
    """(row name, URLs, the bhhub.web.views function behind them)."""
    return [("overview", ["/"], "overview"), ("overview API", ["/api/overview"], "overview"),
            ("claims?status=denied", ["/claims?status=denied"], "claims"),
            ("claims API ?status=denied", ["/api/claims?status=denied"], "claims"),
            ("claim page", [f"/claims/{p}" for p in pcns], "claim"),
            ("claim API", [f"/api/claims/{p}" for p in pcns], "claim")]


def counts(args) -> dict:
    """Timed requests per views function: the overview reads every claim, so it gets fewer."""
    return {"overview": args.overview_requests, "claims": args.requests, "claim": args.requests}


def server_latency(base: str, cookies: dict, pcns: list[str], n: dict) -> dict:
    browser = Browser(base, cookies)

    def get(path):
        answer = browser.get(path)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path}: {answer.status_code} {answer.text[:300]}")

    return {name: timed(get, urls, n[function]) for name, urls, function in targets(pcns)}


def direct_latency(home: Path, user_id: int, pcns: list[str], n: dict) -> dict:
    """The views functions the pages call, in this process, as the signed-in admin."""
    from bhhub.runtime.app import Hub
    from bhhub.web import views
    from bhhub.web.guard import Visitor

    from bhhub.web.figures import Figures

    calls = {"overview": lambda _: views.overview(who, figures), "claims": lambda _: views.claims(who, status="denied"),
             "claim": lambda pcn: views.claim(who, pcn)}
    with Hub.open(home, plugins=_no_plugins()) as hub:  # as `bhhub serve` opens it: no plugins
        as_user = copy.copy(hub)
        as_user.actor, as_user.source = f"web:{USER}", "web:127.0.0.1"
        who = Visitor(USER, "admin", user_id, "", as_user)
        figures = Figures(hub)  # the server's: the A/R figures kept until the data changes
        started = time.perf_counter()
        figures.current()  # computed from every claim (ar_report and the 12-month trend), as at the server's start
        cold = (time.perf_counter() - started) * 1000
        out = {function: timed(calls[function], pcns if function == "claim" else [None], n[function])
               for function in ("overview", "claims", "claim")}
    return {**out, "figures_computed_ms": cold}


def throughput(base: str, cookies: dict, pcns: list[str], seconds: float, *, overview: bool = True) -> dict:
    """Requests per second of CLIENTS threads, each going round the mix (from its own place in
    it) until ``seconds`` have passed; a request under way then is waited for and counted.
    Without ``overview``, the mix is the other pages (the overview's time is the whole figure
    when it is in it)."""
    mix = [url for name, urls, _ in targets(pcns) for url in urls[:1] if overview or not name.startswith("overview")]
    mix += [f"/claims/{p}" for p in pcns[1:3]]
    errors, done = [], []

    def client(offset: int):
        browser = Browser(base, cookies)
        n = 0
        while time.perf_counter() < started + seconds:
            path, n = mix[(offset + n) % len(mix)], n + 1
            try:
                status = browser.get(path).status_code
            except OSError as exc:  # requests' ConnectionError is one: the server dropped the connection
                status = type(exc).__name__
            (done if status == 200 else errors).append((path, status))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    started = time.perf_counter()  # read by the clients
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"clients": CLIENTS, "requests": len(done) + len(errors), "errors": len(errors),
            "error_statuses": sorted({str(s) for _, s in errors}), "seconds": elapsed,
            "rps": (len(done) + len(errors)) / elapsed}


def some_pcns(home: Path, count: int = 10) -> list[str]:
    """Denied claims spread over the store (their page has the most to show: an 835, a denial)."""
    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    with Hub.open(home, plugins=_no_plugins()) as hub, hub.store.session() as session:
        c = schema.Claim
        found = (session.scalars(select(c.patient_control_number).where(c.status == "denied").order_by(c.id)).all()
                 or session.scalars(select(c.patient_control_number).where(c.batch_id.is_not(None))  # a tiny hub
                                    .order_by(c.id)).all())
    step = max(1, len(found) // count)
    return list(found[::step][:count])


def measure(size: int, tmp: Path, args) -> dict:
    schema = f"bhhub_workspace_{size}_{os.getpid()}"
    url = scratch_schema(args.database_url, schema) if args.database_url else None
    try:
        return _measure(size, tmp, url, args)
    finally:
        if args.database_url and not args.keep:
            scratch_schema(args.database_url, schema, drop=True)


def _measure(size: int, tmp: Path, url: str | None, args) -> dict:
    home = tmp / f"home-{size}"
    started = time.perf_counter()
    fill_argv = [sys.executable, __file__, "--fill", str(home), "--claims", str(size)]
    out = subprocess.run(fill_argv + (["--database-url", url] if url else []), check=True, capture_output=True,
                         text=True)
    filled = json.loads(out.stdout.strip().splitlines()[-1])
    fill_s = time.perf_counter() - started
    user_id, secret = make_admin(home)
    pcns = some_pcns(home)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(home, port, tmp / f"serve-{size}.log")
    try:
        cookies = sign_in(base, secret)
        started_mb = memory(server.pid)
        latency = server_latency(base, cookies, pcns, counts(args))
        rps = throughput(base, cookies, pcns, args.load_seconds)
        rps_pages = throughput(base, cookies, pcns, args.load_seconds, overview=False)
        after = memory(server.pid)
    finally:
        stop_server(server)
    direct = direct_latency(home, user_id, pcns, counts(args))
    rows = []
    for name, urls, function in targets(pcns):
        served, base_row = latency[name], direct[function]
        rows.append({"request": name, "url": urls[0], "direct": f"views.{function}", **served,
                     "direct_p50_ms": base_row["p50_ms"], "direct_p95_ms": base_row["p95_ms"],
                     "ratio_p50": served["p50_ms"] / base_row["p50_ms"],
                     "ratio_p95": served["p95_ms"] / base_row["p95_ms"]})
    for row in rows:
        row["p95_met"] = row["p95_ms"] < TARGET_P95_MS
        row["ratio_met"] = row["ratio_p50"] <= TARGET_RATIO and row["ratio_p95"] <= TARGET_RATIO
    return {"claims": size, **filled, "fill_seconds": fill_s, "figures_computed_ms": direct["figures_computed_ms"],
            "rows": rows, "throughput": rps,
            "throughput_without_overview": rps_pages,
            "server_mb": {"signed_in_rss": started_mb["VmRSS"], "rss": after["VmRSS"], "peak": after["VmHWM"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=100_000, help="claims in the big hub (default 100,000)")
    parser.add_argument("--small", type=int, default=10_000,
                        help="claims in the small hub the memory is compared with (default 10,000)")
    parser.add_argument("--requests", type=int, default=30,
                        help="timed requests per URL, one at a time (default 30)")
    parser.add_argument("--overview-requests", type=int, default=5,
                        help="timed requests of the overview and its API twin (default 5: each reads every claim)")
    parser.add_argument("--load-seconds", type=float, default=30,
                        help="how long the 8 clients run (default 30 s; requests under way are waited for)")
    parser.add_argument("--database-url", help="a PostgreSQL database to fill (each hub in a schema of its own, "
                        "dropped after) instead of fresh SQLite files")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--save", metavar="FILE", help="write the figures as JSON to FILE too")
    parser.add_argument("--keep", metavar="DIR", help="fill the hubs in DIR and keep them, with the server's log "
                        "(default: a temporary folder, removed)")
    parser.add_argument("--fill", metavar="HOME", help=argparse.SUPPRESS)  # the filling child
    args = parser.parse_args()
    if args.fill:
        print(json.dumps(fill(Path(args.fill), args.claims, args.database_url)))
        return 0
    if not 0 < args.small < args.claims or min(args.requests, args.overview_requests) < 1 or args.load_seconds <= 0:
        parser.error("need 0 < --small < --claims, --requests and --overview-requests of at least 1, "
                     "--load-seconds above 0")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        sizes = [measure(size, Path(args.keep), args) for size in (args.small, args.claims)]
    else:
        with tempfile.TemporaryDirectory(prefix="bhhub-workspace-") as tmp:
            sizes = [measure(size, Path(tmp), args) for size in (args.small, args.claims)]
    small, big = sizes
    growth = big["server_mb"]["peak"] / small["server_mb"]["peak"]
    verdict = {
        "p95_under_200ms": all(r["p95_met"] for r in big["rows"]),
        "within_2x_direct": all(r["ratio_met"] for r in big["rows"]),
        "memory_flat": growth <= TARGET_MEMORY_GROWTH,
        "no_errors_under_load": all(s[k]["errors"] == 0 for s in sizes
                                    for k in ("throughput", "throughput_without_overview")),
    }
    figures = {"store": "postgresql" if args.database_url else "sqlite", "requests": counts(args),
               "load_seconds": args.load_seconds,
               "sizes": sizes, "memory_growth": growth, "verdict": verdict,
               "targets": {"p95_ms": TARGET_P95_MS, "ratio": TARGET_RATIO, "memory_growth": TARGET_MEMORY_GROWTH}}
    if args.save:
        Path(args.save).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return 0
    for size in sizes:
        print(f"\n{size['claims']:,} claims on {figures['store']} ({size['denied']:,} denied, {size['denials']:,} "
              f"denials; filled in {size['fill_seconds']:.0f} s), {args.requests} timed requests each "
              f"({args.overview_requests} of the overview)")
        print(f"{'request':28} {'p50':>8} {'p95':>8}   {'direct p50':>10} {'p95':>8}   {'ratio p50/p95':>13}"
              f"   p95<{TARGET_P95_MS:.0f}ms  <={TARGET_RATIO:.0f}x")
        for r in size["rows"]:
            print(f"{r['request']:28} {r['p50_ms']:>5.0f} ms {r['p95_ms']:>5.0f} ms   {r['direct_p50_ms']:>7.0f} ms "
                  f"{r['direct_p95_ms']:>5.0f} ms   {r['ratio_p50']:>5.2f}x/{r['ratio_p95']:.2f}x   "
                  f"{'PASS' if r['p95_met'] else 'MISS':>9}  {'PASS' if r['ratio_met'] else 'MISS'}")
        for key, what in (("throughput", "all six"), ("throughput_without_overview", "without the overview")):
            t = size[key]
            print(f"{t['clients']} clients, {what}: {t['rps']:.1f} requests/s ({t['requests']} requests in "
                  f"{t['seconds']:.1f} s, {t['errors']} errors{' ' + str(t['error_statuses']) if t['errors'] else ''})")
        print(f"the overview's A/R figures computed from scratch (ar_report and 12 months of trend, kept by the "
              f"server until the data changes): {size['figures_computed_ms'] / 1000:.1f} s")
        m = size["server_mb"]
        print(f"server memory {m['signed_in_rss']:.0f} MB signed in, {m['rss']:.0f} MB after, peak {m['peak']:.0f} MB")
    print(f"\nserver peak memory {small['server_mb']['peak']:.0f} MB at {small['claims']:,} claims, "
          f"{big['server_mb']['peak']:.0f} MB at {big['claims']:,}: {growth:.2f}x")
    print(f"at {big['claims']:,} claims: " + ", ".join(f"{k} {'PASS' if v else 'MISS'}" for k, v in verdict.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
