"""Seed 002 ("Secure Calico Prometheus endpoints") as cluster files: who can scrape which host.

``examples/calico/cluster-{deny,allow}-list.yaml`` hold two nodes as HostEndpoints (the seed's
labels), pods with and without ``calico-prometheus-access: "true"``, the GlobalNetworkSet and the
guide's policies. Each pin lists the BLOCKED (source, destination) pairs of ``picket matrix``;
every other pair must be allowed. Worked out by hand from the guide and Calico's reference:

* deny-list: ``default-host`` (order 5000) allows all host traffic; ``restrict-calico-node-
  prometheus`` (order 500) denies TCP 9091 from anything not labelled, hosts included (they do
  not carry the label). Other host traffic (8080) keeps flowing.
* allow-list: hosts deny everything but the failsafe ports, in and out; order 500 allows 9091 (and
  Typha's 9093) from labelled sources only. Failsafe outbound has no 22, so hosts cannot SSH out.
* both: the kube-controllers policy selects that pod for ingress, so every port its rules do not
  allow ends in the tier's deny (Calico's end-of-tier drop; in the deny-list version that is
  every port, 9094 included, since its only rule is a Deny). It is a namespaced NetworkPolicy
  without ``namespaceSelector``, so its source selector only matches pods of calico-system: the
  labelled prometheus pod in monitoring cannot reach 9094 in the allow-list version either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from picket.evaluating import connection_allowed
from picket.model import Compiled, PeerSetKind, Protocol
from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.commands.matrix import main as matrix_main
from picket_operator.compiler.compiling import compile_cluster
from tests.unit.operator.compiler.calico.oracle import Entity, Oracle, World, entities_of

CALICO = Path(__file__).resolve().parents[4] / "examples" / "calico"
KC, CLIENT, WEB = "calico-system/calico-kube-controllers", "default/client", "default/web"
PROM = "monitoring/prometheus"
MASTER, NODE = "host/kubeadm-master.eth0", "host/kubeadm-node-0.eth0"
PODS, HOSTS = [KC, CLIENT, WEB, PROM], [MASTER, NODE]
EVERYONE = PODS + HOSTS
UNLABELLED = [KC, CLIENT, WEB]


def to(destinations: list[str], sources: list[str]) -> set[tuple[str, str]]:
    return {(s, d) for d in destinations for s in sources if s != d}


HOST_TO_HOST = {(MASTER, NODE), (NODE, MASTER)}
PINNED: dict[tuple[str, int, str], set[tuple[str, str]]] = {
    ("deny-list", 9091, "TCP"): to(HOSTS, UNLABELLED) | HOST_TO_HOST | to([KC], EVERYONE),
    ("deny-list", 8080, "TCP"): to([KC], EVERYONE),  # unrelated host traffic keeps flowing
    ("deny-list", 9094, "TCP"): to([KC], EVERYONE),
    ("allow-list", 9091, "TCP"): to(HOSTS, UNLABELLED) | to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    ("allow-list", 9093, "TCP"): to(HOSTS, UNLABELLED) | to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    ("allow-list", 8080, "TCP"): to(HOSTS, EVERYONE) | to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    # The kube-controllers policy is namespaced: its source selector only sees calico-system.
    ("allow-list", 9094, "TCP"): to(HOSTS, EVERYONE) | to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    # Failsafe: inbound TCP 22 reaches every host; outbound 22 is not failsafe, so hosts cannot SSH out.
    ("allow-list", 22, "TCP"): to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    ("allow-list", 68, "UDP"): to(EVERYONE, HOSTS) | to([KC], EVERYONE),
    ("allow-list", 53, "UDP"): to(HOSTS, EVERYONE) | to([KC], EVERYONE),  # DNS out of a host is failsafe
}


def cluster(approach: str) -> Path:
    return CALICO / f"cluster-{approach}.yaml"


def run_matrix(capsys: pytest.CaptureFixture[str], path: Path, port: int, protocol: str, *extra: str) -> Any:
    assert matrix_main(["--cluster", str(path), "--port", str(port), "--protocol", protocol, "--format", "json",
                        *extra]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no problems: every document of the seed compiles
    return json.loads(out)


@pytest.mark.parametrize(("approach", "port", "protocol"), sorted(PINNED))
def test_seed_002_matrix(approach: str, port: int, protocol: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_matrix(capsys, cluster(approach), port, protocol)
    assert list(data) == ["port", "protocol", "pods", "allowed"]
    assert data["pods"] == EVERYONE  # pods first, then host endpoints as host/<name>
    got = {(s, d) for s in data["pods"] for d in data["pods"] if not data["allowed"][s][d]}
    assert got == PINNED[(approach, port, protocol)]
    oracle, ips = calico_oracle(approach)
    assert {(s, d) for s in EVERYONE for d in EVERYONE
            if s != d and not oracle.allowed(ips[s], ips[d], port, protocol)} == PINNED[(approach, port, protocol)]


def calico_oracle(approach: str) -> tuple[Oracle, dict[str, str]]:
    """The Calico-semantics oracle over the same file, and every endpoint's address by key."""
    docs = load_cluster_file(cluster(approach))
    pods = [Entity(d["metadata"]["name"], d["metadata"]["namespace"], d["metadata"].get("labels") or {},
                   (d["status"]["podIP"],)) for d in docs if d["kind"] == "Pod"]
    namespaces = {d["metadata"]["name"]: {"kubernetes.io/metadata.name": d["metadata"]["name"]}
                  for d in docs if d["kind"] == "Namespace"}
    policies = [d for d in docs if d["kind"] in ("GlobalNetworkPolicy", "NetworkPolicy")]
    entities = pods + entities_of(docs)
    ips = {(f"{e.namespace}/{e.name}" if not e.host else f"host/{e.name}"): e.ips[0] for e in entities if e.ips}
    return Oracle(World(entities, namespaces, policies)), ips


@pytest.mark.parametrize("approach", ["deny-list", "allow-list"])
def test_cluster_files_carry_the_seed_documents_unchanged(approach: str) -> None:
    calico = [d for d in load_cluster_file(cluster(approach)) if d["apiVersion"] == "projectcalico.org/v3"]
    # In the deny-list, the Typha policy reuses the 9091 policy's name: left out (see the file's header).
    files = [p for p in sorted((CALICO / approach).glob("*.yaml")) if p.name != "5-typha-prometheus-policy.yaml"]
    assert calico == [d for p in files for d in yaml.safe_load_all(p.read_text()) if d]


def verdict_from(compiled: Compiled, src_ip: str, dst: str, port: int) -> bool:
    """A source outside the cluster (no rule set of its own) reaching an endpoint."""
    target = compiled.endpoints[dst]
    ok, _, _ = connection_allowed(None, target, src_ip, target.endpoint.ips[0], Protocol.TCP, port,
                                  compiled.peer_sets)
    return ok


@pytest.mark.parametrize(
    ("approach", "src_ip", "allowed"),
    [("deny-list", "172.15.0.7", True), ("deny-list", "172.101.0.200", True), ("deny-list", "172.16.0.7", False),
     ("allow-list", "172.15.0.101", True), ("allow-list", "172.15.0.102", False)],
)
def test_global_network_set_grants_its_cidrs(approach: str, src_ip: str, allowed: bool) -> None:
    compiled = compile_cluster(load_cluster_file(cluster(approach)))
    assert verdict_from(compiled, src_ip, MASTER, 9091) is allowed
    assert verdict_from(compiled, src_ip, NODE, 9091) is allowed


def test_network_set_and_pods_share_one_hash_net_peer_set() -> None:
    compiled = compile_cluster(load_cluster_file(cluster("deny-list")))
    wanted = 'sel(calico(calico-prometheus-access == "true"))'
    (labelled,) = [s for s in compiled.peer_sets.values() if s.description == wanted]
    assert labelled.kind is PeerSetKind.NET
    assert labelled.members == ("10.244.1.10/32", "172.101.0.0/24", "172.15.0.0/24")
    allow = compile_cluster(load_cluster_file(cluster("allow-list")))
    (labelled,) = [s for s in allow.peer_sets.values() if s.description == wanted]
    assert (labelled.kind, labelled.members) == (PeerSetKind.IP, ("10.244.1.10", "172.15.0.101"))  # a /32 is an IP


DENY_ALL_HOSTS = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                  "metadata": {"name": "deny-all-hosts"},
                  "spec": {"selector": 'running-calico == "true"', "order": 1,
                           "ingress": [{"action": "Deny"}], "egress": [{"action": "Deny"}]}}


@pytest.mark.parametrize(("port", "allowed"), [(22, True), (6443, True), (9091, False), (8080, False)])
def test_failsafe_ports_stay_reachable_under_a_deny_all_host_policy(port: int, allowed: bool) -> None:
    compiled = compile_cluster([*load_cluster_file(cluster("deny-list")), DENY_ALL_HOSTS])
    for src in (PROM, WEB):
        s, d = compiled.endpoints[src], compiled.endpoints[NODE]
        ok, _, ingress = connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], Protocol.TCP, port,
                                            compiled.peer_sets)
        assert ok is allowed, (src, port, ingress.reason)


def test_failsafe_ports_are_configurable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = run_matrix(capsys, cluster("allow-list"), 2222, "TCP", "--failsafe-inbound", "tcp:2222")
    assert all(data["allowed"][WEB][h] for h in HOSTS)
    data = run_matrix(capsys, cluster("allow-list"), 22, "TCP", "--failsafe-inbound", "tcp:2222")
    assert not any(data["allowed"][WEB][h] for h in HOSTS)
    assert matrix_main(["--cluster", str(cluster("allow-list")), "--failsafe-inbound", "tcp:nope"]) == 2
    assert "failsafe port 'tcp:nope'" in capsys.readouterr().err
