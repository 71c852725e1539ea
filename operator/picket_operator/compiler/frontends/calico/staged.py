"""Calico's staged policy kinds -> ``ir.Policy(staged=True)``, through the enforced kinds' frontends.

``translate_staged(obj)`` is an ``ir.Frontend`` (registered in ``registry`` for the three
projectcalico.org/v3 kinds). A staged policy is Calico's audit mode: it is evaluated as if it were
enforced, and never enforced (picket compiles it into the endpoints' staged rule sets, which the
agent only logs and counts by). Each kind is the enforced kind it stages, plus ``stagedAction``:

* ``StagedNetworkPolicy`` -> Calico ``NetworkPolicy`` (namespaced, ``frontend.translate``);
* ``StagedGlobalNetworkPolicy`` -> Calico ``GlobalNetworkPolicy`` (cluster-scoped);
* ``StagedKubernetesNetworkPolicy`` -> ``networking.k8s.io/v1`` NetworkPolicy (namespaced, its spec
  is a Kubernetes NetworkPolicy spec; ``networkpolicy.translate_network_policy``).

The object is rewritten into its enforced kind (``stagedAction`` left out of the spec) and handed to
that kind's frontend unchanged, so rule order, tiers and every validation are the enforced kind's;
the result is renamed to the staged kind (``StagedNetworkPolicy x/p`` in rule sets, drops and
problems) and marked ``staged``.

``stagedAction``: ``Set`` (the default) stages the policy as written. ``Delete`` ("what if the
enforced policy of this name were removed") is not supported: the object is rejected with a problem
on ``spec.stagedAction`` and nothing of it is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from picket.model import Problem
from picket_operator.compiler import ir
from picket_operator.compiler.frontends.calico.frontend import translate as translate_calico
from picket_operator.compiler.frontends.networkpolicy import AUDIT_ANNOTATION, translate_network_policy

# staged kind -> (the enforced kind it stages, the apiVersion that kind's frontend reads)
STAGED_KINDS: dict[str, tuple[str, str]] = {
    "StagedNetworkPolicy": ("NetworkPolicy", "projectcalico.org/v3"),
    "StagedGlobalNetworkPolicy": ("GlobalNetworkPolicy", "projectcalico.org/v3"),
    "StagedKubernetesNetworkPolicy": ("NetworkPolicy", "networking.k8s.io/v1"),
}
STAGED_ACTIONS = ("Set", "Delete")
DELETE_UNSUPPORTED = ("stagedAction Delete (staging the removal of the enforced policy of this name) is not "
                      "supported by picket; the staged policy is not applied")


def translate_staged(obj: Mapping[str, Any]) -> ir.Translation:
    kind = str(obj.get("kind", ""))
    raw_meta = obj.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    namespace = "" if kind == "StagedGlobalNetworkPolicy" else str(meta.get("namespace") or "default")
    name = str(meta.get("name", ""))
    if kind not in STAGED_KINDS:
        message = f"expected one of {', '.join(STAGED_KINDS)}"
        return ir.Translation(None, (Problem(kind, namespace, name, "kind", message),))
    raw_spec = obj.get("spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    action = spec.get("stagedAction", "Set")
    if action not in STAGED_ACTIONS:
        message = f"expected Set or Delete, got {action!r}"
        return ir.Translation(None, (Problem(kind, namespace, name, "spec.stagedAction", message),))
    if action == "Delete":
        return ir.Translation(None, (Problem(kind, namespace, name, "spec.stagedAction", DELETE_UNSUPPORTED),))
    enforced_kind, api_version = STAGED_KINDS[kind]
    enforced = {**obj, "apiVersion": api_version, "kind": enforced_kind, "metadata": _without_audit(meta)}
    if isinstance(raw_spec, Mapping):
        enforced["spec"] = {k: v for k, v in raw_spec.items() if k != "stagedAction"}
    if api_version == "networking.k8s.io/v1":
        translation = translate_network_policy(enforced)
    else:
        translation = translate_calico(enforced)
    problems = tuple(replace(p, kind=kind) for p in translation.problems)
    policy = translation.policy
    return ir.Translation(None if policy is None else replace(policy, kind=kind, staged=True), problems)


def _without_audit(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The kind already stages the policy: picket's audit annotation has nothing to add to it."""
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping) or AUDIT_ANNOTATION not in annotations:
        return dict(meta)
    return {**meta, "annotations": {k: v for k, v in annotations.items() if k != AUDIT_ANNOTATION}}
