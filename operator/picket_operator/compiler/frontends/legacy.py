"""Legacy NetworkPolicy: namespace isolation by annotation and ``picket convert``.

Before networking.k8s.io/v1, a NetworkPolicy (``extensions/v1beta1``) had **no effect** unless
its namespace was isolated by the annotation

    net.beta.kubernetes.io/network-policy: {"ingress": {"isolation": "DefaultDeny"}}

("When a namespace has been configured to isolate inbound traffic, all traffic to pods in that
namespace (even from other pods in the same namespace) will be blocked. NetworkPolicy objects can
then be added to the isolated namespace to specify what traffic should be allowed.")
In v1, a policy isolates exactly the pods it selects and the annotation means nothing.

``convert_documents`` rewrites a multi-document file so that v1 behaves as the old model did:

* isolated namespace: a ``default-deny-ingress`` policy (all pods) plus the converted policies;
* namespace not isolated: the converted policies plus an ``allow-all-ingress`` policy (all pods),
  because there the old policies allowed everything; a warning says so (delete the allow-all
  policy to enforce them);
* every fix v1 needs (lowercase ``protocol: tcp`` -> ``TCP``) is made and reported.

Pure functions for the compiler: ``legacy_isolation(namespace) -> (isolated, problem)`` reads the
annotation (a malformed one is a ``Problem`` and means "not isolated"; ``views`` uses it);
``default_deny_ingress`` builds the v1 policy equivalent to the annotation.
``translate_legacy_policy`` is the frontend ``frontends`` registers for v1beta1 policies met live
(a cluster file, an old manifest): ``convert_policy`` then the v1 frontend, i.e. **v1 semantics**
plus the annotation, which the compiler honours by itself. That is not the old model (there a
policy in a namespace without the annotation had no effect; here it isolates the pods it selects):
``picket convert`` is the meaning-preserving path. ``convert_main`` is the ``picket convert``
command (the only I/O here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from picket.model import Problem
from picket_operator.compiler.frontends.networkpolicy import translate_network_policy
from picket_operator.compiler.ir import Translation

ANNOTATION = "net.beta.kubernetes.io/network-policy"
ANNOTATION_FIELD = f"metadata.annotations[{ANNOTATION}]"
LEGACY_API_VERSIONS = ("extensions/v1beta1", "networking.k8s.io/v1beta1")
V1 = "networking.k8s.io/v1"
PROTOCOLS = ("TCP", "UDP", "SCTP")


def legacy_isolation(namespace_obj: Mapping[str, Any]) -> tuple[bool, Problem | None]:
    """Is this Namespace isolated for ingress by the legacy annotation? (Also ``views``' reader.)"""
    meta = _mapping(namespace_obj.get("metadata"))
    name = str(meta.get("name", ""))
    raw = _mapping(meta.get("annotations")).get(ANNOTATION)
    if raw is None:
        return False, None

    def problem(message: str) -> tuple[bool, Problem]:
        return False, Problem("Namespace", "", name, ANNOTATION_FIELD, f"{message}; ignored (namespace not isolated)")

    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as exc:
        return problem(f"not valid JSON ({exc.msg} at character {exc.pos})")
    except RecursionError:
        return problem("not valid JSON (nested too deeply)")
    if not isinstance(value, dict):
        return problem('expected a JSON object like {"ingress": {"isolation": "DefaultDeny"}}')
    ingress = value.get("ingress", {})
    if not isinstance(ingress, dict):
        return problem("ingress: expected an object")
    isolation = ingress.get("isolation")
    if isolation is None:
        return False, None
    if isolation != "DefaultDeny":
        return problem(f"ingress.isolation: {isolation!r} is not 'DefaultDeny', the only value defined")
    return True, None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _policy(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def default_deny_ingress(namespace: str) -> dict[str, Any]:
    """The v1 policy equivalent to the DefaultDeny annotation: every pod isolated for ingress."""
    return _policy(namespace, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})


def allow_all_ingress(namespace: str) -> dict[str, Any]:
    """Every pod open for ingress: what a namespace without the annotation had."""
    return _policy(namespace, "allow-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})


def is_legacy_policy(doc: Mapping[str, Any]) -> bool:
    return doc.get("kind") == "NetworkPolicy" and doc.get("apiVersion") in LEGACY_API_VERSIONS


def convert_policy(doc: Mapping[str, Any]) -> tuple[dict[str, Any] | None, tuple[Problem, ...]]:
    """One legacy policy as v1 (``None`` if it cannot be converted) and the notes about it.

    Problems whose message starts with "error" mean the policy was not converted.
    """
    meta = dict(doc.get("metadata") or {})
    ns, name = str(meta.get("namespace") or "default"), str(meta.get("name", ""))
    notes: list[Problem] = []

    def note(field: str, message: str) -> None:
        notes.append(Problem("NetworkPolicy", ns, name, field, message))

    spec = json.loads(json.dumps(doc.get("spec") or {}))  # a deep, plain copy
    if not isinstance(spec, dict):
        note("spec", "error: expected an object")
        return None, tuple(notes)
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(_items(spec.get(direction))):
            for j, port in enumerate(_items(rule.get("ports") if isinstance(rule, dict) else None)):
                field = f"spec.{direction}[{i}].ports[{j}].protocol"
                proto = port.get("protocol") if isinstance(port, dict) else None
                if proto is None:
                    continue
                fixed = str(proto).upper()
                if fixed not in PROTOCOLS:
                    note(field, f"error: unknown protocol {proto!r} (v1 accepts {', '.join(PROTOCOLS)})")
                    return None, tuple(notes)
                if fixed != proto:
                    port["protocol"] = fixed
                    note(field, f"{proto!r} -> {fixed!r} (v1 accepts only upper case)")
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    out_meta = {k: v for k, v in meta.items() if k in ("name", "namespace", "labels", "annotations")}
    out_meta["namespace"] = ns
    return {"apiVersion": V1, "kind": "NetworkPolicy", "metadata": out_meta, "spec": spec}, tuple(notes)


def translate_legacy_policy(doc: Mapping[str, Any]) -> Translation:
    """The live frontend for v1beta1 NetworkPolicies: convert, then compile as v1.

    The conversion notes (``'tcp' -> 'TCP'``) come back as warnings of the applied policy; a
    policy that cannot be converted is not applied and its notes say why.
    """
    converted, notes = convert_policy(doc)
    if converted is None:
        return Translation(None, notes)
    translation = translate_network_policy(converted)
    return Translation(translation.policy, notes + translation.problems)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def convert_documents(
    docs: Iterable[Mapping[str, Any]], isolated: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """Convert a whole file: returns the v1 documents and one warning line per difference."""
    plain = [dict(d) for d in docs if d]
    warnings: list[str] = []
    isolated_ns = set(isolated)
    known_ns: set[str] = set()
    for doc in plain:
        if doc.get("kind") == "Namespace":
            name = str((doc.get("metadata") or {}).get("name", ""))
            known_ns.add(name)
            flag, problem = legacy_isolation(doc)
            if problem is not None:
                warnings.append(f"warning: {problem}")
            if flag:
                isolated_ns.add(name)
    out: list[dict[str, Any]] = []
    extra: dict[str, dict[str, Any]] = {}
    for doc in plain:
        if not is_legacy_policy(doc):
            out.append(doc)
            continue
        converted, notes = convert_policy(doc)
        warnings += [f"{'error' if n.message.startswith('error') else 'warning'}: {n}" for n in notes]
        if converted is None:
            continue
        ns = converted["metadata"]["namespace"]
        if ns not in extra:
            extra[ns] = _namespace_policy(ns, ns in isolated_ns, ns in known_ns, warnings)
        out.append(converted)
    return out + [extra[ns] for ns in sorted(extra)], warnings


def _namespace_policy(ns: str, isolated: bool, known: bool, warnings: list[str]) -> dict[str, Any]:
    if isolated:
        warnings.append(
            f"warning: namespace {ns} is isolated (DefaultDeny annotation): added NetworkPolicy "
            f"{ns}/default-deny-ingress, because in v1 a policy isolates only the pods it selects"
        )
        return default_deny_ingress(ns)
    why = "is not isolated" if known else "has no Namespace document here and was not named in --isolated-namespaces"
    warnings.append(
        f"warning: namespace {ns} {why}: its v1beta1 policies had no effect there, so added NetworkPolicy "
        f"{ns}/allow-all-ingress to keep every pod open; delete it to enforce the converted policies"
    )
    return allow_all_ingress(ns)
