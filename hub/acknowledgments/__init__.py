"""Acknowledgments and what they decide about a claim: the precedence between answers
(``precedence``) and a claim's standing from all answers to its submission (``standing``).

Reading TA1, 999 and 277CA files is ``bhhub.acknowledgments.reader``'s; applying them to transmissions and
claims is ``bhhub.responses``'s, which asks this package where each claim now stands.
"""
