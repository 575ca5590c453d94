"""The audit trail: who read or changed what, when, from where, and how it ended, hash-chained.

    chain.py    appending a row (``Hub.audit`` calls ``append``), ``verify`` and ``events``

Rows name ids, never PHI. ``bhhub audit verify`` and ``bhhub audit list`` read it
(``bhhub.cli.accounts``).
"""
