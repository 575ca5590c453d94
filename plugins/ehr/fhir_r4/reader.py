"""From bytes to one validated fhir.resources Bundle, or a refusal a biller can read.

The payload is parsed once, by ``Bundle.model_validate_json`` (R4B models, which read R4
content). Only when that fails is the content looked at again (with ``json``) to say what is
wrong in plain words: truncated or malformed JSON with its character position, JSON that is no
FHIR resource, a FHIR resource that is not a Bundle, the entry and element a validation error
is about. Messages name resources by type and id and never quote content (no PHI).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from bhhub.errors import InputError

BOM = b"\xef\xbb\xbf"
_SNIFF = 4096  # bytes looked at by recognizes(); a Bundle's resourceType comes first in practice
_MAX_LISTED = 3  # validation problems named in one message
# FHIR R4 Bundle.type's required value set (bundle-type): the only values a refusal may quote.
BUNDLE_TYPES = frozenset({"document", "message", "transaction", "transaction-response", "batch",
                          "batch-response", "history", "searchset", "collection"})
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id (R4 2.24.0.1): what a refusal may quote of a resource


def recognizes(content: bytes) -> bool:
    """Whether the payload says it is FHIR: JSON naming a ``resourceType`` in its first bytes
    (a Bundle, or another resource to be refused as "a lone Patient"), or FHIR XML (the FHIR
    namespace; refused with "export JSON"). Other JSON is left to the formats other plugins
    read, and comes back to ``claims_unrecognized`` only if none of them takes it.
    """
    head = _head(content)
    if head[:1] in (b"{", b"["):
        return b'"resourceType"' in head
    return head[:1] == b"<" and b"http://hl7.org/fhir" in head


def claims_unrecognized(content: bytes) -> bool:
    """Any JSON no installed format recognized: quarantined with the exact reason (truncated at
    char N, JSON with no resourceType) rather than as "unrecognized"."""
    return _head(content)[:1] in (b"{", b"[")


def _head(content: bytes) -> bytes:
    head = content[:_SNIFF]
    if head.startswith(BOM):
        head = head[len(BOM):]
    return head.lstrip()


def read_bundle(content: bytes, supported_types: frozenset[str]) -> Any:
    """The validated Bundle in ``content``; ``InputError`` saying why not otherwise."""
    if content.startswith(BOM):
        content = content[len(BOM):]
    if content.lstrip()[:1] == b"<":
        raise InputError("FHIR XML is not read; this reader takes FHIR JSON",
                         fix="export the bundle as JSON (application/fhir+json)")
    # fhir.resources takes most of a second to import: loaded when a bundle is read, not
    # whenever the plugin host loads (`bhhub intake` of an 835 or HL7 file needs none of it).
    from fhir.resources.R4B.bundle import Bundle

    try:
        bundle = Bundle.model_validate_json(content)
    except ValidationError as exc:
        raise _explain(content, exc) from exc
    except Exception as exc:  # noqa: BLE001 - fhir.resources raises KeyError/ValueError for unknown types
        raise _explain(content, None) from exc
    if bundle.type not in supported_types:
        # Shown only when it is one of FHIR's own codes for Bundle.type (required binding).
        kind = repr(bundle.type) if bundle.type in BUNDLE_TYPES else "that is not a FHIR Bundle.type code"
        raise InputError(
            f"a Bundle of type {kind}, which this reader does not import "
            f"(it reads {', '.join(sorted(supported_types))})",
            where="Bundle" + (f"/{bundle.id}" if bundle.id else ""),
            fix="export the encounters as a collection, searchset, document or transaction bundle",
        )
    return bundle


def _explain(content: bytes, exc: ValidationError | None) -> InputError:
    """Why ``content`` is not a valid Bundle, worked out on the failure path only."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        return InputError(f"not UTF-8 text (invalid byte at byte offset {err.start})",
                          fix="export the bundle as UTF-8 JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return _json_error(text, err)
    if not isinstance(data, dict):
        return InputError(f"JSON but not a FHIR resource (a JSON {_json_kind(data)}, not an object)",
                          fix="send a FHIR Bundle (an object with \"resourceType\": \"Bundle\")")
    rtype = data.get("resourceType")
    if not isinstance(rtype, str):
        return InputError("JSON but not a FHIR resource (no resourceType)",
                          fix="send a FHIR Bundle exported by the EHR, not another JSON file")
    if rtype != "Bundle":
        if not _is_fhir_type(rtype):
            return InputError("JSON with a resourceType that is not a FHIR R4 resource",
                              where=_name(data), fix="send a FHIR R4 Bundle")
        return InputError(f"a lone FHIR {rtype}, not a Bundle", where=_name(data),
                          fix="export a Bundle holding the Encounter (or Claim) with its Patient, Coverage, "
                              "Conditions and charges")
    unknown = _unknown_entry_type(data)
    if unknown is not None:
        return unknown
    if exc is None:
        return InputError("not a valid FHIR R4 Bundle", fix="check the export against the FHIR R4 specification")
    return _validation_error(data, exc)


def _json_error(text: str, err: json.JSONDecodeError) -> InputError:
    # The decoder stops at the end of the text (or inside a string that never closes, which
    # only the end of the text can cause): the file was cut short.
    if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
        return InputError(f"truncated JSON: the content ends at char {len(text)} before the JSON is complete",
                          fix="the file was cut short in transfer or export; send it again")
    if err.msg.startswith("Extra data"):
        return InputError(f"more than one JSON document (extra data at char {err.pos}); an NDJSON export?",
                          fix="send one Bundle per file")
    return InputError(f"malformed JSON at char {err.pos} (line {err.lineno}, column {err.colno}): {err.msg}",
                      fix="the export is damaged; send it again or report it to the EHR vendor")


def _json_kind(data: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(data), "number")


def _is_fhir_type(name: str) -> bool:
    try:
        from fhir.resources.R4B import get_fhir_model_class

        get_fhir_model_class(name)
    except (ValueError, KeyError, AttributeError):
        return False
    return True


def _name(resource: Any) -> str:
    """``Type/id`` of a raw resource dict (ids only: no PHI)."""
    if not isinstance(resource, dict):
        return "entry"
    rtype, rid = resource.get("resourceType"), resource.get("id")
    rtype = rtype if isinstance(rtype, str) and _is_fhir_type(rtype) else "resource"
    return f"{rtype}/{rid}" if isinstance(rid, str) and _ID.fullmatch(rid) else rtype


def _unknown_entry_type(data: dict) -> InputError | None:
    entries = data.get("entry")
    if not isinstance(entries, list):
        return None
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str) or not _is_fhir_type(rtype):
                return InputError("its resourceType is not a FHIR R4 resource type",
                                  where=f"Bundle entry {number}",
                                  fix="remove the entry or correct its resourceType")
    return None


def _validation_error(data: dict, exc: ValidationError) -> InputError:
    """Name the entry (``Encounter/enc-7``) and element (``period.start``) of the first problems."""
    problems, where = [], None
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        resource_name = "Bundle"
        if len(loc) >= 3 and loc[0] == "entry" and isinstance(loc[1], int) and loc[2] == "resource":
            entries = data.get("entry") or []
            entry = entries[loc[1]] if loc[1] < len(entries) and isinstance(entries[loc[1]], dict) else {}
            resource_name = _name(entry.get("resource"))
            loc = loc[3:]
        path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[") or "(root)"
        where = where or resource_name
        message = _friendly(error["type"], str(error["msg"]), error.get("input"))
        problems.append(f"{resource_name} {path}: {message}")
    shown = "; ".join(problems[:_MAX_LISTED])
    more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
    return InputError(f"not valid FHIR R4: {shown}{more}", where=where,
                      fix="correct these elements in the EHR's export (FHIR R4 datatypes and element names)")


def _friendly(error_type: str, message: str, value: Any = None) -> str:
    """pydantic's words for one problem, without the value: its messages may quote the input
    (a custom validator's ``ValueError`` often does), and the input here is a patient's data."""
    if error_type == "extra_forbidden":
        return "not an element of this resource in FHIR R4"
    if error_type in ("missing", "model_field_validation.missing"):
        return "required but missing"
    message = message.splitlines()[0].removeprefix("Value error, ")[:160]
    if _quotes(message, value):
        return f"not a valid value ({error_type})"
    return message


def _quotes(message: str, value: Any) -> bool:
    """Whether ``message`` may carry some of ``value``: its text, or anything in quotes but a
    pattern (pydantic quotes the regex a string must match, which is the standard's, not data)."""
    texts = [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else []
    if isinstance(value, dict):
        texts += [v for v in value.values() if isinstance(v, (str, int, float))]
    if any(len(str(t)) >= 2 and str(t) in message for t in texts):
        return True
    return bool(re.search(r"['\"]", message.split("should match pattern", 1)[0]))
