"""A practice's hub driven from outside, as cron and a person would: the `bhhub` command in real
processes, killed at a named fault point (``bhhub.runtime.crashpoints``) or run two at once, on the store
under test (SQLite or PostgreSQL), with bhhub's sandbox clearinghouse on loopback SFTP.

``Practice.invariants()`` is what every fault test checks after the dust settles: nothing lost
(every file applied, every visit billed) and nothing twice (one claim per visit, one batch per
claim, one interchange per batch at the clearinghouse, one posting per claim payment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema
from sandbox_support import sandbox_mailbox

PROJECT = Path(__file__).resolve().parent.parent
SEEDS = (3, 5, 8, 11, 19, 23)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9


class Practice:
    """A hub home on the store under test, with visits exported to a folder."""

    def __init__(self, tmp_path: Path, database_url: str, *, seeds=SEEDS, sandbox=None):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        config = f'[store]\nurl = "{database_url}"\n'
        self.sandbox = sandbox
        if sandbox is not None:
            config += sandbox_mailbox(sandbox, operation_timeout=10)
        (self.home / "bhhub.toml").write_text(config, encoding="utf-8")
        self.exports = tmp_path / "exports"
        self.exports.mkdir()
        for seed in seeds:
            (self.exports / f"visit-{seed}.json").write_text(json.dumps(encounter_bundle(seed)), encoding="utf-8")
        self.visits = len(seeds)

    # --- running the command ------------------------------------------------------------------

    def env(self, *, crash_at: str | None = None, pause_at: str | None = None, pause: float = 2.0,
            pause_mark: Path | None = None) -> dict:
        env = {**os.environ, "BHHUB_HOME": str(self.home)}
        for name in ("BHHUB_CRASH_AT", "BHHUB_PAUSE_AT", "BHHUB_PAUSE_SECONDS", "BHHUB_PAUSE_MARK",
                     "BHHUB_DATABASE_URL"):
            env.pop(name, None)
        if crash_at:
            env["BHHUB_CRASH_AT"] = crash_at
        if pause_at:
            env["BHHUB_PAUSE_AT"], env["BHHUB_PAUSE_SECONDS"] = pause_at, str(pause)
        if pause_mark is not None:
            env["BHHUB_PAUSE_MARK"] = str(pause_mark)
        return env

    def start(self, *args: str, **faults) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", *args], env=self.env(**faults), cwd=PROJECT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def bhhub(self, *args: str, **faults) -> Run:
        """The command in its own process (to be killed, or to run beside another)."""
        return finish(self.start(*args, **faults))

    def here(self, *args: str) -> Run:
        """The command in this process: the next run after a kill (quicker than a new process)."""
        import contextlib
        import io

        from bhhub.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--home", str(self.home), *args])
        return Run(code, out.getvalue(), err.getvalue())

    def together(self, first: tuple[str, ...], second: tuple[str, ...], *, pause_at: str,
                 pause: float = 2.0) -> tuple[Run, Run]:
        """``first`` pausing at ``pause_at`` (inside its transaction), ``second`` started meanwhile."""
        mark = self.home.parent / f"paused-{time.monotonic_ns()}"
        a = self.start(*first, pause_at=pause_at, pause=pause, pause_mark=mark)
        deadline = time.monotonic() + 60 + _startup_allowance()
        while not mark.exists() and a.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # until the first is inside its pause (however busy the machine)
        b = self.start(*second)
        return finish(a), finish(b)

    def hub(self) -> Hub:
        return Hub.open(self.home)

    # --- what the store says ------------------------------------------------------------------

    def claims(self) -> list[schema.Claim]:
        with self.hub() as hub, hub.store.session() as session:
            return list(session.scalars(select(schema.Claim).order_by(schema.Claim.id)))

    def inbox(self) -> list[schema.InboxItem]:
        with self.hub() as hub, hub.store.session() as session:
            return list(session.scalars(select(schema.InboxItem).order_by(schema.InboxItem.id)))

    def batches(self) -> list[schema.Batch]:
        with self.hub() as hub, hub.store.session() as session:
            return list(session.scalars(select(schema.Batch).where(schema.Batch.kind == "837P")
                                        .order_by(schema.Batch.id)))

    def figures(self) -> dict[str, int]:
        """What went wrong, counted from the store and the clearinghouse (0 everywhere when sound).

        ``files_lost``: inputs stored and never applied, or visits with no claim;
        ``claims_twice``: visits that became two claims, claims in two 837Ps, batches whose
        members disagree with their file, batches the clearinghouse processed twice;
        ``payments_twice``: claim payments posted more than once.
        """
        items = self.inbox()
        claims = self.claims()
        per_visit = Counter(c.encounter_id for c in claims if c.revision == 0)
        lost = sum(1 for i in items if i.state == "received") + (len(items) - len({i.sha256 for i in items}))
        lost += max(0, self.visits - len(per_visit))
        twice = sum(n - 1 for n in per_visit.values() if n > 1)
        with self.hub() as hub, hub.store.session() as session:
            batches = session.scalars(select(schema.Batch).where(schema.Batch.kind == "837P")).all()
            in_files = Counter(pcn for b in batches for pcn in _claims_in(b.content))
            twice += sum(n - 1 for n in in_files.values() if n > 1)
            for batch in batches:
                members = session.scalar(select(func.count()).select_from(schema.Claim)
                                         .where(schema.Claim.batch_id == batch.id))
                twice += members != batch.claim_count or batch.claim_count != len(_claims_in(batch.content))
            postings = Counter((r.claim_id, r.payer_claim_control_number, r.paid) for r in session.scalars(
                select(schema.RemitClaim).where(schema.RemitClaim.state == "posted")))
            paid_twice = sum(n - 1 for n in postings.values() if n > 1)
        if self.sandbox is not None:
            answered = Counter(h.interchange_control_number for h in self.sandbox.processed
                               if h.outcome == "answered")
            twice += sum(n - 1 for n in answered.values() if n > 1)
        return {"files_lost": lost, "claims_twice": twice, "payments_twice": paid_twice,
                "left_ready": sum(1 for c in claims if c.status == "ready")}

    def invariants(self, *, billed: bool = False, adjudicated: bool = False) -> None:
        """Nothing lost, nothing twice (see the module's docstring)."""
        items = self.inbox()
        assert [i.id for i in items if i.state == "received"] == [], "an input was stored and never applied"
        assert len({i.sha256 for i in items}) == len(items)
        claims = self.claims()
        per_visit = Counter(c.encounter_id for c in claims if c.revision == 0)
        assert len(per_visit) == self.visits, "a visit was lost"
        assert max(per_visit.values()) == 1, "a visit became two claims"
        figures = self.figures()
        assert figures["claims_twice"] == 0, f"a claim went out twice: {figures}"
        assert figures["payments_twice"] == 0, f"a claim payment posted twice: {figures}"
        if billed:
            unbilled = [c.patient_control_number for c in claims if c.status == "ready"]
            assert unbilled == [], f"ready claims left behind: {unbilled}"
        if adjudicated:
            statuses = Counter(c.status for c in self.claims() if c.revision == 0)
            assert set(statuses) <= {"paid", "partially_paid", "denied", "rejected", "needs_attention"}, statuses


def finish(process: subprocess.Popen, timeout: float = 180) -> Run:
    out, err = process.communicate(timeout=timeout)
    return Run(process.returncode, out, err)


def _claims_in(content: bytes) -> list[str]:
    text = content.decode("ascii")
    return [segment.split("*")[1] for segment in text.replace("\n", "").split("~") if segment.startswith("CLM*")]


def _startup_allowance() -> float:
    """A CLI process needs about a second to import and open the store before its first step."""
    return float(os.environ.get("BHHUB_TEST_STARTUP_SECONDS", "1.0"))


def sandbox(tmp_path: Path, request):
    """bhhub's sandbox clearinghouse on loopback SFTP, stopped after the test."""
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    server = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
    request.addfinalizer(server.stop)
    return server
