"""The overview's A/R figures, computed off the request path and kept until the data changes.

``bhhub ar`` reads every claim ever sent with its history, acknowledgments, postings and denials,
and the month-by-month figures read them again for each month end: seconds on a practice's
years of claims. A dashboard cannot wait that long at every visit, and need not: the figures
change only when a claim, an answer, a posting or a denial does. So the workspace keeps the last
result (the very objects ``bhhub ar --json`` and ``bhhub ar --trend --json`` print) with the
*data version* it was computed from: a handful of indexed maxima and counts over the tables the
figures read, plus the day (A/R ages by the day). A visit compares versions (milliseconds); when
they differ one background thread computes again while visits see the last figures, marked as
being updated, for at most ``WAIT_SECONDS`` each. The first visit after start waits for the first
result. Nothing is approximated: what is shown is exactly ``ar_report`` at its ``computed_at``.
A result older than ``MAX_AGE`` is recomputed even if no version moved, in case some write path
changes a figure without moving one (none is known).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from sqlalchemy import func, select

from bhhub.store import schema

log = logging.getLogger("bhhub.web.figures")

WAIT_SECONDS = 1.0  # a visit after a change waits this long for the new figures, then shows the last
MAX_AGE = 600.0  # seconds: recomputed after this even when no version moved
FIRST_WAIT = 600.0  # the first visit after start waits for the first result


def data_version(session) -> tuple:
    """What the figures depend on, cheaply: each table's newest row, and the denials worked."""
    from bhhub.runtime.clock import today

    d = schema.Denial
    maxima = [select(func.max(table.id)).scalar_subquery() for table in (
        schema.Claim, schema.ClaimStatusEvent, schema.Acknowledgment, schema.FindingOverride, schema.RemitClaim,
        schema.RemitPayment, schema.Denial, schema.AdvanceNotice, schema.Coverage, schema.Payer, schema.Provider)]
    worked = [select(func.count(d.id)).where(d.status != "open").scalar_subquery(),
              select(func.max(d.resolved_at)).scalar_subquery()]
    return (today(), *session.execute(select(*maxima, *worked)).one())


class Figures:
    """One hub's overview figures: ``current()`` gives the last result and whether it is current."""

    def __init__(self, hub):
        self.hub = hub
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._result: dict | None = None
        self._version: tuple | None = None
        self._computed = 0.0  # monotonic
        self._running: tuple | None = None  # the version being computed
        self._failed: str | None = None

    def current(self) -> tuple[dict, dict]:
        """(the figures, their state): ``{"computed_at", "updating"}``."""
        with self.hub.store.session() as session:
            version = data_version(session)
        with self._lock:
            stale = self._result is None or self._version != version or time.monotonic() - self._computed > MAX_AGE
            if stale and self._running is None:
                self._running = version
                threading.Thread(target=self._compute, args=(version,), name="bhhub-figures", daemon=True).start()
            if stale:
                deadline = time.monotonic() + (FIRST_WAIT if self._result is None else WAIT_SECONDS)
                while self._running is not None and time.monotonic() < deadline:
                    self._done.wait(deadline - time.monotonic())
            if self._result is None:
                from bhhub.errors import HubError

                raise HubError(f"the A/R figures could not be computed: {self._failed or 'still computing'}")
            updating = self._running is not None or self._version != version
            return self._result, {"computed_at": self._result["computed_at"], "updating": updating}

    def start(self) -> None:
        """Compute the first figures in the background (the server's start)."""
        with self._lock:
            if self._running is None and self._result is None:
                self._running = ("start",)
                threading.Thread(target=self._compute, args=(None,), name="bhhub-figures", daemon=True).start()

    def _compute(self, version: tuple | None) -> None:
        from bhhub.remittance.ar import FORMULAS, report_json
        from bhhub.remittance.trends import report_and_months

        started = time.monotonic()
        try:
            with self.hub.store.session() as session:
                if version is None:
                    version = data_version(session)
                # ``bhhub ar --json``'s report is the trend's month so far: one read for both.
                # ``bhhub ar --trend --json``'s object (trend_report without its audit row: the
                # overview shows no PHI, and the view itself is audited by the page)
                months, report = report_and_months(session, months=12)
                trend = {"as_of": report.as_of, "months": months, "formulas": FORMULAS}
                result = {"ar": report_json(report), "trend": trend,
                          "computed_at": datetime.now(timezone.utc)}
            log.info("A/R figures computed in %.1f s (%d claims)", time.monotonic() - started, len(report.claims))
            with self._lock:
                self._result, self._version, self._computed, self._failed = result, version, time.monotonic(), None
        except Exception as exc:  # noqa: BLE001 - a failure is shown on the page, the server goes on
            log.error("A/R figures failed: %s", type(exc).__name__)
            with self._lock:
                self._failed = type(exc).__name__
        finally:
            with self._lock:
                self._running = None
                self._done.notify_all()
