"""The kind tier's pure parts: capability check, cgroup remounts, runtime wrapper, node image stamps, IP families."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from picket_lab.kind import cluster, command, engine, nodefiles, rootfs

REPO = Path(__file__).resolve().parents[3]

MOUNTINFO = """\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
35 25 0:31 / /mnt/other rw,relatime - cgroup cgroup rw,pids
"""


def test_bounding_set() -> None:
    assert engine.bounding_set_lacks(24, "CapBnd:\t000001fffeffffff\n")  # this VM: no CAP_SYS_RESOURCE
    assert not engine.bounding_set_lacks(24, "CapBnd:\t000001ffffffffff\n")


def test_cgroup_hierarchies_are_mounted_again_where_they_were() -> None:
    mounts = engine.cgroup_mounts(MOUNTINFO)
    assert mounts == [("cgroup", "cpu", "/sys/fs/cgroup/cpu"), ("cgroup", "memory", "/sys/fs/cgroup/memory"),
                      ("cgroup", "name=systemd", "/sys/fs/cgroup/systemd"),
                      ("cgroup2", "nsdelegate", "/sys/fs/cgroup/unified")]
    script = engine.cgroup_script(mounts)
    assert script[0] == "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup"
    assert "mount -t cgroup -o name=systemd cgroup /sys/fs/cgroup/systemd" in script
    assert "mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup/unified" in script


def test_pure_cgroup2_host() -> None:
    mounts = engine.cgroup_mounts("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert engine.cgroup_script(mounts) == ["mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup"]


def _run_wrapper(tmp_path: Path, args: list[str]) -> list[str]:
    fake_runc = tmp_path / "runc"
    fake_runc.write_text(f"#!{sys.executable}\nimport sys\nprint(' '.join(sys.argv[1:]))\n")
    fake_runc.chmod(0o755)
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(engine.runtime_wrapper_source(sys.executable, str(fake_runc)))
    wrapper.chmod(0o755)
    out = subprocess.run([str(wrapper), *args], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_runtime_wrapper_drops_sys_resource_from_bundles_and_exec_processes(tmp_path: Path) -> None:
    caps = ["CAP_NET_ADMIN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {"process": {"capabilities": {"bounding": caps, "effective": caps}}}
    (bundle / "config.json").write_text(json.dumps(spec))
    args = ["--root", "/r", "create", "--bundle", str(bundle), "ctr-1"]
    assert _run_wrapper(tmp_path, args) == args  # runc gets the same arguments
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["capabilities"]["bounding"] == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh"], "capabilities": {"bounding": caps}}))
    _run_wrapper(tmp_path, ["exec", "--process", str(process), "ctr-1"])
    assert json.loads(process.read_text())["capabilities"]["bounding"] == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    untouched = tmp_path / "other.json"
    untouched.write_text(json.dumps({"capabilities": {"bounding": caps}}))
    _run_wrapper(tmp_path, ["state", "ctr-1"])
    assert json.loads(untouched.read_text())["capabilities"]["bounding"] == caps


def test_containerd_restricts_oom_score_only_when_asked() -> None:
    assert "restrict_oom_score_adj = true" in nodefiles.containerd_config(True)
    assert "restrict_oom_score_adj = false" in nodefiles.containerd_config(False)


def test_component_images_are_what_kubeadm_asks_for() -> None:
    images = nodefiles.component_images("v1.37.2")
    assert images["registry.k8s.io/etcd:3.7.0-0"] == "etcd"
    assert images["registry.k8s.io/pause:3.10.2"] == "pause"
    assert images["registry.k8s.io/kube-apiserver:v1.37.2"] == "kube-apiserver"


def test_rootfs_stamp_follows_the_package_list() -> None:
    before = rootfs.stamp("node")
    assert before == rootfs.stamp("node") and before != rootfs.stamp("python")
    assert os.path.basename(rootfs.image_ref("probe")).startswith("probe-rootfs:")


def test_dual_stack_config_is_the_single_stack_one_plus_kinds_dual_networking() -> None:
    single = yaml.safe_load((REPO / cluster.KIND_CONFIGS["ipv4"]).read_text())
    dual = yaml.safe_load((REPO / cluster.KIND_CONFIGS["dual"]).read_text())
    assert cluster.KIND_CONFIGS["ipv4"] == cluster.KIND_CONFIG == "manifests/kind/kind-config.yaml"
    assert dual["networking"] == {"ipFamily": "dual", "disableDefaultCNI": True,
                                  "podSubnet": "10.244.0.0/16,fd00:10:244::/56",
                                  "serviceSubnet": "10.96.0.0/16,fd00:10:96::/112"}
    rest = {k: v for k, v in dual.items() if k != "networking"}
    assert rest == {k: v for k, v in single.items() if k != "networking"}
    assert single["networking"] == {"disableDefaultCNI": True, "podSubnet": "10.244.0.0/16"}


@pytest.mark.parametrize(("printed", "family"), [
    ('["10.244.0.0/24"] ["10.244.1.0/24"] ["10.244.2.0/24"] ', "ipv4"),
    ('["10.244.0.0/24","fd00:10:244::/64"] ["10.244.1.0/24","fd00:10:244:1::/64"] ', "dual"),
    ('["fd00:10:244::/64"] ', "ipv6"),
    ("   ", None),
    ("", None),
])
def test_a_running_clusters_family_comes_from_its_pod_cidrs(printed: str, family: str | None) -> None:
    assert cluster.family_of(printed) == family


@pytest.mark.parametrize(("inspect", "ipv6"), [
    ("true 172.18.0.0/16 fc00:f853:ccd:e793::/64 \n", True),
    ("true fc00:f853:ccd:e793::/64 172.18.0.0/16 \n", True),
    ("false 172.18.0.0/16 \n", False),  # kind's fallback on an engine without IPv6: removed before a dual cluster
    ("true 172.18.0.0/16 \n", False),
    ("", False),
])
def test_the_kind_network_is_reused_for_a_dual_cluster_only_with_an_ipv6_subnet(inspect: str, ipv6: bool) -> None:
    assert cluster.network_has_ipv6(inspect) is ipv6


def test_kind_up_takes_only_known_ip_families(capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster.IP_FAMILIES == ("ipv4", "dual")
    with pytest.raises(SystemExit) as exited:
        command.main(["up", "--ip-family", "ipv6"])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(("status", "want"), [
    ({"podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00:10:244:1::5"}]},
     ("10.244.1.5", "fd00:10:244:1::5")),
    ({"podIP": "fd00:10:244:1::5", "podIPs": [{"ip": "fd00:10:244:1::5"}, {"ip": "10.244.1.5"}]},
     ("10.244.1.5", "fd00:10:244:1::5")),  # an IPv6-primary pod: Kind.ips is still IPv4
    ({"podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}, ("10.244.1.5", None)),
    ({"podIP": "10.244.1.5"}, ("10.244.1.5", None)),
])
def test_the_kind_harness_tells_a_pods_addresses_by_family(status: dict[str, object],
                                                           want: tuple[str, str | None]) -> None:
    from tests.kind.harness import pod_addresses

    assert pod_addresses({"metadata": {"name": "a"}, "status": status}) == want
