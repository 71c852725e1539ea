"""Indices that keep the compiler's work proportional to what an object affects.

``EndpointIndex`` holds the endpoint views (pods) by key, namespace, label key=value, namespace
label and declared port name, and answers ``candidates(hint)``: a superset of the endpoints a
selector with that ``ir.IndexHint`` can match (the smallest indexed bucket). ``SelectorIndex`` is
the reverse: named selectors filed under one bucket of their hint, so ``lookup(view)`` returns the
selectors that might match one endpoint without trying them all. Both are used by ``compiling``
(full compile) and ``incremental`` (events). ``EndpointIndex`` is generic over what it holds:
endpoint views (pods and host endpoints) in one index, network-set views in another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from picket.model import Protocol as IPProtocol
from picket_operator.compiler.ir import IndexHint
from picket_operator.compiler.views import NamedPort, PodView


class Indexed(Protocol):
    """What the indices read of a view (``views.PodView``, ``hostviews.NetworkSetView``)."""

    @property
    def key(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def namespace_labels(self) -> Mapping[str, str]: ...
    @property
    def named_ports(self) -> tuple[NamedPort, ...]: ...
    def resolve(self, name: str, protocol: IPProtocol) -> int | None: ...


V = TypeVar("V", bound=Indexed)


def _add(index: dict[Any, set[str]], key: Any, value: str) -> None:
    index.setdefault(key, set()).add(value)


def _discard(index: dict[Any, set[str]], key: Any, value: str) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(value)
        if not bucket:
            del index[key]


_EMPTY: frozenset[str] = frozenset()


class EndpointIndex(Generic[V]):
    def __init__(self) -> None:
        self.views: dict[str, V] = {}
        self.by_namespace: dict[str, set[str]] = {}
        self.by_label: dict[tuple[str, str], set[str]] = {}
        self.by_namespace_label: dict[tuple[str, str], set[str]] = {}
        self.by_port_name: dict[str, set[str]] = {}

    def add(self, view: V) -> None:
        key = view.key
        self.views[key] = view
        _add(self.by_namespace, view.namespace, key)
        for item in view.labels.items():
            _add(self.by_label, item, key)
        for item in view.namespace_labels.items():
            _add(self.by_namespace_label, item, key)
        for port in view.named_ports:
            _add(self.by_port_name, port.name, key)

    def remove(self, key: str) -> V | None:
        view = self.views.pop(key, None)
        if view is None:
            return None
        _discard(self.by_namespace, view.namespace, key)
        for item in view.labels.items():
            _discard(self.by_label, item, key)
        for item in view.namespace_labels.items():
            _discard(self.by_namespace_label, item, key)
        for port in view.named_ports:
            _discard(self.by_port_name, port.name, key)
        return view

    def candidates(self, hint: IndexHint) -> Iterable[str]:
        buckets: list[set[str] | frozenset[str]] = []
        if hint.namespace is not None:
            buckets.append(self.by_namespace.get(hint.namespace, _EMPTY))
        if hint.label is not None:
            buckets.append(self.by_label.get(hint.label, _EMPTY))
        if hint.namespace_label is not None:
            buckets.append(self.by_namespace_label.get(hint.namespace_label, _EMPTY))
        if not buckets:
            return self.views.keys()
        return min(buckets, key=len)

    def declares(self, name: str, protocol: IPProtocol) -> bool:
        """Whether any endpoint declares a container port ``name`` with ``protocol``."""
        return any(self.views[k].resolve(name, protocol) is not None for k in self.by_port_name.get(name, ()))

    def with_port_names(self, names: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            out |= self.by_port_name.get(name, _EMPTY)
        return out


Endpoints = EndpointIndex[PodView]


class SelectorIndex:
    """Names of selectors (peer sets, policies) filed by one bucket of their index hint."""

    def __init__(self) -> None:
        self._by_label: dict[tuple[str, str], set[str]] = {}
        self._by_namespace_and_label: dict[tuple[str, str, str], set[str]] = {}
        self._by_namespace: dict[str, set[str]] = {}
        self._by_namespace_label: dict[tuple[str, str], set[str]] = {}
        self._by_port_name: dict[str, set[str]] = {}
        self._always: set[str] = set()
        self._filed: dict[str, tuple[str, Any]] = {}

    def add(self, name: str, hint: IndexHint | None, port_names: Iterable[str] = ()) -> None:
        if name in self._filed:
            return
        names = tuple(port_names)
        if names:
            where: tuple[str, Any] = ("port", names)
            for port in names:
                _add(self._by_port_name, port, name)
        elif hint is not None and hint.label is not None and hint.namespace is not None:
            where = ("ns+label", (hint.namespace, *hint.label))
            _add(self._by_namespace_and_label, where[1], name)
        elif hint is not None and hint.label is not None:
            where = ("label", hint.label)
            _add(self._by_label, hint.label, name)
        elif hint is not None and hint.namespace is not None:
            where = ("ns", hint.namespace)
            _add(self._by_namespace, hint.namespace, name)
        elif hint is not None and hint.namespace_label is not None:
            where = ("nslabel", hint.namespace_label)
            _add(self._by_namespace_label, hint.namespace_label, name)
        else:
            where = ("always", None)
            self._always.add(name)
        self._filed[name] = where

    def remove(self, name: str) -> None:
        where = self._filed.pop(name, None)
        if where is None:
            return
        bucket, value = where
        if bucket == "port":
            for port in value:
                _discard(self._by_port_name, port, name)
        elif bucket == "ns+label":
            _discard(self._by_namespace_and_label, value, name)
        elif bucket == "label":
            _discard(self._by_label, value, name)
        elif bucket == "ns":
            _discard(self._by_namespace, value, name)
        elif bucket == "nslabel":
            _discard(self._by_namespace_label, value, name)
        else:
            self._always.discard(name)

    def lookup(self, view: Indexed) -> set[str]:
        out = set(self._always)
        out |= self._by_namespace.get(view.namespace, _EMPTY)
        for key, value in view.labels.items():
            out |= self._by_label.get((key, value), _EMPTY)
            out |= self._by_namespace_and_label.get((view.namespace, key, value), _EMPTY)
        for item in view.namespace_labels.items():
            out |= self._by_namespace_label.get(item, _EMPTY)
        for port in view.named_ports:
            out |= self._by_port_name.get(port.name, _EMPTY)
        return out
