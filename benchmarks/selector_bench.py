"""Calico selector benchmark: parse 1k selectors, match them against 10k endpoints.

Run: ``python3 benchmarks/selector_bench.py [--selectors N] [--endpoints M]``. Prints parse time
per selector, the total and per-match cost of the compiled matcher (``Selector.matches``), and
the same for the tree-walking definition (``Selector.evaluate``) on a sample, as a ratio measured
in the same run. Deterministic inputs (fixed random seed); no pass/fail.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("", "operator")]

from picket_operator.compiler.frontends.calico.selector import _Parser  # noqa: E402  (uncached parsing)
from picket_operator.compiler.frontends.calico.selector_ast import Selector  # noqa: E402

KEYS = ["app", "tier", "env", "team", "example.com/zone", "k8s-app", "version", "role"]
VALUES = ["web", "db", "cache", "prod", "dev", "blue", "green", "frontend", "backend", "v1", "v2", "true"]


def random_term(rng: random.Random) -> str:
    k, v = rng.choice(KEYS), rng.choice(VALUES)
    return rng.choice([
        f"{k} == '{v}'", f"{k} != '{v}'", f"has({k})", f"!has({k})",
        f"{k} in {{'{v}', '{rng.choice(VALUES)}'}}", f"{k} not in {{'{v}'}}",
        f"{k} contains '{v[:2]}'", f"{k} starts with '{v[:1]}'", f"{k} ends with '{v[-1:]}'",
    ])


def random_selector(rng: random.Random) -> str:
    clauses = []
    for _ in range(rng.randint(1, 3)):
        terms = [random_term(rng) for _ in range(rng.randint(1, 3))]
        clauses.append("(" + " && ".join(terms) + ")" if len(terms) > 1 else terms[0])
    return " || ".join(clauses)


def random_labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(2, 6))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selectors", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10000)
    args = ap.parse_args()
    rng = random.Random(20240601)
    texts = [random_selector(rng) for _ in range(args.selectors)]
    endpoints = [random_labels(rng) for _ in range(args.endpoints)]

    t0 = time.perf_counter()
    selectors: list[Selector] = [_Parser(t).selector() for t in texts]
    parse_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in selectors:
        s.canonical()
    canon_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in selectors:
        s.matches({})  # compiles each matcher once
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    hits = sum(s.matches(e) for s in selectors for e in endpoints)
    match_s = time.perf_counter() - t0
    pairs = len(selectors) * len(endpoints)

    sample = selectors[: max(1, len(selectors) // 20)]
    t0 = time.perf_counter()
    tree_hits = sum(s.evaluate(e) for s in sample for e in endpoints)
    tree_s = time.perf_counter() - t0
    tree_pairs = len(sample) * len(endpoints)
    assert tree_hits == sum(s.matches(e) for s in sample for e in endpoints)

    print(f"selectors: {len(selectors)}, endpoints: {len(endpoints)}, matches: {hits} of {pairs}")
    print(f"parse:     {parse_s * 1e3:8.1f} ms total, {parse_s / len(texts) * 1e6:6.1f} us per selector")
    print(f"canonical: {canon_s * 1e3:8.1f} ms total, {canon_s / len(texts) * 1e6:6.1f} us per selector")
    print(f"compile:   {compile_s * 1e3:8.1f} ms total, {compile_s / len(texts) * 1e6:6.1f} us per selector")
    print(f"match:     {match_s:8.2f} s total,  {match_s / pairs * 1e9:6.0f} ns per match (compiled)")
    print(f"tree walk: {tree_s / tree_pairs * 1e9:6.0f} ns per match on a {len(sample)}-selector sample; "
          f"compiled is {tree_s / tree_pairs / (match_s / pairs):.1f}x faster")


if __name__ == "__main__":
    main()
