"""The build's pure parts: which staging modules get pinned, the wrapper go.mod, version stamps."""

from __future__ import annotations

from pathlib import Path

import pytest

from picket_lab import build
from picket_lab.build import (
    etcd_ldflags,
    kubernetes_ldflags,
    kubernetes_wrapper_gomod,
    missing_binaries,
    staging_modules,
    tools_go,
)
from picket_lab.paths import BINARIES, build_paths, staging_version

RELEASE_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tgithub.com/spf13/cobra v1.10.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tk8s.io/kube-openapi v0.0.0-20260721132016-d427ff9ee9ad
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/sample-cli-plugin => ./staging/src/k8s.io/sample-cli-plugin
)
"""


def test_only_required_staging_modules_are_pinned() -> None:
    # kube-openapi is required at a pseudo-version (a real module), sample-cli-plugin is replaced
    # but never required (and not published): neither may be pinned.
    assert staging_modules(RELEASE_GOMOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_wrapper_requires_and_replaces_each_staging_module_with_its_v0_release() -> None:
    gomod = kubernetes_wrapper_gomod("v1.37.2", ["k8s.io/api", "k8s.io/client-go"])
    assert "\tk8s.io/kubernetes v1.37.2\n" in gomod
    assert "\tk8s.io/api v0.37.2\n" in gomod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.37.2\n" in gomod


@pytest.mark.parametrize(("kubernetes", "staging"), [("v1.37.2", "v0.37.2"), ("v1.30.14", "v0.30.14")])
def test_staging_version(kubernetes: str, staging: str) -> None:
    assert staging_version(kubernetes) == staging


def test_staging_version_rejects_other_majors() -> None:
    with pytest.raises(ValueError):
        staging_version("v2.0.0")


def test_version_stamps() -> None:
    flags = kubernetes_ldflags("v1.37.2")
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "-X k8s.io/component-base/version.gitMinor=37" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2" in flags
    assert "GitSHA=v3.7.3" in etcd_ldflags("v3.7.3")


def test_tools_file_imports_each_package_under_the_tools_tag() -> None:
    text = tools_go(["k8s.io/kubernetes/cmd/kubectl"])
    assert text.startswith("//go:build tools\n")
    assert '_ "k8s.io/kubernetes/cmd/kubectl"' in text


def test_cache_is_keyed_by_versions_and_honours_picket_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICKET_CACHE", str(tmp_path))
    paths = build_paths("v1.37.2", "v3.7.3")
    assert paths.bin_dir == tmp_path / "k8s-v1.37.2-etcd-v3.7.3" / "bin"
    assert missing_binaries(paths) == list(BINARIES)
    paths.bin_dir.mkdir(parents=True)
    for name in BINARIES[:2]:
        paths.binary(name).write_text("#!/bin/sh\n")
        paths.binary(name).chmod(0o755)
    assert missing_binaries(paths) == list(BINARIES[2:])


def test_missing_go_is_one_readable_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICKET_CACHE", str(tmp_path))
    monkeypatch.setattr(build.shutil, "which", lambda _: None)
    monkeypatch.setattr(build, "GO_FALLBACKS", ())
    with pytest.raises(build.BuildError, match=r"Go toolchain .* is not on PATH"):
        build.ensure_built(lambda _: None)
