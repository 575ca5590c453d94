"""Mapping tables a practice edits that are configuration rather than code sets, as strict models.

``bhhub.runtime.mapping_tables.MappingSet`` checks each of these once when it loads the table (the packaged file
with the practice's copy laid over it); the callers keep reading the table as parsed. Parts
another module checks more closely are typed only as tables here (the telehealth rules:
``bhhub.coding.rules``, which refuses their unknown keys itself).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bhhub.configuration.problems import CODE_OF_TWO, Strict


class PayerEntry(Strict):
    """``[payer."ID"]`` in payers.toml: one payer, by its 2010BB payer id."""

    name: str | None = None
    claim_filing_indicator: str | None = Field(None, pattern=CODE_OF_TWO)  # SBR09, wins over the EHR's
    remittance_ids: list[str] = []  # other ids its 835s name it by (REF*2U, TRN03), for posting
    telehealth: dict[str, Any] = {}  # its telehealth rule: checked by bhhub.coding.rules


class PayersTable(Strict):
    """mappings/payers.toml."""

    telehealth: dict[str, Any] = {}  # checked by bhhub.coding.rules
    payer: dict[str, PayerEntry] = {}


MODELS = {"payers.toml": PayersTable}
