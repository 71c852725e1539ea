"""Kubeconfig files for the lab (JSON, which every kubeconfig reader accepts as YAML).

``client_cert_kubeconfig`` for the admin, the components and the nodes; ``token_kubeconfig`` for
ServiceAccounts (tokens from the TokenRequest API). All point at the lab API address, which
answers from the root namespace and from every node namespace alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from picket.apiclient import Credentials


def _write(path: Path, server: str, ca: Path, user: dict[str, Any], name: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "picket-lab", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": "picket-lab", "context": {"cluster": "picket-lab", "user": name}}],
        "current-context": "picket-lab",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def client_cert_kubeconfig(path: Path, creds: Credentials, name: str) -> Path:
    user = {"client-certificate": str(creds.cert_file), "client-key": str(creds.key_file)}
    return _write(path, creds.server, Path(str(creds.ca_file)), user, name)


def token_kubeconfig(path: Path, server: str, ca: Path, token: str, name: str) -> Path:
    return _write(path, server, ca, {"token": token}, name)


def credentials_from_kubeconfig(path: Path) -> Credentials:
    """The inverse of the two writers above (only the fields they write)."""
    config = json.loads(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    cert, key = user.get("client-certificate"), user.get("client-key")
    return Credentials(server=cluster["server"], ca_file=str(cluster["certificate-authority"]),
                       cert_file=str(cert) if cert else None, key_file=str(key) if key else None,
                       token=user.get("token"))
