"""Building upstream's conformance tools and images: pure parts and the node-loading logic with a fake Docker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from picket_lab.kind import e2ebuild, e2eimages
from picket_lab.kind.e2ebuild import E2EPaths, e2e_test_imports, go_argv, wrapper_tools
from picket_lab.kind.e2eimages import ImageError, agnhost_dockerfile, e2e_image_ref, load_into_nodes

MANIFEST = """
var (
	initRegistry = RegistryList{
		PromoterE2eRegistry:      "registry.k8s.io/e2e-test-images",
		GcRegistry:               "registry.k8s.io",
		PrivateRegistry:          "gcr.io/k8s-authenticated-test",
	}
)

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
	configs := map[ImageID]Config{}
	configs[AgnhostPrev] = Config{list.PromoterE2eRegistry, "agnhost", "2.55"}
	configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.66.1"}
	configs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
	configs[Pause] = Config{list.GcRegistry, "pause", "3.10.2"}
	configs[Odd] = Config{list.NoSuchRegistry, "odd", "1"}
"""

E2E_TEST_GO = """package e2e

import (
	"flag"
	"testing"

	"github.com/onsi/ginkgo/v2"
	yaml "go.yaml.in/yaml/v2"

	// "github.com/onsi/ginkgo/v2"

	"k8s.io/kubernetes/test/e2e/framework"
	_ "k8s.io/kubernetes/test/e2e/network"
)
"""


def test_image_references_are_the_frameworks_own() -> None:
    assert e2e_image_ref(MANIFEST, "Agnhost") == "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
    assert e2e_image_ref(MANIFEST, "Pause") == "registry.k8s.io/pause:3.10.2"


@pytest.mark.parametrize("image_id", ["Missing", "Odd"])
def test_unknown_images_and_registries_are_errors(image_id: str) -> None:
    with pytest.raises(ImageError):
        e2e_image_ref(MANIFEST, image_id)


def test_the_wrapper_imports_what_the_e2e_test_imports_plus_agnhost_and_ginkgo() -> None:
    assert e2e_test_imports(E2E_TEST_GO) == ["github.com/onsi/ginkgo/v2", "go.yaml.in/yaml/v2",
                                                "k8s.io/kubernetes/test/e2e/framework",
                                                "k8s.io/kubernetes/test/e2e/network"]
    tools = wrapper_tools(E2E_TEST_GO)
    for pkg in ("k8s.io/kubernetes/test/e2e", "k8s.io/kubernetes/test/images/agnhost",
                "github.com/onsi/ginkgo/v2/ginkgo", "k8s.io/kubernetes/test/e2e/network"):
        assert f'\t_ "{pkg}"\n' in tools
    assert '"flag"' not in tools and tools.startswith("//go:build tools")


def test_go_command_lines(tmp_path: Path) -> None:
    out = tmp_path / "x"
    e2e = go_argv("e2e.test", out, "v1.37.2", "2.66.1")
    assert e2e[:2] == ["test", "-c"] and e2e[-1] == "k8s.io/kubernetes/test/e2e" and str(out) in e2e
    assert "k8s.io/component-base/version.gitVersion=v1.37.2" in e2e[e2e.index("-ldflags") + 1]
    agnhost = go_argv("agnhost", out, "v1.37.2", "2.66.1")
    assert agnhost[0] == "build" and "-X main.Version=2.66.1" in agnhost[agnhost.index("-ldflags") + 1]
    assert go_argv("ginkgo", out, "v1.37.2", "2.66.1")[-1] == "github.com/onsi/ginkgo/v2/ginkgo"
    with pytest.raises(ValueError):
        go_argv("kubectl", out, "v1.37.2", "2.66.1")


def test_cache_is_keyed_by_version_and_complete_only_with_every_tool_and_the_image_list(tmp_path: Path) -> None:
    paths = E2EPaths("v1.37.2", tmp_path)
    assert paths.missing() == ["e2e.test", "agnhost", "ginkgo"]
    paths.bin_dir.mkdir()
    for tool in e2ebuild.TOOLS:
        paths.binary(tool).write_text("")
        paths.binary(tool).chmod(0o755)
    assert paths.missing() == ["images.json"]
    paths.images_file.write_text("{}")
    assert paths.missing() == []
    assert e2ebuild.e2e_paths("v1.37.2").root.name == "e2e-k8s-v1.37.2"


def test_agnhost_image_is_the_binary_alone_stamped_with_its_digest() -> None:
    dockerfile = agnhost_dockerfile("abc123")
    assert dockerfile.startswith("FROM scratch\nCOPY agnhost /agnhost\n")
    assert f"LABEL {e2eimages.IMAGE_LABEL}=abc123" in dockerfile
    assert 'ENTRYPOINT ["/agnhost"]' in dockerfile


class FakeDocker:
    """Nodes holding images (by reference and config digest); records imports."""

    def __init__(self, held: dict[str, set[str]]) -> None:
        self.held, self.imports = held, []  # type: ignore[var-annotated]

    def __call__(self, *args: str, check: bool = True, stdin: bytes | None = None
                 ) -> subprocess.CompletedProcess[bytes]:
        out, rc = b"", 0
        if args[0] == "save":
            out = b"TAR"
        elif args[:2] == ("exec", "-i"):
            self.imports.append((args[2], stdin))
        elif args[0] == "exec" and args[5:7] == ("images", "ls"):
            out = " ".join(x for x in self.held[args[1]] if not x.startswith("sha256:")).encode()
        elif args[0] == "exec" and args[5:7] == ("content", "get"):
            rc = 0 if args[7] in self.held[args[1]] else 1
        return subprocess.CompletedProcess(list(args), rc, out, b"")


def test_only_nodes_lacking_the_image_get_it() -> None:
    ref, digest = "registry.k8s.io/e2e-test-images/agnhost:2.66.1", "sha256:1"
    docker = FakeDocker({"cp": {ref, digest}, "w1": {ref, "sha256:old"}, "w2": set()})
    assert load_into_nodes(docker, ref, digest, ["cp", "w1", "w2"]) == ["w1", "w2"]
    assert docker.imports == [("w1", b"TAR"), ("w2", b"TAR")]
    assert e2eimages.missing_in_node(docker, "w2", ["registry.k8s.io/pause:3.10.2"]) == ["registry.k8s.io/pause:3.10.2"]
