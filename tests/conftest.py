"""Shared fixtures: a hub on SQLite and on the machine's PostgreSQL, and the shared corpora.

PostgreSQL tests use a fresh schema per test on ``BHHUB_TEST_POSTGRES_URL`` (default: the
local server's ``test`` database). Where no server answers they are skipped, unless
``BHHUB_REQUIRE_POSTGRES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_CORPORA = PROJECT.parent / "shared" / "corpora"
PG_URL = os.environ.get("BHHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_pg_status: str | None = None


def _postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per run)."""
    global _pg_status
    if _pg_status is None:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_status = ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not here"
            _pg_status = f"PostgreSQL at {PG_URL} unavailable: {type(exc).__name__}"
    return _pg_status or None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    problem = _postgres_problem()
    if problem:
        if os.environ.get("BHHUB_REQUIRE_POSTGRES") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()


@pytest.fixture
def hub_home(tmp_path, database_url):
    """A hub home whose bhhub.toml points at the backend under test."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n', encoding="utf-8")
    return home


@pytest.fixture
def hub(hub_home):
    from hub.app import Hub

    with Hub.open(hub_home) as opened:
        yield opened


@pytest.fixture
def sqlite_hub(tmp_path):
    """A hub on SQLite only, for tests about behaviour rather than storage."""
    from hub.app import Hub

    with Hub.open(tmp_path / "home") as opened:
        yield opened


@pytest.fixture
def corpora() -> Path:
    if not SHARED_CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present (a user's clone has none)")
    return SHARED_CORPORA
