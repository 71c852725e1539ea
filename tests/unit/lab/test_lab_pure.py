"""Pure parts of the node runtime and topology: names, addresses, objects, the work queue, PKI."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from picket.apiclient import Credentials
from picket_lab import pki
from picket_lab.kubeconfig import client_cert_kubeconfig, credentials_from_kubeconfig, token_kubeconfig
from picket_lab.objects import Port, declared_ports, node_object, pod_running_status
from picket_lab.podaddrs import AddressesExhausted, Allocator
from picket_lab.topology import host_veth, is_lab_netns, node_spec, node_specs, pod_netns
from picket_lab.workqueue import WorkQueue


def make_pod(*ports: dict[str, object], uid: str = "u-1") -> dict[str, object]:
    return {"metadata": {"namespace": "x", "name": "a", "uid": uid},
            "spec": {"containers": [{"name": "main", "image": "img", "ports": list(ports)}]}}


def test_node_addressing_plan() -> None:
    nodes = node_specs(3)
    assert [(n.name, n.ip, n.pod_cidr) for n in nodes] == [
        ("pkt-node-1", "172.30.0.11", "10.244.1.0/24"),
        ("pkt-node-2", "172.30.0.12", "10.244.2.0/24"),
        ("pkt-node-3", "172.30.0.13", "10.244.3.0/24")]
    with pytest.raises(ValueError):
        node_spec(0)


def test_pod_names_are_deterministic_and_recognisable() -> None:
    a = pod_netns("x", "a", "uid-1")
    assert a == pod_netns("x", "a", "uid-1") != pod_netns("x", "a", "uid-2")
    assert is_lab_netns(a) and is_lab_netns("pkt-node-7") and is_lab_netns("pkt-lab")
    assert not is_lab_netns("pkt-m1") and not is_lab_netns("other")  # other helpers' pkt- namespaces are safe
    assert len(host_veth(a)) <= 15 and host_veth(a).startswith("pkt")


@pytest.mark.parametrize(("ports", "expected"), [
    ([{"containerPort": 80}], [Port("TCP", 80)]),
    ([{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}],
     [Port("TCP", 53), Port("UDP", 53)]),
    ([{"containerPort": 9, "protocol": "SCTP"}, {"containerPort": 0}, {"containerPort": "http"}], []),
])
def test_declared_ports(ports: list[dict[str, object]], expected: list[Port]) -> None:
    assert declared_ports(make_pod(*ports)) == expected


def test_running_status_reports_ips_conditions_and_containers() -> None:
    status = pod_running_status(make_pod(), "10.244.1.2", "172.30.0.11", "2026-01-01T00:00:00Z")["status"]
    assert status["phase"] == "Running" and status["podIPs"] == [{"ip": "10.244.1.2"}]
    assert status["hostIP"] == "172.30.0.11"
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "ContainersReady", "Initialized", "PodScheduled"}
    (container,) = status["containerStatuses"]
    assert container["ready"] and container["started"] and "running" in container["state"]


def test_node_object_carries_the_pod_cidr_and_a_ready_condition() -> None:
    node = node_object(node_spec(2), "2026-01-01T00:00:00Z")
    assert node["spec"]["podCIDR"] == "10.244.2.0/24"
    assert {"type": "InternalIP", "address": "172.30.0.12"} in node["status"]["addresses"]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def test_allocator_keeps_addresses_unique_reuses_wanted_and_exhausts() -> None:
    alloc = Allocator("10.244.1.0/29")  # hosts .1-.6; .1 is kept back
    got = [alloc.take(f"u{i}") for i in range(5)]
    assert got == [f"10.244.1.{i}" for i in range(2, 7)]
    assert alloc.take("u0") == "10.244.1.2"  # idempotent per uid
    with pytest.raises(AddressesExhausted):
        alloc.take("u9")
    alloc.release("u3")
    assert alloc.take("new", wanted="10.244.1.5") == "10.244.1.5"
    alloc.release("new")
    assert alloc.take("other", wanted="10.0.0.1") in {"10.244.1.5"}


def test_work_queue_never_hands_one_key_to_two_workers() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    assert queue.get(0.1) == "a"
    queue.add("a")  # re-added while processing: waits for done()
    assert queue.get(0.05) is None
    queue.done("a")
    assert queue.get(0.1) == "a"
    queue.done("a")
    assert queue.get(0.05) is None
    queue.add_after("b", 0.01)
    assert queue.get(2.0) == "b"


def test_pki_issues_verifiable_certificates_with_identities(tmp_path: Path) -> None:
    ca = pki.Authority.create(tmp_path)
    server = ca.issue_server("apiserver", "kube-apiserver", ("172.30.0.1", "127.0.0.1"), ("kubernetes",))
    client = ca.issue_client("admin", pki.ADMIN)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    srv = x509.load_pem_x509_certificate(server.cert.read_bytes())
    srv.verify_directly_issued_by(ca_cert)
    sans = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("172.30.0.1") in sans.get_values_for_type(x509.IPAddress)
    cli = x509.load_pem_x509_certificate(client.cert.read_bytes())
    assert cli.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert pki.Authority.load(tmp_path).cert_path == ca.cert_path


def test_kubeconfigs_round_trip(tmp_path: Path) -> None:
    ca, cert, key = (str(tmp_path / n) for n in ("ca.crt", "a.crt", "a.key"))
    creds = Credentials("https://172.30.0.1:6443", ca, cert, key)
    assert credentials_from_kubeconfig(client_cert_kubeconfig(tmp_path / "a", creds, "a")) == creds
    token = credentials_from_kubeconfig(token_kubeconfig(tmp_path / "t", creds.server, Path(ca), "tok", "t"))
    assert token.token == "tok" and token.cert_file is None
