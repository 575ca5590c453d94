"""Which clearinghouse mailbox carries a payer's files: routing as data (``[routing]`` in bhhub.toml).

A practice with two clearinghouses (one for most payers, another that reaches a payer the first
does not) names, per payer id, the mailbox that serves it, and a default for the rest. The
same route is used for everything the hub sends about a claim's payer: its 837P, a 270 asking
about the member's coverage, a 276 asking where the claim stands. A batch is built for one
mailbox from the claims routed to it, so it never mixes mailboxes.

- a payer listed under ``[routing.payers]`` goes to its mailbox;
- any other payer to ``[routing] default``;
- with no default and exactly one mailbox configured, to that mailbox (today's single-mailbox
  hubs need no table);
- with no default and several mailboxes, nowhere: its claims stay ``ready`` and one
  ``claims_unrouted`` alert names the payer ids (never a patient) until the table covers them.

A table naming a mailbox that is not configured is a ``ConfigError`` naming the key and the
nearest mailbox name; a mailbox a person names (``--mailbox``) that is not configured is a
``UsageError`` naming the nearest one, or the configured ones (``known_mailbox``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from bhhub.errors import ConfigError, UsageError


@dataclass(frozen=True)
class Routes:
    payers: dict[str, str]  # payer id -> mailbox
    default: str | None  # the mailbox of every payer not in ``payers`` (None: unrouted)
    mailboxes: tuple[str, ...]

    def mailbox_for(self, payer_id: str) -> str | None:
        return self.payers.get(payer_id, self.default)

    def payers_of(self, mailbox: str) -> tuple[frozenset[str] | None, frozenset[str]]:
        """The claims' payer ids this mailbox carries, as (only these, or None for "any"; except these)."""
        if mailbox == self.default:
            return None, frozenset(p for p, m in self.payers.items() if m != mailbox)
        return frozenset(p for p, m in self.payers.items() if m == mailbox), frozenset()


def routes(hub) -> Routes:
    """The routing table in effect, checked against the configured mailboxes."""
    from bhhub.configuration.hub_file import Routing

    configured = tuple(sorted(hub.settings.file.mailboxes))
    table = hub.settings.section(Routing)
    where = f"{hub.settings.home / 'bhhub.toml'} [routing]"
    for key, name in [("default", table.default), *((f'payers."{p}"', m) for p, m in table.payers.items())]:
        if name is not None and name not in configured:
            near = difflib.get_close_matches(name, configured, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"configured: {', '.join(configured) or 'none'}"
            raise ConfigError(f"{where}: {key} names the mailbox {name!r}, which is not configured ({hint})")
    default = table.default or (configured[0] if len(configured) == 1 else None)
    return Routes(dict(table.payers), default, configured)


def known_mailbox(hub, name: str) -> str:
    """``name``, a mailbox a person gave (``--mailbox``, ``--from``), when bhhub.toml configures
    it; else a ``UsageError`` (the person's mistake, exit 2) naming the nearest configured mailbox
    and every configured one, before anything is written."""
    configured = sorted(hub.settings.file.mailboxes)
    if name in configured:
        return name
    near = difflib.get_close_matches(name, configured, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise UsageError(f"no mailbox {name!r} in {hub.settings.config_path} ({hint}configured: "
                     f"{', '.join(configured) or 'none'})")


def mailbox_for_payer(hub, payer_id: str, chosen: str | None = None) -> str | None:
    """The mailbox to write a file about ``payer_id`` for: ``chosen`` when a person named one
    (``--mailbox``, checked by ``known_mailbox``), else the route; None with no mailbox at all
    (the hub's own envelope)."""
    if chosen is not None:
        return known_mailbox(hub, chosen)
    table = routes(hub)
    if not table.mailboxes:
        return None
    found = table.mailbox_for(payer_id)
    if found is None:
        raise ConfigError(f"no mailbox serves payer {payer_id}: {len(table.mailboxes)} mailboxes are configured "
                          f"({', '.join(table.mailboxes)}) and [routing] has no default nor an entry for it "
                          f"(add [routing.payers] \"{payer_id}\" = \"MAILBOX\" or [routing] default, or pass --mailbox)")
    return found
