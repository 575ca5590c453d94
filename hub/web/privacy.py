"""What a viewer may not see: a patient's name, member id, date of birth, address.

Viewers (the practice's owners, an accountant) see figures and claim lists by id. The workspace
takes these keys out of every object before a viewer's page or API answer is made, whatever
function produced it, so a field added to a listing later is hidden by its name here, once,
rather than page by page. The browser tests check the rendered pages against the names and
member ids the hub actually holds.
"""

from __future__ import annotations

from typing import Any

# Keys that carry a patient's (or subscriber's) identity wherever they appear in the hub's JSON.
PHI_KEYS = frozenset({
    "patient_name", "subscriber", "subscriber_name", "member_id", "subscriber_id", "members",
    "first_name", "last_name", "given", "family", "middle_name", "birth_date", "date_of_birth", "dob",
    "address", "addresses", "phone", "email", "ssn", "member_ids", "insured", "insured_name",
    "patient_first_name", "patient_last_name", "segments",
})


def without_phi(data: Any) -> Any:
    """``data`` with every PHI key removed at any depth (a new object; ``data`` is unchanged).

    The 837P segments a claim went out as name the patient and subscriber (NM1, DMG, N3/N4):
    a viewer does not get them either."""
    if isinstance(data, dict):
        return {k: without_phi(v) for k, v in data.items() if k not in PHI_KEYS and not _identity(k, v)}
    if isinstance(data, (list, tuple)):
        return [without_phi(v) for v in data]
    return data


def _identity(key: str, value: Any) -> bool:
    """A key ending ``_phi`` is PHI by the hub's own naming (``claim_detail``'s ``patient_phi``).
    ``patient`` is who the patient is (an object or a name) on a claim's page, but in the A/R's
    aging it is the patient's share of a balance (a number), which a viewer does see."""
    return key.endswith("_phi") or (key in IDENTITY_KEYS and isinstance(value, (dict, str)))


IDENTITY_KEYS = frozenset({"patient"})
