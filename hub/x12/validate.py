"""An independent check of X12 output: pyx12's implementation-guide validator, run in-process.

pyx12 is optional (``pip install 'bhhub[validate]'``), so it is imported on first use. It checks
the envelope and trailer counts, the loop structure, segment and element usage, code lists,
lengths and the character set against its map of the guide named in GS08 (005010X222A1 for an
837P). It does not know payer rules, NPI check digits or whether CLM02 adds up.

pyx12 logs each error it finds, element values included; those records are kept away from the
hub's logs (no PHI in logs) and only reach the caller through the returned list.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_STREAM_NAME = re.compile(r'"<_io\.StringIO object at 0x[0-9a-fA-F]+>"')  # pyx12 names its input
_INSTALL_HINT = "X12 validation needs pyx12: pip install 'bhhub[validate]' (or pip install pyx12)"


def validate_x12(content: bytes) -> list[str]:
    """pyx12's errors for ``content``, one readable line each; an empty list means valid.

    Raises ``ImportError`` (with an install hint) when pyx12 is not installed.
    """
    try:
        import pyx12.errors
        import pyx12.params
        import pyx12.x12n_document
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc

    # pyx12 reads files as ASCII; a stray non-ASCII byte becomes U+FFFD, which it reports.
    source = io.StringIO(content.decode("ascii", errors="replace"))
    report = io.StringIO()
    with _pyx12_log_captured() as logged:
        # ParamsBase, not params(): the same defaults everywhere, whatever ~/.pyx12.conf.xml says.
        try:
            valid = pyx12.x12n_document.x12n_document(
                param=pyx12.params.ParamsBase(), src_file=source, fd_997=None, fd_html=None, fd_json=report,
            )
        except (pyx12.errors.X12Error, pyx12.errors.EngineError) as exc:
            return [f"pyx12 could not read the file: {exc}"]
    errors = _errors_in_report(json.loads(report.getvalue())) if report.getvalue() else []
    if not valid and not errors:
        # e.g. "does not look like an X12 data file": only the log says why.
        errors = [_STREAM_NAME.sub("the content", m) for m in logged]
        errors = errors or ["pyx12 rejected the file without saying why"]
    return errors


def _errors_in_report(report: dict[str, Any]) -> list[str]:
    """Flatten pyx12's JSON error report (interchange > group > transaction > segment > element)."""
    found: list[str] = []
    for interchange in report.get("interchanges", []):
        found += _level_errors(interchange, f"ISA {interchange.get('isa_trn_set_id')}")
        for group in interchange.get("groups", []):
            found += _level_errors(group, f"GS {group.get('gs_control_num')}")
            for transaction in group.get("transactions", []):
                found += _level_errors(transaction, f"ST {transaction.get('trn_set_control_num')}")
                for segment in transaction.get("segments", []):
                    where = f"line {segment.get('cur_line')}, {segment.get('seg_id')} ({segment.get('name')})"
                    found += [f"{where}: {e['err_str']}" for e in segment.get("errors", [])]
                    for element in segment.get("elements", []):
                        position = f"{segment.get('seg_id')}{int(element.get('ele_pos') or 0):02d}"
                        found += [
                            f"line {segment.get('cur_line')}, {position} ({element.get('name')}): {e['err_str']}"
                            for e in element.get("errors", [])
                        ]
    return found


def _level_errors(node: dict[str, Any], what: str) -> list[str]:
    line = node.get("cur_line")
    return [f"line {line}, {what}: {e['err_str']} (code {e['err_cde']})" for e in node.get("errors", [])]


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _pyx12_log_captured() -> Iterator[list[str]]:
    """While pyx12 runs, its log records go to a list instead of the hub's handlers."""
    logger = logging.getLogger("pyx12")
    collector = _Collector()
    saved_propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)
        logger.propagate = saved_propagate
