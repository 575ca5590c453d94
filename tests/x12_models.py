"""The independent check for X12 guides pyx12 has no map for: x12sdk's pydantic models.

pyx12 4.0 validates the 837P, 835, 999 and 277CA, but ships no 005010X279A1 (270/271) map and an
unusable 005010X212 (276/277) one. x12sdk (the pydantic 2 port of LinuxForHealth's X12 models)
has models of both guides, written by others: a file it reads into a model has the loops,
segments, code values and SE count the guide requires.
"""

from __future__ import annotations

import pytest


def x12sdk_problems(content: bytes) -> list[str]:
    """What x12sdk finds wrong with ``content``; [] when it reads every transaction set."""
    x12sdk_io = pytest.importorskip("x12sdk.io", reason="the independent X12 model check needs x12sdk")
    try:
        with x12sdk_io.X12ModelReader(content.decode("ascii")) as reader:
            models = list(reader.models())
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, x12sdk's LookupError ...
        return [f"{type(exc).__name__}: {exc}"]
    return [] if models else ["no transaction set read"]
