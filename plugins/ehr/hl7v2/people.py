"""The patient (PID) and their coverages (IN1, IN2; GT1 for an insured the IN1 does not name).

A patient's key is source-scoped: ``hl7:FACILITY|TYPE|ID`` (MSH-4 and the PID-3 identifier
chosen by type), the same in the ADT that registered them, the SIU that booked them and the
DFT that bills them. Refusals name the segment and field, never the values (PHI).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from bhhub.errors import InputError
from bhhub.model import SELF, Address, Coverage, Patient, Payer, Person, PersonName

from bhhub.plugins.ehr.hl7v2.fieldmap import FieldMap
from bhhub.plugins.ehr.hl7v2.paths import Path, Scope, groups
from bhhub.plugins.ehr.hl7v2.shown import set_id as shown_set_id
from bhhub.plugins.ehr.hl7v2.values import optional_date, parse_ts
from bhhub.plugins.ehr.hl7v2.wire import Message, Segment

INSURANCE_GROUP = frozenset({"IN1", "IN2", "IN3", "ROL", "PRT"})
NEVER_KEYS = frozenset({"SS"})  # a social security number is never a patient's key


def facility(message: Message) -> tuple[str, str]:
    """MSH-4 sending facility: (namespace id, universal id)."""
    return message.msh.value(4, 1), message.msh.value(4, 2)


def facility_name(message: Message) -> str:
    namespace, universal = facility(message)
    return namespace or universal or "-"


def patient(message: Message, fmap: FieldMap, *, require_name: bool = True) -> Patient:
    where = message.where()
    pid = message.first("PID")
    if pid is None:
        raise InputError("no PID segment: the message names no patient", where=message.where(),
                         fix="send the PID segment (it is required in ADT, SIU and DFT messages)")
    key = _patient_key(message, fmap)
    scope = Scope(message)
    family = scope.first(fmap.paths("patient.family_name"))
    if not family and require_name:
        raise InputError("PID-5 patient name has no family name", where=where,
                         fix="send the patient's legal name in PID-5 (family ^ given)")
    return Patient(
        name=PersonName(family, scope.first(fmap.paths("patient.given_name")) or None,
                        scope.first(fmap.paths("patient.middle_name")) or None,
                        scope.first(fmap.paths("patient.suffix")) or None),
        birth_date=_birth_date(scope, fmap, "patient.birth_date", where),
        gender=fmap.codes("patient.gender").get(scope.first(fmap.paths("patient.sex")).upper(), "U"),
        address=_address(scope, fmap, "patient.address"),
        key=key,
    )


def _patient_key(message: Message, fmap: FieldMap) -> str:
    wanted = fmap.strings("patient.identifier_types")
    candidates: list[tuple[int, str, str]] = []  # (preference, type, id)
    for path in fmap.paths("patient.identifier"):
        segment = message.first(path.segment)
        if segment is None:
            continue
        for repetition in range(len(segment.repetitions(path.field))):
            value = segment.value(path.field, 1, None, repetition)
            kind = segment.value(path.field, 5, None, repetition).upper()
            if value and kind not in NEVER_KEYS and kind in wanted:
                candidates.append((wanted.index(kind), kind, value))
        if candidates:
            break
    if not candidates:
        fields = " or ".join(p.label for p in fmap.paths("patient.identifier"))
        kinds = ", ".join(k or "(no type)" for k in wanted)
        raise InputError(f"{fields} has no patient identifier of type {kinds}", where=message.where(),
                         fix="send the chart number in PID-3 with identifier type MR, or list your EHR's type "
                             "in [patient] identifier_types of mappings/ehr/hl7v2.toml")
    _, kind, value = min(candidates, key=lambda c: c[0])
    return f"hl7:{facility_name(message)}|{kind or 'ID'}|{value}"


def _birth_date(scope: Scope, fmap: FieldMap, dotted: str, where: str) -> date | None:
    """A date of birth as sent; None when not sent or sent to the year or month only (DT allows
    it; the 837P then carries none). Anything that is no date at all is refused: a field shifted
    by a stray separator would otherwise bill the patient without one, silently."""
    text, path = scope.value(fmap.paths(dotted))
    if text and parse_ts(text) is None:
        raise InputError(f"{path.label} date of birth is not a date (YYYYMMDD)", where=where,
                         fix=f"send the date of birth in {path.label} as YYYYMMDD")
    return optional_date(text)


def _address(scope: Scope, fmap: FieldMap, dotted: str) -> Address | None:
    paths = fmap.address(dotted)
    line1, city = scope.first(paths.line1), scope.first(paths.city)
    state, postal = scope.first(paths.state), scope.first(paths.postal_code)
    if not (line1 and city and state and postal):
        return None  # a partial address is left out rather than half-sent
    return Address(line1, city, state, postal, scope.first(paths.line2) or None)


def coverages(message: Message, fmap: FieldMap, service_date: date | None = None) -> tuple[Coverage, ...]:
    """Each IN1 group as a coverage, primary first; with ``service_date``, only those in effect."""
    return tuple(coverage for coverage, _ in coverage_groups(message, fmap, service_date))


def coverage_groups(message: Message, fmap: FieldMap,
                    service_date: date | None = None) -> list[tuple[Coverage, list[Segment]]]:
    """``coverages`` with the IN1 group (IN1, IN2, IN3) each was read from."""
    found: list[tuple[int, int, Coverage, list[Segment]]] = []
    for position, group in enumerate(groups(message, "IN1", INSURANCE_GROUP)):
        scope = Scope(message, group)
        set_id = shown_set_id(group[0].value(1), position + 1)
        where = message.where(f"IN1 set {set_id}")
        if service_date is not None and not _in_effect(scope, fmap, service_date):
            continue
        order_text = scope.first(fmap.paths("coverage.order"))
        order = int(order_text) if order_text.isdigit() else position + 1
        found.append((order, position, _coverage(scope, fmap, where), group))
    found.sort(key=lambda c: (c[0], c[1]))
    # Renumbered 1, 2, 3 in priority order: the model's primary is order 1.
    return [(replace(c, order=number), group) for number, (_, _, c, group) in enumerate(found, start=1)]


def in_group(group: list[Segment], paths: tuple[Path, ...]) -> str:
    """The first value among ``paths`` read in ``group`` only (never another coverage's IN1)."""
    for path in paths:
        for segment in group:
            if segment.name == path.segment:
                found = segment.value(path.field, path.component, path.subcomponent)
                if found:
                    return found
                break
    return ""


def _in_effect(scope: Scope, fmap: FieldMap, on: date) -> bool:
    start = optional_date(scope.first(fmap.paths("coverage.effective_date")))
    end = optional_date(scope.first(fmap.paths("coverage.expiration_date")))
    return (start is None or start <= on) and (end is None or on <= end)


def _coverage(scope: Scope, fmap: FieldMap, where: str) -> Coverage:
    payer_id, _ = scope.value(fmap.paths("coverage.payer_id"))
    if not payer_id:
        raise InputError(f"{_labels(fmap, 'coverage.payer_id')} insurance company id is empty", where=where,
                         fix="send the payer's id (the clearinghouse payer id) in IN1-3")
    member_id = scope.first(fmap.paths("coverage.member_id"))
    if not member_id:
        raise InputError(f"{_labels(fmap, 'coverage.member_id')} member id (policy number) is empty", where=where,
                         fix="send the member id from the insurance card in IN1-36")
    code, path = scope.value(fmap.paths("coverage.relationship"))
    relationship = fmap.string("coverage.relationship_default")
    if code:
        relationship = fmap.codes("coverage.relationship_codes").get(code.upper(), "")
        if not relationship:
            raise InputError(f"{path.label} relationship code is not in the field map", where=where,
                             fix="add it to [coverage.relationship_codes] in <home>/mappings/ehr/hl7v2.toml")
    subscriber = None if relationship == SELF else _subscriber(scope, fmap, where)
    own_id = in_group(scope.group or [], fmap.paths("coverage.patient_member_id"))
    if relationship != SELF and own_id and own_id != member_id:
        # The payer knows this dependent by a member id of their own (IN2-61), so on the claim
        # they are the subscriber (837P TR3 2000C: only for a patient who "cannot be uniquely
        # identified to the payer using the subscriber's identifier").
        relationship, subscriber, member_id = SELF, None, own_id
    plan_type = scope.first(fmap.paths("coverage.plan_type")).upper()
    return Coverage(
        order=1,
        payer=Payer(payer_id, scope.first(fmap.paths("coverage.payer_name")) or payer_id,
                    fmap.codes("coverage.claim_filing_indicator").get(plan_type)),
        member_id=member_id,
        relationship=relationship,
        subscriber=subscriber,
        group_number=scope.first(fmap.paths("coverage.group_number")) or None,
        plan_name=scope.first(fmap.paths("coverage.plan_name")) or None,
    )


def _subscriber(scope: Scope, fmap: FieldMap, where: str) -> Person:
    family = scope.first(fmap.paths("coverage.subscriber.family_name"))
    if not family:
        raise InputError(f"{_labels(fmap, 'coverage.subscriber.family_name')} name of insured is empty, and the "
                         f"insured is not the patient", where=where,
                         fix="send the insured's name in IN1-16 (or the guarantor in GT1-3), or relationship SEL "
                             "in IN1-17 when the patient is the insured")
    return Person(
        name=PersonName(family, scope.first(fmap.paths("coverage.subscriber.given_name")) or None,
                        scope.first(fmap.paths("coverage.subscriber.middle_name")) or None),
        birth_date=_birth_date(scope, fmap, "coverage.subscriber.birth_date", where),
        gender=fmap.codes("patient.gender").get(scope.first(fmap.paths("coverage.subscriber.sex")).upper(), "U"),
        address=_address(scope, fmap, "coverage.subscriber.address"),
    )


def _labels(fmap: FieldMap, dotted: str) -> str:
    return "/".join(dict.fromkeys(p.label for p in fmap.paths(dotted))) or dotted
