"""Kubernetes label selectors (``metav1.LabelSelector``) and the peer selectors built from them.

``parse_label_selector(raw, path)`` validates one raw selector and returns a ``LabelSelector`` or
the ``FieldError``s found (JSON path + message); the frontend turns those into ``Problem``s.
``LabelSelector.matches`` implements the API's meaning:

* ``matchLabels`` and ``matchExpressions`` are ANDed; an empty selector matches everything.
* ``In``: the label is present and its value is listed. ``NotIn``: the label is absent or its value
  is not listed ("NotIn ... matches labels that do not have the key", apimachinery labels.Selector).
* ``Exists`` / ``DoesNotExist``: the key is present / absent; ``values`` must then be empty.

``PeerSelector`` is the ``ir.Selector`` the Kubernetes frontend uses, both for a policy's
``podSelector`` (which pods it applies to) and for each peer of a rule. Called by
``k8s_frontend``; matched by ``compiling`` and ``incremental``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from picket_operator.compiler.ir import IndexHint


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True)
class FieldError:
    path: str  # JSON path of the offending field, e.g. "spec.podSelector.matchExpressions[0].operator"
    message: str


@dataclass(frozen=True, order=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator is Operator.IN:
            return self.key in labels and labels[self.key] in self.values
        if self.operator is Operator.NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        return self.key not in labels

    def canonical(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        word = "in" if self.operator is Operator.IN else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """A validated label selector; ``match_labels`` and ``requirements`` are sorted."""

    match_labels: tuple[tuple[str, str], ...] = ()
    requirements: tuple[Requirement, ...] = ()

    def is_empty(self) -> bool:
        return not self.match_labels and not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self.requirements)

    def canonical(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels] + [r.canonical() for r in self.requirements]
        return ",".join(parts)

    def required_label(self) -> tuple[str, str] | None:
        """One key=value pair every match must carry (for indices), if there is one."""
        if self.match_labels:
            return self.match_labels[0]
        for r in self.requirements:
            if r.operator is Operator.IN and len(r.values) == 1:
                return (r.key, r.values[0])
        return None


def parse_label_selector(raw: Any, path: str) -> tuple[LabelSelector | None, list[FieldError]]:
    """Validate one raw ``LabelSelector``; ``None`` (or ``{}``) is the empty selector."""
    if raw is None:
        return LabelSelector(), []
    if not isinstance(raw, Mapping):
        return None, [FieldError(path, "must be an object with matchLabels and/or matchExpressions")]
    errors: list[FieldError] = []
    unknown = sorted(set(raw) - {"matchLabels", "matchExpressions"})
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", "unknown field"))
    labels = _parse_match_labels(raw.get("matchLabels"), f"{path}.matchLabels", errors)
    requirements = _parse_expressions(raw.get("matchExpressions"), f"{path}.matchExpressions", errors)
    if errors:
        return None, errors
    return LabelSelector(tuple(sorted(labels.items())), tuple(sorted(requirements))), []


def _parse_match_labels(raw: Any, path: str, errors: list[FieldError]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be a map of label keys to string values"))
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            errors.append(FieldError(path, f"label key {key!r} must be a non-empty string"))
        elif not isinstance(value, str):
            errors.append(FieldError(f"{path}.{key}", f"label value {value!r} must be a string"))
        else:
            out[key] = value
    return out


def _parse_expressions(raw: Any, path: str, errors: list[FieldError]) -> list[Requirement]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return []
    out = []
    for i, item in enumerate(raw):
        req = _parse_requirement(item, f"{path}[{i}]", errors)
        if req is not None:
            out.append(req)
    return out


def _parse_requirement(raw: Any, path: str, errors: list[FieldError]) -> Requirement | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object with key, operator and values"))
        return None
    key, op, values = raw.get("key"), raw.get("operator"), raw.get("values")
    if not isinstance(key, str) or not key:
        errors.append(FieldError(f"{path}.key", "must be a non-empty string"))
        return None
    try:
        operator = Operator(str(op)) if isinstance(op, str) else Operator("")
    except ValueError:
        known = ", ".join(o.value for o in Operator)
        errors.append(FieldError(f"{path}.operator", f"unknown operator {op!r} (expected one of {known})"))
        return None
    if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
        errors.append(FieldError(f"{path}.values", "must be a list of strings"))
        return None
    vals = tuple(sorted(set(values or ())))
    # "If the operator is In or NotIn, the values array must be non-empty. If the operator is
    # Exists or DoesNotExist, the values array must be empty."
    if operator in (Operator.IN, Operator.NOT_IN) and not vals:
        errors.append(FieldError(f"{path}.values", f"must be non-empty for operator {operator.value}"))
        return None
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and vals:
        errors.append(FieldError(f"{path}.values", f"must be empty for operator {operator.value}"))
        return None
    return Requirement(key, operator, vals)


@dataclass(frozen=True)
class PeerSelector:
    """Pods picked by a Kubernetes selector pair (an ``ir.Selector``).

    ``namespace`` set: only pods of that namespace (a policy's own ``podSelector``, or a peer with
    only ``podSelector``: "selects particular Pods in the same namespace as the NetworkPolicy").
    ``namespace_selector`` set: only pods in namespaces whose labels match it (``{}``: all).
    The pod selector is ANDed with either. Host endpoints (namespace "") never match.
    """

    pod_selector: LabelSelector
    namespace: str | None = None
    namespace_selector: LabelSelector | None = None

    def matches(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        if not namespace:
            return False
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.namespace_selector is not None and not self.namespace_selector.matches(namespace_labels):
            return False
        return self.pod_selector.matches(labels)

    def canonical(self) -> str:
        scope = f"ns={self.namespace};" if self.namespace is not None else ""
        if self.namespace_selector is not None:
            scope += f"nss=[{self.namespace_selector.canonical()}];"
        return f"k8s:{scope}pods=[{self.pod_selector.canonical()}]"

    def index_hint(self) -> IndexHint:
        ns_label = self.namespace_selector.required_label() if self.namespace_selector is not None else None
        return IndexHint(self.namespace, self.pod_selector.required_label(), ns_label)
