"""Acknowledgments and what they decide about a claim: the precedence between answers
(``precedence``) and a claim's standing from all answers to its submission (``standing``).

Reading TA1, 999 and 277CA files is ``bhhub.acknowledgments.reader``'s; applying them to transmissions and
claims is ``transactions``' (registered through ``bhhub_register_x12_transactions`` and run by
``bhhub.responses``), which asks ``standing`` where each claim now stands.
"""
