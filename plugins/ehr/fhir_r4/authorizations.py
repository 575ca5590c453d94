"""Prior authorizations: a payer's ClaimResponse to a preauthorization request.

R4 ClaimResponse with ``use = preauthorization`` carries the authorization number in
``preAuthRef`` and its validity in ``preAuthPeriod``. It applies to a visit of the same patient
whose date of service falls in that period, from the payer the claim goes to (when the
ClaimResponse's insurer can be identified). A ClaimResponse without a period is not used: the
date of service must be shown to be covered.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.errors import InputError
from hub.model import Payer

from plugins.ehr.fhir_r4.elements import as_date, identifier_value, period_covers
from plugins.ehr.fhir_r4.fieldmap import FieldMap
from plugins.ehr.fhir_r4.references import BundleIndex


def prior_authorization(index: BundleIndex, fmap: FieldMap, patient_resource: Any, day: date,
                        payer: Payer) -> str | None:
    best, best_start = None, date.min
    for response in index.referring("ClaimResponse", patient_resource):
        if response.use not in fmap.prior_auth_uses or response.status not in fmap.prior_auth_statuses:
            continue
        if response.outcome == "error" or not response.preAuthRef or response.preAuthPeriod is None:
            continue
        if not period_covers(response.preAuthPeriod, day) or not _from_payer(index, fmap, response, payer):
            continue
        start = as_date(response.preAuthPeriod.start) or date.min
        if best is None or start > best_start:  # the most recent authorization covering the day
            best, best_start = response.preAuthRef, start
    return best


def _from_payer(index: BundleIndex, fmap: FieldMap, response: Any, payer: Payer) -> bool:
    """False only when the insurer is known to be another payer."""
    try:
        insurer = index.resolve(response.insurer, response)
    except InputError:  # the insurer is outside the bundle: cannot tell, accept
        return True
    identifiers = insurer.identifier if insurer is not None else (
        [response.insurer.identifier] if response.insurer is not None and response.insurer.identifier else [])
    payer_id = identifier_value(identifiers, systems=fmap.payer_id_systems, types=fmap.payer_id_types,
                                type_systems=fmap.identifier_type)
    return payer_id is None or payer_id == payer.payer_id
