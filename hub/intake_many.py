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
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from hub.claims import prefetch_encounters, store_encounter
from hub.errors import HubError
from hub.intake import (
    PROCESSED, QUARANTINED, IntakeResult, expand, format_for, is_x12, parse_payload, process, set_state,
    split_records, store_raw, store_records,
)
from hub.mappings import MappingSet
from hub.store.repo import Upserter
from hub.types import IntakeContext

log = logging.getLogger(__name__)

Chunk = list[tuple[str, bytes]]
Parsed = dict[int, tuple[str | None, list | str]]  # position -> (format, encounters or refusal)


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
                             initargs=(hub.mappings.override_dir,)) as pool:
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
    with hub.store.session() as session:
        for position, (source_name, content) in enumerate(chunk):
            item_id, results[position] = store_raw(session, hub.store.dialect, source_name, content)
            if item_id is not None:
                new.append((position, item_id))
        session.commit()  # stored raw before anything reads it
    return results, new


def _parse_one(formats, mappings: MappingSet, item_id: int, source_name: str, content: bytes) -> tuple:
    if is_x12(content):
        return "x12", None  # a response file: applied on its own after the chunk (hub.responses)
    fmt_name = None
    try:
        fmt = format_for(formats, content)
        fmt_name = fmt.name
        return fmt_name, parse_payload(fmt, item_id, content, IntakeContext(source_name, mappings))
    except HubError as exc:
        return fmt_name, str(exc)


def _parse_here(hub, chunk: Chunk, new: list[tuple[int, int]]) -> Parsed:
    return {position: _parse_one(hub.intake_formats, hub.mappings, item_id, *chunk[position])
            for position, item_id in new}


def _store_parsed(hub, chunk: Chunk, new: list[tuple[int, int]], parsed: Parsed,
                  results: list[IntakeResult | None]) -> list[IntakeResult]:
    try:
        with hub.store.session() as session:
            parsed = {position: (fmt, split_records(outcome) if isinstance(outcome, list) else outcome)
                      for position, (fmt, outcome) in parsed.items()}
            keys = [e.key for _, outcome in parsed.values() if isinstance(outcome, tuple) for e in outcome[0]]
            upserts = Upserter(session, hub.known_rows, reserve=len(keys))
            prefetch_encounters(upserts, keys)
            for position, item_id in new:
                fmt_name, outcome = parsed[position]
                source_name = chunk[position][0]
                if outcome is None:
                    continue
                if isinstance(outcome, str):
                    set_state(session, item_id, QUARANTINED, fmt_name, outcome)
                    results[position] = IntakeResult(item_id, source_name, QUARANTINED, fmt_name, outcome)
                    continue
                encounters, others = outcome
                claims = tuple(store_encounter(hub, session, upserts, e, item_id) for e in encounters)
                records = store_records(hub, session, upserts, others, item_id)
                set_state(session, item_id, PROCESSED, fmt_name, None)
                if claims or not records:
                    hub.audit(session, "intake", "claim", [c.claim_id for c in claims if c.claim_id],
                              f"inbox item {item_id}")
                results[position] = IntakeResult(item_id, source_name, "imported", fmt_name, None, claims,
                                                 records=records)
            upserts.flush()
            session.commit()
            upserts.remember()
    except HubError:
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


def _worker_start(override_dir: Path | None) -> None:
    from hub.plugins import build_plugin_host

    _worker["formats"] = build_plugin_host().hooks.intake_formats()
    _worker["mappings"] = MappingSet(override_dir=override_dir)


def _parse_in_worker(work: list[tuple[int, int, str, bytes]]) -> Parsed:
    return {position: _parse_one(_worker["formats"], _worker["mappings"], item_id, name, content)
            for position, item_id, name, content in work}
