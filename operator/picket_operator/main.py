"""``picket operator``: settings from flags and environment, then kopf, the elector and the publisher.

How the process is put together (``run``):

* kopf (main thread, asyncio) with an explicit registry (``handlers.register``), an explicit
  identity (this replica's; kopf would otherwise ask ``getpass.getuser()``, which raises for a uid
  without a passwd entry, such as 65532 in the image) and explicit settings: peering off
  (standalone; leader election is our Lease), cluster scanning off (no CRD/namespace discovery
  watches, so no RBAC for them), no progress or diff-base storage used (event handlers only),
  Events posted by ``events.py`` rather than kopf's log-to-event bridge.
* the elector thread (``leader.py``) when ``--leader-election``; otherwise this replica leads.
* the publisher thread (``publisher.py``), which writes only while leading.
* optionally a Prometheus endpoint (``metrics.py``).

Settings are read here once (``parse_settings``: flags, then ``POD_NAME``/``KUBECONFIG`` from the
environment, all problems reported together) and passed down; nothing else reads the environment.
Host endpoints' failsafe ports (``--failsafe-inbound`` / ``--failsafe-outbound``, else
``PICKET_FAILSAFE_INBOUND`` / ``PICKET_FAILSAFE_OUTBOUND``, else Calico's lists) are the same
setting the agent reads under the same names; manifests/ sets both from one ConfigMap.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from picket.failsafe import Failsafe, parse_failsafe

FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT = "PICKET_FAILSAFE_INBOUND", "PICKET_FAILSAFE_OUTBOUND"  # as the agent's

log = logging.getLogger("picket.operator")


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: Path | None  # None: in-cluster
    namespace: str
    leader_election: bool
    lease_name: str
    lease_duration: int
    lease_renew: float
    identity: str
    coalesce: float
    min_interval: float
    resync_seconds: float
    workers: int
    metrics_port: int
    log_level: str
    failsafe: Failsafe = field(default_factory=Failsafe)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picket operator", description="The picket kopf operator.")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--namespace", default="picket-system", help="namespace of the leader-election Lease")
    p.add_argument("--leader-election", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--lease-name", default="picket-operator")
    p.add_argument("--lease-duration", type=int, default=4, help="seconds (default 4)")
    p.add_argument("--lease-renew", type=float, default=1.0, help="seconds between renewals (default 1)")
    p.add_argument("--identity", help="this replica's name in the Lease (default: $POD_NAME, else host-pid)")
    p.add_argument("--coalesce", type=float, default=0.01, help="seconds to gather a burst of events")
    p.add_argument("--publish-interval", type=float, default=0.05, help="minimum seconds between syncs")
    p.add_argument("--resync-seconds", type=float, default=300.0)
    p.add_argument("--workers", type=int, default=8, help="parallel API writes")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (0: off)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--failsafe-inbound", help=f"host failsafe ports, e.g. tcp:22,udp:68 (default: ${FAILSAFE_ENV_IN}, "
                   "else Calico's)")
    p.add_argument("--failsafe-outbound", help=f"host failsafe ports, e.g. udp:53 (default: ${FAILSAFE_ENV_OUT}, "
                   "else Calico's)")
    return p


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> OperatorSettings:
    args = _parser().parse_args(list(argv))
    errors: list[str] = []
    kubeconfig = args.kubeconfig or (Path(env["KUBECONFIG"]) if env.get("KUBECONFIG") else None)
    if kubeconfig is not None and not kubeconfig.is_file():
        errors.append(f"--kubeconfig: no such file: {kubeconfig}")
    if kubeconfig is None and not env.get("KUBERNETES_SERVICE_HOST"):
        errors.append("--kubeconfig: not given and not running in a cluster (KUBERNETES_SERVICE_HOST unset)")
    if args.lease_duration < 2 or args.lease_renew <= 0 or args.lease_renew * 2 > args.lease_duration:
        errors.append("--lease-duration must be >= 2 s and at least twice --lease-renew")
    for name in ("coalesce", "publish_interval", "resync_seconds"):
        if getattr(args, name) < 0:
            errors.append(f"--{name.replace('_', '-')} must not be negative")
    if args.workers < 1:
        errors.append("--workers must be >= 1")
    if args.log_level.upper() not in logging.getLevelNamesMapping():
        errors.append(f"--log-level: unknown level {args.log_level!r}")
    failsafe = Failsafe()
    try:
        failsafe = parse_failsafe(
            args.failsafe_inbound if args.failsafe_inbound is not None else env.get(FAILSAFE_ENV_IN),
            args.failsafe_outbound if args.failsafe_outbound is not None else env.get(FAILSAFE_ENV_OUT),
        )
    except ValueError as exc:
        errors.append(f"--failsafe-inbound/--failsafe-outbound (or ${FAILSAFE_ENV_IN}/${FAILSAFE_ENV_OUT}): {exc}")
    if errors:
        raise SystemExit("picket operator: " + "; ".join(errors))
    identity = args.identity or env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return OperatorSettings(
        kubeconfig=kubeconfig,
        namespace=args.namespace,
        leader_election=args.leader_election,
        lease_name=args.lease_name,
        lease_duration=args.lease_duration,
        lease_renew=args.lease_renew,
        identity=identity,
        coalesce=args.coalesce,
        min_interval=args.publish_interval,
        resync_seconds=args.resync_seconds,
        workers=args.workers,
        metrics_port=args.metrics_port,
        log_level=args.log_level.upper(),
        failsafe=failsafe,
    )


def kopf_settings(identity: str) -> Any:
    import kopf

    settings = kopf.OperatorSettings()
    settings.peering.standalone = True  # leader election is our own Lease (leader.py)
    settings.peering.mandatory = False
    settings.scanning.disabled = True  # serve the resources found at start; no CRD/namespace watch
    settings.posting.enabled = False  # Events come from events.py, on the offending object only
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 0.1
    settings.networking.request_timeout = 30
    return settings


def run(settings: OperatorSettings) -> int:
    import kopf

    from picket.apiclient import KubeClient
    from picket_operator import handlers, login, metrics
    from picket_operator.compiler.incremental import IncrementalCompiler
    from picket_operator.publishing.events import EventPoster
    from picket_operator.publishing.intake import CompilerFeed
    from picket_operator.publishing.leader import Elector, LeaseSettings
    from picket_operator.publishing.policystatus import PolicyStatusWriter
    from picket_operator.publishing.writer import Publisher, PublisherSettings

    client = KubeClient(settings.kubeconfig, user_agent=f"picket-operator/{settings.identity}")
    feed = CompilerFeed(IncrementalCompiler(failsafe=settings.failsafe))
    poster = EventPoster(client, feed, settings.identity)
    stop = threading.Event()
    elector: Elector | None = None
    if settings.leader_election:
        lease = LeaseSettings(
            settings.namespace, settings.lease_name, settings.identity, settings.lease_duration, settings.lease_renew
        )
        elector = Elector(client, lease, on_change=lambda leading: _on_leadership(leading, publisher, poster,
                                                                                  statuses))
    is_leader = elector.is_leader if elector is not None else (lambda: True)
    statuses = PolicyStatusWriter(client, is_leader)  # ClusterNetworkPolicy status.conditions
    publisher = Publisher(
        client,
        feed,
        PublisherSettings(settings.coalesce, settings.min_interval, settings.resync_seconds, settings.workers),
        is_leader,
        after_sync=poster.sync,
    )
    feed.set_marker(publisher.mark)
    threads = [threading.Thread(target=_expect_initial, args=(client, feed, stop), name="initial", daemon=True),
               threading.Thread(target=publisher.run, args=(stop,), name="publisher", daemon=True),
               threading.Thread(target=statuses.run, args=(stop,), name="policy-status", daemon=True)]
    if elector is not None:
        threads.append(threading.Thread(target=elector.run, args=(stop,), name="elector", daemon=True))
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, feed, publisher, is_leader, poster)
    for t in threads:
        t.start()

    registry = kopf.OperatorRegistry()
    handlers.register(registry, feed)
    handlers.register_policy_status(registry, statuses)
    login.register(registry, client)
    log.info("picket operator %s starting (leader election %s); host failsafe ports in %s, out %s", settings.identity,
             "on" if elector else "off: this replica publishes", _ports(settings.failsafe.inbound),
             _ports(settings.failsafe.outbound))
    try:
        asyncio.run(
            kopf.operator(registry=registry, settings=kopf_settings(settings.identity), clusterwide=True,
                          standalone=True, identity=cast(Any, settings.identity))
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    return 0


def _expect_initial(client: Any, feed: Any, stop: threading.Event) -> None:
    """List every watched kind once (the keys the initial state must contain) and hand them to
    the feed; while it waits, forget keys that stopped existing before kopf's listing saw them."""
    from functools import partial

    from picket.apiclient import ApiError
    from picket_operator import handlers

    backoff = 0.5
    while not stop.is_set():
        try:
            feed.expect(handlers.initial_keys(client), partial(handlers.object_exists, client))
            break
        except ApiError as exc:
            log.warning("listing the watched kinds at start failed (%s); retrying in %.1fs", exc, backoff)
            stop.wait(backoff)
            backoff = min(5.0, backoff * 2)
    last = -1
    while not stop.is_set() and not feed.wait_ready(2.0):
        left = feed.unseen()
        if left == last:  # no progress for 2 s: some may have been deleted before kopf listed them
            feed.recheck()
        last = left


def _ports(ports: tuple[tuple[Any, int], ...]) -> str:
    return ",".join(f"{proto.value.lower()}:{port}" for proto, port in ports) or "none"


def _on_leadership(leading: bool, publisher: Any, poster: Any, statuses: Any = None) -> None:
    if leading:
        poster.reset()
        publisher.request_full_sync()
        if statuses is not None:
            statuses.reset()


def main(argv: Sequence[str]) -> int:
    settings = parse_settings(argv, os.environ)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kopf.objects", "kopf._core.engines.peering", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return run(settings)
