"""The MLLP listener's pure parts: reading a message's MSH, writing its ACK, cutting frames."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bhhub.connectors.mllp.ack import (
    NotHL7, build_ack, escape_text, read_ack, read_header,
)
from bhhub.connectors.mllp.framing import FrameReader, FrameTooLarge, frame

NOW = datetime(2026, 11, 29, 14, 5, 9, tzinfo=timezone.utc)

ADT_V23 = (b"MSH|^~\\&|EPICADT|SOUTHCLINIC|BHHUB|PRACTICE|200611290905||ADT^A04|MSG00042|P|2.3\r"
           b"EVN|A04|200611290905\r"
           b"PID|1||MRN123^^^EPIC^MR||Testpatient^Alpha||19800101|F\r")
DFT_V251 = (b"MSH|^~\\&|NEXTGEN|NORTH^1.2.3^ISO|BHHUB|PRACTICE|20261129090500-0500||DFT^P03^DFT_P03|"
            b"CTRL-9|P|2.5.1|||AL|NE|USA|UNICODE UTF-8\r"
            b"EVN|P03|20261129090500\r")
# Every delimiter different from the usual |^~\&: field #, component $, repetition %, escape @, sub !
ODD_DELIMITERS = b"MSH#$%@!#LAB#HOSP#BHHUB#PRACTICE#20261129##DFT$P03$DFT_P03#X1#T#2.4\rEVN#P03\r"


def segments(ack: bytes) -> list[str]:
    assert ack.endswith(b"\r") and b"\n" not in ack
    return ack.decode("latin-1").rstrip("\r").split("\r")


def test_the_msh_is_read_as_the_standard_counts_its_fields():
    header = read_header(DFT_V251)
    assert header.separator == "|" and header.encoding == "^~\\&"
    assert header.field(1) == "|" and header.field(2) == "^~\\&"
    assert header.field(3) == "NEXTGEN" and header.field(4) == "NORTH^1.2.3^ISO"
    assert header.control_id == "CTRL-9" and header.version == "2.5.1" and header.trigger == "P03"
    assert header.field(18) == "UNICODE UTF-8" and header.field(40) == ""


def test_leading_blank_lines_and_lf_segment_ends_are_tolerated():
    header = read_header(b"\r\n\n" + ADT_V23.replace(b"\r", b"\n"))
    assert header.control_id == "MSG00042" and header.field(12) == "2.3"


@pytest.mark.parametrize("payload", [b"", b"PID|1||X\r", b"MSH", b"MSHA^~\\&|x", b"MSH|^~|x|y\r",
                                     b"MSH|^^\\&|x\r", b"\x00\x01\x02", b'{"resourceType": "Bundle"}'])
def test_a_payload_without_a_usable_msh_is_not_hl7(payload):
    with pytest.raises(NotHL7):
        read_header(payload)


def test_aa_to_a_v251_message_swaps_sender_and_receiver_and_echoes_the_control_id():
    ack = build_ack(read_header(DFT_V251), "AA", now=NOW, control_id="ACK1")
    msh, msa = segments(ack)
    assert msh == "MSH|^~\\&|BHHUB|PRACTICE|NEXTGEN|NORTH^1.2.3^ISO|20261129140509+0000||ACK^P03^ACK|ACK1|P|2.5.1"
    assert msa == "MSA|AA|CTRL-9"


def test_a_v23_ack_names_its_type_in_two_components_as_v23_defines_msh9():
    msh, msa = segments(build_ack(read_header(ADT_V23), "AA", now=NOW, control_id="A2"))
    assert msh == "MSH|^~\\&|BHHUB|PRACTICE|EPICADT|SOUTHCLINIC|20261129140509+0000||ACK^A04|A2|P|2.3"
    assert msa == "MSA|AA|MSG00042"


def test_v231_and_later_carry_the_message_structure():
    message = ADT_V23.replace(b"|P|2.3\r", b"|P|2.3.1\r")
    assert segments(build_ack(read_header(message), "AA"))[0].split("|")[8] == "ACK^A04^ACK"


def test_ae_to_v251_carries_the_reason_in_msa3_and_in_err_with_a_table_0357_code():
    reason = "PV1: no visit number | see FT1^2 & fix ~ resend \\ now"
    msh, msa, err = segments(build_ack(read_header(DFT_V251), "AE", reason, error_code="207", now=NOW))
    escaped = "PV1: no visit number \\F\\ see FT1\\S\\2 \\T\\ fix \\R\\ resend \\E\\ now"
    assert msa == f"MSA|AE|CTRL-9|{escaped}"
    fields = err.split("|")
    assert fields[0] == "ERR" and fields[3] == "207^Application internal error^HL70357"
    assert fields[4] == "E" and fields[8] == escaped


def test_ae_to_v23_puts_code_and_text_in_err1_as_v23_defines_it():
    *_, msa, err = segments(build_ack(read_header(ADT_V23), "AE", "not a format any installed plugin reads",
                                     error_code="200"))
    assert msa == "MSA|AE|MSG00042|not a format any installed plugin reads"
    assert err == "ERR|^^^200&not a format any installed plugin reads&HL70357"


def test_the_ack_uses_the_messages_own_delimiters_throughout():
    header = read_header(ODD_DELIMITERS)
    assert (header.separator, header.component, header.escape) == ("#", "$", "@")
    msh, msa, err = segments(build_ack(header, "AE", "bad # field $ here", now=NOW, control_id="Z"))
    assert msh == "MSH#$%@!#BHHUB#PRACTICE#LAB#HOSP#20261129140509+0000##ACK$P03$ACK#Z#T#2.4"
    assert msa == "MSA#AE#X1#bad @F@ field @S@ here"
    assert err == "ERR#$$$207!bad @F@ field @S@ here!HL70357"  # v2.4: ERR-1 with the sub-component '!'
    assert read_ack(build_ack(header, "AA")) == ("AA", "X1", "")


def test_msa3_is_shortened_to_its_80_characters_and_err_keeps_more():
    reason = "stored as inbox item 12, quarantined: " + "a long reason " * 20
    _, msa, err = segments(build_ack(read_header(DFT_V251), "AE", reason))
    assert len(msa.split("|")[3]) == 80 and msa.endswith("...")
    assert len(err.split("|")[8]) > 200


def test_line_breaks_in_a_reason_cannot_start_a_segment():
    assert escape_text("one\rtwo\nthree\x00") == "one two three "
    assert len(segments(build_ack(read_header(DFT_V251), "AE", "line\rMSH|injected"))) == 3


def test_ar_without_any_msh_still_is_a_well_formed_ack():
    msh, msa, err = segments(build_ack(None, "AR", "not an HL7 v2 message", error_code="100"))
    assert msh.startswith("MSH|^~\\&|||||") and msh.endswith("|ACK^^ACK|" + msh.split("|")[9] + "|P|2.5.1")
    assert msa == "MSA|AR||not an HL7 v2 message"
    assert err.split("|")[3] == "100^Segment sequence error^HL70357"


def test_every_ack_has_a_new_control_id():
    header = read_header(DFT_V251)
    ids = {read_header(build_ack(header, "AA")).control_id for _ in range(200)}
    assert len(ids) == 200 and all(len(i) == 20 for i in ids)


def test_an_unknown_code_is_refused():
    with pytest.raises(ValueError):
        build_ack(read_header(DFT_V251), "CA")


# --- framing ---------------------------------------------------------------------------------

def test_frames_are_cut_from_any_split_of_the_stream():
    stream = b"".join(frame(m) for m in (ADT_V23, DFT_V251, ODD_DELIMITERS))
    for size in (1, 2, 7, 64, len(stream)):
        reader, got = FrameReader(max_bytes=10_000), []
        for i in range(0, len(stream), size):
            reader.feed(stream[i:i + size])
            while (message := reader.next_message()) is not None:
                got.append(message)
        assert got == [ADT_V23, DFT_V251, ODD_DELIMITERS] and not reader.in_frame


def test_garbage_before_a_frame_and_a_missing_final_cr_are_skipped():
    reader = FrameReader(max_bytes=10_000)
    reader.feed(b"\r\nnoise\x00" + b"\x0b" + ADT_V23 + b"\x1c" + b"\x0b" + DFT_V251 + b"\x1c\r")
    assert [reader.next_message(), reader.next_message(), reader.next_message()] == [ADT_V23, DFT_V251, None]
    assert reader.skipped == len(b"\r\nnoise\x00")


def test_a_frame_started_again_drops_the_unfinished_one():
    reader = FrameReader(max_bytes=10_000)
    reader.feed(b"\x0b" + ADT_V23[:20])
    assert reader.next_message() is None and reader.in_frame
    reader.feed(frame(DFT_V251))
    assert reader.next_message() == DFT_V251


def test_an_oversized_frame_is_refused_with_its_head_kept_for_the_msh():
    reader = FrameReader(max_bytes=100)
    reader.feed(b"\x0b" + DFT_V251 + b"X" * 500)
    with pytest.raises(FrameTooLarge) as refused:
        reader.next_message()
    assert read_header(refused.value.head).control_id == "CTRL-9"
    assert not reader.in_frame


def test_a_frame_exactly_at_the_limit_is_accepted():
    reader = FrameReader(max_bytes=len(ADT_V23))
    reader.feed(frame(ADT_V23))
    assert reader.next_message() == ADT_V23
