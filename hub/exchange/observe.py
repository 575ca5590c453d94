"""Watching ``bhhub run`` from outside: Prometheus metrics and a health endpoint on a loopback port.

``bhhub run --metrics-port 9464`` serves, on 127.0.0.1 unless ``--metrics-host`` says otherwise:

- ``/metrics``: the Prometheus text format (prometheus-client). What the runner did in this
  process: jobs run and their durations, files sent and received per mailbox, the time of each
  mailbox's last successful exchange. What the store says at the moment of the scrape: claims by
  status, open alerts by kind, transmissions in flight per mailbox, inbox items by state.
- ``/healthz``: ``200`` with a JSON body when the scheduler is running and the store answers,
  ``503`` with the reason otherwise (for a load balancer, a systemd watchdog script, monit). Its
  ``notify_hanging`` names the notification targets whose last send hangs past ``[notify]
  deadline`` (the dispatcher has moved on, so this alone is not a failure).

Counts and ids only: nothing served here names a patient.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from bhhub.exchange.outbound import IN_FLIGHT  # a transmission not yet answered by a TA1/999
from bhhub.store import schema

log = logging.getLogger(__name__)

JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900)


class _StoreCollector:
    """Figures read from the store at each scrape, so they are true whoever changed the store
    (the runner, a person's command, another machine on PostgreSQL)."""

    def __init__(self, hub):
        self.hub = hub

    def describe(self) -> list:
        return []  # read at scrape time only (no query when the collector is registered)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("bhhub_store_up", "1 when the store answered this scrape")
        try:
            with self.hub.store.engine.connect() as connection:
                claims = connection.execute(select(schema.Claim.status, func.count()).group_by(schema.Claim.status)).all()
                alerts = connection.execute(select(schema.Alert.kind, func.count())
                                            .where(schema.Alert.cleared_at.is_(None)).group_by(schema.Alert.kind)).all()
                flying = connection.execute(select(schema.Transmission.mailbox, func.count())
                                            .where(schema.Transmission.state.in_(IN_FLIGHT))
                                            .group_by(schema.Transmission.mailbox)).all()
                inbox = connection.execute(select(schema.InboxItem.state, func.count())
                                           .group_by(schema.InboxItem.state)).all()
        except Exception as exc:  # noqa: BLE001 - a scrape reports the store down, never crashes
            log.warning("metrics: the store did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _family("bhhub_claims", "claims by status", "status", claims)
        yield _family("bhhub_alerts_open", "open alerts by kind", "kind", alerts)
        yield _family("bhhub_files_in_flight", "transmissions sent or being sent, not yet acknowledged, by mailbox",
                      "mailbox", flying)
        yield _family("bhhub_inbox_items", "inbox items by state", "state", inbox)


def _family(name: str, documentation: str, label: str, rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in rows:
        family.add_metric([str(value)], count)
    return family


class RunnerWatch:
    """The runner's own figures, the store's, and its health, behind one registry."""

    def __init__(self, hub, *, clock: Callable[[], float] = time.time):
        self.hub = hub
        self.clock = clock
        self.registry = CollectorRegistry()
        self.job_seconds = Histogram("bhhub_job_duration_seconds", "how long each job run took", ["job"],
                                     buckets=JOB_BUCKETS, registry=self.registry)
        self.job_runs = Counter("bhhub_job_runs", "job runs by outcome", ["job", "outcome"], registry=self.registry)
        self.files = Counter("bhhub_files", "files sent to or received from a mailbox", ["mailbox", "direction"],
                             registry=self.registry)
        self.last_success = Gauge("bhhub_mailbox_last_success_timestamp_seconds",
                                  "Unix time of the mailbox's last exchange that succeeded", ["mailbox"],
                                  registry=self.registry)
        self.started = Gauge("bhhub_runner_start_timestamp_seconds", "Unix time the runner started",
                             registry=self.registry)
        self.started_at = clock()
        self.started.set(self.started_at)
        self.registry.register(_StoreCollector(hub))
        self.scheduler: Any = None  # set by the runner; its ``running`` is part of health
        self.last_success_at: dict[str, float] = {}
        self._server: WSGIServer | None = None

    # --- what the runner reports ---------------------------------------------------------------

    def timed(self, job_id: str, job: Callable[..., Any]) -> Callable[..., Any]:
        """``job`` wrapped so each run's duration and outcome are counted."""

        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = job(*args, **kwargs)
            except BaseException:
                self.job_runs.labels(job_id, "failed").inc()
                raise
            finally:
                self.job_seconds.labels(job_id).observe(time.perf_counter() - start)
            self.job_runs.labels(job_id, "succeeded").inc()
            return result

        run.__name__ = getattr(job, "__name__", job_id)
        return run

    def exchanged(self, mailbox: str, sent: int, received: int, ok: bool) -> None:
        self.files.labels(mailbox, "sent").inc(sent)
        self.files.labels(mailbox, "received").inc(received)
        if ok:
            now = self.clock()
            self.last_success.labels(mailbox).set(now)
            self.last_success_at[mailbox] = now

    # --- health ----------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict]:
        problems = []
        running = bool(getattr(self.scheduler, "running", False))
        if not running:
            problems.append("the scheduler is not running")
        try:
            with self.hub.store.engine.connect() as connection:
                connection.execute(select(1)).scalar()
            store = "ok"
        except Exception as exc:  # noqa: BLE001
            store = f"not answering ({type(exc).__name__})"
            problems.append(f"the store is {store}")
        body = {
            "status": "ok" if not problems else "failing",
            "problems": problems,
            "scheduler": "running" if running else "stopped",
            "store": store,
            "uptime_seconds": round(self.clock() - self.started_at, 3),
            "last_successful_exchange": {name: _iso(at) for name, at in sorted(self.last_success_at.items())},
            # Targets whose last send hangs past [notify] deadline (bhhub.notify.within_deadline): the
            # dispatcher has moved on, so the runner is healthy, but a person should look at them.
            "notify_hanging": _notify_hanging(),
        }
        return (200 if not problems else 503), body

    # --- serving ---------------------------------------------------------------------------------

    def app(self):
        metrics = make_wsgi_app(self.registry)

        def application(environ, start_response):
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                code, body = self.health()
                payload = json.dumps(body).encode()
                start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}",
                               [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
                return [payload]
            if path == "/metrics":
                return metrics(environ, start_response)
            payload = b"not found: /metrics or /healthz\n"
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
            return [payload]

        return application

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve in a daemon thread; returns the address bound (``port`` 0 picks a free one)."""
        try:
            server = make_server(host, port, self.app(), server_class=_Server, handler_class=_QuietHandler)
        except OSError as exc:
            from bhhub.errors import UsageError

            raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
                             "(choose another --metrics-port or --metrics-host)") from None
        self._server = server
        threading.Thread(target=server.serve_forever, name="bhhub-metrics", daemon=True).start()
        bound = server.server_address
        log.info("metrics and health on http://%s:%s/metrics and /healthz", bound[0], bound[1])
        return bound[0], bound[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per connection: a client that stalls (or trickles bytes) never holds up the
    scrapes and health checks of others; each read has a deadline."""

    daemon_threads = True
    timeout = 10  # a deadline on every network call: a client that stalls is dropped

    def get_request(self):
        connection, address = super().get_request()
        connection.settimeout(self.timeout)
        return connection, address


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("metrics: " + format, *args)


def _notify_hanging() -> list[str]:
    import sys

    deadline = sys.modules.get("bhhub.notify.deadline")  # not imported (no send yet): nothing can hang
    return deadline.hanging() if deadline is not None else []


def _iso(at: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
