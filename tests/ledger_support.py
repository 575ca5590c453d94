"""Visits and authorizations for one member of one payer: the store state every test of the
authorization ledger builds (``test_ledger``, ``test_auth_consumption_bulk``)."""

from __future__ import annotations

import json
from datetime import date

from hub.demo.synthetic import encounter_bundle
from hub.ledger import authorizations as ledger


def visit_bundle(seed: int, day: date, *, payer: str, member: str) -> bytes:
    """Synthetic encounter ``seed`` moved to ``day``, for member ``member`` of ``payer``."""
    bundle = encounter_bundle(seed)
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Organization" and r["id"].startswith("payer-"):
            r["identifier"][0]["value"] = payer
        elif r["resourceType"] == "Coverage":
            r["subscriberId"] = member
        elif r["resourceType"] == "Encounter":
            r["period"]["start"] = f"{day.isoformat()}T10:00:00-05:00"
        elif r["resourceType"] == "ChargeItem":
            r["occurrenceDateTime"] = day.isoformat()
    return json.dumps(bundle).encode()


def add_authorization(hub, **fields) -> int:
    """An authorization on file (``fields`` as ``hub.ledger.authorizations.add`` takes them): its id."""
    with hub.store.session() as session:
        row = ledger.add(session, **fields)
        session.commit()
        return row.id
