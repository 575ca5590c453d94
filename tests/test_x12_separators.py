"""X12 whose segments do not use the separators its ISA announces (issue 13, item 8).

The ISA is fixed width, so its own separators are always readable; a file whose body was
written with other separators (a hand-edited file, two files joined, a translator's bug) cannot
be read at all. The quarantine reason must say that, not that the hub does not read X12.
"""

from __future__ import annotations

import pytest

from bhhub.intake import inbox as intake
from bhhub.errors import InputError
from bhhub.x12.recognize import recognize

ISA = ("ISA*00*          *00*          *ZZ*TESTCH         *ZZ*BHHUB          *261129*0800*^*00501*"
       "000000777*0*T*:~")
BODY = ["GS*HP*TESTCH*BHHUB*20261129*0800*777*X*005010X221A1", "ST*835*0001", "BPR*I*0*C*NON************20261129",
        "SE*3*0001", "GE*1*777", "IEA*1*000000777"]


def _file(element: str = "*", terminator: str = "~") -> bytes:
    body = terminator.join(segment.replace("*", element) for segment in BODY) + terminator
    return (ISA + "\n" + body).encode()


@pytest.mark.parametrize("element,terminator", [("|", "~"), ("*", "!"), ("|", "\n"), (":", "~")])
def test_a_body_with_other_separators_than_the_isa_announces_is_named(element, terminator):
    with pytest.raises(InputError) as raised:
        recognize(_file(element, terminator))
    text = str(raised.value)
    assert "separator" in text and "ISA" in text
    assert "does not read" not in text


def test_the_same_file_with_the_announced_separators_is_an_835():
    assert recognize(_file()).kind == "835"


def test_an_isa_followed_by_a_newline_and_segments_on_lines_is_still_read():
    # Line breaks after each terminator are common and are not a change of separators.
    assert recognize(_file().replace(b"~", b"~\r\n")).kind == "835"


@pytest.mark.parametrize("element", ["|", "^"])
def test_intake_quarantines_mixed_separators_with_a_reason_a_biller_can_act_on(sqlite_hub, element):
    result = intake.receive(sqlite_hub, _file(element), "ch:mixed.835")
    assert result.outcome == "quarantined"
    assert "separator" in result.reason
    assert "X12 X12" not in result.reason and "does not read" not in result.reason


def test_an_interchange_of_an_unknown_kind_does_not_say_x12_twice(sqlite_hub):
    unknown = _file().replace(b"GS*HP*", b"GS*ZZ*").replace(b"005010X221A1", b"005010X999A1")
    result = intake.receive(sqlite_hub, unknown, "ch:odd.x12")
    assert result.outcome == "quarantined"
    assert "X12 X12" not in result.reason
    assert "ZZ" in result.reason or "005010X999A1" in result.reason
