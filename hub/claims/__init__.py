"""Claims: from an encounter to a stored, scrubbed claim (``build``), the 837P that carries it
(``claim837p``, ``claim_information``), the follow-ups a biller sends after a remittance
(``followup``) and the batches that leave the hub (``batches``)."""
