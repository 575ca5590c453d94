"""The claims listing as the web workspace pages it (issue 16): filtered by rendering provider and
by patient in SQL, a page at a time, each row the object `bhhub claims --json` prints."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bhhub.cli.main import main
from bhhub.errors import UsageError
from bhhub.listings.claims import claim_page
from bhhub.runtime.app import Hub
from bhhub.store import schema
from views_support import as_printed, take_in


@pytest.fixture
def taken_in(hub_home):
    with Hub.open(hub_home) as hub:
        take_in(hub)
    return hub_home


def _claims_by(hub_home):
    """(claim id, rendering NPI, patient id) of every claim, read straight from the store."""
    c, p = schema.Claim, schema.Provider
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        return session.execute(select(c.id, p.npi, c.patient_id).join(p, p.id == c.rendering_provider_id)
                               .order_by(c.id)).all()


def test_provider_filter_lists_only_that_rendering_providers_claims(taken_in):
    rows = _claims_by(taken_in)
    npis = {npi for _, npi, _ in rows}
    assert len(npis) > 1, "the fixture needs claims of several clinicians"
    npi = rows[0].npi
    with Hub.open(taken_in) as hub, hub.store.session() as session:
        shown, cursor = claim_page(hub, session, provider=npi, limit=100)
    assert [c["id"] for c in shown] == [i for i, n, _ in rows if n == npi]
    assert cursor is None


def test_patient_filter_lists_only_that_patients_claims(taken_in):
    rows = _claims_by(taken_in)
    patient = rows[-1].patient_id
    with Hub.open(taken_in) as hub, hub.store.session() as session:
        shown, _ = claim_page(hub, session, patient=patient)
    assert shown and [c["id"] for c in shown] == [i for i, _, p in rows if p == patient]
    assert all(c["patient_id"] == patient for c in shown)
    assert len(shown) < len(rows)


def test_pages_follow_their_cursor_and_together_are_the_whole_listing(taken_in):
    with Hub.open(taken_in) as hub, hub.store.session() as session:
        everything, last = claim_page(hub, session, limit=None)
        pages, cursor = [], None
        while True:
            rows, cursor = claim_page(hub, session, limit=2, after=cursor)
            pages.append(rows)
            if cursor is None:
                break
    assert last is None
    assert all(len(p) == 2 for p in pages[:-1]) and len(pages) == (len(everything) + 1) // 2
    assert [c for p in pages for c in p] == everything


def test_cli_json_prints_exactly_the_page_the_function_gives(taken_in, capsys):
    npi = _claims_by(taken_in)[0].npi
    with Hub.open(taken_in) as hub, hub.store.session() as session:
        rows, cursor = claim_page(hub, session, provider=npi, limit=1)
    assert main(["--home", str(taken_in), "claims", "--provider", npi, "--limit", "1", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == as_printed(rows)
    assert (f"--after {cursor}" in printed.err) == (cursor is not None)


def test_the_filters_are_recorded_in_the_audit_trail_without_phi(taken_in):
    patient = _claims_by(taken_in)[0].patient_id
    with Hub.open(taken_in) as hub, hub.store.session() as session:
        rows, _ = claim_page(hub, session, patient=patient)
        event = session.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc())).first()
    assert event.action == "list_claims" and event.object_ids == [c["id"] for c in rows]
    assert event.detail == f"patient {patient}"


def test_a_malformed_npi_is_a_usage_error_not_an_empty_listing(taken_in, capsys):
    assert main(["--home", str(taken_in), "claims", "--provider", "12345"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NPI" in err
    with Hub.open(taken_in) as hub, hub.store.session() as session, pytest.raises(UsageError):
        claim_page(hub, session, provider="not-an-npi")


def test_an_unknown_provider_or_patient_lists_no_claims(taken_in, capsys):
    assert main(["--home", str(taken_in), "claims", "--provider", "1999999999", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--home", str(taken_in), "claims", "--patient", "999999"]) == 0
    assert "no claims (patient 999999)" in capsys.readouterr().out
