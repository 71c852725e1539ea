"""picket's image, built from the repository's Dockerfile, runs as the manifests say on a real cluster.

The operator runs as uid 65532, which has no passwd entry in the image: it must stay up (it
crash-looped on kopf's getpass.getuser() before the fix) and be the Lease holder or its standby.
The image carries python-iptables compiled from source (it is published as source only).
"""

from __future__ import annotations

import json

import pytest

from picket_lab.kind import engine, images
from tests.kind.harness import Kind

pytestmark = [pytest.mark.kind, pytest.mark.timeout(600)]


def test_operator_runs_as_65532_without_a_passwd_entry(kind: Kind) -> None:
    out = json.loads(kind.kubectl("-n", "picket-system", "get", "pods", "-l", "app.kubernetes.io/name=picket-operator",
                                  "-o", "json"))
    operators = out["items"]
    assert len(operators) == 2
    for pod in operators:
        name = pod["metadata"]["name"]
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["restartCount"] == 0, (name, status)
        assert kind.kubectl("-n", "picket-system", "exec", name, "--", "id", "-u").strip() == "65532"
        passwd = kind.kubectl("-n", "picket-system", "exec", name, "--", "cat", "/etc/passwd")
        assert ":65532:" not in passwd
        logs = kind.kubectl("-n", "picket-system", "logs", name)
        assert "KeyError" not in logs and "Traceback" not in logs, logs[-3000:]


def test_image_carries_compiled_python_iptables(kind: Kind) -> None:
    done = engine.docker(kind.lay, "run", "--rm", "--entrypoint", "python3", images.PICKET_IMAGE, "-c",
                         "import iptc, picket_agent.kernel.iptables, picket_operator.main; print(iptc.__file__)")
    assert "dist-packages/iptc" in done.stdout or "site-packages/iptc" in done.stdout
    history = engine.docker(kind.lay, "history", "--no-trunc", images.PICKET_IMAGE).stdout
    assert "pip install --no-cache-dir --no-index" in history  # the Dockerfile's final stage: wheels only
