"""Seed 002 end to end: who can scrape each node's agent metrics (port 9091) under Calico policy.

On the local cluster, each node's agent serves Prometheus metrics on 9091 in the node's network
namespace (the ``deployed`` fixture starts it with ``--metrics-port 9091``, bound on every node
address), as calico-node does in the seed. The test adds a listener on 8080 (unrelated node
traffic) and one on 22 (SSH-like, a failsafe port) in every node namespace, creates a HostEndpoint
per lab node with the seed's labels (``running-calico: "true"``, ``interfaceName: eth0``,
``expectedIPs``: the node's lab address), and applies the seed's documents as written:

* deny-list: ``1-default-host-policy.yaml``, the host endpoints, ``3-calico-prometheus-policy.yaml``
  (then ``kubectl label pod ... calico-prometheus-access=true`` on one pod per node): only the
  labelled pods scrape, 8080 and 22 stay open to everyone, and the agents keep syncing (the label
  change made after the host policy is in place is enforced: their API link still works);
* allow-list: the host endpoints alone (only failsafe 22 open), then the allow-list's
  ``2-calico-prometheus-policy.yaml``: labelled pods scrape, 8080 is closed, 22 stays open; then a
  GlobalNetworkSet labelled ``calico-prometheus-access: "true"`` holding an unlabelled pod's /32
  lets that pod scrape too.

Each step compares WHOLE matrices (sources: the model's pods on both nodes; destinations: every
node's host address, per port) three ways: live netcat probes == a hand-written expectation ==
the offline prediction (``compile_cluster`` over the live objects, Calico ones included). The
9091 column is also fetched with an HTTP GET (curl inside the pod's namespace) and must agree.
The Calico objects and listeners are removed afterwards; the Calico CRDs belong to the session's
``deployed`` fixture (the operator watches those kinds from its start), so they stay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from picket.evaluating import connection_allowed
from picket.model import Protocol
from picket_lab import clusterfiles as labmodel
from picket_lab.api import Lab
from picket_lab.deploy import REPO, apply_calico_crds
from picket_lab.probing import Matrix, differences, probe
from tests.e2e.harness import E2E, MODEL_PODS

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

SEED = REPO / "examples" / "calico"
PORTS = (9091, 8080, 22)
CALICO_KINDS = (("globalnetworkpolicies", "GlobalNetworkPolicy", False), ("networkpolicies", "NetworkPolicy", True),
                ("hostendpoints", "HostEndpoint", False), ("globalnetworksets", "GlobalNetworkSet", False),
                ("networksets", "NetworkSet", True))
DEADLINE = 40.0
ACCESS = "calico-prometheus-access"


def host_endpoints(lab: Lab) -> str:
    """The seed's host-endpoints.yaml, written for the lab's nodes."""
    docs = [{"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
             "metadata": {"name": f"{node}.eth0", "labels": {"running-calico": "true"}},
             "spec": {"node": node, "interfaceName": "eth0", "expectedIPs": [lab.node_ip(node)]}}
            for node in lab.nodes]
    return yaml.safe_dump_all(docs)


def seed(approach: str, name: str) -> str:
    return (SEED / approach / name).read_text()


class Scrape:
    """Probes from pods to node hosts, and the offline prediction of the same."""

    def __init__(self, e2e: E2E, sources: list[str]) -> None:
        self.e2e, self.lab, self.sources = e2e, e2e.lab, sources
        self.targets = {t.key: t for t in labmodel.targets(self.lab, sources)}
        self.hosts = {f"{node}.eth0": self.lab.node_ip(node) for node in self.lab.nodes}
        self.columns = [f"{host}:{port}" for host in self.hosts for port in PORTS]

    def live(self) -> Matrix:
        cells = [(s, c) for s in self.sources for c in self.columns]

        def one(cell: tuple[str, str]) -> bool:
            host, port = cell[1].rsplit(":", 1)
            return probe(self.targets[cell[0]], self.hosts[host], "TCP", int(port), timeout=1.0)

        with ThreadPoolExecutor(24) as pool:
            results = list(pool.map(one, cells))
        out: Matrix = {s: {} for s in self.sources}
        for (s, c), ok in zip(cells, results, strict=True):
            out[s][c] = ok
        return out

    def http(self) -> Matrix:
        """An HTTP GET of /metrics on 9091 of every host from every source (curl in the pod)."""
        cells = [(s, h) for s in self.sources for h in self.hosts]

        def one(cell: tuple[str, str]) -> bool:
            url = f"http://{self.hosts[cell[1]]}:9091/metrics"
            done = self.lab.exec_in_pod(cell[0], ["curl", "-s", "-m", "2", url], timeout=10)
            return done.returncode == 0 and "picket_agent" in done.stdout

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, cells))
        out: Matrix = {s: {} for s in self.sources}
        for (s, h), ok in zip(cells, results, strict=True):
            out[s][f"{h}:9091"] = ok
        return out

    def predicted(self) -> Matrix:
        from picket_operator.compiler.compiling import compile_cluster

        compiled = compile_cluster(labmodel.live_objects(self.e2e.kube) + calico_objects(self.e2e))
        out: Matrix = {s: {} for s in self.sources}
        for s in self.sources:
            src = compiled.endpoints.get(s)
            for column in self.columns:
                host, port = column.rsplit(":", 1)
                dst = compiled.endpoints.get(f"host/{host}")
                out[s][column] = connection_allowed(src, dst, self.targets[s].ip, self.hosts[host], Protocol.TCP,
                                                    int(port), compiled.peer_sets)[0]
        return out

    def want(self, allowed: Callable[[str, int], bool]) -> Matrix:
        """Hand-written: ``allowed(source, port)``, the same for every node's host."""
        return {s: {c: allowed(s, int(c.rsplit(":", 1)[1])) for c in self.columns} for s in self.sources}

    def expect(self, allowed: Callable[[str, int], bool], step: str) -> None:
        """Poll until live == hand-written == predicted (whole matrices); then the HTTP GETs agree."""
        want = self.want(allowed)
        started = time.monotonic()
        while True:
            live, predicted = self.live(), self.predicted()
            if not differences(live, want) and not differences(predicted, want):
                break
            if time.monotonic() - started > DEADLINE:
                dead = self.e2e.deployment.check_alive()
                pytest.fail(f"{step}: not as expected within {DEADLINE:.0f}s; dead processes: {dead}\n"
                            + "\n".join([f"live: {d}" for d in differences(live, want)]
                                        + [f"offline prediction: {d}" for d in differences(predicted, want)]))
            time.sleep(0.5)
        http_want = {s: {c: v for c, v in row.items() if c.endswith(":9091")} for s, row in want.items()}
        wrong = differences(self.http(), http_want)
        assert not wrong, f"{step}: HTTP GET /metrics: {wrong}"


def calico_objects(e2e: E2E) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for plural, kind, _ in CALICO_KINDS:
        for item in e2e.kube.get(f"/apis/projectcalico.org/v3/{plural}").get("items", []):
            out.append({"apiVersion": "projectcalico.org/v3", "kind": kind, **item})
    return out


@pytest.fixture
def listeners(lab: Lab) -> Iterator[None]:
    """TCP 8080 (unrelated node traffic) and 22 (SSH-like) served in every node's namespace."""
    spawned = [lab.spawn(f"pkt-seed002-{node}-{port}", ["socat", f"TCP-LISTEN:{port},fork,reuseaddr", "PIPE"],
                         node=node) for node in lab.nodes for port in (8080, 22)]
    try:
        deadline = time.monotonic() + 10
        while not all(_listening(lab, node, port) for node in lab.nodes for port in (8080, 22)):
            assert time.monotonic() < deadline, "listeners on 8080/22 in the node namespaces never came up"
            time.sleep(0.1)
        yield
    finally:
        for s in spawned:
            s.stop()


def _listening(lab: Lab, node: str, port: int) -> bool:
    done = lab.exec_in_node(node, ["ss", "-Htln", f"sport = :{port}"], timeout=5)
    return bool(done.stdout.strip())


@pytest.fixture
def scrape(e2e: E2E, listeners: None) -> Iterator[Scrape]:
    apply_calico_crds(e2e.lab)  # already there (the session's deployed fixture): idempotent
    s = Scrape(e2e, list(e2e_model_pods(e2e)))
    try:
        yield s
    finally:
        _remove_calico(e2e)


def e2e_model_pods(e2e: E2E) -> list[str]:
    """The model's pods (x, y, z; on both nodes): the sources of every matrix."""
    return [k for k in labmodel.pod_keys(labmodel.live_objects(e2e.kube)) if k in MODEL_PODS]


def _remove_calico(e2e: E2E) -> None:
    """Every Calico object left (the test's own; nothing else in the lab uses these kinds)."""
    for obj in calico_objects(e2e):
        meta = obj["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        plural = next(p for p, k, _ in CALICO_KINDS if k == obj["kind"])
        e2e.kubectl("delete", "--ignore-not-found", f"{plural}.projectcalico.org", meta["name"], *where)


def node_of(e2e: E2E) -> dict[str, str]:
    out = {}
    for obj in labmodel.live_objects(e2e.kube):
        meta = obj.get("metadata") or {}
        if obj["kind"] == "Pod":
            out[f"{meta.get('namespace')}/{meta.get('name')}"] = str((obj.get("spec") or {}).get("nodeName"))
    return out


def pick(e2e: E2E, sources: list[str]) -> tuple[set[str], str]:
    """One pod per node to label (the 'Prometheus' pods), and an unlabelled pod of the second node."""
    nodes = node_of(e2e)
    labelled = {next(k for k in sources if nodes[k] == node) for node in e2e.lab.nodes}
    other = next(k for k in sources if k not in labelled and nodes[k] == e2e.lab.nodes[-1])
    assert len(labelled) == len(e2e.lab.nodes) >= 2, "the scenario needs pods on two nodes"
    return labelled, other


def label(e2e: E2E, keys: set[str]) -> None:
    for key in sorted(keys):
        namespace, name = key.split("/")
        e2e.label("pod", name, f"{ACCESS}=true", namespace=namespace)


def test_deny_list_only_labelled_pods_scrape_and_other_node_traffic_flows(e2e: E2E, scrape: Scrape) -> None:
    labelled, _ = pick(e2e, scrape.sources)
    everything: Callable[[str, int], bool] = lambda s, port: True  # noqa: E731

    e2e.apply(seed("deny-list", "1-default-host-policy.yaml"))
    scrape.expect(everything, "default-host policy alone (no host endpoints yet)")
    e2e.apply(host_endpoints(e2e.lab))
    scrape.expect(everything, "host endpoints under the default-host policy: no drop in connectivity")
    e2e.apply(seed("deny-list", "3-calico-prometheus-policy.yaml"))
    scrape.expect(lambda s, port: port != 9091, "restrict policy, nobody labelled: 9091 closed, the rest open")
    label(e2e, labelled)  # the agents must still sync from the API to see this
    scrape.expect(lambda s, port: port != 9091 or s in labelled, "labelled pods scrape; 8080 and 22 flow")
    assert not e2e.deployment.check_alive(), "an agent or the operator died under the host policy"


def test_allow_list_failsafe_stays_open_and_a_network_set_grants_a_cidr(e2e: E2E, scrape: Scrape) -> None:
    labelled, other = pick(e2e, scrape.sources)
    label(e2e, labelled)

    e2e.apply(host_endpoints(e2e.lab))
    scrape.expect(lambda s, port: port == 22, "host endpoints, no policy: only failsafe 22")
    e2e.apply(seed("allow-list", "2-calico-prometheus-policy.yaml"))
    scrape.expect(lambda s, port: port == 22 or (port == 9091 and s in labelled),
                  "allow policy: labelled pods scrape, 8080 denied, 22 open")
    ip = scrape.targets[other].ip
    e2e.apply(yaml.safe_dump({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
                              "metadata": {"name": "calico-prometheus-set", "labels": {ACCESS: "true"}},
                              "spec": {"nets": [f"{ip}/32"]}}))
    scrape.expect(lambda s, port: port == 22 or (port == 9091 and (s in labelled or s == other)),
                  f"GlobalNetworkSet with {ip}/32: {other} scrapes without the label")
    assert not e2e.deployment.check_alive(), "an agent or the operator died under the host policy"

