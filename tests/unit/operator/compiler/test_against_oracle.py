"""Property: for random clusters, the compiled verdict equals the reference oracle's on every pair
of pods, port and protocol. The compiled side is ``compile_cluster`` evaluated by
``picket.evaluating``; the oracle (tests/unit/compiler/oracle.py) shares no code with it."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from picket_operator.compiler.compiling import compile_cluster
from tests.unit.operator.compiler.builders import compiled_allows
from tests.unit.operator.compiler.oracle import Oracle
from tests.unit.operator.compiler.strategies import PORTS, PROTOCOLS, clusters


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_compiled_verdicts_equal_the_oracle(objects: list[dict[str, Any]]) -> None:
    compiled = compile_cluster(objects)
    # The generator only makes valid objects; the only problems are warnings about named ports
    # that no pod declares (they match nothing, which the oracle checks too).
    assert all("it matches nothing" in p.message for p in compiled.problems), compiled.problems
    oracle = Oracle(objects)
    pods = oracle.pods()
    assert sorted(compiled.endpoints) == pods
    for src in pods:
        for dst in pods:
            for port in PORTS:
                for protocol in PROTOCOLS:
                    expected = oracle.allowed(src, dst, port, protocol)
                    got = compiled_allows(compiled, src, dst, port, protocol)
                    assert got == expected, f"{src} -> {dst} {protocol}/{port}: compiled {got}, oracle {expected}"
