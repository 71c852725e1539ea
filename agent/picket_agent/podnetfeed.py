"""``--pod-network``: keep this node's CNI configuration and pod routes in step with the Node objects.

Every ``interval`` seconds (faster until this node has a podCIDR): list the Nodes, write
``<cni dir>/10-picket.conflist`` when its content changed (atomically: temporary file, rename) and
sync the routes to the other nodes' podCIDRs (``kernel/podroutes.py``). In ``auto`` mode a node
that already carries another CNI's configuration is left alone (logged once), and so are its
routes. Runs as a thread beside the sync loop (``main._serve``); API errors are logged and retried.
Dual stack needs nothing more here (``podnetwork`` computes both families, ``podroutes`` syncs both);
the node must forward each family its pods have, which picket does not set (kind does, see
``podnetwork``): a family whose forwarding sysctl is not 1 is warned about once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from picket.apiclient import ApiError, KubeClient
from picket_agent import podnetwork

log = logging.getLogger("picket.agent.podnet")


def write_conflist(directory: Path, cidrs: list[str]) -> bool:
    """Write the configuration when it differs; True when the file changed."""
    text = json.dumps(podnetwork.conflist(cidrs), indent=2, sort_keys=True) + "\n"
    target = directory / podnetwork.CONF_NAME
    try:
        if target.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{podnetwork.CONF_NAME}.tmp"
    tmp.write_text(text)
    os.replace(tmp, target)
    return True


def step(client: KubeClient, node: str, directory: Path, mode: str, warned: set[str] | None = None) -> str:
    """One pass; returns what it did (for the log). ``warned``: forwarding sysctls already warned about."""
    nodes: list[dict[str, Any]] = client.get("/api/v1/nodes").get("items", [])
    me = next((n for n in nodes if n.get("metadata", {}).get("name") == node), None)
    if me is None:
        return f"node {node} not found"
    cidrs = podnetwork.pod_cidrs(me)
    if not cidrs:
        return "no podCIDR yet"
    foreign = podnetwork.foreign_configs(os.listdir(directory)) if directory.is_dir() else []
    if mode == "auto" and foreign:
        return f"another CNI is configured here ({', '.join(foreign)}); picket provides no pod network"
    from picket_agent.kernel import podroutes

    _warn_without_forwarding(cidrs, set() if warned is None else warned)
    changed = write_conflist(directory, cidrs)
    replaced, removed = podroutes.sync(podnetwork.desired_routes(nodes, node))
    return f"pod network {','.join(cidrs)}{' (configuration written)' if changed else ''}; routes to {replaced} " \
           f"other nodes' podCIDRs ({removed} stale removed)"


def run(settings: Any, stop: threading.Event, interval: float = 5.0) -> None:
    client = KubeClient(Path(settings.kubeconfig) if settings.kubeconfig else None,
                        user_agent=f"picket-agent/{settings.node}/podnet")
    directory = Path(settings.cni_conf_dir)
    warned: set[str] = set()
    last = ""
    while not stop.is_set():
        try:
            what = step(client, settings.node, directory, settings.pod_network, warned)
        except (ApiError, OSError) as exc:
            what = f"pod network: {exc}; retrying"
        if what != last:
            log.info("%s", what)
            last = what
        stop.wait(interval if what.startswith("pod network") else 1.0)


def unforwarded(cidrs: list[str], proc_sys: Path = Path("/proc/sys")) -> list[str]:
    """The forwarding sysctls these podCIDRs' families need that are not 1 on this node (unreadable: not listed)."""
    found = []
    for name in podnetwork.forwarding_sysctls(cidrs):
        try:
            if (proc_sys / name.replace(".", "/")).read_text().strip() != "1":
                found.append(name)
        except OSError:
            pass
    return found


def _warn_without_forwarding(cidrs: list[str], warned: set[str]) -> None:
    for name in unforwarded(cidrs):
        if name not in warned:
            warned.add(name)
            log.warning("%s is 0 on this node: pods on other nodes will not be reachable over IPv%s", name,
                        "6" if "ipv6" in name else "4")
