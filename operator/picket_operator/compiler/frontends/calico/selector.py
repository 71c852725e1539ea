"""Parser for Calico's selector expression language.

``parse(text) -> Selector`` is a recursive-descent parser working directly on the string, so
every error carries the 0-based position where the unexpected text starts and the tokens that
would have been accepted there (``SelectorError``). The grammar, with Calico's documented
precedence ("Highest: all the match operators; Parentheses; Negation with !; Conjunction with
&&; Lowest: Disjunction with ||"):

    selector := or END               (an empty or blank selector is all())
    or       := and ('||' and)*
    and      := unary ('&&' unary)*
    unary    := '!' unary | primary
    primary  := '(' or ')' | 'all()' | 'global()' | 'has(' KEY ')' | KEY match
    match    := ('==' | '!=' | 'contains' | 'starts with' | 'ends with') STRING
              | ('in' | 'not in') '{' [STRING (',' STRING)*] '}'
    KEY      := [A-Za-z0-9_./-]+      (prefixes with '/' and dots, as in Kubernetes label keys)
    STRING   := "..." | '...'         (no escapes, as in Calico)

Callers: the Calico frontend (policy, rule and network-set selectors), the Calico oracle, the
selector benchmark. Nodes and their meaning live in ``selector_ast``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from picket_operator.compiler.frontends.calico.selector_ast import (
    OPS,
    All,
    And,
    Compare,
    Global,
    Has,
    In,
    Not,
    Or,
    Selector,
)

KEY_RE = re.compile(r"[A-Za-z0-9_./-]+")
_SPACE_RE = re.compile(r"\s*")
_WORD_OPS = {"contains": "contains", "starts": "starts with", "ends": "ends with"}
MATCH_OPS = ("'=='", "'!='", "'in'", "'not in'", "'contains'", "'starts with'", "'ends with'")
PRIMARY = ("'!'", "'('", "'all()'", "'global()'", "'has('", "a label key")
MAX_DEPTH = 64  # brackets and '!' nested deeper than this are refused (no recursion blow-up)


class SelectorError(ValueError):
    """A selector that does not parse: where (0-based) and what was expected there."""

    def __init__(self, text: str, position: int, expected: tuple[str, ...]) -> None:
        self.text, self.position, self.expected = text, position, expected
        super().__init__(f"position {position}: expected {_alternatives(expected)}")


def _alternatives(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


@lru_cache(maxsize=16384)
def parse(text: str) -> Selector:
    """Parse one selector; raises ``SelectorError``. Results are cached (nodes are immutable)."""
    return _Parser(text).selector()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- lexical helpers ---------------------------------------------------------------------
    def _skip(self) -> int:
        match = _SPACE_RE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos
        return self.pos

    def _fail(self, *expected: str) -> SelectorError:
        return SelectorError(self.text, self.pos, expected)

    def _take(self, literal: str) -> bool:
        self._skip()
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def _word(self) -> str | None:
        """The key-like word at the cursor (not consumed), for keywords and keys."""
        match = KEY_RE.match(self.text, self._skip())
        return match.group() if match else None

    def _string(self) -> str:
        start = self._skip()
        quote = self.text[start : start + 1]
        if quote not in ("'", '"'):
            raise self._fail("a quoted string")
        end = self.text.find(quote, start + 1)
        if end < 0:
            self.pos = len(self.text)
            raise self._fail(f"closing {quote}")
        self.pos = end + 1
        return self.text[start + 1 : end]

    # -- grammar -------------------------------------------------------------------------------
    def selector(self) -> Selector:
        if self._skip() == len(self.text):
            return All()
        node = self._or()
        if self._skip() != len(self.text):
            raise self._fail("'&&'", "'||'", "end of selector")
        return node

    def _or(self) -> Selector:
        operands = [self._and()]
        while self._take("||"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Selector:
        operands = [self._unary()]
        while self._take("&&"):
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SelectorError(self.text, self.pos, (f"at most {MAX_DEPTH} nested '(' or '!'",))

    def _unary(self) -> Selector:
        self._skip()
        if self.text.startswith("!", self.pos) and not self.text.startswith("!=", self.pos):
            self.pos += 1
            self._nest()
            node: Selector = Not(self._unary())
            self.depth -= 1
            return node
        return self._primary()

    def _primary(self) -> Selector:
        if self._take("("):
            self._nest()
            node = self._or()
            if not self._take(")"):
                raise self._fail("'&&'", "'||'", "')'")
            self.depth -= 1
            return node
        word = self._word()
        if word is None:
            raise self._fail(*PRIMARY)
        start = self.pos
        self.pos += len(word)
        if word in ("all", "global", "has") and self._take("("):
            return self._function(word)
        self.pos = start + len(word)
        return self._match(word)

    def _function(self, name: str) -> Selector:
        if name == "has":
            key = self._word()
            if key is None:
                raise self._fail("a label key")
            self.pos += len(key)
            node: Selector = Has(key)
        else:
            node = All() if name == "all" else Global()
        if not self._take(")"):
            raise self._fail("')'")
        return node

    def _match(self, key: str) -> Selector:
        self._skip()
        for op in ("==", "!="):
            if self._take(op):
                return Compare(key, op, self._string())
        word = self._word()
        if word == "in" or word == "not":
            self.pos += len(word)
            if word == "not" and self._word() != "in":
                raise self._fail("'in'")
            self.pos += 2 if word == "not" else 0
            return In(key, self._set(), negated=word == "not")
        if word in _WORD_OPS:
            op = _WORD_OPS[word]
            self.pos += len(word)
            if op != "contains" and self._word() != "with":
                raise self._fail("'with'")
            self.pos += 0 if op == "contains" else len("with")
            assert op in OPS
            return Compare(key, op, self._string())
        raise self._fail(*MATCH_OPS)

    def _set(self) -> tuple[str, ...]:
        if not self._take("{"):
            raise self._fail("'{'")
        values: list[str] = []
        if self._take("}"):
            return ()
        while True:
            values.append(self._string())
            if self._take("}"):
                return tuple(values)
            if not self._take(","):
                raise self._fail("','", "'}'")
