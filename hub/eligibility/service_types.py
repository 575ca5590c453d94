"""Which service types (EB03) a claim line's procedure code falls under, so that what a 271 says
about a service type (not covered, an authorization rule) reaches the lines it is about.

    service_types = ServiceTypes.from_mappings(mappings)
    service_types.of("90837")                # ("A6", "CF", "A8", "CH", "MH", "A4"), most specific first
    service_types.under("90837", ("MH",))    # True: a rule about MH is about a 90837

The table is ``[[service_types]]`` in ``mappings/rules/eligibility.toml``. "30" (the plan as a
whole) and a benefit naming no service type are about every code.
"""

from __future__ import annotations

from dataclasses import dataclass

from bhhub.errors import MappingError

TABLE = "rules/eligibility.toml"
PLAN = "30"  # health benefit plan coverage: every service


@dataclass(frozen=True)
class _Group:
    name: str
    codes: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    service_types: tuple[str, ...]

    def lists(self, code: str) -> bool:
        return code in self.codes or any(len(code) == len(lo) and lo <= code <= hi for lo, hi in self.ranges)


@dataclass(frozen=True)
class ServiceTypes:
    groups: tuple[_Group, ...]

    @classmethod
    def from_mappings(cls, mappings) -> ServiceTypes:
        table = mappings.load(TABLE)
        groups = []
        for n, entry in enumerate(table.get("service_types", []), start=1):
            try:
                listed = [str(c).strip().upper() for c in entry["procedure_codes"]]
                types = tuple(str(t) for t in entry["service_types"])
            except (KeyError, TypeError) as exc:
                raise MappingError(f"{TABLE}: [[service_types]] number {n} needs procedure_codes and "
                                   f"service_types ({exc})") from exc
            ranges = tuple(tuple(c.split("-", 1)) for c in listed if "-" in c)
            groups.append(_Group(str(entry.get("name", n)), frozenset(c for c in listed if "-" not in c),
                                 ranges, types))
        return cls(tuple(groups))

    def of(self, procedure_code: str) -> tuple[str, ...]:
        """The service types ``procedure_code`` falls under, most specific first; () when none."""
        code = procedure_code.strip().upper()
        return next((g.service_types for g in self.groups if g.lists(code)), ())

    def under(self, procedure_code: str, service_types: tuple[str, ...]) -> bool:
        """Whether a benefit of ``service_types`` is about ``procedure_code`` (none, or "30": every code)."""
        if not service_types or PLAN in service_types:
            return True
        return bool(set(self.of(procedure_code)) & set(service_types))
