"""The network-policy-api CRD (ClusterNetworkPolicy), from its release through the Go module proxy.

The CRD is not copied into this repository: ``crd_file()`` fetches the module
``sigs.k8s.io/network-policy-api@v0.2.0`` with ``go mod download`` (the ordinary Go client, cached
in the module cache, so offline once fetched) and returns its
``config/crd/<channel>/policy.networking.k8s.io_clusternetworkpolicies.yaml``. The ``experimental``
channel (the default) is the ``standard`` one plus the experimental fields (``nodes``,
``domainNames`` peers), so picket can answer those with a status condition instead of the API
server pruning them. ``apply_cluster_network_policy_crd(lab)`` installs it and waits until it is
established; the e2e ``deployed`` fixture does so before the operator starts (kopf watches the
kinds whose CRDs exist at its start). ``build_conformance`` / ``conformance_argv``: the same
module's conformance suite as one test binary and its command line, for the kind tier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from picket_lab.api import Lab
from picket_lab.build import GO_FALLBACKS
from picket_lab.deploy import wait_established

MODULE = "sigs.k8s.io/network-policy-api"
VERSION = "v0.2.0"
CRD_NAME = "clusternetworkpolicies.policy.networking.k8s.io"
CHANNELS = ("standard", "experimental")


def go_binary() -> str:
    go = shutil.which("go") or next((g for g in GO_FALLBACKS if os.access(g, os.X_OK)), None)
    if go is None:
        raise RuntimeError("the Go toolchain ('go') is needed for the network-policy-api module")
    return go


def module_dir(version: str = VERSION, timeout: float = 300) -> Path:
    """The extracted module in the Go module cache (downloaded through GOPROXY when missing)."""
    go = go_binary()
    with tempfile.TemporaryDirectory() as empty:  # outside any module: a plain download
        done = subprocess.run([go, "mod", "download", "-json", f"{MODULE}@{version}"], cwd=empty,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"})
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or not info.get("Dir"):
        raise RuntimeError(f"go mod download {MODULE}@{version} failed: {info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def crd_file(channel: str = "experimental", version: str = VERSION) -> Path:
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: expected one of {', '.join(CHANNELS)}")
    path = module_dir(version) / "config" / "crd" / channel / "policy.networking.k8s.io_clusternetworkpolicies.yaml"
    if not path.is_file():
        raise RuntimeError(f"{MODULE}@{version} has no {path.name} in config/crd/{channel}")
    return path


def apply_cluster_network_policy_crd(lab: Lab, channel: str = "experimental") -> None:
    lab.kubectl("apply", "--server-side", "-f", str(crd_file(channel)))
    wait_established(lab, [CRD_NAME])


# The upstream conformance suite (``conformance/`` of the same module and version). It needs real
# pods (agnhost:2.45, ``kubectl exec``), so it runs on the kind tier, not on the local cluster.
FEATURES = ("ClusterNetworkPolicy", "ClusterNetworkPolicyNamedPorts", "ClusterNetworkPolicyEgressNodePeers")
_WRAPPER = f"module picket.dev/labbuild/netpolconformance\n\ngo 1.26.0\n\nrequire {MODULE} {VERSION}\n"


def conformance_dir(version: str = VERSION) -> Path:
    """Where the suite's binary is built and kept (``<picket cache>/netpolapi-<version>/``)."""
    from picket_lab.paths import cache_root

    return cache_root() / f"netpolapi-{version}"


def build_conformance(work_dir: Path, timeout: float = 3600) -> Path:
    """``go test -c`` of ``sigs.k8s.io/network-policy-api/conformance`` (dependencies through the Go
    module proxy) into ``work_dir/conformance.test``; returns the binary."""
    go = go_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "go.mod").write_text(_WRAPPER)
    binary = work_dir / "conformance.test"
    done = subprocess.run(["nice", go, "test", "-c", "-o", str(binary), f"{MODULE}/conformance"], cwd=work_dir,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"})
    if done.returncode != 0 or not binary.is_file():
        raise RuntimeError(f"building the conformance suite failed: {done.stderr.strip()[-2000:]}")
    return binary


def conformance_argv(binary: Path, report: Path, features: tuple[str, ...] = FEATURES) -> list[str]:
    """The suite's command line for profile ``ClusterNetworkPolicy`` and ``features`` (run it with
    KUBECONFIG pointing at the cluster under test; its manifests are embedded in the binary),
    writing the conformance report (YAML) to ``report``."""
    return [str(binary), "-test.run", "TestConformanceProfiles", "-test.v", "-test.timeout", "60m",
            "--conformance-profiles=ClusterNetworkPolicy", f"--supported-features={','.join(features)}",
            "--organization=picket", "--project=picket", "--url=https://example.invalid/picket",
            "--version=dev", "--contact=picket",
            "--additional-info=scripts/cnp-conformance.sh on the kind tier (README, ClusterNetworkPolicy, Conformance)",
            f"--report-output={report}"]
