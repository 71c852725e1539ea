"""``picket lab ...``: the command line of the local cluster.

up [--nodes N] | down | status | build | kubeconfig | kubectl ARGS... |
exec NAMESPACE/POD -- COMMAND... | node-exec NODE -- COMMAND...
Every failure the lab knows about (missing Go, build failure, port in use, a component dying at
start) prints one line naming the log to read, and exits 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

from picket_lab import lifecycle, procs
from picket_lab.api import Lab
from picket_lab.build import BuildError, ensure_built
from picket_lab.paths import run_layout
from picket_lab.shell import LabError
from picket_lab.state import LabState, read_state

USAGE = """usage: picket lab COMMAND
  up [--nodes N]                     start the local cluster (default 2 nodes; idempotent)
  down                               remove it all (also what a crashed run left)
  status                             processes, nodes, addresses
  build                              build and cache the Kubernetes and etcd binaries
  kubeconfig                         print the admin kubeconfig path
  kubectl ARGS...                    run the lab's kubectl
  exec NAMESPACE/POD -- COMMAND...   run COMMAND in the pod's network namespace
  node-exec NODE -- COMMAND...       run COMMAND in the node's network namespace"""


def _say(message: str) -> None:
    print(message, flush=True)


def usage_text(state: LabState, kubeconfig: str) -> str:
    nodes = ", ".join(f"{n.name} ({n.ip}, pods {n.pod_cidr})" for n in state.nodes)
    return f"""picket lab is up: Kubernetes {state.kubernetes}, API {state.api_server}, nodes: {nodes}
(ready in {state.ready_seconds:.1f}s)
  export KUBECONFIG={kubeconfig}        # or prefix kubectl commands with 'picket lab'
  picket lab kubectl get nodes -o wide
  picket lab kubectl create deployment web --image=nginx --port=80 --replicas=2
  picket lab kubectl get pods -o wide
  picket lab exec default/<pod> -- nc -z -w 1 <other pod IP> 80
  picket lab node-exec {state.nodes[0].name} -- ip route
  picket lab down"""


def _up(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="picket lab up")
    parser.add_argument("--nodes", type=int, default=2)
    opts = parser.parse_args(args)
    t0 = time.monotonic()
    state = lifecycle.up(opts.nodes, _say)
    _say(usage_text(state, state.kubeconfig) + f"\n(lab up took {time.monotonic() - t0:.1f}s)")
    return 0


def _down(_: list[str]) -> int:
    lifecycle.down(_say)
    return 0


def _status(_: list[str]) -> int:
    layout = run_layout()
    state = read_state(layout.state)
    if state is None:
        _say("lab: not running")
        return 1
    _say(f"lab: {state.status}; Kubernetes {state.kubernetes}; API {state.api_server}; run dir {layout.root}")
    for name, pid in procs.pidfile_pids(layout.root).items():
        alive = "running" if procs.alive(pid) else "DEAD"
        _say(f"  {name:<34} pid {pid:<8} {alive}  log {procs.log_path(layout.root, name)}")
    if state.status == "ready":
        result = Lab(layout, state).kubectl("get", "nodes", "-o", "wide", check=False)
        _say(result.stdout.rstrip() or result.stderr.rstrip())
    return 0 if lifecycle.healthy(layout, state) else 1


def _build(_: list[str]) -> int:
    result = ensure_built(_say)
    what = f"built {', '.join(result.built)} in {result.seconds:.0f}s" if result.built else "all binaries cached"
    _say(f"lab build: {what}: {result.paths.bin_dir}")
    return 0


def _kubeconfig(_: list[str]) -> int:
    print(Lab.current().kubeconfig)
    return 0


def _kubectl(args: list[str]) -> int:
    lab = Lab.current()
    return subprocess.call([str(lab.kubectl_path), f"--kubeconfig={lab.kubeconfig}", *args])


def _split_command(args: list[str], what: str) -> tuple[str, list[str]]:
    if len(args) < 3 or args[1] != "--":
        raise LabError(f"usage: picket lab {what} -- COMMAND...")
    return args[0], args[2:]


def _exec(args: list[str]) -> int:
    target, argv = _split_command(args, "exec NAMESPACE/POD")
    namespace, _, pod = target.partition("/")
    if not namespace or not pod:
        raise LabError(f"expected NAMESPACE/POD, got {target!r}")
    return subprocess.call(["ip", "netns", "exec", Lab.current().pod_netns(namespace, pod), *argv])


def _node_exec(args: list[str]) -> int:
    node, argv = _split_command(args, "node-exec NODE")
    return subprocess.call(["ip", "netns", "exec", Lab.current().node_netns(node), *argv])


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "up": _up, "down": _down, "status": _status, "build": _build, "kubeconfig": _kubeconfig,
    "kubectl": _kubectl, "exec": _exec, "node-exec": _node_exec,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"picket lab: unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return command(argv[1:])
    except (LabError, BuildError) as err:
        print(f"picket lab {argv[0]}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"picket lab {argv[0]}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
