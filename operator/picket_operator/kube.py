"""TypedDicts for the raw Kubernetes JSON the compiler reads (Namespace, Pod, NetworkPolicy).

Documentation and type hints only: raw objects arrive from the API or from YAML and are never
trusted, so ``views`` and ``k8s_frontend`` still check every field they read and report
``Problem``s for what does not fit. Only the fields picket uses are listed.
"""

from __future__ import annotations

from typing import TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    deletionTimestamp: str


class LabelSelectorRequirementJSON(TypedDict, total=False):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str]


class LabelSelectorJSON(TypedDict, total=False):
    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirementJSON]


class NamespaceJSON(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta


class ContainerPortJSON(TypedDict, total=False):
    name: str
    containerPort: int
    protocol: str  # TCP (default), UDP, SCTP


class ContainerJSON(TypedDict, total=False):
    name: str
    ports: list[ContainerPortJSON]


class PodSpecJSON(TypedDict, total=False):
    nodeName: str
    hostNetwork: bool
    containers: list[ContainerJSON]


class PodIPJSON(TypedDict):
    ip: str


class PodStatusJSON(TypedDict, total=False):
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    podIP: str
    podIPs: list[PodIPJSON]


class PodJSON(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpecJSON
    status: PodStatusJSON


class IPBlockJSON(TypedDict, total=False):
    cidr: str
    # "except is a slice of CIDRs that should not be included within an IPBlock"
    # ("except" is a Python keyword, so it is not listed as a key here)


class NetworkPolicyPeerJSON(TypedDict, total=False):
    podSelector: LabelSelectorJSON
    namespaceSelector: LabelSelectorJSON
    ipBlock: IPBlockJSON


class NetworkPolicyPortJSON(TypedDict, total=False):
    protocol: str
    port: int | str
    endPort: int


class NetworkPolicyIngressRuleJSON(TypedDict, total=False):
    ports: list[NetworkPolicyPortJSON]
    # "from" is a Python keyword: read as rule.get("from")


class NetworkPolicyEgressRuleJSON(TypedDict, total=False):
    ports: list[NetworkPolicyPortJSON]
    to: list[NetworkPolicyPeerJSON]


class NetworkPolicySpecJSON(TypedDict, total=False):
    podSelector: LabelSelectorJSON
    policyTypes: list[str]
    ingress: list[NetworkPolicyIngressRuleJSON]
    egress: list[NetworkPolicyEgressRuleJSON]


class NetworkPolicyJSON(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: NetworkPolicySpecJSON
