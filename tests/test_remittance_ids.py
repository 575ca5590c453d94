"""The ids a payer's 835s use besides its claim payer id (``remittance_ids`` in payers.toml):
read once per loaded table, however many claim payments posting asks about, and never another
hub's (a practice's override is its own)."""

from __future__ import annotations

from bhhub.runtime.mapping_tables import MappingSet
from bhhub.remittance.matching import remittance_ids


def test_one_loaded_table_is_read_once_for_every_claim_payment():
    mappings = MappingSet()
    assert remittance_ids(mappings) is remittance_ids(mappings)


def test_a_practice_override_gives_its_own_ids(tmp_path):
    (tmp_path / "payers.toml").write_text('[payer."87726"]\nremittance_ids = ["PAYER-87726-ERA"]\n')
    packaged, practice = remittance_ids(MappingSet()), remittance_ids(MappingSet(override_dir=tmp_path))
    assert "PAYER-87726-ERA" in practice["87726"]
    assert "PAYER-87726-ERA" not in packaged.get("87726", ())


def test_no_tables_no_ids():
    assert remittance_ids(None) == {}
