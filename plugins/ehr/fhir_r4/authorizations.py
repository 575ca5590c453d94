"""Prior authorizations: a payer's ClaimResponse to a preauthorization request.

R4 ClaimResponse with ``use = preauthorization`` carries the authorization number in
``preAuthRef`` and its validity in ``preAuthPeriod``. Two things are read from it:

- ``prior_authorization``: the number a visit's claim carries (REF*G1). It applies to a visit of
  the same patient whose date of service falls in the period, from the payer the claim goes to
  (when the ClaimResponse's insurer can be identified). A ClaimResponse without a period is not
  used: the date of service must be shown to be covered.
- ``authorization_grants``: the authorization itself, for the hub's ledger (payer, member,
  number, dates, codes and count). R4 has no single "authorized count" element, so where the
  codes and count are read is data: ``[prior_authorization.count]`` in
  ``mappings/ehr/fhir_r4.toml`` lists the places payers and EHRs put them (``addItem``, the Da
  Vinci PAS ``itemAuthorizedDetail`` extension, ``item.adjudication.value``, the request Claim's
  items), tried in order. A ClaimResponse whose count cannot be read that way, whose items
  authorize different counts, or whose payer or member cannot be told, is **not** a grant: it
  goes in no ledger, and its number still travels on the claim as REF*G1, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from bhhub.errors import InputError
from bhhub.model import AuthorizationGrant, Payer

from bhhub.plugins.ehr.fhir_r4 import people
from bhhub.plugins.ehr.fhir_r4.elements import as_date, code_in, identifier_value, period_covers
from bhhub.plugins.ehr.fhir_r4.fieldmap import FieldMap
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex

log = logging.getLogger(__name__)


def prior_authorization(index: BundleIndex, fmap: FieldMap, patient_resource: Any, day: date,
                        payer: Payer) -> str | None:
    """The most recent of the payer's authorizations covering ``day``: the visit's REF*G1."""
    covering = covering_authorizations(index, fmap, patient_resource, day, payer)
    return covering[0][0] if covering else None


def covering_authorizations(index: BundleIndex, fmap: FieldMap, patient_resource: Any, day: date,
                            payer: Payer) -> list[tuple[str, frozenset[str]]]:
    """The payer's authorizations covering ``day``, the most recent first (by start, then in
    bundle order): each number with the codes it authorizes, as the ledger reads them (empty
    when they cannot be read)."""
    found = []
    for response in index.referring("ClaimResponse", patient_resource):
        if not _answers_preauthorization(fmap, response):
            continue
        if not period_covers(response.preAuthPeriod, day) or not _from_payer(index, fmap, response, payer):
            continue
        start = as_date(response.preAuthPeriod.start) or date.min
        found.append((start, response.preAuthRef, frozenset(c.code for c in _counted(index, fmap, response))))
    found.sort(key=lambda f: f[0], reverse=True)  # stable: of two starting the same day, the first
    return [(number, codes) for _, number, codes in found]


def _answers_preauthorization(fmap: FieldMap, response: Any) -> bool:
    return (response.use in fmap.prior_auth_uses and response.status in fmap.prior_auth_statuses
            and response.outcome != "error" and bool(response.preAuthRef) and response.preAuthPeriod is not None)


def _insurer_payer_id(index: BundleIndex, fmap: FieldMap, response: Any) -> str | None:
    """The insurer's payer id, None when it cannot be told."""
    try:
        insurer = index.resolve(response.insurer, response)
    except InputError:  # the insurer is outside the bundle: its logical identifier, if any
        insurer = None
    identifiers = insurer.identifier if insurer is not None else (
        [response.insurer.identifier] if response.insurer is not None and response.insurer.identifier else [])
    return identifier_value(identifiers, systems=fmap.payer_id_systems, types=fmap.payer_id_types,
                            type_systems=fmap.identifier_type)


def _from_payer(index: BundleIndex, fmap: FieldMap, response: Any, payer: Payer) -> bool:
    """False only when the insurer is known to be another payer."""
    payer_id = _insurer_payer_id(index, fmap, response)
    return payer_id is None or payer_id == payer.payer_id


# --- the authorization, for the ledger ---------------------------------------------------------------


@dataclass(frozen=True)
class _Counted:
    code: str
    quantity: Decimal
    unit: str  # Quantity.code, else Quantity.unit, lower case ("" when neither)


def authorization_grants(index: BundleIndex, fmap: FieldMap, patient_resource: Any) -> tuple[AuthorizationGrant, ...]:
    """The patient's authorizations whose codes and count can be read (once per bundle)."""
    memo_key = ("authorization_grants", id(patient_resource))
    if memo_key not in index.memo:
        found = []
        for response in index.referring("ClaimResponse", patient_resource):
            if _answers_preauthorization(fmap, response) and response.outcome in fmap.prior_auth_ledger_outcomes:
                grant = _grant(index, fmap, response, patient_resource)
                if grant is not None:
                    found.append(grant)
        index.memo[memo_key] = tuple(found)
    return index.memo[memo_key]


def _grant(index: BundleIndex, fmap: FieldMap, response: Any, patient_resource: Any) -> AuthorizationGrant | None:
    where = index.label(response)
    number = response.preAuthRef.strip()
    start, end = as_date(response.preAuthPeriod.start), as_date(response.preAuthPeriod.end)
    if start is None or end is None:
        log.info("%s: preAuthPeriod without a full start and end date; not put in the ledger", where)
        return None
    member = _member(index, fmap, response, patient_resource, start)
    if member is None:
        log.info("%s: payer or member id cannot be told; not put in the ledger", where)
        return None
    counted = _counted(index, fmap, response)
    quantities = {c.quantity for c in counted}
    if len(quantities) != 1:
        log.info("%s: %s; not put in the ledger", where,
                 "no authorized count found" if not counted else "its items authorize different counts")
        return None
    quantity = quantities.pop()
    codes = tuple(sorted({c.code for c in counted}))
    unit_type = _unit_type(fmap, counted)
    if not number or quantity <= 0 or end < start or unit_type is None or any(len(c) != 5 for c in codes):
        log.info("%s: authorized count, dates, codes or unit kinds unusable; not put in the ledger", where)
        return None
    return AuthorizationGrant(payer_id=member[0], member_id=member[1], number=number,
                              quantity=quantity, start=start, end=end, unit_type=unit_type, procedure_codes=codes,
                              source="fhir", source_ref=where, issued=_issued(response.created))


def _member(index: BundleIndex, fmap: FieldMap, response: Any, patient_resource: Any,
            start: date) -> tuple[str, str] | None:
    """(payer id, member id): the insurer's payer id, else the payer of the patient's coverage;
    the member id from the patient's coverage with that payer (ClaimResponse.insurance first)."""
    payer_id = _insurer_payer_id(index, fmap, response)
    named = []
    for insurance in sorted(response.insurance or (), key=lambda i: (not i.focal, i.sequence or 0)):
        try:
            named.append(index.resolve(insurance.coverage, response))
        except InputError:
            continue
    candidates = []
    for resource in [*named, *index.referring("Coverage", patient_resource)]:
        if resource is None or resource.__resource_type__ != "Coverage" or \
                resource.status not in fmap.coverage_statuses:
            continue
        try:
            coverage = people.coverage(index, fmap, resource, order=None)
        except InputError:  # a coverage the visit does not bill is refused there, not here
            continue
        if coverage is None or not coverage.member_id:
            continue
        if payer_id is None or coverage.payer.payer_id == payer_id:
            candidates.append((any(resource is n for n in named), period_covers(resource.period, start),
                               (coverage.payer.payer_id, coverage.member_id)))
    if not candidates:
        return None
    # Named by the ClaimResponse first, then in force when the authorization starts.
    best = max(c[:2] for c in candidates)
    chosen = {pair for named_here, covers, pair in candidates if (named_here, covers) == best}
    return chosen.pop() if len(chosen) == 1 else None


def _counted(index: BundleIndex, fmap: FieldMap, response: Any) -> list[_Counted]:
    """The authorized (code, count) pairs from the first source in the field map that has any."""
    readers = {"addItem": _from_add_items, "item.authorizedDetail": _from_authorized_detail,
               "item.adjudication": _from_adjudication, "request.item": _from_request}
    for source in fmap.prior_auth_count_sources:
        found = readers[source](index, fmap, response)
        if found:
            return found
    return []


def _from_add_items(index: BundleIndex, fmap: FieldMap, response: Any) -> list[_Counted]:
    """ClaimResponse.addItem: the services the payer authorized, with productOrService and quantity."""
    found = []
    for item in response.addItem or ():
        if _not_authorized(fmap, item):
            continue
        counted = _pair(code_in(item.productOrService, fmap.procedure), item.quantity)
        if counted is not None:
            found.append(counted)
    return found


def _from_authorized_detail(index: BundleIndex, fmap: FieldMap, response: Any) -> list[_Counted]:
    """ClaimResponse.item with the PAS itemAuthorizedDetail extension (its code, else the requested one)."""
    requested = _requested_items(index, response)
    found = []
    for item in response.item or ():
        if _not_authorized(fmap, item):
            continue
        for extension in item.extension or ():
            if extension.url not in fmap.prior_auth_authorized_detail_extensions:
                continue
            parts = {e.url: e for e in extension.extension or ()}
            concept = getattr(parts.get("productOrServiceCode"), "valueCodeableConcept", None)
            code = code_in(concept, fmap.procedure) or _requested_code(fmap, requested, item.itemSequence)
            counted = _pair(code, getattr(parts.get("quantity"), "valueQuantity", None))
            if counted is not None:
                found.append(counted)
    return found


def _from_adjudication(index: BundleIndex, fmap: FieldMap, response: Any) -> list[_Counted]:
    """ClaimResponse.item.adjudication.value of a listed category; the code from the request's item."""
    requested = _requested_items(index, response)
    found = []
    for item in response.item or ():
        if _not_authorized(fmap, item):
            continue
        code = _requested_code(fmap, requested, item.itemSequence)
        for adjudication in item.adjudication or ():
            if code_in(adjudication.category, fmap.prior_auth_adjudication_category_systems) in \
                    fmap.prior_auth_adjudication_categories and adjudication.value is not None and code:
                found.append(_Counted(code, Decimal(adjudication.value), ""))
                break
    return found


def _from_request(index: BundleIndex, fmap: FieldMap, response: Any) -> list[_Counted]:
    """The request Claim's items, when the outcome says the request was granted as asked."""
    if response.outcome not in fmap.prior_auth_request_outcomes:
        return []
    refused = {item.itemSequence for item in response.item or () if _not_authorized(fmap, item)}
    found = []
    for sequence, item in _requested_items(index, response).items():
        if sequence not in refused:
            counted = _pair(code_in(item.productOrService, fmap.procedure), item.quantity)
            if counted is not None:
                found.append(counted)
    return found


def _requested_items(index: BundleIndex, response: Any) -> dict[int, Any]:
    """The items of the Claim that asked (ClaimResponse.request), by sequence; {} when not in the bundle."""
    try:
        claim = index.resolve(response.request, response)
    except InputError:
        return {}
    if claim is None or claim.__resource_type__ != "Claim":
        return {}
    return {item.sequence: item for item in claim.item or ()}


def _requested_code(fmap: FieldMap, requested: dict[int, Any], sequence: int | None) -> str | None:
    item = requested.get(sequence)
    return code_in(item.productOrService, fmap.procedure) if item is not None else None


def _pair(code: str | None, quantity: Any) -> _Counted | None:
    if not code or quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "").strip().lower()
    return _Counted(code.strip().upper(), Decimal(quantity.value), unit)


def _not_authorized(fmap: FieldMap, item: Any) -> bool:
    """An item whose adjudication carries a review action (X12 306, PAS reviewActionCode) other
    than those listed as authorized: denied, pended, or "contact the payer"."""
    for adjudication in item.adjudication or ():
        for code in _review_actions(fmap, adjudication.extension or ()):
            if code not in fmap.prior_auth_authorized_review_actions:
                return True
    return False


def _review_actions(fmap: FieldMap, extensions: Any) -> list[str]:
    """Review action codes anywhere in these extensions (PAS nests reviewActionCode in reviewAction)."""
    codes = []
    for extension in extensions:
        if extension.url in fmap.prior_auth_review_action_extensions:
            concept = getattr(extension, "valueCodeableConcept", None)
            codes += [c.code for c in getattr(concept, "coding", None) or () if c.code]
        codes += _review_actions(fmap, extension.extension or ())
    return codes


def _unit_type(fmap: FieldMap, counted: list[_Counted]) -> str | None:
    """visits, or units when the Quantity says units or every code is counted in time units
    (H-codes and the like, by prefix); None when the items disagree."""
    kinds = set()
    for c in counted:
        if c.unit in fmap.prior_auth_unit_words:
            kinds.add("units")
        elif c.unit in fmap.prior_auth_visit_words:
            kinds.add("visits")
        else:
            kinds.add("units" if c.code.startswith(fmap.prior_auth_unit_code_prefixes) else "visits")
    return kinds.pop() if len(kinds) == 1 else None


def _issued(created: Any) -> datetime | None:
    """ClaimResponse.created as an aware datetime (a date alone: its start, UTC)."""
    if isinstance(created, datetime):
        return created if created.tzinfo is not None else created.replace(tzinfo=timezone.utc)
    if isinstance(created, date):
        return datetime.combine(created, time.min, tzinfo=timezone.utc)
    return None
