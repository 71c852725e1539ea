"""``lab up``, ``lab down`` and ``lab status``: bring the whole lab up in order, or remove it all.

``up`` is idempotent (a healthy lab of the same size is left alone), cleans leftovers first,
checks ports and addresses before creating anything, then: tmpfs for etcd, credentials, the lab
network and node namespaces, etcd, kube-apiserver, controller-manager and scheduler, one node
runtime per node; it waits on health endpoints and on the API (nodes Ready, the default
ServiceAccount), never on sleeps. Any failure tears everything down and raises one ``LabError``
naming the log to read (logs are kept). ``down`` kills processes found by pidfile and by
``/proc`` marker, deletes every lab namespace and the root link, and unmounts the tmpfs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import picket
import picket_lab
from picket_lab import controlplane as cp
from picket_lab import network, procs
from picket_lab.build import ensure_built
from picket_lab.kubeclient import Kube
from picket_lab.paths import BuildPaths, RunLayout, run_layout
from picket_lab.shell import LabError, run
from picket_lab.state import LabState, read_state, write_state
from picket_lab.topology import (
    API_PORT,
    CONTROLLER_MANAGER_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    MAX_NODES,
    SCHEDULER_PORT,
    NodeSpec,
    api_url,
    node_specs,
)

Progress = Callable[[str], None]
PORTS = {API_PORT: "kube-apiserver", ETCD_CLIENT_PORT: "etcd", ETCD_PEER_PORT: "etcd (peer)",
         CONTROLLER_MANAGER_PORT: "kube-controller-manager", SCHEDULER_PORT: "kube-scheduler"}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the local cluster needs root (network namespaces, veths, a tmpfs); run as root")


def healthy(layout: RunLayout, state: LabState | None) -> bool:
    if state is None or state.status != "ready":
        return False
    pids = procs.pidfile_pids(layout.root)
    expected = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    expected |= {f"noderuntime-{n.name}" for n in state.nodes}
    if not expected <= pids.keys() or not all(procs.alive(pids[name]) for name in expected):
        return False
    return cp.apiserver_ready(layout)()


def check_ports_free() -> None:
    for port, who in PORTS.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                raise LabError(f"port {port} (for {who}) is already in use on this machine; "
                               f"find the process with 'ss -ltnp sport = :{port}' and stop it") from None


@contextlib.contextmanager
def _exclusive(layout: RunLayout) -> Iterator[None]:
    """One ``up`` or ``down`` at a time on this machine (a second one waits).

    Not ``/run/picket-lab.lock``: that one is free for whoever runs a whole session on the lab
    (``flock /run/picket-lab.lock pytest tests/e2e``), which would otherwise wait for itself."""
    lock_path = layout.root.with_name(layout.root.name + ".updown.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(nodes: int = 2, progress: Progress = print) -> LabState:
    require_root()
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    bins = ensure_built(progress).paths
    layout = run_layout()
    with _exclusive(layout):
        return _up_locked(layout, bins, nodes, progress)


def _up_locked(layout: RunLayout, bins: BuildPaths, nodes: int, progress: Progress) -> LabState:
    current = read_state(layout.state)
    if current and current.node_count == nodes and healthy(layout, current):
        progress("lab up: already running")
        return current
    if leftovers(layout):
        progress("lab up: removing what an earlier lab left behind")
        _down_locked(layout, lambda _: None)
    check_ports_free()
    network.check_root_namespace_free()
    try:
        return _bring_up(layout, bins, node_specs(nodes), progress)
    except BaseException:
        _down_locked(layout, lambda _: None)
        raise


def _bring_up(layout: RunLayout, bins: BuildPaths, nodes: list[NodeSpec], progress: Progress) -> LabState:
    t0 = time.monotonic()
    shutil.rmtree(layout.logs, ignore_errors=True)
    state = LabState("starting", len(nodes), api_url(), str(layout.admin_kubeconfig), str(bins.bin_dir),
                     bins.kubernetes, bins.etcd, time.time())
    write_state(layout.state, state)
    cp.mount_etcd_tmpfs(layout)
    cp.make_credentials(layout, nodes)
    network.create_lab_network()
    for node in nodes:
        network.create_node(node, nodes)
    progress(f"lab up: network ready ({len(nodes)} nodes); starting etcd and kube-apiserver")
    etcd = cp.start_etcd(layout, bins)
    cp.wait_ready(etcd, cp.etcd_healthy, "etcd")
    apiserver = cp.start_apiserver(layout, bins)
    cp.wait_ready(apiserver, cp.apiserver_ready(layout), "kube-apiserver")
    progress(f"lab up: kube-apiserver ready after {time.monotonic() - t0:.1f}s; starting controllers and nodes")
    cm = cp.start_controller_manager(layout, bins)
    scheduler = cp.start_scheduler(layout, bins)
    runtimes = [_start_runtime(layout, node) for node in nodes]
    cp.wait_ready(cm, cp.component_healthy(CONTROLLER_MANAGER_PORT), "kube-controller-manager")
    cp.wait_ready(scheduler, cp.component_healthy(SCHEDULER_PORT), "kube-scheduler")
    kube = Kube(cp.admin_credentials(layout))
    for node, runtime in zip(nodes, runtimes, strict=True):
        cp.wait_ready(runtime, functools.partial(_node_ready, kube, node.name), f"node runtime of {node.name}")
    cp.wait_ready(cm, lambda: _exists(kube, "/api/v1/namespaces/default/serviceaccounts/default"),
                  "kube-controller-manager (default ServiceAccount)")
    ready = LabState("ready", len(nodes), state.api_server, state.kubeconfig, state.bin_dir, state.kubernetes,
                     state.etcd, state.started_at, round(time.monotonic() - t0, 2))
    write_state(layout.state, ready)
    return ready


def _start_runtime(layout: RunLayout, node: NodeSpec) -> procs.Started:
    roots = (str(Path(picket.__file__).resolve().parent.parent), str(Path(picket_lab.__file__).resolve().parent.parent))
    pythonpath = os.pathsep.join(p for p in (*roots, os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "picket_lab.noderuntime", "--node-index", str(node.index), "--run-dir",
            str(layout.root)]
    return procs.start(layout.root, f"noderuntime-{node.name}", argv, netns=node.netns, env={"PYTHONPATH": pythonpath})


def _node_ready(kube: Kube, name: str) -> bool:
    try:
        node = kube.get(f"/api/v1/nodes/{name}")
    except Exception:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


def _exists(kube: Kube, path: str) -> bool:
    try:
        kube.get(path)
        return True
    except Exception:
        return False


def leftovers(layout: RunLayout) -> bool:
    return bool(network.lab_namespaces() or network.root_link_exists() or procs.marked_pids(layout.root)
                or procs.pidfile_pids(layout.root) or layout.state.exists() or cp.is_mounted(layout.etcd_data))


def down(progress: Progress = print) -> list[str]:
    """Remove everything of the lab (also after a crash); keeps ``logs/`` for reading. Returns what went."""
    require_root()
    layout = run_layout()
    with _exclusive(layout):
        return _down_locked(layout, progress)


def _down_locked(layout: RunLayout, progress: Progress) -> list[str]:
    removed = [f"process {pid}" for pid in procs.stop_all(layout.root)]
    removed += network.remove_all()
    if cp.is_mounted(layout.etcd_data):
        run(["umount", "-l", str(layout.etcd_data)])
        removed.append(f"tmpfs {layout.etcd_data}")
    if layout.root.is_dir():
        for entry in layout.root.iterdir():
            if entry.name != "logs":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    progress(f"lab down: removed {len(removed)} things" + (f" ({', '.join(removed)})" if removed else ""))
    return removed
