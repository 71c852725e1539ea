"""Drop counters of the agents, read from their Prometheus endpoints, for the demo's summaries.

``drop_counts`` fetches every node agent's metrics (from inside the node's network namespace,
where the DaemonSet's hostNetwork pod would serve them) and keeps the samples of the counter
families whose name mentions drops (packets, not bytes), keyed by (node, sample name, labels). ``format_drops``
prints the ones that grew between two readings.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from picket_lab.api import Lab
from picket_lab.deploy import agent_metrics

Counts = dict[tuple[str, str, str], float]


def parse_drops(node: str, text: str) -> Counts:
    out: Counts = {}
    for family in text_string_to_metric_families(text):
        if "drop" not in family.name:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket", "_sum", "_count")) or "bytes" in sample.name:
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[(node, sample.name, labels)] = float(sample.value)
    return out


def drop_counts(lab: Lab) -> Counts:
    out: Counts = {}
    for node in lab.nodes:
        out.update(parse_drops(node, agent_metrics(lab, node)))
    return out


def format_drops(after: Counts, before: Counts) -> str:
    grown = [(k, v - before.get(k, 0.0)) for k, v in sorted(after.items()) if v > before.get(k, 0.0)]
    if not grown:
        return "drops counted by the agents meanwhile: none"
    lines = ["drops counted by the agents meanwhile:"]
    lines += [f"  {node}: {name}{{{labels}}} +{delta:.0f}" for (node, name, labels), delta in grown]
    return "\n".join(lines)
