"""The typed AST of a Calico selector: matching, normalising and printing.

``picket_operator.compiler.frontends.calico.selector.parse`` builds these nodes; everything else (the Calico
frontend, the oracle, the benchmark) only calls ``matches(labels)`` and ``canonical()``.

Semantics follow Calico's selector documentation:

* ``k == 'v'``, ``k in {...}``, ``k contains 's'``, ``k starts with 's'``, ``k ends with 's'``
  need the label: "Matches resources with the label 'k' and value ...";
* ``k != 'v'`` and ``k not in {...}`` also match a missing label: "Matches resources without
  label 'k' or with label 'k' and value not equal to v";
* ``all()`` matches everything in scope; ``global()`` "match[es] all non-namespaced
  resources": namespaced endpoints carry the label ``projectcalico.org/namespace`` (as Calico
  adds it to workload endpoints), so ``global()`` is ``!has(projectcalico.org/namespace)``.

Matching is the hot path (1k selectors x 10k endpoints), so each node compiles once, lazily,
into one Python expression over the label mapping (``_code``); ``evaluate`` is the plain
tree-walking definition the compiled form is tested against.

``canonical()`` prints the *normalised* tree (nested ``&&``/``||`` flattened, operands sorted and
deduplicated, ``!!x`` -> ``x``, one-value sets as ``==``/``!=``, ``all()`` absorbed), so selectors
that differ only in spelling, order or brackets share one peer set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

NAMESPACE_LABEL = "projectcalico.org/namespace"

Labels = Mapping[str, str]


def quote(value: str) -> str:
    """A Calico string literal: double quotes unless the value contains one."""
    return f"'{value}'" if '"' in value else f'"{value}"'


class Selector:
    """Base of every node. Subclasses are frozen dataclasses."""

    def evaluate(self, labels: Labels) -> bool:
        raise NotImplementedError

    def code(self) -> str:
        """A Python expression over the mapping ``L`` equal to ``evaluate(L)``."""
        raise NotImplementedError

    def render(self) -> str:
        """This tree as selector text (brackets only where precedence needs them)."""
        raise NotImplementedError

    def normalised(self) -> Selector:
        return self

    @cached_property
    def _matcher(self) -> Callable[[Labels], bool]:
        try:
            fn: Callable[[Labels], bool] = eval(compile(f"lambda L: {self.code()}", "<selector>", "eval"))
        except (RecursionError, SyntaxError, MemoryError):  # pathological depth: walk the tree
            return self.evaluate
        return fn

    def matches(self, labels: Labels) -> bool:
        return self._matcher(labels)

    @cached_property
    def _canonical(self) -> str:
        return self.normalised().render()

    def canonical(self) -> str:
        return self._canonical

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True, eq=True)
class All(Selector):
    def evaluate(self, labels: Labels) -> bool:
        return True

    def code(self) -> str:
        return "True"

    def render(self) -> str:
        return "all()"


@dataclass(frozen=True, eq=True)
class Global(Selector):
    def evaluate(self, labels: Labels) -> bool:
        return NAMESPACE_LABEL not in labels

    def code(self) -> str:
        return f"({NAMESPACE_LABEL!r} not in L)"

    def render(self) -> str:
        return "global()"


@dataclass(frozen=True, eq=True)
class Has(Selector):
    key: str

    def evaluate(self, labels: Labels) -> bool:
        return self.key in labels

    def code(self) -> str:
        return f"({self.key!r} in L)"

    def render(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, eq=True)
class Compare(Selector):
    """``key OP value`` for ==, !=, contains, starts with, ends with."""

    key: str
    op: str  # one of OPS
    value: str

    def evaluate(self, labels: Labels) -> bool:
        got = labels.get(self.key)
        if got is None:
            return self.op == "!="  # only != matches a missing label
        if self.op == "==":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        if self.op == "contains":
            return self.value in got
        if self.op == "starts with":
            return got.startswith(self.value)
        return got.endswith(self.value)

    def code(self) -> str:
        k, v = repr(self.key), repr(self.value)
        if self.op in ("==", "!="):
            return f"(L.get({k}) {self.op} {v})"
        test = {"contains": f"{v} in _x", "starts with": f"_x.startswith({v})"}.get(self.op, f"_x.endswith({v})")
        return f"((_x := L.get({k})) is not None and {test})"

    def render(self) -> str:
        return f"{self.key} {self.op} {quote(self.value)}"


OPS = ("==", "!=", "contains", "starts with", "ends with")


@dataclass(frozen=True, eq=True)
class In(Selector):
    """``key in {...}`` (negated: ``key not in {...}``, which matches a missing label)."""

    key: str
    values: tuple[str, ...]
    negated: bool = False

    def evaluate(self, labels: Labels) -> bool:
        got = labels.get(self.key)
        return (got not in self.values) if self.negated else (got is not None and got in self.values)

    def code(self) -> str:
        values = "{" + ", ".join(repr(v) for v in self.values) + "}" if self.values else "()"
        return f"(L.get({self.key!r}) {'not in' if self.negated else 'in'} {values})"

    def render(self) -> str:
        word = "not in" if self.negated else "in"
        return f"{self.key} {word} {{{', '.join(quote(v) for v in self.values)}}}"

    def normalised(self) -> Selector:
        values = tuple(sorted(set(self.values)))
        if len(values) == 1:
            return Compare(self.key, "!=" if self.negated else "==", values[0])
        return In(self.key, values, self.negated)


@dataclass(frozen=True, eq=True)
class Not(Selector):
    operand: Selector

    def evaluate(self, labels: Labels) -> bool:
        return not self.operand.evaluate(labels)

    def code(self) -> str:
        return f"(not {self.operand.code()})"

    def render(self) -> str:
        inner = self.operand.render()
        return f"!({inner})" if isinstance(self.operand, And | Or) else f"!{inner}"

    def normalised(self) -> Selector:
        inner = self.operand.normalised()
        return inner.operand if isinstance(inner, Not) else Not(inner)


@dataclass(frozen=True, eq=True)
class And(Selector):
    operands: tuple[Selector, ...]

    def evaluate(self, labels: Labels) -> bool:
        return all(o.evaluate(labels) for o in self.operands)

    def code(self) -> str:
        return "(" + " and ".join(o.code() for o in self.operands) + ")"

    def render(self) -> str:
        return " && ".join(f"({o.render()})" if isinstance(o, Or) else o.render() for o in self.operands)

    def normalised(self) -> Selector:
        return _join(And, self.operands, absorbing=None, neutral=All())


@dataclass(frozen=True, eq=True)
class Or(Selector):
    operands: tuple[Selector, ...]

    def evaluate(self, labels: Labels) -> bool:
        return any(o.evaluate(labels) for o in self.operands)

    def code(self) -> str:
        return "(" + " or ".join(o.code() for o in self.operands) + ")"

    def render(self) -> str:
        return " || ".join(o.render() for o in self.operands)

    def normalised(self) -> Selector:
        return _join(Or, self.operands, absorbing=All(), neutral=None)


def _join(
    cls: type[And] | type[Or], operands: tuple[Selector, ...], absorbing: Selector | None, neutral: Selector | None
) -> Selector:
    """Flatten, drop the neutral element, short-circuit on the absorbing one, sort, dedupe."""
    flat: dict[str, Selector] = {}
    for operand in operands:
        norm = operand.normalised()
        parts = norm.operands if isinstance(norm, cls) else (norm,)
        for part in parts:
            if part == absorbing:
                return part
            if part != neutral:
                flat.setdefault(part.render(), part)
    if not flat:
        return neutral if neutral is not None else All()
    if len(flat) == 1:
        return next(iter(flat.values()))
    return cls(tuple(flat[k] for k in sorted(flat)))
