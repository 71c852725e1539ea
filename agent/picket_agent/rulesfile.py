"""Read a compiled rule set (``picket compile --format json`` output) tolerantly.

``parse_compiled(data)`` turns ``Compiled.to_dict()`` JSON into a ``Feed``: the ``Compiled``
for every endpoint and peer set that parsed, plus the keys of those that did not and a
readable problem for each. One malformed endpoint never stops the others; the sync loop keeps
the last good rules of a broken endpoint (or peer set) enforced. A document with an unknown
``schemaVersion`` is rejected whole (``ModelError``): nothing in it can be trusted, and the
last good state stays. Pure; ``main`` (file) and ``apifeed`` (API) feed the loop with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picket.model import SCHEMA_VERSION, Compiled, EndpointRules, ModelError, PeerSet


@dataclass(frozen=True)
class Feed:
    compiled: Compiled
    broken_endpoints: frozenset[str] = frozenset()
    broken_sets: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()


def parse_compiled(data: Any) -> Feed:
    if not isinstance(data, Mapping):
        raise ModelError("rules: expected a mapping (Compiled.to_dict())")
    version = data.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise ModelError(f"unsupported schemaVersion {version!r} (this agent reads {SCHEMA_VERSION})")
    endpoints: dict[str, EndpointRules] = {}
    sets: dict[str, PeerSet] = {}
    broken_eps: set[str] = set()
    broken_sets: set[str] = set()
    problems: list[str] = []
    for i, raw in enumerate(_list(data, "endpoints")):
        try:
            er = EndpointRules.from_dict(raw)
            endpoints[er.endpoint.key] = er
        except (ModelError, AttributeError, TypeError) as exc:
            key = _endpoint_key(raw) or f"endpoints[{i}]"
            broken_eps.add(key)
            problems.append(f"endpoint {key}: {exc}; skipped (its last good rules stay enforced)")
    for i, raw in enumerate(_list(data, "peerSets")):
        try:
            ps = PeerSet.from_dict(raw)
            sets[ps.name] = ps
        except (ModelError, AttributeError, TypeError) as exc:
            name = str(raw.get("name")) if isinstance(raw, Mapping) and raw.get("name") else f"peerSets[{i}]"
            broken_sets.add(name)
            problems.append(f"peer set {name}: {exc}; skipped (its last good members stay)")
    return Feed(Compiled(endpoints, sets), frozenset(broken_eps), frozenset(broken_sets), tuple(problems))


def _list(data: Mapping[str, Any], field: str) -> list[Any]:
    value = data.get(field) or []
    if not isinstance(value, list):
        raise ModelError(f"rules: {field} must be a list")
    return value


def _endpoint_key(raw: Any) -> str:
    try:
        ep = raw["endpoint"]
        if ep.get("kind") == "Host":
            return f"host/{ep['name']}"
        return f"{ep['namespace']}/{ep['name']}"
    except (KeyError, TypeError, AttributeError):
        return ""


def load_rules_file(path: Path) -> Feed:
    """JSON or YAML (a JSON document is valid YAML, but json is faster for big files)."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ModelError(f"{path}: neither JSON nor YAML: {exc}") from exc
    return parse_compiled(data)


def merge_last_good(feed: Feed, last_good: Compiled | None, failed: frozenset[str] = frozenset()) -> Compiled:
    """The feed's compiled state, with broken (or unrenderable) entries replaced by their last good."""
    endpoints = {k: v for k, v in feed.compiled.endpoints.items() if k not in failed}
    sets = dict(feed.compiled.peer_sets)
    if last_good is not None:
        for key in feed.broken_endpoints | failed:
            if key in last_good.endpoints:
                endpoints[key] = last_good.endpoints[key]
        for name in feed.broken_sets:
            if name in last_good.peer_sets:
                sets[name] = last_good.peer_sets[name]
    return Compiled(endpoints, sets, feed.compiled.problems)
