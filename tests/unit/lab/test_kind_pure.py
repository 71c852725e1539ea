"""The kind tier's pure parts: capability check, cgroup remounts, the runtime wrapper, node image stamps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from picket_lab.kind import engine, nodefiles, rootfs

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
