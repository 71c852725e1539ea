"""README.md's "Deploy to kind" steps 1-7, executed verbatim: the section cannot drift from what works.

The bash blocks of the section (up to the ``picket kind`` part, which describes this tier itself)
are read from README.md and run in order, in one bash, where the tier's kind, kubectl and docker
are on PATH (inside the engine's namespace). Two things a user's machine has that this one does
not are supplied around them, never by editing them: ``KIND_NODE_IMAGE`` names the node image
built here, and the ``busybox:1.36`` stand-in is loaded into the nodes right after the cluster
exists (a user's nodes pull it). Any existing cluster ``picket`` is deleted first; the README's
last step deletes the one it made. The output must show all pairs open, then only c -> a:80
dropped, the agent's drop line and its metrics.
"""

from __future__ import annotations

import re

import pytest

from picket_lab.kind import cluster, images, nodeimage
from picket_lab.kind.layout import CLUSTER, Layout
from tests.kind.harness import REPO

pytestmark = [pytest.mark.kind, pytest.mark.timeout(1200)]
SECTION = re.compile(r"^## Deploy to kind\n(.*?)^### On a machine without a registry", re.DOTALL | re.MULTILINE)
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    section = SECTION.search((REPO / "README.md").read_text())
    assert section, "README.md has no 'Deploy to kind' section ending at 'On a machine without a registry'"
    return BLOCK.findall(section.group(1))


def test_readme_blocks_are_the_users_path() -> None:
    text = "\n".join(readme_blocks())
    for command in ("kind create cluster --config manifests/kind/kind-config.yaml", "docker build -t picket:dev .",
                    "kind load docker-image picket:dev --name picket", "kubectl apply --server-side -k manifests/",
                    "kind delete cluster --name picket"):
        assert command in text


def test_readme_deploy_to_kind_verbatim(kind_engine: Layout) -> None:
    lay = kind_engine
    node_image = nodeimage.ensure_node_image(lay, print)
    images.ensure_busybox_standin(lay, print)
    if cluster.cluster_exists(lay):
        cluster.shell(lay, f"kind delete cluster --name {CLUSTER}")
    blocks = readme_blocks()
    assert blocks[0].lstrip().startswith("kind create cluster"), blocks[0]
    preload = f"kind load docker-image {images.BUSYBOX_STANDIN} --name {CLUSTER}\n"
    script = "\n".join([blocks[0], preload, *blocks[1:]])
    wheels = images.ensure_wheelhouse(lay, REPO, print)
    with images.wheelhouse_server(lay, wheels) as url:
        images.ensure_python_standin(lay, url, print)
        done = cluster.shell(lay, script, check=False, timeout=1100, extra_env={"KIND_NODE_IMAGE": node_image})
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-5000:]
    first, _, second = out.partition("networkpolicy.networking.k8s.io/a-from-b-only created")
    pairs = [f"{s} -> {d}:80" for s in "abc" for d in "abc" if s != d]
    assert all(f"{p} ok" in first for p in pairs), first[-3000:]
    assert "c -> a:80 DROP" in second, second[-3000:]
    assert all(f"{p} ok" in second for p in pairs if p != "c -> a:80"), second[-3000:]
    # the agent of a's node names the source by pod when it runs there too, by address otherwise
    assert re.search(r"DROP \S+ -> x/a tcp/80", second), second[-3000:]
    assert re.search(r"^picket_\w+", second, re.MULTILINE), second[-3000:]
    assert not cluster.cluster_exists(lay)
