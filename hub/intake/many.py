"""Intake of many payloads at once (a folder of exports), with the guarantees of ``receive``.

Payloads go in chunks. For each chunk: every payload is stored raw and committed first; the new
ones are parsed; then all are stored in one transaction. A store-time failure (rare: parse
errors are caught before) falls back to one transaction per payload, so only the bad one is
quarantined. With ``parse_in_worker``, parsing runs in a second process one chunk ahead of
storing, so a machine's two cores share the work; the worker loads plugins from entry points.

A file holding several payloads (HL7 messages dropped in one file) is first cut into them by
its format's ``split``: each part is its own inbox item (``name#2``), so one bad message is
quarantined and its siblings import.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError

from bhhub.claims.build import prefetch_encounters, store_encounter
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import HubError
from bhhub.intake.inbox import (
    PROCESSED, QUARANTINED, IntakeResult, applied_elsewhere, choose_format, expand, is_x12, parse_payload, process,
    set_state, split_records, store_raw, store_records, take_items,
)
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store.repo import Upserter
from bhhub.types import IntakeContext

log = logging.getLogger(__name__)

Chunk = list[tuple[str, bytes]]
Parsed = dict[int, tuple[str | None, list | str | None, tuple[str, ...]]]  # position -> (format, records or
# refusal or None for an X12 response, notes)


def receive_many(
    hub, payloads: Iterable[tuple[str, bytes]], *, chunk_size: int = 100, parse_in_worker: bool = False
) -> Iterator[IntakeResult]:
    """``receive`` for each (name, bytes); results in the order of ``payloads``.

    A payload its format can split (``IntakeFormat.split``) is received as its parts."""
    splitters = [f for f in hub.intake_formats if f.split is not None]
    if splitters:
        payloads = (part for name, content in payloads for part in expand(splitters, name, content))
    if not parse_in_worker:
        for chunk in _chunks(payloads, chunk_size):
            results, new = _store_raw(hub, chunk)
            yield from _store_parsed(hub, chunk, new, _parse_here(hub, chunk, new), results)
        return
    context = multiprocessing.get_context("spawn")  # no inherited database connections
    with ProcessPoolExecutor(1, mp_context=context, initializer=_worker_start,
                             initargs=(hub.mappings.override_dir, os.getpid())) as pool:
        pending: tuple[Chunk, list, list, Future] | None = None
        for chunk in _chunks(payloads, chunk_size):
            results, new = _store_raw(hub, chunk)
            work = [(position, item_id, *chunk[position]) for position, item_id in new]
            future = pool.submit(_parse_in_worker, work)
            if pending is not None:  # store the previous chunk while this one is parsed
                yield from _store_parsed(hub, pending[0], pending[2], pending[3].result(), pending[1])
            pending = (chunk, results, new, future)
        if pending is not None:
            yield from _store_parsed(hub, pending[0], pending[2], pending[3].result(), pending[1])


def _chunks(payloads: Iterable[tuple[str, bytes]], size: int) -> Iterator[Chunk]:
    chunk: Chunk = []
    for payload in payloads:
        chunk.append(payload)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _store_raw(hub, chunk: Chunk) -> tuple[list[IntakeResult | None], list[tuple[int, int]]]:
    """Commit every payload raw; the duplicates' results, and (position, item id) of the new."""
    results: list[IntakeResult | None] = [None] * len(chunk)
    new: list[tuple[int, int]] = []
    with hub.store.writer() as session:
        taken: dict[int, str] = {}
        for position, (source_name, content) in enumerate(chunk):
            item_id, results[position] = store_raw(session, hub.store.dialect, source_name, content)
            if item_id is not None and item_id in taken:  # the same bytes twice in this chunk
                results[position] = IntakeResult(item_id, source_name, "duplicate", None,
                                                 f"same content as inbox item {item_id} ({taken[item_id]})")
            elif item_id is not None:
                taken[item_id] = source_name
                new.append((position, item_id))
        session.commit()  # stored raw before anything reads it
    crash_point("intake:after_store_raw")
    return results, new


def _parse_one(formats, mappings: MappingSet, item_id: int, source_name: str, content: bytes) -> tuple:
    if is_x12(content):
        return "x12", None, ()  # a response file: applied on its own after the chunk (bhhub.responses)
    fmt_name, notes = None, ()
    try:
        fmt, notes = choose_format(formats, content, item_id)
        fmt_name = fmt.name
        return fmt_name, parse_payload(fmt, item_id, content, IntakeContext(source_name, mappings)), notes
    except HubError as exc:
        return fmt_name, str(exc), notes


def _parse_here(hub, chunk: Chunk, new: list[tuple[int, int]]) -> Parsed:
    return {position: _parse_one(hub.intake_formats, hub.mappings, item_id, *chunk[position])
            for position, item_id in new}


def _store_parsed(hub, chunk: Chunk, new: list[tuple[int, int]], parsed: Parsed,
                  results: list[IntakeResult | None]) -> list[IntakeResult]:
    try:
        with hub.store.writer() as session:
            # Only items still waiting are applied: one another process applied meanwhile (a
            # finishing exchange, the same folder twice at once) is reported, not applied again.
            taken = take_items(session, [item_id for _, item_id in new])
            for position, item_id in new:
                if item_id not in taken:
                    results[position] = applied_elsewhere(item_id, chunk[position][0])
            new = [(position, item_id) for position, item_id in new if item_id in taken]
            parsed = {position: (fmt, split_records(outcome) if isinstance(outcome, list) else outcome, notes)
                      for position, (fmt, outcome, notes) in parsed.items() if position in dict(new)}
            keys = [e.key for _, outcome, _ in parsed.values() if isinstance(outcome, tuple) for e in outcome[0]]
            upserts = Upserter(session, hub.known_rows, reserve=len(keys))
            prefetch_encounters(upserts, keys)
            for position, item_id in new:
                fmt_name, outcome, notes = parsed[position]
                source_name = chunk[position][0]
                if outcome is None:
                    continue
                if isinstance(outcome, str):
                    set_state(session, item_id, QUARANTINED, fmt_name, outcome)
                    results[position] = IntakeResult(item_id, source_name, QUARANTINED, fmt_name, outcome,
                                                     notes=notes)
                    continue
                encounters, others = outcome
                claims = tuple(store_encounter(hub, session, upserts, e, item_id) for e in encounters)
                records = store_records(hub, session, upserts, others, item_id)
                set_state(session, item_id, PROCESSED, fmt_name, None)
                if claims or not records:
                    hub.audit(session, "intake", "claim", [c.claim_id for c in claims if c.claim_id],
                              f"inbox item {item_id}")
                results[position] = IntakeResult(item_id, source_name, "imported", fmt_name, None, claims,
                                                 records=records, notes=notes)
            upserts.flush()
            crash_point("intake:before_commit")
            session.commit()
            upserts.remember()
    except (HubError, OperationalError, IntegrityError) as exc:
        # One payload's store failed, or another writer raced this chunk: one transaction per
        # payload, so only a bad one is quarantined (and each is applied once: ``take_items``).
        log.info("storing a chunk failed (%s); storing its payloads one by one", type(exc).__name__)
        for position, item_id in new:
            source_name, content = chunk[position]
            results[position] = process(hub, item_id, content, source_name)
        return [r for r in results if r is not None]
    for position, item_id in new:
        if parsed[position][1] is None:
            source_name, content = chunk[position]
            results[position] = process(hub, item_id, content, source_name)
            continue
        result = results[position]
        assert result is not None
        if result.outcome == "imported":
            log.info("inbox item %s imported: %d encounters, %d other records", result.item_id,
                     len(result.claims), len(result.records))
            encounters = parsed[position][1][0]
            if encounters:
                hub.plugins.hooks.encounters_received(encounters, result.source_name)
        else:
            log.info("inbox item %s quarantined", result.item_id)
    return [r for r in results if r is not None]


# --- the parsing worker process -------------------------------------------------------------

_worker: dict = {}


def _worker_start(override_dir: Path | None, parent: int | None = None) -> None:
    from bhhub.runtime.plugin_host import build_plugin_host

    _die_with_parent(parent or os.getppid())

    _worker["formats"] = build_plugin_host().hooks.intake_formats()
    _worker["mappings"] = MappingSet(override_dir=override_dir)


def _parse_in_worker(work: list[tuple[int, int, str, bytes]]) -> Parsed:
    return {position: _parse_one(_worker["formats"], _worker["mappings"], item_id, name, content)
            for position, item_id, name, content in work}


def _die_with_parent(parent: int) -> None:
    """End this worker when the intake that started it dies (even by SIGKILL): the worker holds
    its own end of the task queue, so it would otherwise wait for work forever, holding memory.
    Linux tells the kernel (PR_SET_PDEATHSIG); everywhere a thread also watches the parent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the kernel was told
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
