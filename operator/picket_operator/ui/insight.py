"""What the editor tells the user about a NetworkPolicy being written: validation and warnings.

``validate(policy)`` checks what the API server checks before the compiler sees the object (names
are DNS-1123 subdomains, label keys and values have the label syntax, policyTypes are known) and
returns ``(json_path, message)`` pairs, like the compiler's problems, so the form shows each one
beside its field. ``warnings(policy, selected)`` lists the mistakes people make with a valid policy
(issue 12): a peer with both selectors is AND, two peers are OR, ``{}`` selects everything,
egress isolation without DNS, a policy that selects nothing, rules left out by Policy Types.
Named ports no pod declares come from the compiler's own warnings. Pure; used by ``workbench``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

DESCRIPTION = "picket.dev/description"  # the annotation holding the form's Description

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

Finding = tuple[str, str]  # (JSON path, message)


def effective_types(spec: Mapping[str, Any]) -> list[str]:
    """policyTypes as the API server defaults them: Ingress, plus Egress when egress has rules."""
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return [t for t in ("Ingress", "Egress") if t in types]
    egress = spec.get("egress")
    return ["Ingress", "Egress"] if isinstance(egress, list) and egress else ["Ingress"]


def _label_key_errors(key: str, path: str) -> list[Finding]:
    prefix, slash, name = key.rpartition("/")
    out: list[Finding] = []
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        out.append((path, f"label key {key!r}: the prefix must be a DNS subdomain (lowercase letters, digits, "
                          "'-' and '.')"))
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        out.append((path, f"label key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
                          "beginning and ending with a letter or digit"))
    return out


def _label_value_errors(value: Any, path: str) -> list[Finding]:
    if not isinstance(value, str):
        return [(path, "must be a string")]
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return [(path, f"label value {value!r}: at most 63 letters, digits, '-', '_' or '.', beginning and "
                       "ending with a letter or digit")]
    return []


def _selector_errors(selector: Any, path: str) -> list[Finding]:
    if not isinstance(selector, Mapping):
        return []
    out: list[Finding] = []
    labels = selector.get("matchLabels")
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            out += _label_key_errors(str(key), f"{path}.matchLabels")
            out += _label_value_errors(value, f"{path}.matchLabels.{key}")
    for i, expr in enumerate(selector.get("matchExpressions") or ()):
        if isinstance(expr, Mapping) and isinstance(expr.get("key"), str) and expr["key"]:
            out += _label_key_errors(expr["key"], f"{path}.matchExpressions[{i}].key")
            for j, value in enumerate(expr.get("values") or ()):
                out += _label_value_errors(value, f"{path}.matchExpressions[{i}].values[{j}]")
    return out


def validate(policy: Mapping[str, Any]) -> list[Finding]:
    """The API server's checks that the compiler does not make (the compiler reports the rest)."""
    out: list[Finding] = []
    meta = policy.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        out.append(("metadata.name", "ID Name is required"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        out.append(("metadata.name", f"{name!r} is not a valid name: use lowercase letters, digits, '-' and '.', "
                                     "beginning and ending with a letter or digit"))
    spec = policy.get("spec") or {}
    for i, kind in enumerate(spec.get("policyTypes") or ()):
        if kind not in ("Ingress", "Egress"):
            out.append((f"spec.policyTypes[{i}]", f"unknown policy type {kind!r} (Ingress or Egress)"))
    out += _selector_errors(spec.get("podSelector"), "spec.podSelector")
    for field, peers_field in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(field) or ()):
            if not isinstance(rule, Mapping):
                continue
            for j, peer in enumerate(rule.get(peers_field) or ()):
                if not isinstance(peer, Mapping):
                    continue
                base = f"spec.{field}[{i}].{peers_field}[{j}]"
                out += _selector_errors(peer.get("podSelector"), f"{base}.podSelector")
                out += _selector_errors(peer.get("namespaceSelector"), f"{base}.namespaceSelector")
                if "ipBlock" in peer and ("podSelector" in peer or "namespaceSelector" in peer):
                    out.append((base, "an IP block cannot be combined with a pod or namespace selector in one "
                                      "source; add it as a separate source"))
    return out


def _selector_text(selector: Mapping[str, Any], what: str) -> str:
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(expr.get("values") or ())
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": f"{key}",
                      "DoesNotExist": f"!{key}"}.get(str(op), f"{key} {op}"))
    return f"{what} with {', '.join(parts)}" if parts else f"all {what}"


def warnings(policy: Mapping[str, Any], selected: Sequence[str], compiler_warnings: Sequence[str] = ()) -> list[str]:
    spec = policy.get("spec") or {}
    meta = policy.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    out: list[str] = []
    if not selected:
        out.append("This policy selects no pod (yet): it changes nothing until a pod matches its Pod Selector.")
    if spec.get("podSelector") in ({}, None):
        out.append(f"The Pod Selector is empty ({{}}): the policy selects every pod in namespace {namespace}.")
    types = effective_types(spec)
    for field, peers_field, direction, word in (("ingress", "from", "Ingress", "source"),
                                                ("egress", "to", "Egress", "destination")):
        rules = spec.get(field) or []
        if rules and direction not in types:
            out.append(f"Policy Types leaves out {direction}: its {len(rules)} {field} rule(s) are kept but "
                       "ignored (disabled).")
        if direction in types and not rules:
            what = "receive nothing" if direction == "Ingress" else "send nothing"
            out.append(f"{direction} is selected with no {field} rules: the selected pods {what} ({direction} "
                       "deny-all).")
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            peers = rule.get(peers_field) or []
            if len(peers) > 1:
                out.append(f"{field} rule {i}: its {len(peers)} {word}s are ORed: a peer matching any one of them "
                           "is allowed.")
            for j, peer in enumerate(peers):
                if not isinstance(peer, Mapping):
                    continue
                pods, nss = peer.get("podSelector"), peer.get("namespaceSelector")
                if isinstance(pods, Mapping) and isinstance(nss, Mapping):
                    out.append(f"{field} rule {i}, {word} {j}: Pod Selector AND Namespace Selector: only "
                               f"{_selector_text(pods, 'pods')} in {_selector_text(nss, 'namespaces')}.")
                elif nss == {}:
                    out.append(f"{field} rule {i}, {word} {j}: the namespace selector {{}} selects every pod in "
                               "every namespace.")
                elif pods == {} and nss is None:
                    out.append(f"{field} rule {i}, {word} {j}: the pod selector {{}} selects every pod in "
                               f"namespace {namespace}.")
    if "Egress" in types and not _allows_dns(spec.get("egress") or []):
        out.append("Egress isolation without DNS: no egress rule allows port 53, so the selected pods cannot "
                   "resolve names (add an egress rule for UDP and TCP port 53 to kube-dns).")
    out.extend(compiler_warnings)
    return out


def _allows_dns(rules: Sequence[Any]) -> bool:
    for rule in rules:
        if not isinstance(rule, Mapping):
            continue
        ports = rule.get("ports") or []
        if not ports:
            return True
        for port in ports:
            if not isinstance(port, Mapping):
                continue
            number, end = port.get("port"), port.get("endPort")
            if number is None or number in (53, "dns", "dns-tcp"):
                return True
            if isinstance(number, int) and isinstance(end, int) and number <= 53 <= end:
                return True
    return False
