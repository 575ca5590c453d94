"""``bhhub demo`` never touches a practice's hub: whatever the environment or a ``bhhub.toml``
names, it runs on its own SQLite store in its own folder, fresh each time."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from bhhub.runtime import clock
from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema


def _practice_with_a_ready_claim(hub_home) -> str:
    start = clock.today() - timedelta(days=30)
    with Hub.open(hub_home) as hub:
        result = intake.receive(hub, json.dumps(encounter_bundle(2, start=start)).encode(), "visit.json")
    [claim] = result.claims
    assert claim.status == "ready"
    return claim.patient_control_number


def _everything_in(database_url: str) -> dict:
    """Each table's row count, and each claim's status: what a demo run must leave as it was."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            counts = {t.name: conn.scalar(select(func.count()).select_from(t))
                      for t in schema.Base.metadata.sorted_tables}
            statuses = dict(conn.execute(select(schema.Claim.patient_control_number, schema.Claim.status)).all())
    finally:
        engine.dispose()
    return {"rows": counts, "claims": statuses}


def _demo_claims(out: str) -> dict[str, str]:
    """The claims the demo listed after its exchange (step 4), by patient control number."""
    answered = out.split("\n4. ", 1)[1].split("\n5. ", 1)[0]
    return dict(re.findall(r"^(BH\d+) +(\w+) ", answered, re.MULTILINE))


@pytest.mark.parametrize("named_by", ["environment", "bhhub.toml"])
def test_demo_leaves_the_practice_store_as_it_was_and_runs_fresh_each_time(
        named_by, hub_home, database_url, monkeypatch, capsys):
    pcn = _practice_with_a_ready_claim(hub_home)
    before = _everything_in(database_url)
    assert before["claims"] == {pcn: "ready"} and before["rows"][schema.Claim.__tablename__] == 1
    if named_by == "environment":
        # The practice's variables, as a service's environment would set them.
        monkeypatch.setenv("BHHUB_DATABASE_URL", database_url)
        monkeypatch.setenv("BHHUB_HOME", str(hub_home))
        argv = ["demo"]
    else:
        monkeypatch.delenv("BHHUB_DATABASE_URL", raising=False)
        argv = ["--home", str(hub_home), "demo"]  # its bhhub.toml names the practice's database

    runs = []
    for _ in range(2):
        assert main(argv) == 0
        runs.append(capsys.readouterr().out)
        assert _everything_in(database_url) == before  # not a row added, not a status changed

    first, second = (_demo_claims(out) for out in runs)
    assert len(first) == 10  # the demo's own ten visits, billed from its own store
    assert second == first  # the second run started from nothing again
    assert {"paid", "rejected"} <= set(first.values())
    assert "pyx12 validator (005010X222A1): no errors" in runs[1]
    demo_db = hub_home / "demo" / "bhhub.db"
    assert demo_db.is_file()
    assert sorted(_everything_in(f"sqlite:///{demo_db}")["claims"]) == sorted(first)
    # The process's environment is the practice's again.
    if named_by == "environment":
        assert os.environ["BHHUB_DATABASE_URL"] == database_url
        assert os.environ["BHHUB_HOME"] == str(hub_home)
    else:
        assert "BHHUB_DATABASE_URL" not in os.environ


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "demo"
    mine.mkdir()
    (mine / "notes.txt").write_text("a person's own file")
    assert main(["--home", str(tmp_path), "demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was not made by `bhhub demo`" in err
    assert (mine / "notes.txt").read_text() == "a person's own file"
