"""Claim statuses in the sending code are ``ClaimStatus`` members, never strings typed again: a
renamed status must break at import, not make a query match nothing in silence."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bhhub.model import ClaimStatus

PROJECT = Path(__file__).resolve().parent.parent
SENDING = sorted([*(PROJECT / "hub" / "exchange").glob("*.py"), PROJECT / "hub" / "claims" / "batches.py",
                  PROJECT / "hub" / "claims" / "export.py"])
STATUSES = {s.value for s in ClaimStatus}


def _typed_statuses(path: Path) -> list[str]:
    """``x.status == "ready"`` or ``x.status.in_(["ready", ...])`` with a claim status as a string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "status" for s in sides):
                found += [f"line {node.lineno}: {s.value!r}" for s in sides
                          if isinstance(s, ast.Constant) and s.value in STATUSES]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("in_", "not_in")
              and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "status"):
            found += [f"line {node.lineno}: {c.value!r}" for arg in node.args for c in ast.walk(arg)
                      if isinstance(c, ast.Constant) and c.value in STATUSES]
    return found


@pytest.mark.parametrize("path", SENDING, ids=lambda p: str(p.relative_to(PROJECT)))
def test_claim_statuses_in_the_sending_code_come_from_the_enum(path):
    assert _typed_statuses(path) == []

