"""``ScopedSelector``: a Calico selector expression plus its namespace scope, as the IR wants it.

The compiler matches endpoints through ``ir.Selector``: ``matches(labels, namespace,
namespace_labels)``, ``canonical()`` and ``index_hint()``. A Calico selector alone only sees
labels, so this wrapper adds what Calico adds around it:

* the endpoint's labels gain ``projectcalico.org/namespace: <ns>`` for namespaced endpoints (as
  Calico labels workload endpoints), which is what ``global()`` tests for;
* ``namespace``: only endpoints of that namespace (a namespaced policy, or its rules' selectors
  when no ``namespaceSelector`` is given: "resources in the same namespace as the network policy");
* ``namespace_expr``: a ``namespaceSelector``, evaluated on the namespace's labels plus
  ``projectcalico.org/name`` (Calico's automatic label) and ``projectcalico.org/namespace``; a
  non-namespaced resource (host endpoint, global network set) is seen with no labels at all, so
  ``global()`` selects exactly the non-namespaced ones.

Called by ``frontend`` (policies and rules) and usable by the compiler for network sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from picket_operator.compiler.frontends.calico.selector_ast import NAMESPACE_LABEL, And, Compare, Selector
from picket_operator.compiler.ir import IndexHint

NAME_LABEL = "projectcalico.org/name"
_EMPTY: Mapping[str, str] = {}


def endpoint_view(labels: Mapping[str, str], namespace: str) -> Mapping[str, str]:
    return {**labels, NAMESPACE_LABEL: namespace} if namespace else labels


def namespace_view(namespace: str, namespace_labels: Mapping[str, str]) -> Mapping[str, str]:
    if not namespace:
        return _EMPTY
    return {**namespace_labels, NAME_LABEL: namespace, NAMESPACE_LABEL: namespace}


@dataclass(frozen=True)
class ScopedSelector:
    # "global network sets ... that have the label" are matched by rule selectors like endpoints.
    matches_network_sets: ClassVar[bool] = True

    expr: Selector
    namespace: str | None = None  # None: any namespace and non-namespaced resources
    namespace_expr: Selector | None = None

    def matches(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.namespace_expr is not None and not self.namespace_expr.matches(
            namespace_view(namespace, namespace_labels)
        ):
            return False
        if self._reads_namespace_label:
            return self.expr.matches(endpoint_view(labels, namespace))
        return self.expr.matches(labels)  # the hot path: no copy of the labels

    @cached_property
    def _reads_namespace_label(self) -> bool:
        """Whether the expression can see ``projectcalico.org/namespace`` (``global()``, ``has()``,
        comparisons); only then does matching need the labels copied with it added."""
        return repr(NAMESPACE_LABEL) in self.expr.code()

    def canonical(self) -> str:
        parts = [f"calico({self.expr.canonical()})"]
        if self.namespace is not None:
            parts.append(f"in-namespace({self.namespace})")
        if self.namespace_expr is not None:
            parts.append(f"namespaces({self.namespace_expr.canonical()})")
        return " & ".join(parts)

    def index_hint(self) -> IndexHint:
        """The namespace scope, and one ``key == value`` the expression requires, if any."""
        norm = self.expr.normalised()
        terms = norm.operands if isinstance(norm, And) else (norm,)
        label = next(
            ((t.key, t.value) for t in terms if isinstance(t, Compare) and t.op == "==" and t.key != NAMESPACE_LABEL),
            None,
        )
        return IndexHint(namespace=self.namespace, label=label)
