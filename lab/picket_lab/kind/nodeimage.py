"""picket's kind node image, assembled the way ``kind build node-image`` does, from parts made here.

1. Control-plane, etcd and pause images ``FROM scratch`` with one binary each (kube-proxy on the
   node root file system, since it runs iptables), tagged as kubeadm asks for them, saved to one tar.
2. A stage image: the ``node`` root file system (systemd, containerd, runc, CNI plugins, iptables)
   plus kubelet, kubeadm, kubectl, units, containerd's config, ``/kind/version`` and that tar.
3. A container of the stage image runs containerd just long enough to import the tar into its
   ``k8s.io`` namespace (labelled pinned, not unpacked: the CRI unpacks on first use, on the node's
   own /var), and is committed as the node image with the entrypoint restored.

The result is tagged ``picket-kind/node:<kubernetes>-<stamp>``; the stamp hashes every input (the
generated files, binaries' sizes and times, the root file system's stamp, the OOM-score setting),
so a warm engine skips all of it. Called by ``cluster.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from picket_lab.build import ensure_built
from picket_lab.kind import engine, nodefiles, rootfs
from picket_lab.kind.binaries import ensure_binaries, kind_binaries
from picket_lab.kind.layout import KindError, Layout
from picket_lab.paths import KUBERNETES_VERSION, build_paths

Progress = Callable[[str], None]
BUILDER = "picket-kind-nodebuild"


def _binaries() -> dict[str, Path]:
    lab, node = build_paths(), kind_binaries()
    found = {n: lab.binary(n) for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                                         "etcd")}
    found.update({n: node.node_binary(n) for n in ("kubelet", "kubeadm", "kube-proxy")})
    return found


def _context_files(restrict_oom: bool) -> dict[str, str]:
    return {
        "entrypoint": nodefiles.ENTRYPOINT,
        "kubelet.service": nodefiles.KUBELET_SERVICE,
        "kubelet.slice": nodefiles.KUBELET_SLICE,
        "10-kubeadm.conf": nodefiles.KUBELET_KUBEADM_DROPIN,
        "containerd.toml": nodefiles.containerd_config(restrict_oom),
        "version": KUBERNETES_VERSION + "\n",
        "default-storage.yaml": nodefiles.STORAGE_MANIFEST,
    }


def node_stamp(restrict_oom: bool, binaries: dict[str, Path]) -> str:
    h = hashlib.sha256()
    h.update(rootfs.stamp("node").encode())
    h.update(nodefiles.node_dockerfile("base").encode())
    h.update(nodefiles.PAUSE_C.encode())
    for name, text in sorted(_context_files(restrict_oom).items()):
        h.update(f"{name}\0{text}\0".encode())
    for name, path in sorted(binaries.items()):
        st = path.stat()
        h.update(f"{name}\0{st.st_size}\0{int(st.st_mtime)}\0".encode())
    return h.hexdigest()[:12]


def node_image_ref(restrict_oom: bool) -> str:
    return f"picket-kind/node:{KUBERNETES_VERSION}-{node_stamp(restrict_oom, _binaries())}"


def ensure_node_image(lay: Layout, progress: Progress) -> str:
    ensure_built(progress)
    ensure_binaries(progress)
    restrict_oom = engine.bounding_set_lacks(engine.CAP_SYS_RESOURCE)
    ref = node_image_ref(restrict_oom)
    if engine.docker(lay, "image", "inspect", ref, check=False).returncode == 0:
        return ref
    began = time.monotonic()
    progress(f"kind: building node image {ref}")
    base = rootfs.ensure_image(lay, lambda *a, **k: engine.docker(lay, *a, **k), "node", progress)
    bins = _binaries()
    with tempfile.TemporaryDirectory(prefix="picket-kind-node-") as tmp:
        work = Path(tmp)
        images_tar = _component_images(lay, work, base, bins, progress)
        ctx = work / "node"
        ctx.mkdir()
        for name in ("kubelet", "kubeadm", "kubectl"):
            _link_or_copy(bins[name], ctx / name)
        for name, text in _context_files(restrict_oom).items():
            (ctx / name).write_text(text)
        _link_or_copy(images_tar, ctx / "images.tar")
        (ctx / "Dockerfile").write_text(nodefiles.node_dockerfile(base))
        stage = f"{ref}-stage"
        engine.docker(lay, "build", "-q", "-t", stage, str(ctx))
    _import_and_commit(lay, stage, ref)
    engine.docker(lay, "rmi", stage, check=False)
    progress(f"kind: node image {ref} ready in {time.monotonic() - began:.0f}s")
    return ref


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def _component_images(lay: Layout, work: Path, node_base: str, bins: dict[str, Path], progress: Progress) -> Path:
    pause = work / "pause"
    (work / "pause.c").write_text(nodefiles.PAUSE_C)
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(pause), str(work / "pause.c")], check=True)
    sources = {**bins, "pause": pause}
    refs = nodefiles.component_images(KUBERNETES_VERSION)
    for ref, binary in refs.items():
        ctx = work / f"img-{binary}"
        ctx.mkdir()
        _link_or_copy(sources[binary], ctx / binary)
        if binary == "kube-proxy":
            dockerfile = f"FROM {node_base}\nCOPY {binary} /usr/local/bin/{binary}\n"
        elif binary == "pause":
            dockerfile = 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n'
        else:
            dockerfile = (f"FROM scratch\nCOPY {binary} /usr/local/bin/{binary}\n"
                          "ENV PATH=/usr/local/bin:/usr/bin:/bin\n")
        (ctx / "Dockerfile").write_text(dockerfile)
        progress(f"kind:   image {ref}")
        engine.docker(lay, "build", "-q", "-t", ref, str(ctx))
    out = work / "images.tar"
    engine.docker(lay, "save", "-o", str(out), *refs)
    return out


def _import_and_commit(lay: Layout, stage: str, ref: str) -> None:
    engine.docker(lay, "rm", "-f", BUILDER, check=False)
    engine.docker(lay, "run", "-d", "--name", BUILDER, "--privileged", "--entrypoint", "sleep", stage, "infinity")
    try:
        script = (
            "set -e\n"
            "containerd >/tmp/containerd.log 2>&1 &\n"
            "pid=$!\n"
            "for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done\n"
            "ctr -n k8s.io images import --no-unpack /kind/images/images.tar >/dev/null\n"
            "for ref in $(ctr -n k8s.io images ls -q); do ctr -n k8s.io images label \"$ref\" "
            "io.cri-containerd.pinned=pinned >/dev/null; done\n"
            "kill $pid; wait $pid || true\n"
            "rm -rf /kind/images /tmp/containerd.log\n"
        )
        proc = engine.docker(lay, "exec", BUILDER, "sh", "-c", script, check=False)
        if proc.returncode != 0:
            raise KindError(f"importing the component images into the node's containerd failed: {proc.stderr}")
        entry = json.dumps(["/usr/local/bin/entrypoint", "/sbin/init"])
        engine.docker(lay, "commit", "--change", f"ENTRYPOINT {entry}", "--change", 'CMD []', BUILDER, ref)
    finally:
        engine.docker(lay, "rm", "-f", BUILDER, check=False)
