"""kopf's credentials, taken from the same kubeconfig (or in-cluster files) as the REST client.

kopf would otherwise look for credentials on its own (``KUBECONFIG``, in-cluster, pykube...);
registering one explicit ``@kopf.on.login`` handler keeps both clients on the identity the
operator was started with, e.g. the picket-operator ServiceAccount token. The token is re-read
(expiry in 10 minutes) so rotated in-cluster tokens are picked up.
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf

from picket.apiclient import KubeClient


def connection_info(client: KubeClient) -> kopf.ConnectionInfo:
    creds = client.credentials
    header = client.auth_header() or ""
    scheme, _, token = header.partition(" ")
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_path=creds.ca_file,
        insecure=not creds.verify,
        scheme=scheme or None,
        token=token or None,
        certificate_path=creds.cert_file,
        private_key_path=creds.key_file,
        default_namespace="default",
        expiration=datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10),
    )


def register(registry: kopf.OperatorRegistry, client: KubeClient) -> None:
    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(client)
