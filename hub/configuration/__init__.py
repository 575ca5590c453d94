"""Every file a person writes to set the hub up, as strict pydantic models.

    problems.py    a pydantic ValidationError -> one ConfigError line: file, dotted key, nearest key
    hub_file.py    <home>/bhhub.toml: [store], [interchange], [submitter], [receiver], [mailboxes.*] ...

Clearinghouse profiles (``mappings/clearinghouses/*.toml``) are modelled beside the code that uses
them, ``bhhub.exchange.profiles``, with the same base class and the same error text. Every model
refuses a key it does not know (``extra="forbid"``) and a value of the wrong type (``strict``):
``.get(key, default)`` on a person's file hides typos (STYLE 12).

pydantic is imported only when a file is read, never by ``bhhub --help``.
"""
