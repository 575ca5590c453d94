"""The hub's one error tree, drawn by what the caller must do.

    HubError
     ├── InputError            fix the input: skip this item, keep going with its siblings
     │    ├── UnrecognizedInput    no plugin knows this content
     │    └── MappingError         a mapping/config table is malformed or lacks an entry
     ├── UsageError            the command asked for something that cannot be (exit code 2)
     ├── RetriableError        try again later (network, lock, remote busy), with backoff
     │    └── RemoteFileError      one remote file cannot be fetched now; skip it, fetch the others
     └── FatalError            stop and tell a person (store unusable, host key changed)
          ├── ConfigError          the hub's configuration is wrong
          └── StoreError           the database cannot be used

Foreign exceptions (pydantic, SQLAlchemy, paramiko, requests) are wrapped at the boundary with
the original chained (``raise InputError(...) from exc``). Messages name files, resources and
ids, never patient names, member ids or dates of birth.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class InputError(HubError):
    """This input cannot be used as it stands; a biller can act on the message.

    ``where`` names the resource, segment or line (``Encounter/enc-7``, ``segment 14``).
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        text = f"{where}: {message}" if where else message
        if fix:
            text = f"{text} (fix: {fix})"
        super().__init__(text)


class UnrecognizedInput(InputError):
    """No installed plugin recognises the content."""


class MappingError(InputError):
    """A mapping table is malformed, or has no entry the input needs."""


class UsageError(HubError):
    """The caller asked for something that cannot be: an unknown id, a bad option value."""


class RetriableError(HubError):
    """A temporary failure: the same call may succeed later."""


class RemoteFileError(RetriableError):
    """One remote file cannot be fetched now (refused, vanished, unreadable, changing, too large);
    the connection itself is fine, so the caller skips that file, fetches the others, and tries it
    again next time. A transport's ``download`` raises it; any other failure is the connection's."""


class FatalError(HubError):
    """Stop and tell a person; retrying will not help."""


class ConfigError(FatalError):
    """The hub's configuration is wrong or incomplete."""


class StoreError(FatalError):
    """The store cannot be opened, migrated or written."""
