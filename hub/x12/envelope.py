"""The settings around the claims of an 837P: interchange (ISA/GS), submitter and receiver.

A clearinghouse assigns the ids; ``bhhub.runtime.config`` reads them from ``bhhub.toml``. Control numbers
are not settings: they come from persisted counters, one set per file (domain reference 5.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from bhhub.errors import ConfigError
# Delimiters live in their own module so the segment writer can use them without this one, which
# writes ISA/GS through it; still importable from here, where the 837P's writers look for them.
from bhhub.x12.delimiters import Delimiters as Delimiters
from bhhub.x12.segments import SegmentList, date8, identifier, time4

# ISA05/ISA07 codes the 00501 control map accepts.
ID_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})
_LARGEST_CONTROL_NUMBER = 999_999_999  # ISA13 is 9 digits; GS06 and ST02 at most 9


@dataclass(frozen=True)
class ControlNumbers:
    """ISA13, GS06 and ST02 of one file, taken from persisted counters (never reused)."""

    interchange: int
    group: int
    transaction: int

    def __post_init__(self) -> None:
        for name in ("interchange", "group", "transaction"):
            value = getattr(self, name)
            if not 1 <= value <= _LARGEST_CONTROL_NUMBER:
                raise ValueError(f"{name} control number {value} is outside 1..{_LARGEST_CONTROL_NUMBER}")

    @property
    def interchange_text(self) -> str:
        """ISA13: exactly nine digits, zero padded."""
        return f"{self.interchange:09d}"

    @property
    def group_text(self) -> str:
        """GS06 (and GE02): 1-9 digits, no padding."""
        return str(self.group)

    @property
    def transaction_text(self) -> str:
        """ST02 (and SE02): 4-9 characters, zero padded to four."""
        return f"{self.transaction:04d}"

    @property
    def batch_reference(self) -> str:
        """BHT03, the batch id a 277CA echoes (2200B TRN02); unique as ST02 is."""
        return f"BATCH{self.transaction_text}"


@dataclass(frozen=True)
class Envelope:
    """Who sends an 837P to whom: ISA/GS ids, loop 1000A submitter, loop 1000B receiver."""

    sender_id: str  # ISA06
    receiver_id: str  # ISA08
    submitter_name: str  # 1000A NM103
    submitter_id: str  # 1000A NM109 (assigned by the clearinghouse)
    submitter_contact_name: str  # 1000A PER02
    receiver_name: str  # 1000B NM103
    receiver_id_code: str  # 1000B NM109
    submitter_phone: str | None = None  # 1000A PER TE
    submitter_email: str | None = None  # 1000A PER EM
    sender_qualifier: str = "ZZ"  # ISA05
    receiver_qualifier: str = "ZZ"  # ISA07
    application_sender_code: str | None = None  # GS02; default sender_id
    application_receiver_code: str | None = None  # GS03; default receiver_id
    usage_indicator: str = "T"  # ISA15: T test, P production
    acknowledgment_requested: bool = False  # ISA14: ask for a TA1

    def __post_init__(self) -> None:
        if self.usage_indicator not in ("T", "P"):
            raise ConfigError(f"usage indicator (ISA15) must be T or P, not {self.usage_indicator!r}")
        for name in ("sender_qualifier", "receiver_qualifier"):
            if getattr(self, name) not in ID_QUALIFIERS:
                raise ConfigError(f"{name} {getattr(self, name)!r} is not an ISA id qualifier")
        # ISA06/ISA08 are fixed-width 15; GS02/GS03 are 2-15 characters.
        for name in ("sender_id", "receiver_id", "gs_sender", "gs_receiver"):
            value = getattr(self, name)
            if not 2 <= len(value) <= 15 or value != value.strip():
                raise ConfigError(f"{name} {value!r} must be 2-15 characters without outer spaces")
        required = ("submitter_name", "submitter_id", "submitter_contact_name", "receiver_name",
                    "receiver_id_code")
        for name in required:
            if not getattr(self, name).strip():
                raise ConfigError(f"the 837P envelope needs a {name.replace('_', ' ')}")
        if not (self.submitter_phone or self.submitter_email):
            raise ConfigError("the submitter EDI contact (1000A PER) needs a phone number or an email")

    @property
    def gs_sender(self) -> str:
        return self.application_sender_code or self.sender_id

    @property
    def gs_receiver(self) -> str:
        return self.application_receiver_code or self.receiver_id


def write_headers(out: SegmentList, envelope: Envelope, controls: ControlNumbers, created_at: datetime,
                  functional_id: str, guide: str) -> None:
    """ISA and GS of any 005010 transaction into ``out`` (a ``bhhub.x12.segments.SegmentList``).

    ``functional_id`` is GS01 (HC 837, HS 270, HR 276) and ``guide`` GS08 (e.g. 005010X279A1).
    ISA is fixed width: ids padded to 15, ISA02/ISA04 ten spaces. The same as the 837P's own
    headers, for the transactions that came after it.
    """
    d = out.delimiters
    try:
        sender = identifier(envelope.sender_id, d, "ISA sender id", 15, 2)
        receiver = identifier(envelope.receiver_id, d, "ISA receiver id", 15, 2)
        gs_sender = identifier(envelope.gs_sender, d, "GS application sender code", 15, 2)
        gs_receiver = identifier(envelope.gs_receiver, d, "GS application receiver code", 15, 2)
    except ValueError as exc:
        raise ConfigError(f"{guide} envelope: {exc}") from exc
    out.add_fixed(
        "ISA", "00", " " * 10, "00", " " * 10,
        envelope.sender_qualifier, sender.ljust(15), envelope.receiver_qualifier, receiver.ljust(15),
        created_at.strftime("%y%m%d"), time4(created_at), d.repetition, "00501",
        controls.interchange_text, "1" if envelope.acknowledgment_requested else "0",
        envelope.usage_indicator, d.component,
    )
    out.add("GS", functional_id, gs_sender, gs_receiver, date8(created_at), time4(created_at),
            controls.group_text, "X", guide)


def write_trailers(out: SegmentList, controls: ControlNumbers, segment_count: int) -> None:
    """SE (``segment_count`` counts ST through SE), GE and IEA of a one-transaction interchange."""
    out.add("SE", str(segment_count), controls.transaction_text)
    out.add("GE", "1", controls.group_text)
    out.add("IEA", "1", controls.interchange_text)
