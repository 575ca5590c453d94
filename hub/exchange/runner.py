"""``bhhub run``: the embedded runner (one process, APScheduler 3.x, in-memory job store).

Jobs are rebuilt from configuration at every start (never pickled into the database): one
exchange job per mailbox with a ``schedule``, the plugins' jobs, and a dispatcher tick that reads
due work from the store. Every job has an explicit misfire grace time, coalescing and
``max_instances=1``; a missed or skipped run raises an alert, and a run that succeeds clears it.
A second runner on the same hub home refuses to start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bhhub.errors import ConfigError, UsageError
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.exchange.cycle import (check_acknowledgments_due, check_inquiries_waiting, check_orphaned_transmissions,
                                exchange)
from bhhub.exchange.mailboxes import load_mailboxes

log = logging.getLogger(__name__)
watched = logging.getLogger("hub.run")  # the lines `bhhub run` shows at its default level (bhhub.runtime.logs)

TICK_SECONDS = 60
# A run that could not start on time still runs if it is at most this late; later ones are
# recorded as missed (APScheduler's default of one second silently drops runs after a pause).
MISFIRE_GRACE_SECONDS = 15 * 60
EXPIRY_WARNING_DAYS = 30  # alert this long before an enrollment ends or a re-attestation is due


class RunLock:
    """An exclusive lock on the hub home: one runner per home (and so per SQLite file)."""

    def __init__(self, home: Path):
        self.path = home / "bhhub.run.lock"
        self._handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the life of the runner
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UsageError(f"another bhhub run is already using {self.path.parent} (pid {owner}); "
                             "stop it first, or give this one its own --home") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def build_scheduler(hub, watch=None, stop: threading.Event | None = None) -> BackgroundScheduler:
    """The runner's jobs; with ``watch`` (``bhhub.exchange.observe.RunnerWatch``) each run is timed
    and counted for ``/metrics``. ``stop`` (set on SIGTERM) cuts short the dispatcher's wait for a
    notification, so a hanging mail server does not hold up the shutdown."""
    mailboxes = load_mailboxes(hub)
    timed = watch.timed if watch is not None else (lambda _job_id, job: job)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        timezone="UTC",
    )
    for name, mailbox in mailboxes.items():
        if not mailbox.schedule:
            continue
        try:
            trigger = CronTrigger.from_crontab(mailbox.schedule, timezone="UTC")
        except ValueError as exc:
            raise ConfigError(f"[mailboxes.{name}] schedule {mailbox.schedule!r} is not a cron expression: {exc}") from exc
        # Only the mailbox's name goes into the job: no PHI, nothing to unpickle.
        scheduler.add_job(timed(f"exchange:{name}", _exchange_job), trigger, args=[hub, name, watch],
                          id=f"exchange:{name}", name=f"exchange {name}")
    for job in hub.plugins.hooks.jobs():
        scheduler.add_job(timed(f"plugin:{job.name}", job.func), IntervalTrigger(seconds=job.interval_seconds),
                          args=[hub], id=f"plugin:{job.name}", name=job.name)
    # The dispatcher also runs at start: alerts raised while the runner was down go out at once.
    scheduler.add_job(timed("dispatcher", _tick), IntervalTrigger(seconds=TICK_SECONDS), args=[hub, stop],
                      id="dispatcher", name="dispatcher", next_run_time=datetime.now(timezone.utc))
    scheduler.add_job(timed("enrollments", _enrollments), CronTrigger(hour=6, minute=0, timezone="UTC"), args=[hub],
                      id="enrollments", name="enrollment and re-attestation dates")
    scheduler.add_job(timed("eligibility_sweep", _eligibility_sweep), CronTrigger(hour=5, minute=30, timezone="UTC"),
                      args=[hub], id="eligibility_sweep", name="eligibility sweep")
    scheduler.add_listener(lambda event: _on_event(hub, event),
                           EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
    return scheduler


def _exchange_job(hub, mailbox_name: str, watch=None) -> None:
    mailbox = load_mailboxes(hub)[mailbox_name]
    start = time.perf_counter()
    report = exchange(hub, mailbox)
    seconds = time.perf_counter() - start
    # What a person watching the runner sees at its default level: a line per file, a line per
    # cycle. Ids, file names and counts only (bhhub.runtime.logs).
    for sent in report.sent:
        watched.info("exchange %s: sent %s transmission %s (batch %s, %d claim(s)) as %s (%s)", mailbox_name,
                     sent.kind, sent.transmission_id, sent.batch_id, sent.claims, sent.remote_name, sent.how,
                     extra={"fields": {"event": "file_sent", "mailbox": mailbox_name, "kind": sent.kind,
                                       "transmission_id": sent.transmission_id, "batch_id": sent.batch_id,
                                       "claims": sent.claims, "remote_name": sent.remote_name, "how": sent.how}})
    received = [p for p in report.picked_up if p.inbox_item_id is not None]
    for picked in received:
        watched.info("exchange %s: received %s as inbox item %s: %s", mailbox_name, picked.name, picked.inbox_item_id,
                     picked.outcome, extra={"fields": {"event": "file_received", "mailbox": mailbox_name,
                                                       "remote_name": picked.name, "inbox_item_id": picked.inbox_item_id,
                                                       "outcome": picked.outcome}})
    outcome = f"failed: {report.error}" if report.error else "ok"
    watched.log(logging.WARNING if report.error else logging.INFO,
                "exchange %s: %d file(s) sent, %d received, %.1f s, %s", mailbox_name, len(report.sent),
                len(received), seconds, outcome,
                extra={"fields": {"event": "cycle", "mailbox": mailbox_name, "sent": len(report.sent),
                                  "received": len(received), "seconds": round(seconds, 3), "ok": report.ok}})
    if watch is not None:
        watch.exchanged(mailbox_name, len(report.sent), len(received), report.ok)


def _tick(hub, stop: threading.Event | None = None) -> None:
    """Due work read from the store: acknowledgments that are late, inquiries no mailbox takes,
    alerts not yet delivered to people (bhhub.notify)."""
    from bhhub.notify import deliver_pending

    mailboxes = load_mailboxes(hub)
    for mailbox in mailboxes.values():
        check_acknowledgments_due(hub, mailbox)
    check_inquiries_waiting(hub)
    check_orphaned_transmissions(hub, set(mailboxes))
    deliver_pending(hub, stop=stop)


def _enrollments(hub) -> None:
    """Alerts ahead of enrollments ending and re-attestations falling due (once per incident)."""
    from bhhub.runtime.clock import today
    from bhhub.ledger.credentialing import check_expirations

    with hub.store.session() as session:
        check_expirations(session, today(), days=EXPIRY_WARNING_DAYS)
        session.commit()


def _eligibility_sweep(hub) -> None:
    """Ask about the coming days' appointments and the stale unsent claims; the 270 it queues goes
    out with the next exchange. No way to ask (no portal, no mailbox) is one alert, not a failure."""
    from bhhub.eligibility.sweep import sweep

    report = sweep(hub)
    not_asked = report.counts().get("not_asked", 0)
    with hub.store.session() as session:
        if not_asked:
            raise_alert(session, "eligibility_no_route", "eligibility_no_route",
                        f"the eligibility sweep could not ask about {not_asked} member(s): no payer-portal plugin "
                        "serves their payers and no clearinghouse mailbox is configured or routed for them "
                        "([routing] in bhhub.toml); `bhhub eligibility sweep` names each reason")
        else:
            clear_alert(session, "eligibility_no_route")
        session.commit()
    log.info(report.summary())


def _on_event(hub, event) -> None:
    job_id = event.job_id
    with hub.store.session() as session:
        if event.code == EVENT_JOB_MISSED:
            raise_alert(session, f"job_missed:{job_id}", "job_missed",
                        f"scheduled run of {job_id} at {event.scheduled_run_time:%Y-%m-%d %H:%M} UTC was missed "
                        "(the runner was stopped, suspended or too busy); the next run catches up")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            raise_alert(session, f"job_skipped:{job_id}", "job_skipped",
                        f"a run of {job_id} was skipped because the previous one was still running")
        elif event.code == EVENT_JOB_ERROR:
            raise_alert(session, f"job_failed:{job_id}", "job_failed",
                        f"{job_id} failed: {type(event.exception).__name__}")
        else:  # executed: the incidents of this job are over
            for kind in ("job_missed", "job_skipped", "job_failed"):
                clear_alert(session, f"{kind}:{job_id}")
        session.commit()


def run(hub, *, stop: threading.Event | None = None, metrics: tuple[str, int] | None = None,
        started: Callable[[dict], None] | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set).

    ``metrics``: (host, port) to serve ``/metrics`` and ``/healthz`` on (bhhub.exchange.observe);
    ``started`` is told what was started (jobs, the metrics address), for tests and the CLI.
    """
    from bhhub.exchange.observe import RunnerWatch
    from bhhub.notify import targets

    stop = stop or threading.Event()
    with RunLock(hub.settings.home):
        targets(hub.settings)  # a wrong [notify] section stops the start, not the first alert
        from bhhub.exchange.routing import routes

        routes(hub)  # as does a [routing] table naming a mailbox that is not configured
        watch = RunnerWatch(hub)
        scheduler = build_scheduler(hub, watch, stop)
        watch.scheduler = scheduler
        for sig in (signal.SIGINT, signal.SIGTERM):
            if threading.current_thread() is threading.main_thread():
                signal.signal(sig, lambda *_: stop.set())
        address = watch.serve(*metrics) if metrics is not None else None
        try:
            scheduler.start()
            jobs = ", ".join(job.name for job in scheduler.get_jobs())
            watched.info("bhhub run: started with jobs: %s", jobs,
                         extra={"fields": {"event": "started", "jobs": [j.id for j in scheduler.get_jobs()]}})
            where = f"; metrics on http://{address[0]}:{address[1]}/metrics" if address else ""
            print(f"bhhub run: {hub.settings.home}: jobs {jobs}{where}; Ctrl-C stops", flush=True)
            if started is not None:
                started({"jobs": [j.id for j in scheduler.get_jobs()], "metrics": address})
            try:
                stop.wait()
            finally:
                scheduler.shutdown(wait=True)
                watched.info("bhhub run: stopped", extra={"fields": {"event": "stopped"}})
        finally:
            watch.close()
    return 0
