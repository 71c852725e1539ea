"""Both address families in one sync: the IPv4 ``Applier`` and, when needed, the IPv6 one.

``NodeDataplane.apply(desired, previous, verify)`` is what the sync loop calls. ``desired`` is
the IPv4 state with the IPv6 state in ``desired.v6`` (``None`` when no endpoint of the node has
an IPv6 address). Each family has its own table writer (``iptables`` or ``restore``) and its own
ipsets (``IpsetIO(family=6)``: names ``picket-6-*``, family inet6), and is applied in turn; the
reports are added up. IPv6 that is not needed costs nothing: once a verifying sync has found
none of our IPv6 chains, hooks or sets, an IPv6-free state skips the family until the next one
that needs it (and a node without ip6tables at all only logs that once, while nothing needs
IPv6). ``build(lock_path, mode)`` wires the writers for the node's backend.
"""

from __future__ import annotations

from dataclasses import replace

from picket_agent.kernel.applier import Applier, ApplyReport
from picket_agent.rendering.desired import Desired
from picket_agent.rendering.iptrules import SavedTable

EMPTY = Desired({}, {}, {})


class NodeDataplane:
    def __init__(self, v4: Applier, v6: Applier | None = None) -> None:
        self.v4 = v4
        self.v6 = v6
        self.tables = v4.tables  # metrics read the IPv4 table through this (and ``read_all``)
        self._v6_clean = False  # a verifying sync found no IPv6 state of ours and none was wanted since

    def apply(self, desired: Desired, previous: Desired | None = None, verify: bool = True) -> ApplyReport:
        report = self.v4.apply(desired, previous, verify)
        if self.v6 is None:
            return report
        want = desired.v6 or EMPTY
        had = (previous.v6 or EMPTY) if previous is not None else None
        if want is EMPTY and self._v6_clean and (had is None or had is EMPTY):
            return report
        try:
            report = report + self.v6.apply(want, had, verify or had is None)
        except Exception as exc:  # e.g. a node without ip6tables: fatal only when IPv6 is needed
            if want is not EMPTY:
                raise
            self._v6_clean = True
            return replace(report, problems=(*report.problems, f"IPv6 table not checked for leftovers: {exc}"))
        self._v6_clean = want is EMPTY
        return report

    def read_all(self) -> list[SavedTable]:
        """The tables (with counters) of every family in use: drop counters live in both."""
        tables = [self.v4.tables.read()]
        if self.v6 is not None and not self._v6_clean:
            tables.append(self.v6.tables.read())
        return tables


def build(lock_path: str, mode: str) -> NodeDataplane:
    """The writers for a node whose iptables backend is ``mode`` ("legacy" or "nft"; the
    benchmark also measures "legacy-restore": legacy IPv4 through iptables-legacy-restore, the
    maintained path that would replace the hand-packed entries)."""
    from picket_agent.kernel.ipsets import IpsetIO
    from picket_agent.kernel.restore import Generations, RestoreTables

    if mode == "legacy-restore":
        return NodeDataplane(Applier(RestoreTables(4, "legacy", lock_path), IpsetIO(4)),
                             Applier(RestoreTables(6, "legacy", lock_path), IpsetIO(6)))
    if mode == "legacy":
        from picket_agent.kernel.iptables import IptablesIO

        v4 = Applier(IptablesIO(lock_path), IpsetIO(4))
        v6 = Applier(RestoreTables(6, "legacy", lock_path), IpsetIO(6))
        return NodeDataplane(v4, v6)
    from picket_agent.kernel.migration import LegacyLeftovers

    generations = Generations()
    v4 = Applier(RestoreTables(4, "nft", lock_path, generations), IpsetIO(4), LegacyLeftovers(lock_path))
    v6 = Applier(RestoreTables(6, "nft", lock_path, generations), IpsetIO(6))
    return NodeDataplane(v4, v6)
