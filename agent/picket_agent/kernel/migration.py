"""Legacy chains an earlier picket left on a node that is (now) nft: found cheaply, removed in the apply.

Before this version the agent always wrote iptables-legacy rules. On an nft node the new
agent writes its chains with iptables-nft; ``Applier.apply`` then calls ``LegacyLeftovers``
INSIDE the same locked pass, right after the nft commit and before unused ipsets are
destroyed: the new rules enforce first, then the old hooks and chains go in one legacy
commit. Between the two commits both copies of the same policy enforce (a packet must pass
both: the same verdict), so there is no gap, and the ipsets both reference (same names) stay.

``present()`` is cheap enough for every verifying sync: ``/proc/net/ip_tables_names`` says
whether a legacy filter table exists in this namespace at all (reading it never loads a
module), and only then is the table fetched (``tableblob``: one getsockopt) and searched for
``PICKET-*`` chains or hook rules. python-iptables (``IptablesIO``) is created only to remove.
"""

from __future__ import annotations

from pathlib import Path

from picket_agent.kernel import tableblob
from picket_agent.rendering import naming
from picket_agent.rendering.diffing import plan_removal

TABLE_NAMES = Path("/proc/net/ip_tables_names")


class LegacyLeftovers:
    def __init__(self, lock_path: str, names: Path = TABLE_NAMES) -> None:
        self.lock_path = lock_path
        self.names = names

    def present(self) -> bool:
        try:
            if "filter" not in self.names.read_text().split():
                return False
            table = tableblob.parse(*tableblob.read_blob())
        except OSError:
            return False
        if any(naming.is_owned_chain(c) for c in table.chains):
            return True
        return any(label is not None and naming.is_owned_chain(label)
                   for builtin in ("INPUT", "FORWARD", "OUTPUT") for _, _, label in table.chains.get(builtin, []))

    def remove(self) -> int:
        """Remove every legacy hook and PICKET-* chain in one commit; the caller holds the lock."""
        from picket_agent.kernel.iptables import IptablesIO

        io = IptablesIO(self.lock_path)
        saved = io.read()
        plan = plan_removal(saved)
        if not plan.empty:
            io.write(plan, saved)
        return len(plan.delete)
