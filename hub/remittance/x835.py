"""Reading an 835 (005010X221A1) remittance advice as a stream of events (domain reference 6).

    for event in read_835(path_or_bytes_or_binary_stream):
        PaymentHeader    once per ST/SE, before its claims: BPR, TRN, payer (1000A), payee (1000B)
        ClaimPayment     each 2100 loop as soon as it ends, with its 2110 lines and any balancing
                         problems (6.3); a claim that does not balance is still a ClaimPayment
        BadClaim         a malformed 2100 loop, quarantined; reading goes on at the next CLP
        PaymentTrailer   after the claims of the ST/SE: PLB, totals, transaction-level problems

One pass, claim by claim: memory stays flat however many claims a file holds.

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

import codecs
import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Callable, Iterable, Iterator

from bhhub.errors import InputError
from bhhub.x12.envelope import Delimiters
from bhhub.x12.tokens import ISA_LENGTH, delimiters_of

__all__ = ["Adjustment", "ServicePayment", "ClaimPayment", "BadClaim", "PaymentHeader",
           "ProviderAdjustment", "PaymentTrailer", "Event", "read_835"]

GROUP_CODES = frozenset({"CO", "OA", "PI", "PR"})  # 5010 has no CR (4010) and no OI (6.3)
REVERSAL = "22"
GUIDE = "005010X221"  # GS08 005010X221A1; the A1 addenda changed no structure this reader uses
# 2100 REF qualifiers that identify the member rather than the claim: never kept.
MEMBER_REFERENCES = frozenset({"1W", "SY", "IG", "28"})
CHUNK_SIZE = 1 << 18
ZERO = Decimal(0)
_WHITESPACE = " \t\r\n\ufeff"


@dataclass(frozen=True)
class Adjustment:
    """One CAS reason/amount pair. A positive amount reduces the payment."""

    group: str  # CO, OA, PI, PR
    reason: str  # CARC
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True)
class ServicePayment:
    """A 2110 service line."""

    procedure_qualifier: str  # SVC01-1 (HC, ...)
    procedure_code: str  # SVC01-2
    modifiers: tuple[str, ...]  # SVC01-3..6
    charge: Decimal  # SVC02
    paid: Decimal  # SVC03
    units_paid: Decimal | None  # SVC05; the guide's default of 1 when absent is left to the caller
    original_procedure_code: str | None  # SVC06-2, when the payer adjudicated another code
    original_modifiers: tuple[str, ...]
    units_billed: Decimal | None  # SVC07
    service_date: date | None  # DTM*472, or DTM*150 for a period
    service_date_end: date | None  # DTM*151
    line_control_number: str | None  # REF*6R, the 837's line item control number
    allowed: Decimal | None  # AMT*B6
    adjustments: tuple[Adjustment, ...]
    remarks: tuple[str, ...]  # LQ*HE RARCs
    segment_number: int  # of the SVC


@dataclass(frozen=True)
class ClaimPayment:
    """A 2100 claim payment: CLP and what belongs to it."""

    patient_control_number: str  # CLP01 = the 837's CLM01
    status_code: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal  # CLP05 (0 when empty)
    filing_indicator: str  # CLP06
    payer_claim_control_number: str  # CLP07 ("" when absent)
    facility_code: str  # CLP08
    frequency_code: str  # CLP09
    adjustments: tuple[Adjustment, ...]  # claim-level CAS
    services: tuple[ServicePayment, ...]
    remarks: tuple[str, ...]  # MOA03-07, MIA05, MIA20-24
    crossover_payer: str | None  # NM1*TT: the payer's name, else its id
    corrected_priority_payer: str | None  # NM1*PR: the payer's name, else its id
    rendering_provider_npi: str | None  # NM1*82 NM109 when NM108 is XX
    statement_start: date | None  # DTM*232
    statement_end: date | None  # DTM*233
    received_date: date | None  # DTM*050
    coverage_amount: Decimal | None  # AMT*AU
    references: tuple[tuple[str, str], ...]  # 2100 REF but member-identifying ones (see above)
    problems: tuple[str, ...]  # balancing and date problems; () when it balances
    segment_number: int  # of the CLP
    # Who the payer says the patient is, for matching only (never in messages or repr):
    patient_name: tuple[str, str] = field(default=("", ""), repr=False)  # NM1*QC NM103, NM104
    member_ids: tuple[str, ...] = field(default=(), repr=False)  # NM109 of NM1*QC, IL, 74 (not SSNs)

    @property
    def balanced(self) -> bool:
        return not self.problems

    @property
    def all_adjustments(self) -> tuple[Adjustment, ...]:
        """Claim-level adjustments, then every line's."""
        return self.adjustments + tuple(a for line in self.services for a in line.adjustments)


@dataclass(frozen=True)
class BadClaim:
    """A malformed 2100 loop: quarantined, the rest of the file goes on."""

    patient_control_number: str | None
    segment_number: int  # of the segment at fault
    loop: str  # "2100" or "2110"
    reason: str  # a plain sentence naming the segment and its number


@dataclass(frozen=True)
class PaymentHeader:
    """One per ST/SE, before its claims."""

    control_number: str  # ST02
    handling: str  # BPR01
    amount: Decimal  # BPR02
    credit_debit: str  # BPR03
    method: str  # BPR04
    payment_date: date | None  # BPR16
    trace_number: str  # TRN02
    trace_originator: str  # TRN03
    payer_name: str  # N1*PR N102
    payer_id: str  # REF*2U in 1000A, else N1*PR N104 (N103 XV), else TRN03
    payee_name: str  # N1*PE N102
    payee_id: str  # N1*PE N104
    payee_id_qualifier: str  # N1*PE N103: XX NPI, FI TIN, XV
    production_date: date | None  # DTM*405
    interchange_control_number: str  # ISA13
    segment_number: int  # of the ST


@dataclass(frozen=True)
class ProviderAdjustment:
    """One PLB reason/amount pair. A positive amount reduces the deposit (6.4)."""

    provider_id: str
    fiscal_period_end: date | None
    reason: str  # PLB03-1
    reference: str  # PLB03-2
    amount: Decimal


@dataclass(frozen=True)
class PaymentTrailer:
    """After the claims of one ST/SE."""

    control_number: str
    claims: int  # CLP segments in this transaction, quarantined ones included
    paid_total: Decimal  # sum of CLP04, quarantined claims' included when readable
    provider_adjustments: tuple[ProviderAdjustment, ...]
    problems: tuple[str, ...]  # BPR02 against CLP04 and PLB, SE01/SE02, unreadable PLB or dates


Event = PaymentHeader | ClaimPayment | BadClaim | PaymentTrailer


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


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while block := stream.read(CHUNK_SIZE):
        yield block


class _Malformed(Exception):
    """A segment of a claim that cannot be read; the claim becomes a BadClaim."""


def _texts(blocks: Iterator[bytes | str]) -> tuple[str, Iterator[str]]:
    """The first piece of text (through the ISA), and the rest of the text piece by piece."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(block: bytes | str) -> str:
        return block if isinstance(block, str) else decoder.decode(block)

    head = ""
    for block in blocks:
        head += decode(block)
        if len(head.lstrip(_WHITESPACE)) >= ISA_LENGTH:
            break

    def rest() -> Iterator[str]:
        for block in blocks:
            yield decode(block)
        yield decoder.decode(b"", final=True)

    return head.lstrip(_WHITESPACE), rest()


def _element_lists(texts: Iterable[str], delimiters: Delimiters) -> Iterator[list[str]]:
    """Each segment split into its elements (``[0]`` the id). Line breaks are not data in X12,
    so unless one is the terminator they are dropped wholesale, a chunk at a time."""
    terminator, separator = delimiters.segment, delimiters.element
    breaks = [c for c in "\r\n" if c != terminator]
    rest = ""
    for text in texts:
        for character in breaks:
            if character in text:
                text = text.replace(character, "")
        pieces = (rest + text).split(terminator)
        rest = pieces.pop()
        for piece in pieces:
            if not piece or piece[0] <= " " or piece[-1] <= " ":
                piece = piece.strip(_WHITESPACE)
                if not piece:
                    continue
            yield piece.split(separator)
    rest = rest.strip(_WHITESPACE)
    if rest:
        yield rest.split(separator)


# Values repeat a great deal in an 835 (charges, fee-schedule amounts, service dates): a small
# cache spares most Decimal and date constructions. Both are immutable; the caches are bounded.
_AMOUNTS: dict[str, Decimal] = {}
_DATES: dict[str, date] = {}
_CACHE_LIMIT = 8192


def _amount(text: str, name: str) -> Decimal:
    value = _AMOUNTS.get(text)
    if value is None:
        if not text:
            raise _Malformed(f"{name} is missing")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise _Malformed(f"{name} is not a number") from None
        # Decimal() also takes "NaN", "1e3", "1_000" and spaces; an X12 decimal (R) is none of them.
        if not (value.is_finite() and text.isascii() and text.lstrip("-").replace(".", "", 1).isdigit()):
            raise _Malformed(f"{name} is not a number")
        if len(_AMOUNTS) >= _CACHE_LIMIT:
            _AMOUNTS.clear()
        _AMOUNTS[text] = value
    return value


def _date(text: str) -> date | None:
    """CCYYMMDD as a date; None when it is not one."""
    value = _DATES.get(text)
    if value is None:
        if len(text) != 8 or not text.isdigit():
            return None
        try:
            value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
        if len(_DATES) >= _CACHE_LIMIT:
            _DATES.clear()
        _DATES[text] = value
    return value


def _element(el: list[str], position: int) -> str:
    return el[position] if position < len(el) else ""


def _adjustments(el: list[str]) -> list[Adjustment]:
    """CAS: the group code, then up to six (reason, amount, quantity) triplets."""
    group = el[1] if len(el) > 1 else ""
    if group not in GROUP_CODES:
        raise _Malformed(f"CAS01 group code {group or '(empty)'} is not one of CO, OA, PI, PR")
    count = len(el)
    if count == 4 and el[2]:  # by far the commonest: one reason and its amount
        return [_new_adjustment(group, el[2], _amount(el[3], "CAS03"), None)]
    if count > 20:
        raise _Malformed(f"it has {count - 1} elements; a CAS has at most 19 (six adjustments)")
    found = []
    for position in range(2, count, 3):
        reason = el[position]
        amount = el[position + 1] if position + 1 < count else ""
        quantity = el[position + 2] if position + 2 < count else ""
        if not reason:
            if amount or quantity:
                raise _Malformed(f"CAS{position + 1:02d} has an amount without a reason code in CAS{position:02d}")
            continue
        if not amount:
            raise _Malformed(f"CAS{position:02d} reason {reason} has no amount in CAS{position + 1:02d}")
        found.append(_new_adjustment(group, reason, _amount(amount, _CAS_NAMES[position + 1]),
                                     _amount(quantity, _CAS_NAMES[position + 2]) if quantity else None))
    if not found:
        raise _Malformed("it has no adjustment reason and amount")
    return found


_CAS_NAMES = tuple(f"CAS{position:02d}" for position in range(21))


def _constructor(cls: type) -> Callable[..., object]:
    """A maker of ``cls`` instances from values in field order that skips the frozen ``__init__``.

    Why: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
    made object building most of the reader's time (a 22-field ClaimPayment: 4 us against 1.7 us).
    The instances are the same: frozen, equal and hashed by their fields.
    """
    names = tuple(cls.__dataclass_fields__)
    new = object.__new__

    def make(*values: object) -> object:
        instance = new(cls)
        instance.__dict__.update(zip(names, values))
        return instance

    return make


_new_adjustment = _constructor(Adjustment)
_new_service = _constructor(ServicePayment)
_new_claim = _constructor(ClaimPayment)


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


def _chain(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest


class _Transaction:
    """One ST/SE: its header as read so far, then its running totals (never its claims)."""

    def __init__(self, st: list[str], number: int, interchange: str, component: str):
        self.st_number = number
        self.component = component
        self.control = _element(st, 2)
        self.interchange = interchange
        self.header_sent = False
        self.bpr: list[str] | None = None
        self.bpr_number = 0
        self.trn: list[str] | None = None
        self.party = ""
        self.payer_name = self.payer_xv = self.payer_ref = ""
        self.payee_name = self.payee_id = self.payee_qualifier = ""
        self.production_date: date | None = None
        self.amount = ZERO
        self.claims = 0
        self.paid_total = ZERO
        self.unreadable_paid: list[int] = []  # CLP numbers whose CLP04 could not be read
        self.plb: list[ProviderAdjustment] = []
        self.problems: list[str] = []

    def read_header(self, el: list[str], number: int) -> bool:
        """Take a header (table 1, 1000A, 1000B) segment; False when it is not one."""
        sid = el[0]
        if sid == "BPR":
            self.bpr, self.bpr_number = el, number
        elif sid == "TRN":
            if self.trn is None:
                self.trn = el
        elif sid == "N1":
            self.party = _element(el, 1)
            if self.party == "PR":
                self.payer_name = _element(el, 2)
                if _element(el, 3) == "XV":
                    self.payer_xv = _element(el, 4)
            elif self.party == "PE":
                self.payee_name = _element(el, 2)
                self.payee_qualifier = _element(el, 3)
                self.payee_id = _element(el, 4)
        elif sid == "REF":
            if self.party == "PR" and _element(el, 1) == "2U":
                self.payer_ref = _element(el, 2)
        elif sid == "DTM":
            if _element(el, 1) == "405":
                self.production_date = _date(_element(el, 2))
                if self.production_date is None:
                    self.problems.append(f"DTM*405 (segment {number}), the production date, is not a valid date")
        elif sid not in _HEADER_OTHERS:
            return False
        return True

    def header(self) -> PaymentHeader:
        self.header_sent = True
        where = f"the 835 that begins at segment {self.st_number}"
        if self.bpr is None:
            raise InputError(f"{where} has no BPR (financial information) before its claims")
        if self.trn is None:
            raise InputError(f"{where} has no TRN (reassociation trace number) before its claims")
        bpr = self.bpr
        try:
            self.amount = _amount(_element(bpr, 2), "BPR02")
        except _Malformed as problem:
            raise InputError(f"BPR (segment {self.bpr_number}) of {where}: {problem}") from None
        payment_date = None
        if _element(bpr, 16):
            payment_date = _date(bpr[16])
            if payment_date is None:
                self.problems.append(f"BPR16 (segment {self.bpr_number}), the payment date, is not a valid date")
        originator = _element(self.trn, 3)
        return PaymentHeader(
            control_number=self.control, handling=_element(bpr, 1), amount=self.amount,
            credit_debit=_element(bpr, 3), method=_element(bpr, 4), payment_date=payment_date,
            trace_number=_element(self.trn, 2), trace_originator=originator, payer_name=self.payer_name,
            payer_id=self.payer_ref or self.payer_xv or originator, payee_name=self.payee_name,
            payee_id=self.payee_id, payee_id_qualifier=self.payee_qualifier,
            production_date=self.production_date, interchange_control_number=self.interchange,
            segment_number=self.st_number,
        )

    def close_claim(self, event: ClaimPayment | BadClaim, clp: list[str], number: int) -> ClaimPayment | BadClaim:
        """Count the claim's CLP04 in the transaction's total; the event itself, unchanged."""
        if isinstance(event, ClaimPayment):
            self.paid_total += event.paid
        elif clp[0] == "CLP":  # a quarantined claim's CLP04 still counts toward BPR02 when readable
            try:
                self.paid_total += _amount(_element(clp, 4), "CLP04")
            except _Malformed:
                self.unreadable_paid.append(number)
        return event

    def provider_adjustments(self, el: list[str], number: int) -> None:
        """PLB: provider, fiscal period end, then up to six (reason:reference, amount) pairs."""
        provider = _element(el, 1)
        period = _date(_element(el, 2)) if _element(el, 2) else None
        if _element(el, 2) and period is None:
            self.problems.append(f"PLB02 (segment {number}), the fiscal period end, is not a valid date")
        for position in range(3, len(el), 2):
            composite, amount_text = el[position], _element(el, position + 1)
            if not composite and not amount_text:
                continue
            reason, _, reference = composite.partition(self.component)
            try:
                if not reason:
                    raise _Malformed(f"PLB{position:02d} has no adjustment reason code")
                amount = _amount(amount_text, f"PLB{position + 1:02d}")
            except _Malformed as problem:
                self.problems.append(f"PLB (segment {number}): {problem}; that adjustment is left out")
                continue
            self.plb.append(ProviderAdjustment(provider, period, reason, reference, amount))

    def trailer(self, se: list[str], number: int) -> PaymentTrailer:
        problems = self.problems
        counted = number - self.st_number + 1
        if _element(se, 1) != str(counted):
            problems.append(f"SE01 (segment {number}) counts {_element(se, 1) or 'no'} segments; "
                            f"the transaction has {counted}")
        if _element(se, 2) != self.control:
            problems.append(f"SE02 (segment {number}) does not repeat ST02 {self.control}")
        adjusted = ZERO
        for adjustment in self.plb:
            adjusted += adjustment.amount
        if self.unreadable_paid:
            problems.append(f"BPR02 cannot be checked: the paid amount of the claim(s) at segment(s) "
                            f"{', '.join(map(str, self.unreadable_paid))} could not be read")
        elif self.paid_total - adjusted != self.amount:
            problems.append(f"the payment {self.amount} (BPR02) is not the claims' {self.paid_total} paid "
                            f"less {adjusted} of provider adjustments (PLB): {self.paid_total - adjusted}")
        return PaymentTrailer(self.control, self.claims, self.paid_total, tuple(self.plb), tuple(problems))


# Header segments read past: addresses, contacts, the 1000B remittance delivery method.
_HEADER_OTHERS = frozenset({"N3", "N4", "PER", "RDM", "CUR"})
