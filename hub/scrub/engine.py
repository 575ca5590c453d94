"""Running every registered claim check on a claim."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bhhub.model import Claim, Finding, Severity
from bhhub.types import ClaimCheck

log = logging.getLogger(__name__)


def scrub(claim: Claim, checks: Sequence[ClaimCheck], context: Any = None) -> list[Finding]:
    """Every check's findings. A check that crashes is reported as a warning, never fatal:
    one broken rule plugin must not stop claims (nor pass them silently)."""
    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(check.check(claim, context))
        except Exception as exc:  # noqa: BLE001 - a rule plugin's bug
            log.error("claim check %s failed on claim %s: %s", check.name,
                      claim.patient_control_number, type(exc).__name__)
            findings.append(Finding(
                "scrub.check_failed", Severity.WARNING,
                f"the check {check.name!r} failed ({type(exc).__name__}); this claim was not fully checked",
                "report it to the plugin's author; run `bhhub plugins` to see which plugin it is",
            ))
    return findings


def blocking(findings: Sequence[Finding]) -> bool:
    return any(f.severity == Severity.ERROR for f in findings)


class BulkContext:
    """The hub, for checking many claims in one go: checks may keep what they read once in
    ``cache`` (e.g. every standing claim's lines) instead of querying per claim."""

    def __init__(self, hub: Any):
        self.hub = hub
        self.cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        # Kept after the first read (the hub's settings, store and tables do not change during a
        # bulk check): thousands of claims ask for the same few attributes.
        value = getattr(self.hub, name)
        setattr(self, name, value)
        return value


class ConnectionContext:
    """The hub, checking one claim inside a transaction already open (intake): database-backed
    checks read through ``connection`` instead of opening one of their own per claim."""

    def __init__(self, hub: Any, connection: Any):
        self.hub = hub
        self.connection = connection
        # What stays true for the whole transaction (intake writes claims, never the enrollment
        # registry): a check may keep it here and read it once per transaction, not per claim.
        self.memo: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.hub, name)
