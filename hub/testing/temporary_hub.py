"""The goldens through a real, temporary hub: intake, coding, checks, an 837P batch, pyx12.

A SQLite hub in a temporary folder with bhhub's built-in plugins and the plugin under test, as a
practice would run it; the day the rules count from (``BHHUB_TODAY``) is set for the run and
restored, and a ``BHHUB_DATABASE_URL`` in the environment is ignored for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from bhhub.testing.common import fail, host_with


@contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def bill_in_temporary_hub(plugin: object, goldens: Sequence[Path], names: set[str], expected: int, today: date,
                          require_ready: bool, mappings_dir: Path | None = None) -> dict[str, Any]:
    """Receive each golden, check its claims, export one batch; ``{"claims": n, "content": bytes}``."""
    from bhhub.runtime.app import Hub

    with tempfile.TemporaryDirectory(prefix="bhhub-contract-") as folder:
        if mappings_dir is not None:
            shutil.copytree(mappings_dir, Path(folder) / "home" / "mappings")
        with _environment(BHHUB_TODAY=today.isoformat(), BHHUB_DATABASE_URL=None), \
                Hub.open(Path(folder) / "home", plugins=host_with(plugin), create=True) as hub:
            return _bill(hub, goldens, names, expected, require_ready, Path(folder))


def _bill(hub, goldens: Sequence[Path], names: set[str], expected: int, require_ready: bool,
          folder: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from bhhub.intake import inbox as intake
    from bhhub.claims.export import export_837p
    from bhhub.store import schema

    for golden in goldens:
        result = intake.receive(hub, golden.read_bytes(), golden.name)
        if result.outcome != "imported":
            raise fail(f"the hub did not import {golden.name}: {result.outcome} ({result.reason})")
        if result.format not in names:
            raise fail(f"the hub read {golden.name} as {result.format!r}, not with the plugin's format",
                       "make the golden unambiguous, or recognizes() more specific")
        if result.notes:  # another format recognized it too (bhhub.intake.inbox.choose_format)
            raise fail(f"the hub noted about {golden.name}: {'; '.join(result.notes)}",
                       "make recognizes() look for what only this format has")
        stuck = [c for c in result.claims if c.status != "ready"]
        if stuck and require_ready:
            with hub.store.session() as session:
                found = session.execute(select(schema.Finding.code, schema.Finding.message).where(
                    schema.Finding.claim_id.in_([c.claim_id for c in stuck]),
                    schema.Finding.severity == "error")).all()
            raise fail(f"{golden.name}: {len(stuck)} claim(s) not ready: " +
                       "; ".join(f"{code}: {message}" for code, message in found),
                       "golden files should bill cleanly; fix the plugin's mapping or the golden")
    batch = export_837p(hub, Path(folder) / "goldens.837p")
    if batch is None or batch.claim_count != expected:
        got = 0 if batch is None else batch.claim_count
        if require_ready:
            raise fail(f"the 837P batch carries {got} claims; the goldens have {expected} encounters")
    content = batch.path.read_bytes() if batch is not None else b""
    return {"claims": 0 if batch is None else batch.claim_count, "content": content}


def validated(content: bytes, required: bool) -> str:
    """pyx12's verdict on the batch: "valid", "not installed" (unless ``required``) or a failure."""
    from bhhub.x12.validate import validate_x12

    if not content:
        return "no batch"
    try:
        errors = validate_x12(content)
    except ImportError:
        if required:
            raise fail("pyx12 is not installed", "pip install pyx12") from None
        return "not installed"
    if errors:
        raise fail("pyx12 rejects the 837P made from the goldens:\n    " + "\n    ".join(errors[:10]))
    return "valid"
