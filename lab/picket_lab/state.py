"""The lab's state file: what ``lab up`` made, read by ``status``, ``down`` and the Python API.

Written as ``starting`` before anything is created (so a crashed ``up`` is recognisable) and as
``ready`` when the cluster answers with every node Ready.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from picket_lab.topology import NodeSpec, node_spec


@dataclass(frozen=True)
class LabState:
    status: str  # "starting" | "ready"
    node_count: int
    api_server: str
    kubeconfig: str
    bin_dir: str
    kubernetes: str
    etcd: str
    started_at: float
    ready_seconds: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> list[NodeSpec]:
        return [node_spec(i) for i in range(1, self.node_count + 1)]


def read_state(path: Path) -> LabState | None:
    try:
        return LabState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(path: Path, state: LabState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(tmp, path)
