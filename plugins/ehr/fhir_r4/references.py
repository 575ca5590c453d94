"""Resolving references inside one Bundle, by dictionary lookup.

FHIR R4 Bundle rules (bundle.html#references): a reference is matched against the entries'
``fullUrl``; a relative reference (``Patient/p1``) is first made absolute against the base of
the referring entry's fullUrl. Transaction bundles name new resources by ``urn:uuid:`` fullUrls
and refer to them by that urn. ``#id`` points into the referring resource's ``contained``.
Exports are not always that tidy, so a reference that fails by URL is tried by ``Type/id``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bhhub.errors import InputError

# Types whose back-references (who points at me) the mappers ask for, and the element that
# points: ChargeItem.context → Encounter, Condition.encounter → Encounter, Coverage.beneficiary
# → Patient, ClaimResponse.patient → Patient, PractitionerRole.practitioner → Practitioner.
_BACK_REFERENCES = {
    "ChargeItem": "context",
    "Condition": "encounter",
    "Coverage": "beneficiary",
    "ClaimResponse": "patient",
    "PractitionerRole": "practitioner",
}


def _type_and_id(reference: str) -> str | None:
    """``Type/id`` from a relative or absolute RESTful reference (``_history`` dropped)."""
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return None


class BundleIndex:
    """Every resource of one Bundle, findable by ``Type/id``, by fullUrl and by type."""

    def __init__(self, bundle: Any):
        self.by_key: dict[str, Any] = {}
        self.by_url: dict[str, Any] = {}
        self.by_type: dict[str, list[Any]] = defaultdict(list)
        self._base: dict[int, str] = {}  # id(resource) → base URL of its fullUrl
        self._label: dict[int, str] = {}
        self._back: dict[tuple[str, int], list[Any]] | None = None
        self.memo: dict[tuple[str, int], Any] = {}  # per-bundle results of the mappers
        for position, entry in enumerate(bundle.entry or ()):
            resource = entry.resource
            if resource is None:  # e.g. a DELETE in a transaction
                continue
            rtype = resource.__resource_type__
            self.by_type[rtype].append(resource)
            rid = resource.id
            if rid:
                self.by_key.setdefault(f"{rtype}/{rid}", resource)
                self._label[id(resource)] = f"{rtype}/{rid}"
            else:  # no id (transaction POSTs): name it by position, never by content
                self._label[id(resource)] = f"{rtype} (entry {position + 1})"
            url = entry.fullUrl
            if url:
                self.by_url.setdefault(url, resource)
                if rid and url.endswith(f"/{rtype}/{rid}"):
                    self._base[id(resource)] = url[: -len(rtype) - len(rid) - 2]

    def of_type(self, rtype: str) -> list[Any]:
        return self.by_type.get(rtype, [])

    def label(self, resource: Any) -> str:
        """How messages name a resource: ``Encounter/enc-7`` (ids only, never content)."""
        label = self._label.get(id(resource))
        if label is None:  # a contained resource
            label = f"{resource.__resource_type__}/#{resource.id}"
        return label

    def resolve(self, reference: Any, source: Any) -> Any:
        """The resource a Reference points to, or None when it has no literal reference.

        Raises ``InputError`` when the reference names a resource the bundle does not hold.
        """
        if reference is None or not reference.reference:
            return None
        found = self._find(reference.reference, source)
        if found is None:
            raise InputError(
                f"refers to {reference.reference}, which is not in the bundle",
                where=self.label(source),
                fix="export the referenced resource in the same bundle (or fix the reference)",
            )
        return found

    def require(self, reference: Any, source: Any, element: str, types: tuple[str, ...]) -> Any:
        """Like ``resolve``, but the element must be present and point to one of ``types``."""
        found = self.resolve(reference, source)
        if found is None:
            raise InputError(f"{element} is missing", where=self.label(source),
                             fix=f"add {element} (a reference to a {' or '.join(types)} in the bundle)")
        if found.__resource_type__ not in types:
            raise InputError(f"{element} points to a {found.__resource_type__}, not a {' or '.join(types)}",
                             where=self.label(source), fix=f"point {element} to a {' or '.join(types)}")
        return found

    def referring(self, rtype: str, target: Any) -> list[Any]:
        """Resources of ``rtype`` whose back-reference element points at ``target``."""
        if self._back is None:
            self._back = self._back_references()
        return self._back.get((rtype, id(target)), [])

    def _find(self, ref: str, source: Any) -> Any:
        if ref.startswith("#"):
            for contained in getattr(source, "contained", None) or ():
                if contained.id == ref[1:]:
                    return contained
            return None
        found = self.by_url.get(ref)
        if found is not None:
            return found
        if "://" not in ref and not ref.startswith("urn:"):
            base = self._base.get(id(source))
            if base is not None:
                found = self.by_url.get(f"{base}/{ref}")
                if found is not None:
                    return found
        key = _type_and_id(ref) if not ref.startswith("urn:") else None
        return self.by_key.get(key) if key else None

    def _back_references(self) -> dict[tuple[str, int], list[Any]]:
        back: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for rtype, element in _BACK_REFERENCES.items():
            for resource in self.by_type.get(rtype, ()):
                reference = getattr(resource, element, None)
                if reference is None or not reference.reference:
                    continue
                # A back-reference to something outside the bundle (a Condition of another
                # visit) concerns no encounter here: skip it rather than refuse the bundle.
                target = self._find(reference.reference, resource)
                if target is not None:
                    back[(rtype, id(target))].append(resource)
        return dict(back)
