"""Reading an uploaded 270 (005010X279A1) or 276 (005010X212) into the questions it asks.

    upload = read_inquiries(content)          # InputError when there is no readable ISA
    for transaction in upload.transactions:   # ST/SE
        for question in transaction.questions:   # a 2000C/D inquiry (270) or a 2200D/E claim (276)
            question.trace_number, question.member_id, question.service_types ...

The sandbox's own reader, as ``reader`` is for the 837P: it does not use the hub's writers or
readers, so a mistake in one is not hidden by the same mistake in the other. It is tolerant (a
missing value is ""), and it reports the structural faults a 999 names: SE missing, SE02 not
ST02, a wrong SE01 count, an inquiry without its TRN or NM1*IL. Names are kept only to echo them
in the answer, and are left out of ``repr`` (no PHI in logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bhhub.x12.tokens import Segment, segments

from bhhub.plugins.clearinghouse.sandbox.reader import Group, Interchange, Transaction, _group, _interchange, _with_trailer
from bhhub.plugins.clearinghouse.sandbox.syntax import Findings, GroupFindings, SegmentError, TransactionFindings

ELIGIBILITY_GUIDE = "005010X279A1"
STATUS_GUIDE = "005010X212"
FUNCTIONAL_IDS = {"HS": ELIGIBILITY_GUIDE, "HR": STATUS_GUIDE}  # GS01 -> the guide GS08 must name


@dataclass(frozen=True)
class Party:
    """An NM1 to echo back: entity, type (1 person, 2 organisation), name, id."""

    entity: str  # NM101
    entity_type: str = "2"  # NM102
    name: str = field(default="", repr=False)  # NM103: last or organisation name
    first_name: str = field(default="", repr=False)  # NM104
    id_qualifier: str = ""  # NM108
    id: str = field(default="", repr=False)  # NM109 (a member id is PHI-adjacent: not in repr)


@dataclass(frozen=True)
class Question:
    """One 270 inquiry (2000C, with 2000D for a dependent) or one 276 claim (2200D/E)."""

    position: int  # the HL of the patient's level, counted from ST = 1
    payer: Party  # 2100A NM1*PR
    receiver: Party | None  # 2100B: NM1*1P (270) or NM1*41 (276)
    provider: Party | None  # 276 2100C NM1*1P
    subscriber: Party  # NM1*IL
    dependent: Party | None  # 2100D NM1*03 (270) or 2100E NM1*QC (276)
    trace_number: str = ""  # TRN02
    trace_originator: str = ""  # TRN03
    service_types: tuple[str, ...] = ()  # 270 EQ01s
    service_date: date | None = None  # 270 DTP*291
    patient_control_number: str = ""  # 276 REF*EJ
    payer_claim_control_number: str = ""  # 276 REF*1K
    total_charge: str = ""  # 276 AMT*T3, as sent
    service_period: tuple[str, str] = ("", "")  # 276 DTP*472 (qualifier, value), as sent

    @property
    def member_id(self) -> str:
        return self.subscriber.id


@dataclass(frozen=True)
class InquiryTransaction:
    control_number: str  # ST02
    set_id: str  # ST01: 270 or 276
    guide: str  # ST03
    reference: str  # BHT03, echoed in the answer's BHT03
    questions: tuple[Question, ...]
    faults: tuple[SegmentError, ...]  # what the 999 reports in IK3
    codes: tuple[str, ...]  # IK502: 2 SE missing, 3 ST02/SE02 differ, 4 SE01 wrong, 5 segment errors

    @property
    def accepted(self) -> bool:
        return not self.codes


@dataclass(frozen=True)
class InquiryUpload:
    envelope: Interchange
    groups: tuple[Group, ...]  # the shape ``writers.write_999`` acknowledges
    transactions: tuple[InquiryTransaction, ...]
    ends_with_iea: bool

    def findings(self) -> Findings | None:
        """The structural faults as the 999 writer takes them; None when there are none."""
        if all(t.accepted for t in self.transactions):
            return None
        by_number = {t.control_number: t for t in self.transactions}
        groups = tuple(GroupFindings(g.control_number, (), tuple(
            TransactionFindings(t.control_number, by_number[t.control_number].accepted,
                                by_number[t.control_number].codes, by_number[t.control_number].faults)
            for t in g.transactions)) for g in self.groups)
        return Findings((), groups, sum(len(t.codes) for t in self.transactions))


def read_inquiries(content: bytes) -> InquiryUpload:
    """Every group and transaction of a 270 or 276 upload; ``InputError`` without a readable ISA."""
    all_segments = iter(segments(content))
    envelope = _interchange(next(all_segments))
    groups: list[Group] = []
    found: list[InquiryTransaction] = []
    group_header: Segment | None = None
    group_transactions: list[Transaction] = []
    reader: _Walker | None = None
    last_id = "ISA"
    for segment in all_segments:
        last_id = segment.id
        if segment.id == "GS":
            group_header, group_transactions = segment, []
        elif segment.id == "ST":
            reader = _Walker(segment)
        elif segment.id == "SE" and reader is not None:
            transaction, inquiry = reader.finish(segment)
            group_transactions.append(transaction)
            found.append(inquiry)
            reader = None
        elif segment.id == "GE" and group_header is not None:
            groups.append(_group(group_header, group_transactions, segment[1]))
            group_header = None
        elif segment.id == "IEA":
            envelope = _with_trailer(envelope, segment)
        elif reader is not None:
            reader.add(segment)
    if reader is not None:
        transaction, inquiry = reader.finish(None)
        group_transactions.append(transaction)
        found.append(inquiry)
    if group_header is not None:
        groups.append(_group(group_header, group_transactions, None))
    return InquiryUpload(envelope, tuple(groups), tuple(found), ends_with_iea=last_id == "IEA")


class _Walker:
    """One ST/SE: the HL levels (20 payer, 21 receiver, 19 provider, 22 subscriber, 23 dependent)
    and the questions under them."""

    def __init__(self, st: Segment):
        self.st = st
        self.count = 1
        self.reference = ""
        self.level = ""
        self.level_position = 0
        self.parties: dict[str, Party] = {}  # level code -> its NM1
        self.questions: list[dict] = []
        self.current: dict | None = None  # the question being read
        self.faults: list[SegmentError] = []
        self.in_line = False  # 276: inside a 2210 service line (its DTP*472 is the line's)
        self.has_children = False  # HL04 of the current level

    def add(self, segment: Segment) -> None:
        self.count += 1
        position = segment.number - self.st.number + 1
        sid = segment.id
        if sid == "BHT":
            self.reference = segment[3]
        elif sid == "HL":
            self._close_question()
            self.level, self.level_position, self.in_line = segment[3], position, False
            self.has_children = segment[4] == "1"
            self.parties.pop("23", None)
            if self.level == "22":
                self.parties.pop("22", None)
            if self.st[1] == "270" and self.level in ("22", "23"):
                self._open_question(position)
        elif sid == "NM1":
            self.parties[self.level] = Party(segment[1], segment[2] or "2", segment[3], segment[4], segment[8],
                                             segment[9])
        elif sid == "TRN" and self.level in ("22", "23"):
            if self.st[1] == "276":
                self._close_question()
                self._open_question(self.level_position)
            self.current.update(trace_number=segment[2], trace_originator=segment[3])
        elif self.current is None:
            return
        elif sid == "EQ":
            self.current["service_types"].append(segment[1])
        elif sid == "DTP" and segment[1] == "291" and segment[2] == "D8":
            self.current["service_date"] = _day(segment[3])
        elif sid == "REF" and segment[1] in ("EJ", "1K"):
            key = "patient_control_number" if segment[1] == "EJ" else "payer_claim_control_number"
            self.current[key] = segment[2]
        elif sid == "AMT" and segment[1] == "T3":
            self.current["total_charge"] = segment[2]
        elif sid == "SVC":
            self.in_line = True
        elif sid == "DTP" and segment[1] == "472" and not self.in_line:
            self.current["service_period"] = (segment[2], segment[3])

    def _open_question(self, position: int) -> None:
        self.current = {"position": position, "service_types": []}

    def _close_question(self) -> None:
        if self.current is None:
            return
        question, self.current = self.current, None
        is_270 = self.st[1] == "270"
        if is_270 and self.level == "22" and self.has_children and not question.get("trace_number"):
            return  # a subscriber whose dependent is the one asked about (2000D follows)
        if not question.get("trace_number"):
            self.faults.append(SegmentError("TRN", question["position"], "2000" + _letter(self.level), ("3",), ()))
            return
        subscriber = self.parties.get("22")
        if subscriber is None or subscriber.entity != "IL":
            self.faults.append(SegmentError("NM1", question["position"], "2100C" if is_270 else "2100D", ("3",), ()))
            return
        self.questions.append({
            **question, "payer": self.parties.get("20", Party("PR")),
            "receiver": self.parties.get("21"), "provider": self.parties.get("19"),
            "subscriber": subscriber, "dependent": self.parties.get("23") if self.level == "23" else None,
            "service_types": tuple(dict.fromkeys(question["service_types"])),
        })

    def finish(self, se: Segment | None) -> tuple[Transaction, InquiryTransaction]:
        self._close_question()
        count = self.count + (1 if se is not None else 0)
        codes: list[str] = []
        if se is None:
            codes.append("2")  # transaction set trailer missing
        else:
            if se[2] != self.st[2]:
                codes.append("3")  # ST02 and SE02 differ
            if se[1] != str(count):
                codes.append("4")  # number of included segments does not match
        if self.faults and "5" not in codes:
            codes.append("5")  # one or more segments in error
        questions = tuple(Question(**q) for q in self.questions)
        inquiry = InquiryTransaction(self.st[2], self.st[1], self.st[3], self.reference, questions,
                                     tuple(self.faults), tuple(codes))
        # The 837P reader's shape, which the 999 writer acknowledges; no claims in an inquiry.
        transaction = Transaction(self.st[2], self.st[1], self.st[3], self.reference, "", "", "2", (), count)
        return transaction, inquiry


def _letter(level: str) -> str:
    return {"20": "A", "21": "B", "19": "C", "22": "C", "23": "D"}.get(level, "")


def _day(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None

