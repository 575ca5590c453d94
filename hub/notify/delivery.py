"""Delivering alerts from the store (the runner's dispatcher tick), and ``bhhub notify test``.

Per alert and target: taken under a lease, sent within ``[notify] deadline``, recorded; see
``deliver_pending``. A crash between sending and recording (crash point ``notify:after_send``)
repeats the send after ``LEASE``, never loses it."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bhhub.runtime.crashpoints import crash_point
from bhhub.notify.deadline import within_deadline
from bhhub.notify.targets import AlertNotice, DeliveryFailed, deadline_of, redact, targets
from bhhub.store import schema
from bhhub.store.schema import utcnow
from bhhub.common.text import clip

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10  # ticks: about ten minutes of a target being down
SENT = "sent"


def _send_one(target, notice: AlertNotice, stop: threading.Event | None) -> None:
    within_deadline(target.name, target.address, lambda: target.send(notice), target.deadline, stop)


def _to_plugin(hub, plugin_name: str, notice: AlertNotice, deadline: float,
               stop: threading.Event | None) -> str | None:
    """One plugin given the alert under the deadline: None when it took it, else why not."""
    name = f"plugin:{plugin_name}"
    try:
        return within_deadline(name, name, lambda: hub.plugins.hooks.alert_raised(notice, only=[plugin_name]),
                               deadline, stop).get(plugin_name)
    except DeliveryFailed as exc:
        log.error("plugin %s in bhhub_alert_raised: %s", plugin_name, exc)
        return str(exc)


TEST_KIND = "notify_test"


def send_test(hub) -> dict[str, str | None]:
    """One test notification to every target (email, webhook, each plugin receiving alerts),
    outside the store: nothing is recorded and no alert is opened. Target name -> None when it
    took the test, else why not (a status, or the error's kind and text: this is a person
    checking the setup at a terminal, not the runner's log)."""
    notice = AlertNotice(0, f"{TEST_KIND}:{utcnow():%Y%m%dT%H%M%SZ}", TEST_KIND,
                         "a test from `bhhub notify test`: notifications reach you", utcnow())
    outcomes: dict[str, str | None] = {}
    for target in targets(hub.settings):
        try:
            _send_one(target, notice, None)
        except DeliveryFailed as exc:
            outcomes[target.name] = _shown(target, str(exc))
        except Exception as exc:  # noqa: BLE001 - each target's failure is reported, the others still tried
            outcomes[target.name] = _shown(target, f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            outcomes[target.name] = None
    deadline = deadline_of(hub.settings)
    for plugin_name in hub.plugins.hooks.alert_receivers():
        outcomes[f"plugin:{plugin_name}"] = _to_plugin(hub, plugin_name, notice, deadline, None)
    return outcomes


def _shown(target, text: str) -> str:
    """A failure as a person reads it: cut at a word, never mid-word, and never the part of a
    webhook's URL past its host (it may be the webhook's secret)."""
    url = getattr(target, "url", None)
    return clip(redact(text, url) if url else text, 200)


SENDING = "sending since "  # + the time a process took the target: a lease, see deliver_pending
LEASE = timedelta(minutes=10)  # far beyond a send's deadline: a lease older than this was a killed process's


def deliver_pending(hub, *, limit: int = 100, stop: threading.Event | None = None) -> dict[str, int]:
    """Send every alert not yet delivered to each target still owed it; returns counts.

    Per alert, three steps: take (one short write: the owed targets are marked ``sending since
    T`` and the attempt counted), send (no transaction open: a slow SMTP server holds no lock),
    record (one short write: ``sent`` or why not). A twin running at the same time (a second
    runner on PostgreSQL, a ``bhhub`` process on the same SQLite file) finds the targets taken
    and skips them: each alert goes once per target. A process killed between sending and
    recording leaves its lease; after ``LEASE`` the target is owed again and gets the alert a
    second time (at least once, never lost), and since every take counts an attempt, an alert
    whose sender keeps dying is given up after ``MAX_ATTEMPTS``.

    Each send ends by ``[notify] deadline`` (``within_deadline``); one that hangs is recorded as
    failed, so it is tried again next tick (not after the lease). ``stop`` set (the runner was
    told to stop) ends the wait for a send at once and takes no further alert."""
    configured = targets(hub.settings)
    receivers = hub.plugins.hooks.alert_receivers()
    counts = {"sent": 0, "failed": 0, "alerts": 0, "cleared": 0}
    if not configured and not receivers:
        _mark_nothing_to_do(hub)
        return counts
    names = [t.name for t in configured] + [f"plugin:{name}" for name in receivers]
    down: set[str] = set()  # targets that failed this tick: tried again next tick, not once per alert
    last_id = 0
    deadline = deadline_of(hub.settings)
    for _ in range(limit):
        if stop is not None and stop.is_set():
            break
        taken = _take(hub, last_id, names, down, counts)
        if taken is None:
            break
        last_id, notice, owed = taken
        if owed:
            outcomes = _send(hub, notice, [t for t in configured if t.name in owed],
                             [n.removeprefix("plugin:") for n in owed if n.startswith("plugin:")], deadline, stop)
            crash_point("notify:after_send")
            _record(hub, notice.id, outcomes, down, counts)
    return counts


def _take(hub, after_id: int, names: list[str], down: set[str], counts: dict[str, int]):
    """The next alert after ``after_id`` not yet delivered, with the targets this process now
    holds for it: (its id, its notice, the targets taken); None when there is none."""
    # The writer session takes SQLite's write lock at its start, so two processes on one file
    # take in turn; PostgreSQL's SKIP LOCKED lets another runner pass to the next alert.
    with hub.store.writer() as session:
        alert = session.scalars(
            select(schema.Alert).where(schema.Alert.notified_at.is_(None), schema.Alert.id > after_id)
            .order_by(schema.Alert.id).limit(1).with_for_update(skip_locked=True)).first()
        if alert is None:
            return None
        counts["alerts"] += 1
        done = dict(alert.notifications or {})
        if alert.cleared_at is not None:
            _close_cleared(alert, done, names)
            counts["cleared"] += 1
            session.commit()
            return alert.id, None, []
        now = utcnow()
        owed = [n for n in names if done.get(n) != SENT and not _held(done.get(n), now)]
        if not owed:
            return alert.id, None, []  # another process holds every target it still owes
        if (alert.notify_attempts or 0) >= MAX_ATTEMPTS:  # its senders were killed each time: bounded
            for name in owed:
                if (done.get(name) or "").startswith(SENDING):
                    done[name] = "failed: unknown (the process sending it stopped before recording)"
            alert.notifications = done
            _give_up_if_done(alert, done)
            session.commit()
            return alert.id, None, []
        for name in owed:
            done[name] = (f"{SENDING}{now.isoformat()}" if name not in down
                          else "failed: not tried (the target failed earlier in this tick)")
        alert.notifications = done
        alert.notify_attempts = (alert.notify_attempts or 0) + 1
        taken = [n for n in owed if n not in down]
        if not taken:
            _give_up_if_done(alert, done)
        session.commit()
        return alert.id, AlertNotice(alert.id, alert.key, alert.kind, alert.message, alert.raised_at), taken


def _held(state: str | None, now: datetime) -> bool:
    """True while another process's lease on a target runs (it is sending, or was killed less
    than ``LEASE`` ago)."""
    if not state or not state.startswith(SENDING):
        return False
    since = datetime.fromisoformat(state.removeprefix(SENDING))
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return now - since < LEASE


def _send(hub, notice: AlertNotice, configured: list, plugins: list[str], deadline: float,
          stop: threading.Event | None) -> dict[str, str]:
    """Each taken target's outcome: ``sent``, or ``failed: why`` (a status, the deadline, or the
    error's kind)."""
    outcomes: dict[str, str] = {}
    for target in configured:
        try:
            _send_one(target, notice, stop)
        except Exception as exc:  # noqa: BLE001 - a target down is tried again next tick
            outcomes[target.name] = f"failed: {exc}" if isinstance(exc, DeliveryFailed) else f"failed: {type(exc).__name__}"
            log.warning("alert %s not delivered by %s: %s", notice.id, target.name,
                        exc if isinstance(exc, DeliveryFailed) else type(exc).__name__)
        else:
            outcomes[target.name] = SENT
            log.info("alert %s delivered by %s", notice.id, target.name)
    for plugin_name in plugins:
        error = _to_plugin(hub, plugin_name, notice, deadline, stop)
        outcomes[f"plugin:{plugin_name}"] = SENT if error is None else f"failed: {error}"
    return outcomes


def _record(hub, alert_id: int, outcomes: dict[str, str], down: set[str], counts: dict[str, int]) -> None:
    with hub.store.writer() as session:
        alert = session.get(schema.Alert, alert_id)
        done = dict(alert.notifications or {})
        done.update(outcomes)
        alert.notifications = done
        _give_up_if_done(alert, done)
        session.commit()
    for name, outcome in outcomes.items():
        counts["sent" if outcome == SENT else "failed"] += 1
        if outcome != SENT:
            down.add(name)


def _give_up_if_done(alert: schema.Alert, done: dict[str, str]) -> None:
    """Delivered when every target has it; given up after ``MAX_ATTEMPTS`` takes (``bhhub alerts
    --json`` shows which target did not get it)."""
    if all(value == SENT for value in done.values()):
        alert.notified_at = utcnow()
    elif (alert.notify_attempts or 0) >= MAX_ATTEMPTS:
        alert.notified_at = utcnow()
        log.error("alert %s: gave up notifying after %d attempts: %s", alert.id, alert.notify_attempts,
                  ", ".join(f"{k} {v}" for k, v in sorted(done.items()) if v != SENT))


CLEARED = "not sent: cleared before delivery"


def _close_cleared(alert: schema.Alert, done: dict[str, str], owed: list[str]) -> None:
    """An incident that ended before people heard of it is not news: no target still owed it
    gets it (a page at 3 a.m. for a mailbox that answered again a minute later helps nobody);
    ``bhhub alerts --all`` keeps the record, and says per target that it was not sent."""
    for name in owed:
        if done.get(name) != SENT:
            done[name] = CLEARED
    alert.notifications = done
    alert.notified_at = utcnow()
    log.info("alert %s cleared before delivery: not sent", alert.id)


def _mark_nothing_to_do(hub) -> None:
    """With no target at all, alerts are marked as needing no delivery (not a backlog that a
    notifier configured months later would flood people with)."""
    with hub.store.session() as session:
        for alert in session.scalars(select(schema.Alert).where(schema.Alert.notified_at.is_(None))):
            alert.notified_at = utcnow()
            alert.notifications = {}
        session.commit()
