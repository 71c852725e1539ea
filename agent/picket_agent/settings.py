"""``AgentSettings``: every knob of the agent, parsed once in ``main`` from flags and env.

``parse_settings(argv, environ)`` validates everything and raises ``SettingsError`` listing all
problems at once. Nothing else in the agent reads ``os.environ``. Environment variables (the
DaemonSet sets them): ``NODE_NAME`` (``--node``), ``PICKET_METRICS_PORT``, ``PICKET_LOG_DROPS``,
``PICKET_FAILSAFE_INBOUND`` / ``PICKET_FAILSAFE_OUTBOUND`` (``--failsafe-*``; the operator reads
the same two, and manifests/ sets both from the ConfigMap ``picket-failsafe``),
``PICKET_IPTABLES_BACKEND`` (``--iptables-backend``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from picket.failsafe import DEFAULT_INBOUND, DEFAULT_OUTBOUND, FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT
from picket_agent.rendering.desired import RenderSettings


class SettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AgentSettings:
    rules_file: Path | None = None
    once: bool = False
    node: str = ""
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_address: str = "0.0.0.0"
    resync_seconds: float = 30.0
    min_sync_interval: float = 0.1  # bound on the sync rate; submits in between coalesce
    max_backoff: float = 30.0
    cleanup: bool = False
    print_only: bool = False
    kubeconfig: str = ""
    xtables_lock: str = "/run/xtables.lock"
    pod_network: str = "off"  # off | auto | on (podnetfeed.py)
    cni_conf_dir: str = "/etc/cni/net.d"
    iptables_backend: str = "auto"  # auto (detected as kube-proxy does), legacy or nft
    render: RenderSettings = field(default_factory=RenderSettings)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picket agent", description="Enforce compiled rule sets on this node.")
    p.add_argument("--rules", type=Path, help="Compiled JSON/YAML from `picket compile --format json`")
    p.add_argument("--once", action="store_true", help="apply once and exit (the rules stay enforced)")
    p.add_argument("--node", help="only this node's endpoints (default: $NODE_NAME; all when unset)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (0: off)")
    p.add_argument("--metrics-address", default="0.0.0.0")
    p.add_argument("--resync-seconds", type=float, default=30.0, help="re-read the kernel and repair drift")
    p.add_argument("--min-sync-interval", type=float, default=0.1)
    p.add_argument("--log-drops", action="store_true", help="NFLOG every drop and print a readable line")
    p.add_argument("--nflog-group", type=int, default=100)
    p.add_argument("--failsafe-inbound", help=f"comma list of proto:port (default: ${FAILSAFE_ENV_IN}, else Calico's)")
    p.add_argument("--failsafe-outbound",
                   help=f"comma list of proto:port (default: ${FAILSAFE_ENV_OUT}, else Calico's)")
    p.add_argument("--host-apply-on-forward", action="store_true", help="host policy also on forwarded traffic")
    p.add_argument("--cleanup", action="store_true", help="remove every picket chain, hook and ipset, then exit")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the desired state, touch nothing")
    p.add_argument("--kubeconfig", default="", help="API mode (no --rules): kubeconfig, or in-cluster when empty")
    p.add_argument("--xtables-lock", default="/run/xtables.lock")
    p.add_argument("--pod-network", choices=("off", "auto", "on"), default="off",
                   help="API mode: provide the pod network (ptp CNI configuration, routes to other nodes' "
                   "podCIDRs); auto: only where no other CNI is configured")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d")
    p.add_argument("--iptables-backend", choices=["auto", "legacy", "nft"],
                   help="where picket's chains go (default: $PICKET_IPTABLES_BACKEND, else auto: as kube-proxy)")
    return p


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> AgentSettings:
    args = _parser().parse_args(list(argv))
    problems: list[str] = []
    metrics = args.metrics_port if args.metrics_port is not None else _int(environ, "PICKET_METRICS_PORT", problems)
    if not 0 <= metrics <= 65535:
        problems.append(f"--metrics-port {metrics}: must be 0..65535")
    if args.resync_seconds <= 0:
        problems.append("--resync-seconds must be positive")
    if args.min_sync_interval < 0:
        problems.append("--min-sync-interval must not be negative")
    if not 0 <= args.nflog_group <= 65535:
        problems.append("--nflog-group must be 0..65535")
    if args.rules is not None and not args.rules.is_file():
        problems.append(f"--rules {args.rules}: no such file")
    if args.once and args.rules is None and not args.cleanup:
        problems.append("--once needs --rules")
    if args.pod_network != "off" and (args.rules is not None or not (args.node or environ.get("NODE_NAME"))):
        problems.append("--pod-network needs API mode (no --rules) and --node (or $NODE_NAME)")
    inbound_text = args.failsafe_inbound if args.failsafe_inbound is not None else environ.get(FAILSAFE_ENV_IN)
    outbound_text = args.failsafe_outbound if args.failsafe_outbound is not None else environ.get(FAILSAFE_ENV_OUT)
    inbound = _ports(inbound_text, DEFAULT_INBOUND, "--failsafe-inbound", problems)
    outbound = _ports(outbound_text, DEFAULT_OUTBOUND, "--failsafe-outbound", problems)
    backend = args.iptables_backend or environ.get("PICKET_IPTABLES_BACKEND", "") or "auto"
    if backend not in ("auto", "legacy", "nft"):
        problems.append(f"$PICKET_IPTABLES_BACKEND {backend!r}: expected auto, legacy or nft")
    if problems:
        raise SettingsError(problems)
    log_drops = args.log_drops or environ.get("PICKET_LOG_DROPS", "") in ("1", "true", "yes")
    render = RenderSettings(args.nflog_group, log_drops, inbound, outbound, args.host_apply_on_forward)
    return AgentSettings(
        rules_file=args.rules, once=args.once, node=args.node or environ.get("NODE_NAME", ""),
        metrics_port=metrics, metrics_address=args.metrics_address, resync_seconds=args.resync_seconds,
        min_sync_interval=args.min_sync_interval, cleanup=args.cleanup, print_only=args.print_only,
        kubeconfig=args.kubeconfig, xtables_lock=args.xtables_lock, pod_network=args.pod_network,
        cni_conf_dir=args.cni_conf_dir, iptables_backend=backend, render=render,
    )


def _int(environ: Mapping[str, str], name: str, problems: list[str]) -> int:
    try:
        return int(environ.get(name, "0") or "0")
    except ValueError:
        problems.append(f"${name}: not a number")
        return 0


def _ports(text: str | None, default: tuple[str, ...], flag: str, problems: list[str]) -> tuple[str, ...]:
    if text is None:
        return default
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        proto, _, port = item.partition(":")
        if proto.lower() not in ("tcp", "udp", "sctp") or not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"{flag}: {item!r} is not proto:port")
            continue
        out.append(f"{proto.lower()}:{int(port)}")
    return tuple(out)
