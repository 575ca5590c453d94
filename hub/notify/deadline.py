"""A send bounded as a whole. ``timeout`` (smtplib's, requests') bounds each connection and each
read only: a server that answers a byte every few seconds never trips it, and would hold the
runner's dispatcher, and its shutdown, for ever. So each send runs in a daemon thread that the
caller waits for at most ``[notify] deadline`` seconds, or until the runner is told to stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bhhub.notify.targets import DeliveryFailed


# Sends given up at their deadline whose threads still run, by target address: one per target at
# most, so a server that hangs for days costs one thread, not one per tick.
_hanging: dict[str, tuple[str, threading.Thread]] = {}
_hanging_lock = threading.Lock()
POLL_SECONDS = 0.2  # how soon a wait notices that the runner is stopping


def within_deadline(name: str, address: str, send: Callable[[], Any], deadline: float,
                    stop: threading.Event | None = None) -> Any:
    """``send()`` run in a daemon thread, waited for at most ``deadline`` seconds (less if
    ``stop`` is set meanwhile); its result, or its exception raised here. ``DeliveryFailed`` when
    it did not end in time, or when the previous send to ``address`` (the target ``name``) given
    up so still hangs (then no new one is started). The thread is left to end on its own: nothing it does after
    the deadline is recorded, so a send it completes late is repeated (at least once)."""
    with _hanging_lock:
        _, previous = _hanging.get(address, (name, None))
        if previous is not None and previous.is_alive():
            raise DeliveryFailed(f"its previous send, given up after {deadline:g} s, still hangs")
        _hanging.pop(address, None)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["result"] = send()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="bhhub-notify-send", daemon=True)
    thread.start()
    ends = time.monotonic() + deadline
    while not done.is_set():
        left = ends - time.monotonic()
        if left <= 0 or (stop is not None and stop.is_set()):
            break
        done.wait(min(left, POLL_SECONDS) if stop is not None else left)
    if not done.is_set():
        with _hanging_lock:
            _hanging[address] = (name, thread)
        if stop is not None and stop.is_set():
            raise DeliveryFailed("not finished when the runner stopped")
        raise DeliveryFailed(f"no answer within the deadline ({deadline:g} s)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def hanging() -> list[str]:
    """The targets (email, webhook, ``plugin:NAME``) whose last send was given up at its deadline
    and still hangs: shown by ``/healthz``. Addresses are not shown (a URL may hold a path secret)."""
    with _hanging_lock:
        return sorted({name for name, thread in _hanging.values() if thread.is_alive()})
