"""Reading an 835 (005010X221A1) remittance advice as a stream of events (domain reference 6).

    for event in read_835(path_or_bytes_or_binary_stream):
        PaymentHeader    once per ST/SE, before its claims: BPR, TRN, payer (1000A), payee (1000B)
        ClaimPayment     each 2100 loop as soon as it ends, with its 2110 lines and any balancing
                         problems (6.3); a claim that does not balance is still a ClaimPayment
        BadClaim         a malformed 2100 loop, quarantined; reading goes on at the next CLP
        PaymentTrailer   after the claims of the ST/SE: PLB, totals, transaction-level problems

One pass, claim by claim: memory stays flat however many claims a file holds. This module is the
pass and the claim loops (2100/2110, with each line's and claim's balancing); the event types are
``x835_events``'s, one ST/SE's header, PLB and trailer checks (SE, BPR02) ``x835_transaction``'s,
and the bytes-to-elements layer with amounts, dates and CAS ``x835_elements``'s.

What raises ``InputError`` (the posting code stores what came before and reports the rest as
unread): input that is not an X12 interchange, a transaction that is not an 835, a functional
group of another guide (e.g. 4010's 004010X091A1), a payment header without BPR or TRN or with
an unreadable BPR02, and a file cut short. A file cut short yields every claim known to be whole
(one followed by the next CLP, LX, PLB or SE), then raises naming the segment where it stopped.

Choices the guide leaves open:
  - Balancing (6.3) is checked with exact decimals: each line, each claim, CLP05 against the PR
    adjustments (an empty CLP05 is 0; reversals, CLP02 22, are exempt) and BPR02 against the
    claims and the PLB. A claim that does not balance is still a ClaimPayment, with problems.
  - An invalid date is a problem on its claim (or on the trailer for BPR16, DTM*405, PLB02);
    a malformed segment (a missing CLP01/CLP02, an amount that is not a number, a CAS reason
    without an amount, an SVC without a procedure code) quarantines its claim as a BadClaim.
    Segments the reader has no use for are skipped.
  - 2100 REF segments are kept as (qualifier, value) except those that identify the member:
    1W member id, SY social security number, IG policy number, 28 employee id. EA (the
    provider's own record or account number) and 1L (group number) are kept for matching.
  - The patient's name (NM1*QC) and the member ids of NM1*QC, IL and 74 are read only so that
    posting can check a claim matched by anything but its CLP01 is this patient's (kept out of
    ``repr``); an SSN (NM108 34) is never kept. Messages name segments, numbers, loops, codes and
    amounts, never element values that could identify a patient.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import BinaryIO, Iterator

from bhhub.errors import InputError
from bhhub.remittance.x835_elements import (
    _DATES,
    CHUNK_SIZE,
    ZERO,
    _adjustments,
    _amount,
    _blocks,
    _chain,
    _date,
    _element,
    _element_lists,
    _Malformed,
    _texts,
)
from bhhub.remittance.x835_events import (
    Adjustment,
    BadClaim,
    ClaimPayment,
    Event,
    ServicePayment,
    _new_claim,
    _new_service,
)
from bhhub.remittance.x835_transaction import _Transaction
from bhhub.x12.tokens import ISA_LENGTH, delimiters_of

__all__ = ["read_835"]

REVERSAL = "22"
GUIDE = "005010X221"  # GS08 005010X221A1; the A1 addenda changed no structure this reader uses
# 2100 REF qualifiers that identify the member rather than the claim: never kept.
MEMBER_REFERENCES = frozenset({"1W", "SY", "IG", "28"})


def read_835(source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO) -> Iterator[Event]:
    """The events of an 835: from bytes, a path (``str`` or ``Path``), or a binary stream.

    Events come out as each loop ends; memory does not grow with the number of claims.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        yield from _Reader(view[i:i + CHUNK_SIZE] for i in range(0, len(view), CHUNK_SIZE)).events()
    elif isinstance(source, (str, os.PathLike)):
        try:
            handle = open(source, "rb")
        except OSError as exc:
            raise InputError(f"cannot open the 835: {exc.strerror}", where=os.fspath(source)) from exc
        with handle:
            yield from _Reader(_blocks(handle)).events()
    else:
        yield from _Reader(_blocks(source)).events()


class _Reader:
    """The state of one pass over an interchange. ``events()`` is the pass."""

    def __init__(self, blocks: Iterator[bytes | str]):
        self.blocks = blocks
        self.interchange = ""
        self.component = ":"

    # -- the pass -------------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        head, rest = _texts(self.blocks)
        if head.startswith("ISA") and len(head) >= ISA_LENGTH:
            version = head[:ISA_LENGTH].split(head[3])[12:13]
            if version != ["00501"]:  # 4010's ISA11 is not a separator, so say so before reading it
                raise InputError(f"the ISA declares version {''.join(version) or '(none)'}; this reader reads "
                                 f"005010X221A1 835s (ISA12 00501)")
        delimiters = delimiters_of(head)
        self.component = delimiters.component
        ends_claim = _ENDS_CLAIM
        claim: list[list[str]] | None = None  # the open 2100 loop, CLP first (or an orphan run)
        claim_first = 0
        transaction: _Transaction | None = None
        interchange_closed = False
        number = 0
        sid = ""
        for el in _element_lists(_chain(head, rest), delimiters):
            number += 1
            sid = el[0]
            if claim is not None:
                if sid not in ends_claim:
                    claim.append(el)
                    continue
                if sid not in _FOLLOWS_CLAIM:  # ST, GS, GE, IEA, ISA: the transaction lost its SE
                    raise _no_trailer(transaction, number, sid)
                yield transaction.close_claim(self._claim(claim, claim_first), claim[0], claim_first)
                claim = None
            if transaction is None:
                if sid == "ST":
                    if _element(el, 1) != "835":
                        raise InputError(f"ST (segment {number}) begins a {_element(el, 1) or '(blank)'} "
                                         f"transaction set, not an 835")
                    transaction = _Transaction(el, number, self.interchange, self.component)
                elif sid == "ISA":
                    self.interchange = _element(el, 13).strip()
                    interchange_closed = False
                elif sid == "GS":
                    version = _element(el, 8)
                    if version and not version.startswith(GUIDE):
                        raise InputError(f"GS (segment {number}) declares {version}; this reader reads "
                                         f"005010X221A1 835s")
                elif sid == "IEA":
                    interchange_closed = True
                elif sid in _CLAIM_SEGMENTS or sid == "CLP":
                    raise InputError(f"{sid} (segment {number}) is outside any transaction (ST/SE)")
                continue
            if sid == "CLP":
                if not transaction.header_sent:
                    yield transaction.header()
                transaction.claims += 1
                claim, claim_first = [el], number
            elif sid == "SE":
                if not transaction.header_sent:
                    yield transaction.header()
                yield transaction.trailer(el, number)
                transaction = None
            elif sid == "PLB":
                if not transaction.header_sent:
                    yield transaction.header()
                transaction.provider_adjustments(el, number)
            elif sid == "LX" or sid == "TS3" or sid == "TS2":
                if not transaction.header_sent:
                    yield transaction.header()
            elif not transaction.header_sent and transaction.read_header(el, number):
                continue
            elif sid in _CLAIM_SEGMENTS:  # a claim's segment with no CLP before it
                if not transaction.header_sent:
                    yield transaction.header()
                claim, claim_first = [el], number
            elif sid in _ENVELOPE:
                raise _no_trailer(transaction, number, sid)
        if transaction is not None:
            raise _no_trailer(transaction, number, None, claim, claim_first)
        if not interchange_closed:
            raise InputError(f"the file ends at segment {number} ({sid}) without an IEA: the interchange is "
                             f"cut short after its last complete transaction")

    # -- one claim ------------------------------------------------------------------------------

    def _claim(self, segs: list[list[str]], first: int) -> ClaimPayment | BadClaim:
        """The 2100 loop whose segments (CLP first) are ``segs``, the CLP being segment ``first``."""
        clp = segs[0]
        if clp[0] != "CLP":
            loop = "2110" if clp[0] in ("SVC", "LQ") else "2100"
            return BadClaim(None, first, loop, f"{clp[0]} (segment {first}) comes before any CLP: "
                                               f"loop {loop} without its claim")
        if len(clp) < 10:
            clp = clp + _BLANKS[len(clp):10]
        pcn = clp[1]
        index = 0
        line = None  # the open 2110 loop's SVC, read
        try:
            if not pcn:
                raise _Malformed("CLP01, the patient control number, is missing")
            status = clp[2]
            if not status:
                raise _Malformed("CLP02, the claim status code, is missing")
            charge = _amount(clp[3], "CLP03")
            paid = _amount(clp[4], "CLP04")
            patient = _amount(clp[5], "CLP05") if clp[5] else ZERO
            adjustments: list[Adjustment] = []
            services: list[ServicePayment] = []
            remarks: list[str] = []
            references: list[tuple[str, str]] = []
            problems: list[str] = []
            crossover = corrected = rendering = None
            patient_name: tuple[str, str] = ("", "")
            member_ids: list[str] = []
            statement_start = statement_end = received = coverage = None
            line_adjustments: list[Adjustment] = []
            line_remarks: list[str] = []
            line_number = 0
            line_date = line_end = control = allowed = None
            # Elements the guide requires are indexed directly: a segment too short for them
            # raises IndexError, which quarantines the claim like any malformed segment.
            for index in range(1, len(segs)):
                el = segs[index]
                sid = el[0]
                if sid == "CAS":
                    if line is None:
                        adjustments += _adjustments(el)
                    else:
                        line_adjustments += _adjustments(el)
                elif sid == "DTM":
                    qualifier = el[1]
                    value = _DATES.get(el[2]) or _date(el[2])
                    if value is None:
                        problems.append(f"DTM*{qualifier} (segment {first + index}) is not a valid date (CCYYMMDD)")
                    elif line is not None:
                        if qualifier == "472" or qualifier == "150":
                            line_date = value
                        elif qualifier == "151":
                            line_end = value
                    elif qualifier == "232":
                        statement_start = value
                    elif qualifier == "233":
                        statement_end = value
                    elif qualifier == "050":
                        received = value
                elif sid == "SVC":
                    if line is not None:
                        services.append(_service(line, line_number, line_adjustments, line_date, line_end,
                                                 control, allowed, line_remarks, len(services) + 1, problems))
                    line, line_number = (), first + index  # a 2110 loop from here, even if its SVC is bad
                    line = self._svc(el)
                    line_adjustments, line_remarks = [], []
                    line_date = line_end = control = allowed = None
                elif sid == "REF":
                    if line is not None:
                        if el[1] == "6R":
                            control = el[2]
                    elif el[1] not in MEMBER_REFERENCES:
                        references.append((el[1], el[2]))
                elif sid == "AMT":
                    if line is not None:
                        if el[1] == "B6":
                            allowed = _amount(el[2], "AMT02")
                    elif el[1] == "AU":
                        coverage = _amount(el[2], "AMT02")
                elif sid == "LQ":
                    if line is None:
                        raise _Malformed("LQ belongs to a service line (2110) but comes before any SVC")
                    if el[1] == "HE" and el[2]:
                        line_remarks.append(el[2])
                elif sid == "NM1":
                    entity = el[1]
                    if entity == "82":
                        if _element(el, 8) == "XX":
                            rendering = _element(el, 9) or None
                    elif entity == "TT":
                        crossover = _element(el, 3) or _element(el, 9) or None
                    elif entity == "PR":
                        corrected = _element(el, 3) or _element(el, 9) or None
                    elif entity in _PATIENT_ENTITIES:
                        if entity == "QC":
                            patient_name = (_element(el, 3), _element(el, 4))
                        if _element(el, 9) and _element(el, 8) != "34":
                            member_ids.append(_element(el, 9))
                elif sid == "MOA":
                    remarks.extend(code for code in el[3:8] if code)
                elif sid == "MIA":
                    remarks.extend(code for code in (*el[5:6], *el[20:25]) if code)
            if line is not None:
                services.append(_service(line, line_number, line_adjustments, line_date, line_end, control,
                                         allowed, line_remarks, len(services) + 1, problems))
        except (_Malformed, IndexError) as problem:
            number = first + index
            loop = "2110" if line is not None else "2100"
            if isinstance(problem, IndexError):
                problem = "it has fewer elements than the guide requires"
            return BadClaim(pcn or None, number, loop, f"{segs[index][0]} (segment {number}) in loop {loop} "
                                                       f"of the claim at segment {first}: {problem}")

        adjusted = patient_share = ZERO
        for adjustment in adjustments:
            adjusted += adjustment.amount
            if adjustment.group == "PR":
                patient_share += adjustment.amount
        for service in services:
            for adjustment in service.adjustments:
                adjusted += adjustment.amount
                if adjustment.group == "PR":
                    patient_share += adjustment.amount
        if charge - adjusted != paid:
            problems.append(f"claim charge {charge} (CLP03) less adjustments {adjusted} is {charge - adjusted}, "
                            f"not the {paid} paid (CLP04)")
        if status != REVERSAL and patient != patient_share:
            problems.append(f"patient responsibility {patient} (CLP05) is not the {patient_share} of "
                            f"PR adjustments")
        return _new_claim(
            pcn, status, charge, paid, patient, clp[6], clp[7], clp[8], clp[9], tuple(adjustments),
            tuple(services), tuple(remarks), crossover, corrected, rendering, statement_start, statement_end,
            received, coverage, tuple(references), tuple(problems), first, patient_name, tuple(member_ids),
        )

    def _svc(self, el: list[str]) -> tuple:
        """SVC read: (qualifier, code, modifiers, charge, paid, units paid, original code,
        original modifiers, units billed)."""
        component = self.component
        procedure = el[1].split(component)
        if len(procedure) < 2 or not procedure[0] or not procedure[1]:
            raise _Malformed(f"SVC01 lacks the procedure qualifier or code (its components separated by "
                             f"{component!r}, as ISA16 announces)")
        if len(el) < 8:
            el = el + _BLANKS[len(el):8]
        modifiers = tuple(m for m in procedure[2:6] if m) if len(procedure) > 2 else ()
        original, original_modifiers = None, ()
        if el[6]:
            composite = el[6].split(component)
            original = composite[1] or None if len(composite) > 1 else None
            original_modifiers = tuple(m for m in composite[2:6] if m)
        return (procedure[0], procedure[1], modifiers, _amount(el[2], "SVC02"), _amount(el[3], "SVC03"),
                _amount(el[5], "SVC05") if el[5] else None, original, original_modifiers,
                _amount(el[7], "SVC07") if el[7] else None)


def _service(line: tuple, number: int, adjustments: list[Adjustment], service_date: date | None,
             service_end: date | None, control: str | None, allowed: Decimal | None, remarks: list[str],
             position: int, problems: list[str]) -> ServicePayment:
    """The 2110 loop, checked: SVC02 less the line's CAS must be SVC03 (6.3)."""
    qualifier, code, modifiers, charge, paid, units, original, original_modifiers, billed = line
    adjusted = ZERO
    for adjustment in adjustments:
        adjusted += adjustment.amount
    if charge - adjusted != paid:
        problems.append(f"line {position} (SVC at segment {number}): charge {charge} less adjustments "
                        f"{adjusted} is {charge - adjusted}, not the {paid} paid (SVC03)")
    return _new_service(qualifier, code, modifiers, charge, paid, units, original, original_modifiers, billed,
                        service_date, service_end, control, allowed, tuple(adjustments), tuple(remarks), number)


_BLANKS = [""] * 10
# NM1 entities of the 2100 loop that say who the patient is: patient, insured, corrected insured.
_PATIENT_ENTITIES = frozenset({"QC", "IL", "74"})


# Segments that end an open 2100 loop: the next claim or header, the trailer, or the envelope.
_FOLLOWS_CLAIM = frozenset({"CLP", "LX", "TS3", "TS2", "PLB", "SE"})
_ENVELOPE = frozenset({"ST", "GS", "GE", "IEA", "ISA"})
_ENDS_CLAIM = _FOLLOWS_CLAIM | _ENVELOPE
# Segments of a 2100/2110 loop that have no business before the first CLP.
_CLAIM_SEGMENTS = frozenset({"SVC", "CAS", "MOA", "MIA", "NM1", "LQ", "AMT", "QTY", "DTM", "REF"})


def _no_trailer(transaction: _Transaction, number: int, sid: str | None,
                claim: list[list[str]] | None = None, claim_first: int = 0) -> InputError:
    """The error for a transaction that stops before its SE: the file cut short, or a new envelope."""
    before = f"before the SE of the 835 that began at segment {transaction.st_number}"
    if sid is not None:
        return InputError(f"{sid} (segment {number}) comes {before}: that transaction is incomplete")
    if claim is None:
        return InputError(f"the file ends at segment {number}, {before}: the file is cut short")
    loop = "2110" if any(el[0] == "SVC" for el in claim) else "2100"
    return InputError(f"the file ends at segment {number} inside loop {loop} of the claim at segment "
                      f"{claim_first}, {before}: the file is cut short; the claims before segment "
                      f"{claim_first} were read")
