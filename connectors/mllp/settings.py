"""``[listen]`` in ``bhhub.toml``: the MLLP listener's limits, as a strict model with its defaults.

    [listen]
    host = "127.0.0.1"               # 0.0.0.0 for other machines
    idle_timeout = 300               # s a connection may send nothing before it is closed
    message_timeout = 60             # s from a message's start block to its end block, however it trickles
    max_bytes = 4194304              # largest message; a larger one gets AR and the connection is closed
    max_connections = 32             # connections at once, every sender together
    max_connections_per_peer = 8     # connections at once from one address

``bhhub listen``'s options override the file. Why these defaults: an interface engine keeps one
or a few connections open and idle between messages (so idle connections are allowed minutes);
a message of a few KB arrives in milliseconds on a LAN, and 4 MB at a slow 100 kB/s in 40 s (so
a minute per message is generous to a real sender and short for one sending a byte every few
seconds, which otherwise holds its connection for ever). One engine seldom needs more than a
handful of connections; eight leaves room for a second channel without letting one address
take every slot.
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bhhub.errors import ConfigError


class ListenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    host: str = "127.0.0.1"
    idle_timeout: float = Field(300.0, gt=0)
    message_timeout: float = Field(60.0, gt=0)
    max_bytes: int = Field(4 * 1024 * 1024, gt=0)
    max_connections: int = Field(32, gt=0)
    max_connections_per_peer: int = Field(8, gt=0)

    @classmethod
    def from_table(cls, table: object, where: str = "bhhub.toml [listen]") -> ListenSettings:
        """The section as a model; ``ConfigError`` naming every bad key (and the nearest valid one)."""
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        try:
            return cls(**table)  # strict: "60" or true is refused, 60 for 60.0 is fine
        except ValidationError as exc:
            raise ConfigError(f"{where}: " + "; ".join(_problem(e) for e in exc.errors(include_input=False))) from None

    def with_overrides(self, **options: object) -> ListenSettings:
        """These settings with each option that was given (not None) laid over them, checked again."""
        given = {k: v for k, v in options.items() if v is not None}
        try:
            return type(self)(**{**self.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError("; ".join(_problem(e, prefix="--") for e in exc.errors(include_input=False))) from None


def _problem(error: dict, prefix: str = "") -> str:
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        near = difflib.get_close_matches(key, list(ListenSettings.model_fields), n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(ListenSettings.model_fields)}"
        return f"unknown key {key!r} ({hint})"
    shown = prefix + key.replace("_", "-") if prefix else key
    return f"{shown}: {error['msg']}"
