"""What pyx12 found wrong with an upload, in the shape a 999 reports it (005010X231A1).

    findings = syntax_findings(content)      # None when the hub's validator finds nothing
    findings.transaction("1", "0001").segments[0].position   # IK302: counted from ST = 1

The verdict is the hub's own ``validate_x12`` (the same pyx12 check ``bhhub demo`` runs on the
837P it writes). Only when it finds errors is pyx12 run a second time for its structured report
(segment ids, positions, element numbers, X12 error codes), which ``validate_x12`` flattens into
sentences. Bad values are copied into IK404 as the 999 allows; they are never logged.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

from bhhub.x12.validate import validate_x12

log = logging.getLogger(__name__)

# The codes the 999 (IK304, IK403, IK502, AK905) and the TA1 (TA105) may carry.
SEGMENT_CODES = frozenset("1 2 3 4 5 6 7 8 I4 I6 I7 I8 I9".split())
ELEMENT_CODES = frozenset("1 2 3 4 5 6 7 8 9 10 11 12 13 I10 I11 I12 I13 I6 I9".split())
TRANSACTION_CODES = frozenset("1 2 3 4 5 6 7 8 9 10 11 12 13 15 16 17 18 19 23 24 25 26 27 I5 I6".split())
GROUP_CODES = frozenset("1 2 3 4 5 6 10 11 12 13 14 15 16 17 18 19 23 24 25 26".split())
INTERCHANGE_NOTES = frozenset(f"{n:03d}" for n in range(32))


@dataclass(frozen=True)
class ElementError:
    """IK4: IK401 position (element, component, repetition), IK402, IK403, IK404."""

    element: int
    component: int | None
    repetition: int | None
    data_element: str | None
    code: str
    bad_value: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SegmentError:
    """IK3: the segment id, its position in the set (ST = 1), its LS loop id, the codes."""

    segment_id: str
    position: int
    loop_id: str | None
    codes: tuple[str, ...]
    elements: tuple[ElementError, ...]


@dataclass(frozen=True)
class TransactionFindings:
    control_number: str  # ST02
    accepted: bool  # pyx12's IK501 was A or E
    codes: tuple[str, ...]  # IK502-IK506
    segments: tuple[SegmentError, ...]


@dataclass(frozen=True)
class GroupFindings:
    control_number: str  # GS06
    codes: tuple[str, ...]  # AK905-AK909
    transactions: tuple[TransactionFindings, ...]


@dataclass(frozen=True)
class Findings:
    """pyx12's report on a file it found errors in; ``unexplained`` when it gave no detail."""

    interchange_codes: tuple[str, ...]  # TA105 note codes
    groups: tuple[GroupFindings, ...]
    error_count: int

    @property
    def unexplained(self) -> bool:
        return not self.interchange_codes and not any(
            g.codes or any(not t.accepted for t in g.transactions) for g in self.groups)

    def group(self, index: int, control_number: str) -> GroupFindings | None:
        """The findings of the ``index``-th group, if pyx12 saw it under the same GS06."""
        if index < len(self.groups) and self.groups[index].control_number == control_number:
            return self.groups[index]
        return next((g for g in self.groups if g.control_number == control_number), None)


def transaction_findings(group: GroupFindings | None, index: int, control_number: str) -> TransactionFindings | None:
    if group is None:
        return None
    found = group.transactions
    if index < len(found) and found[index].control_number == control_number:
        return found[index]
    return next((t for t in found if t.control_number == control_number), None)


def syntax_findings(content: bytes) -> Findings | None:
    """None when pyx12 finds the upload valid; otherwise what it found, by group and set.

    Raises ``ImportError`` when pyx12 is not installed.
    """
    try:
        errors = validate_x12(content)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyx12 itself fails on some malformed input
        log.warning("sandbox: pyx12 failed on an upload (%s); the interchange is rejected", type(exc).__name__)
        return Findings(("024",), (), 1)
    if not errors:
        return None
    return _structured(content, len(errors))


def _structured(content: bytes, error_count: int) -> Findings:
    import pyx12.params
    import pyx12.x12n_document

    report = io.StringIO()
    # pyx12's log records carry element values: they go nowhere (a handler here also keeps
    # logging's last-resort handler from printing them).
    logger, sink = logging.getLogger("pyx12"), logging.NullHandler()
    saved = logger.propagate
    logger.addHandler(sink)
    logger.propagate = False
    try:
        pyx12.x12n_document.x12n_document(
            param=pyx12.params.ParamsBase(), src_file=io.StringIO(content.decode("ascii", errors="replace")),
            fd_997=None, fd_html=None, fd_json=report)
    except Exception:  # noqa: BLE001 - X12Error, EngineError, or pyx12 failing on odd input
        return Findings(("024",), (), error_count)  # it could not even read the structure
    finally:
        logger.removeHandler(sink)
        logger.propagate = saved
    text = report.getvalue()
    if not text:
        return Findings(("024",), (), error_count)
    return _from_report(json.loads(text), error_count)


def _from_report(report: dict, error_count: int) -> Findings:
    interchange_codes: list[str] = []
    groups: list[GroupFindings] = []
    for interchange in report.get("interchanges", []):
        interchange_codes += [c for c in _codes(interchange) if c in INTERCHANGE_NOTES]
        for group in interchange.get("groups", []):
            transactions = tuple(_transaction(t) for t in group.get("transactions", []))
            groups.append(GroupFindings(
                str(group.get("gs_control_num") or ""), _kept(_codes(group), GROUP_CODES), transactions))
    return Findings(tuple(dict.fromkeys(interchange_codes)), tuple(groups), error_count)


def _transaction(node: dict) -> TransactionFindings:
    segments = tuple(_segment(s) for s in node.get("segments", []))
    segments = tuple(s for s in segments if s.codes)
    codes = list(_kept(_codes(node), TRANSACTION_CODES))
    accepted = node.get("ack_code") in ("A", "E") and not segments and not codes
    if not accepted and segments and "5" not in codes:
        codes.append("5")  # one or more segments in error
    if not accepted and not codes:
        codes.append("5")
    return TransactionFindings(str(node.get("trn_set_control_num") or "").strip(), accepted, tuple(codes[:5]), segments)


def _segment(node: dict) -> SegmentError:
    codes = ["8" if c == "SEG1" else c for c in _codes(node)]
    elements = tuple(
        ElementError(int(e.get("ele_pos") or 0), e.get("subele_pos"), e.get("repeat_pos"), e.get("ele_ref_num"),
                     error["err_cde"], error.get("err_val"))
        for e in node.get("elements", []) for error in e.get("errors", []) if error.get("err_cde") in ELEMENT_CODES)
    if elements and "8" not in codes:
        codes.append("8")  # segment has data element errors
    return SegmentError(str(node.get("seg_id") or ""), int(node.get("seg_count") or 0), node.get("ls_id") or None,
                        _kept(codes, SEGMENT_CODES), elements)


def _codes(node: dict) -> list[str]:
    return [str(e.get("err_cde")) for e in node.get("errors", []) if e.get("err_cde") is not None]


def _kept(codes: list[str], allowed: frozenset[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in codes if c in allowed))
