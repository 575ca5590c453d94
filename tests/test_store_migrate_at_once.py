"""Two commands starting at once on a new store (cron and a person) both get a migrated store:
the second waits for the first's migration and finds the store at the newest, never a half-made
schema or "alembic_version already exists". Each starter is its own process, as commands are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from bhhub.store.db import open_store

PROJECT = Path(__file__).resolve().parent.parent
OPEN = ("import sys; from bhhub.store.db import open_store\n"
        "sys.stdin.read()  # every starter waits here until all are ready\n"
        "open_store(sys.argv[1]).close()\n")


def test_commands_starting_together_on_a_new_store_each_get_it_migrated(database_url):
    starters = [subprocess.Popen([sys.executable, "-c", OPEN, database_url], cwd=PROJECT, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    for starter in starters:  # all imported and waiting: let them open the empty store together
        starter.stdin.close()
    outcomes = [(s.wait(timeout=180), s.stderr.read()) for s in starters]
    assert all(code == 0 for code, _ in outcomes), [err[-400:] for code, err in outcomes if code]
    with open_store(database_url, migrate=False) as store, store.engine.connect() as connection:
        assert len(connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()) == 1
