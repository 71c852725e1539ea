"""The operator's Prometheus metrics, read from the parts' counters at scrape time.

A custom collector instead of counters updated in the hot path: the publisher and the feed keep
plain integers, and a scrape reads them. Served by ``prometheus_client`` on ``--metrics-port``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily


class OperatorCollector:
    def __init__(self, feed: Any, publisher: Any, is_leader: Callable[[], bool], poster: Any) -> None:
        self._feed, self._publisher, self._is_leader, self._poster = feed, publisher, is_leader, poster

    def collect(self) -> Iterator[Any]:
        pub, feed = self._publisher, self._feed
        gauges = [
            ("picket_operator_leader", "1 when this replica holds the lease", 1.0 * self._is_leader()),
            ("picket_operator_ready", "1 once the initial state is compiled", 1.0 * feed.ready()),
            ("picket_operator_published_nodes", "CompiledNodes published", len(pub.ledger.nodes)),
            ("picket_operator_published_rule_sets", "CompiledRuleSets published", len(pub.ledger.rule_sets)),
            ("picket_operator_legacy_endpoints", "CompiledEndpoints of the previous form left to delete",
             len(pub.ledger.legacy)),
            ("picket_operator_published_peer_sets", "CompiledPeerSets published", len(pub.ledger.peer_sets)),
            ("picket_operator_problems", "current problems in input objects", len(feed.problems())),
        ]
        for name, help_, value in gauges:
            yield GaugeMetricFamily(name, help_, value)
        yield CounterMetricFamily("picket_operator_syncs", "publisher syncs performed", pub.syncs)
        yield CounterMetricFamily("picket_operator_writes", "compiled objects written or deleted", pub.writes)
        yield CounterMetricFamily("picket_operator_events_posted", "Warning Events posted", self._poster.posted_total)

def serve(port: int, feed: Any, publisher: Any, is_leader: Callable[[], bool], poster: Any) -> None:
    REGISTRY.register(OperatorCollector(feed, publisher, is_leader, poster))
    start_http_server(port)
