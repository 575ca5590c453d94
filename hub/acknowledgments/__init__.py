"""Acknowledgments and what they decide about a claim.

Reading, one module per transaction, each a pure function over an interchange's bytes:
``ta1`` (the TA1, was the envelope readable), ``x999`` (the 999, 005010X231A1: which transaction
sets passed) and ``x277ca`` (the 277CA, 005010X214: which claims went into adjudication); what
the three share (the code meanings of ``mappings/x12/ack_codes.toml`` and the outcome vocabulary
received, accepted, not found, rejected) is ``codes``'s, and the element readers whose errors
name the element, never its value, are ``elements``'.

Deciding: the precedence between answers (``precedence``) and a claim's standing from all
answers to its submission (``standing``). Applying them to transmissions and claims is
``transactions``' (registered through ``bhhub_register_x12_transactions`` and run by
``bhhub.responses``), which asks ``standing`` where each claim now stands.
"""
