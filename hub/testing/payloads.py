"""Inputs an EHR plugin must survive: bytes that are not its format, and damaged copies of its
own golden files.

``odd_payloads()`` are things any inbox sees (empty files, binary, other formats bhhub reads);
``damaged_copies(golden)`` are a golden file cut short, with garbage in the middle, its lines
reordered or halved, its digits or delimiters gone, doubled, and every ``field_damages``.
``field_damages(golden)`` touch one field and keep the rest whole: a field of the last line
emptied or garbled, a column removed from the header and every row, a JSON value replaced or
its key removed. A plugin reading any of them must answer ``recognizes`` with a bool, and
``parse`` with encounters or a ``bhhub.errors.HubError``; after a field damage it must also keep
every visit or refuse the file (a visit silently left out is a claim never billed).
Every copy is named, so a failure says which damage the plugin did not handle.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator

_FHIR = b'{"resourceType": "Bundle", "type": "collection", "entry": []}'
_HL7 = (b"MSH|^~\\&|EHR|CLINIC|BHHUB|BILLING|202611020900||DFT^P03|MSG1|P|2.5.1\r"
        b"EVN|P03|202611020900\rPID|1||12345^^^CLINIC^MR||TESTPATIENT^ALPHA\r")
_X12 = (b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261102*0900*^*00501*"
        b"000000001*0*T*:~GS*HC*SENDER*RECEIVER*20261102*0900*1*X*005010X222A1~ST*837*0001~")
_DELIMITERS = b",|;\t^:~*\"{}[]<>="


def odd_payloads() -> list[tuple[str, bytes]]:
    """Payloads that are not (or not obviously) any one EHR format: (label, bytes)."""
    rng = random.Random(6)
    return [
        ("empty", b""),
        ("whitespace", b" \r\n\t\r\n"),
        ("a UTF-8 byte-order mark only", b"\xef\xbb\xbf"),
        ("NUL bytes", b"\x00" * 512),
        ("random binary", bytes(rng.randrange(256) for _ in range(4096))),
        ("invalid UTF-8", b"\xff\xfe\xfa" + "caf\u00e9".encode("latin-1") * 50),
        ("a PDF header", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        ("a zip header", b"PK\x03\x04" + bytes(60)),
        ("a FHIR bundle", _FHIR),
        ("JSON that is not FHIR", b'[1, 2, {"a": null}]'),
        ("an HL7 v2 message", _HL7),
        ("an X12 837 interchange", _X12),
        ("XML", b'<?xml version="1.0"?><root><a>1</a></root>'),
        ("one long line", b"A" * 200_000),
        ("a header line only", b"date,patient,code\n"),
    ]


def damaged_copies(content: bytes) -> Iterator[tuple[str, bytes]]:
    """Damaged versions of a golden file: (what was done, bytes)."""
    size = len(content)
    if size == 0:
        return
    yield "cut to its first byte", content[:1]
    for eighth in range(1, 8):
        yield f"cut at {eighth}/8 of its length", content[: size * eighth // 8]
    yield "cut by its last byte", content[:-1]
    rng = random.Random(size)
    middle = size // 2
    yield "32 random bytes over its middle", content[:middle] + bytes(rng.randrange(256) for _ in range(32)) + \
        content[middle + 32:]
    yield "NUL bytes inserted in its middle", content[:middle] + b"\x00" * 16 + content[middle:]
    yield "a latin-1 byte in its middle", content[:middle] + b"\xe9" + content[middle:]
    yield "every digit replaced by X", re.sub(rb"[0-9]", b"X", content)
    yield "every digit replaced by 9", re.sub(rb"[0-9]", b"9", content)
    yield "every letter removed", re.sub(rb"[A-Za-z]", b"", content)
    lines = content.splitlines(keepends=True)
    if len(lines) > 1:
        yield "its lines in reverse order", b"".join(reversed(lines))
        yield "its first line removed", b"".join(lines[1:])
        yield "only its first line", lines[0]
        yield "its last line repeated", content + (b"" if content.endswith((b"\n", b"\r")) else b"\n") + lines[-1]
    yield "every line cut in half", b"".join(line[: max(1, len(line) // 2)] + b"\n" for line in lines)
    counts = Counter(b for b in content if b in _DELIMITERS)
    for delimiter, _ in counts.most_common(2):
        mark = bytes([delimiter])
        yield f"every {mark.decode()!r} removed", content.replace(mark, b"")
        yield f"every {mark.decode()!r} doubled", content.replace(mark, mark * 2)
    yield "the file twice", content + b"\n" + content
    if len(lines) > 2:
        head, body = b"".join(lines[:2]), b"".join(lines[2:])
        yield "every digit after its first two lines replaced by X", head + re.sub(rb"[0-9]", b"X", body)
        yield "every digit after its first two lines replaced by 9", head + re.sub(rb"[0-9]", b"9", body)
    yield from field_damages(content)


def field_damages(content: bytes) -> Iterator[tuple[str, bytes]]:
    """Copies of a golden with one field damaged and the rest intact: (what was done, bytes)."""
    lines = content.splitlines(keepends=True)
    yield from _damaged_fields(lines)
    yield from _removed_columns(lines)
    yield from _damaged_json_values(content)
    yield from _removed_json_keys(content)


_GARBAGE = b"#?\x01%"
_MAX_FIELDS = 40


def _damaged_fields(lines: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """Each field of the last line, one at a time, emptied or replaced by garbage: every field's
    own parsing (dates, amounts, codes) meets bad data with the rest of the file intact."""
    filled = [n for n, line in enumerate(lines) if line.strip()]
    if len(filled) < 2:
        return
    last = filled[-1]
    line = lines[last].rstrip(b"\r\n")
    ending = lines[last][len(line):]
    counts = Counter(b for b in line if b in b",|\t;^*")
    if not counts:
        return
    delimiter = bytes([counts.most_common(1)[0][0]])
    fields = line.split(delimiter)
    for index in range(min(len(fields), _MAX_FIELDS)):
        for what, value in (("replaced by garbage", _GARBAGE), ("emptied", b"")):
            damaged = delimiter.join(fields[:index] + [value] + fields[index + 1:]) + ending
            yield f"field {index + 1} of its last line {what}", b"".join(lines[:last] + [damaged] + lines[last + 1:])


def _removed_columns(lines: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """For delimited text: each column (up to 40) removed from the header and every row after it,
    as another tool's export (or an older version of the same tool) would lack it. A reader
    that looks a column up by name (``row[name]``) meets its absence here."""
    filled = [n for n, line in enumerate(lines) if line.strip()]
    if len(filled) < 2:
        return
    counts = Counter(b for b in lines[filled[-1]] if b in b",|\t;")
    if not counts:
        return
    delimiter = bytes([counts.most_common(1)[0][0]])
    width = lines[filled[-1]].count(delimiter) + 1
    # the header: the first line with as many fields as the last (skipping a title line)
    header = next((n for n in filled if lines[n].count(delimiter) + 1 == width), None)
    if header is None or header == filled[-1]:
        return
    for column in range(min(width, _MAX_FIELDS)):
        out = list(lines[:header])
        for line in lines[header:]:
            body = line.rstrip(b"\r\n")
            fields = body.split(delimiter)
            if len(fields) == width:
                body = delimiter.join(fields[:column] + fields[column + 1:])
            out.append(body + line[len(line.rstrip(b"\r\n")):])
        name = lines[header].rstrip(b"\r\n").split(delimiter)[column].decode("utf-8", "replace").strip()[:30]
        yield f"column {column + 1} ({name!r}) removed from the header and every row", b"".join(out)


_MAX_VALUES = 60


def _json_document(content: bytes) -> object | None:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None


def _damaged_json_values(content: bytes) -> Iterator[tuple[str, bytes]]:
    """For JSON: each scalar value (up to 60), one at a time, given the wrong type or garbage."""
    document = _json_document(content)
    if document is None:
        return
    paths: list[tuple] = []

    def walk(node: object, path: tuple) -> None:
        if len(paths) >= _MAX_VALUES:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, path + (index,))
        else:
            paths.append(path)

    walk(document, ())
    for path in paths:
        for what, value in (("garbage", "#?\u0001%"), ("a list", [1, None]), ("null", None)):
            copy = json.loads(json.dumps(document))
            node = copy
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
            yield f"value at {'/'.join(map(str, path))} replaced by {what}", json.dumps(copy).encode()


def _removed_json_keys(content: bytes) -> Iterator[tuple[str, bytes]]:
    """For JSON: each key of an object (up to 60, depth first), one at a time, removed. A reader
    that indexes (``visit["member_id"]``) instead of checking meets a ``KeyError`` here."""
    document = _json_document(content)
    if document is None:
        return
    paths: list[tuple] = []

    def walk(node: object, path: tuple) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if len(paths) >= _MAX_VALUES:
                    return
                paths.append(path + (key,))
                walk(value, path + (key,))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, path + (index,))

    walk(document, ())
    for path in paths:
        copy = json.loads(json.dumps(document))
        node = copy
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
        yield f"key {'/'.join(map(str, path))} removed", json.dumps(copy).encode()
