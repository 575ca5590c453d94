"""What a refusal may quote from a message: the fields' names always, their values almost never.

A refusal becomes an inbox item's quarantine reason, a line of ``bhhub intake`` output and, over
MLLP, MSA-3 and ERR of the ACK sent back to the interface engine (STYLE 10). So it names the
segment, field and problem, and quotes no value from the segments that carry a patient (PID,
PV1, IN1/IN2, GT1, FT1, DG1, SCH, AIS/AIP): not a name, a date, an amount, a code.

It may quote the few MSH fields that name systems and the message, not people (MSH-4 facility,
MSH-9 message type, MSH-10 control id, MSH-12 version), and set ids, and only when the value has
the shape the standard gives that field; a value of any other shape (a field shifted by a stray
separator could carry anything) is replaced by ``(not shown)``.
"""

from __future__ import annotations

import re

NOT_SHOWN = "(not shown)"

VERSION = re.compile(r"\d\.\d{1,2}(?:\.\d{1,2})?")  # MSH-12 VID: 2.3, 2.5.1
EVENT_CODE = re.compile(r"[A-Z][A-Z0-9]{2}")  # MSH-9 components: HL7 tables 0076 and 0003
IDENTIFIER = re.compile(r"[A-Za-z0-9_.:@-]{1,40}")  # MSH-10 control id, MSH-4 namespace id
SET_ID = re.compile(r"\d{1,4}")  # SI: a segment's sequence number


def shown(value: str, shape: re.Pattern[str]) -> str:
    """``value`` when it has ``shape`` whole, else ``(not shown)``."""
    return value if shape.fullmatch(value) else NOT_SHOWN


def set_id(value: str, position: int) -> str:
    """A segment's set id as sent when it is a sequence number, else its position (1-based)."""
    return value if SET_ID.fullmatch(value) else str(position)
