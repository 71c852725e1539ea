"""Prometheus metrics of the agent (``--metrics-port``); each metric is described in README.md (agent, Metrics).

Sync metrics are recorded by the ``SyncLoop`` (``record_sync``). Drop counts are not kept in
Python: at scrape time the collector reads the kernel's counters (``ip[6]tables-<backend>-save -c``)
of the DROP rule at the end of every ``PICKET-DROP-*`` chain (IPv4 and IPv6 tables summed), and
labels them with the endpoint, direction and policy that chain stands for (``Desired.drops``). Counters survive agent
restarts because unchanged chains are never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily

from picket_agent.kernel.applier import ApplyReport
from picket_agent.rendering.desired import Desired
from picket_agent.settings import AgentSettings


class Metrics:
    def __init__(self, settings: AgentSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.syncs = Counter("picket_agent_syncs", "Syncs by result (ok, error).", ["result"], registry=r)
        self.sync_seconds = Histogram("picket_agent_sync_duration_seconds", "Time one sync took (render + apply).",
                                      registry=r, buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.chains_written = Counter("picket_agent_chains_written", "PICKET-* chains (re)written in the kernel.",
                                      registry=r)
        self.repairs = Counter("picket_agent_drift_repairs", "Drift found in the kernel and repaired.", registry=r)
        self.endpoints = Gauge("picket_agent_endpoints", "Endpoints enforced on this node.", registry=r)
        self.skipped = Gauge("picket_agent_endpoints_skipped", "Endpoints whose rule set was bad (last good kept).",
                             registry=r)
        self.rules = Gauge("picket_agent_rules", "iptables rules in PICKET-* chains.", registry=r)
        self.ipsets = Gauge("picket_agent_ipsets", "picket-* ipsets.", registry=r)
        self.loop: Any = None
        r.register(_DropCollector(self))

    def start(self, loop: Any) -> None:
        self.loop = loop
        start_http_server(self.settings.metrics_port, self.settings.metrics_address, registry=self.registry)

    def record_sync(self, report: ApplyReport | None, elapsed: float, desired: Desired) -> None:
        self.syncs.labels("ok" if report is not None else "error").inc()
        self.sync_seconds.observe(elapsed)
        if report is None:
            return
        self.chains_written.inc(report.chains_written)
        self.repairs.inc(len(report.repairs))
        self.endpoints.set(len(desired.versions))
        self.skipped.set(len(desired.failed))
        self.rules.set(desired.rule_count())
        self.ipsets.set(len(desired.sets))


def drop_counts(desired: Desired, saved: Any, audit: bool = False) -> Iterator[tuple[tuple[str, str, str], int, int]]:
    """((endpoint, direction, policy), packets, bytes) for every drop chain, from kernel counters;
    ``saved`` is a table or a list of them (IPv4 and IPv6: a drop chain's counts are summed).
    ``audit``: audit mode's would-be drops instead (staged rule sets; never dropped)."""
    tables = saved if isinstance(saved, list) else [saved]
    for drop in desired.all_drops().values():
        if drop.audit is not audit:
            continue
        packets = octets = 0
        found = False
        for table in tables:
            rules = table.chains.get(drop.chain, [])
            if rules:
                (p, b), _ = rules[-1]  # the DROP rule ends the chain (after the optional NFLOG)
                packets, octets, found = packets + p, octets + b, True
        if found:
            yield (drop.endpoint, drop.direction.value.lower(), drop.policy), packets, octets


class _DropCollector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = ["endpoint", "direction", "policy"]
        packets = CounterMetricFamily("picket_dropped_packets", "Packets dropped, per endpoint, direction and policy "
                                      "(or tier default).", labels=labels)
        octets = CounterMetricFamily("picket_dropped_bytes", "Bytes dropped, same labels.", labels=labels)
        would = CounterMetricFamily("picket_audit_would_drop_packets", "Audit mode: packets a staged policy would "
                                    "have dropped (not dropped), per endpoint, direction and policy.", labels=labels)
        loop = self.metrics.loop
        desired = getattr(loop, "last_desired", None)
        if desired is not None:
            saved = loop.dataplane.read_all()
            for key, p, b in drop_counts(desired, saved):
                packets.add_metric(list(key), p)
                octets.add_metric(list(key), b)
            for key, p, _ in drop_counts(desired, saved, audit=True):
                would.add_metric(list(key), p)
        yield packets
        yield octets
        yield would

    def describe(self) -> list[Any]:
        return []
