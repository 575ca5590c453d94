"""JSON columns (diagnoses, modifiers, pointers, remarks) read as their text and decoded a chunk at
a time: one ``json.loads`` of the chunk's texts joined into one array, in C, where decoding each
value as it is fetched costs several Python calls per value (the type's processor, ``json.loads``,
its decoder), a fifth of a big listing's time. The values are the same: the store holds each
value as the JSON text the column's type wrote (PostgreSQL's ``json`` keeps it verbatim).
"""

from __future__ import annotations

import json

from sqlalchemy import Text, cast


def json_text(column):
    """``column`` (a JSON column) selected as its text, under its own name."""
    return cast(column, Text).label(column.key)


def decode_json(texts: list[str | None]) -> list:
    """The values of ``texts`` (JSON column texts; None for SQL NULL, which reads as None), in order."""
    if not texts:
        return []
    return json.loads("[" + ",".join(["null" if text is None else text for text in texts]) + "]")
