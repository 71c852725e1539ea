"""Calico selector parser: documented operators, precedence, missing labels, errors, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picket_operator.compiler.frontends.calico.selector import MAX_DEPTH, SelectorError, parse
from picket_operator.compiler.frontends.calico.selector_ast import (
    NAMESPACE_LABEL,
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

POD = {"app": "web", "tier": "frontend", "env": "production", "example.com/team": "blue"}

# (selector, labels, expected) — the operators of Calico's selector reference, one by one.
MATCH_CASES = [
    ("all()", {}, True),
    ("!all()", POD, False),
    ("", POD, True),
    ("app == 'web'", POD, True),
    ('app == "db"', POD, False),
    ("app != 'db'", POD, True),
    ("app != 'web'", POD, False),
    ("has(app)", POD, True),
    ("has(missing)", POD, False),
    ("!has(missing)", POD, True),
    ("tier in {'frontend', 'backend'}", POD, True),
    ("tier in {'backend'}", POD, False),
    ("tier in {}", POD, False),
    ("tier not in {'frontend'}", POD, False),
    ("tier not in {'db', 'cache'}", POD, True),
    ("env contains 'duct'", POD, True),
    ("env contains 'dev'", POD, False),
    ("env starts with 'prod'", POD, True),
    ("env starts with 'duct'", POD, False),
    ("env ends with 'tion'", POD, True),
    ("env ends with 'prod'", POD, False),
    ("example.com/team == 'blue'", POD, True),
    ("app == 'web' && tier == 'frontend'", POD, True),
    ("app == 'web' && tier == 'backend'", POD, False),
    ("app == 'db' || tier == 'frontend'", POD, True),
    ("(app == 'db')", POD, False),
    ("app=='web'&&tier!='x'", POD, True),
    ("  has( app )  ", POD, True),
    ("global()", POD, True),
    ("global()", {**POD, NAMESPACE_LABEL: "default"}, False),
    ('quote == "it\'s"', {"quote": "it's"}, True),
    ("quote == 'say \"hi\"'", {"quote": 'say "hi"'}, True),
    ("all == 'x'", {"all": "x"}, True),  # keywords are label keys when no '(' follows
    ("has == 'x'", {"has": "x"}, True),
]

# The documented missing-label rules: only != and not in match a missing label.
MISSING_CASES = [
    ("k == 'v'", False),
    ("k != 'v'", True),
    ("k in {'v'}", False),
    ("k not in {'v'}", True),
    ("k contains ''", False),
    ("k starts with ''", False),
    ("k ends with ''", False),
    ("has(k)", False),
    ("!has(k)", True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCH_CASES)
def test_documented_operators(text: str, labels: dict[str, str], expected: bool) -> None:
    sel = parse(text)
    assert sel.matches(labels) is expected
    assert sel.evaluate(labels) is expected


@pytest.mark.parametrize(("text", "expected"), MISSING_CASES)
def test_missing_label(text: str, expected: bool) -> None:
    assert parse(text).matches({"other": "v"}) is expected


def test_documented_precedence_example() -> None:
    # The reference's own example: ! binds tighter than &&, && tighter than ||.
    sel = parse("! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}")
    assert sel == Or(
        (
            Not(Has("my-label")),
            And((Compare("my-label", "starts with", "prod"), In("role", ("frontend", "business")))),
        )
    )
    assert sel.matches({})
    assert sel.matches({"my-label": "prod-1", "role": "business"})
    assert not sel.matches({"my-label": "prod-1", "role": "db"})
    assert not sel.matches({"my-label": "dev", "role": "frontend"})


def eq(key: str, value: str) -> Compare:
    return Compare(key, "==", value)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a == 'x' || b == 'y' && c == 'z'", Or((eq("a", "x"), And((eq("b", "y"), eq("c", "z")))))),
        ("(a == 'x' || b == 'y') && c == 'z'", And((Or((eq("a", "x"), eq("b", "y"))), eq("c", "z")))),
        ("!a == 'x' && b == 'y'", And((Not(eq("a", "x")), eq("b", "y")))),
        ("!(a == 'x' && b == 'y')", Not(And((eq("a", "x"), eq("b", "y"))))),
        ("!!has(a)", Not(Not(Has("a")))),
        ("global() && all()", And((Global(), All()))),
    ],
)
def test_precedence(text: str, tree: Selector) -> None:
    assert parse(text) == tree


MATCH_OPS_TEXT = "'==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with'"


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("running-calico = 'true'", 15, f"expected {MATCH_OPS_TEXT}"),
        ("a == 'b' &&", 11, "expected '!', '(', 'all()', 'global()', 'has(' or a label key"),
        ("a == b", 5, "expected a quoted string"),
        ("a == 'b", 7, "expected closing '"),
        ("has(a", 5, "expected ')'"),
        ("has()", 4, "expected a label key"),
        ("(a == 'b'", 9, "expected '&&', '||' or ')'"),
        ("a == 'b' c", 9, "expected '&&', '||' or end of selector"),
        ("a in 'b'", 5, "expected '{'"),
        ("a in {'b' 'c'}", 10, "expected ',' or '}'"),
        ("a not 'b'", 6, "expected 'in'"),
        ("a starts 'b'", 9, "expected 'with'"),
        ("a == 'b' & c == 'd'", 9, "expected '&&', '||' or end of selector"),
        ("all(", 4, "expected ')'"),
    ],
)
def test_errors_name_position_and_expected_tokens(text: str, position: int, expected: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse(text)
    assert info.value.position == position
    assert str(info.value) == f"position {position}: {expected}"


def test_nesting_limit_is_an_error_not_a_crash() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "all()" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(SelectorError):
        parse(deep)
    ok = "(" * MAX_DEPTH + "has(a)" + ")" * MAX_DEPTH
    assert parse(ok).matches({"a": ""})


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("a == 'x' && b == 'y'", "b == 'y' && a == 'x'"),
        ("a == 'x' && (b == 'y' && c == 'z')", "(a == 'x' && b == 'y') && c == 'z'"),
        ("a in {'2', '1', '1'}", "a in {'1', '2'}"),
        ("a in {'1'}", "a == '1'"),
        ("a not in {'1'}", "a != '1'"),
        ("!!has(a)", "has(a)"),
        ("all() && has(a)", "has(a)"),
        ("all() || has(a)", "all()"),
        ("has(a) || has(a)", "has(a)"),
        ("", "all()"),
    ],
)
def test_canonical_form_is_shared_by_equal_selectors(left: str, right: str) -> None:
    assert parse(left).canonical() == parse(right).canonical()


def test_canonical_form_keeps_different_selectors_apart() -> None:
    texts = ["a == 'x'", "a != 'x'", "has(a)", "!has(a)", "a in {'x', 'y'}", "a contains 'x'", "global()"]
    assert len({parse(t).canonical() for t in texts}) == len(texts)


# -- fuzzing ---------------------------------------------------------------------------------

KEYS = st.from_regex(r"[A-Za-z0-9_./-]{1,12}", fullmatch=True).filter(lambda k: k not in ("in", "not"))
VALUES = st.text(alphabet=st.characters(blacklist_characters="\"'", blacklist_categories=("Cs",)), max_size=8)
ATOMS = st.one_of(
    st.just(All()),
    st.just(Global()),
    st.builds(Has, KEYS),
    st.builds(Compare, KEYS, st.sampled_from(["==", "!=", "contains", "starts with", "ends with"]), VALUES),
    st.builds(In, KEYS, st.lists(VALUES, max_size=4).map(tuple), st.booleans()),
)
TREES: st.SearchStrategy[Selector] = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=4).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=4).map(tuple)),
    ),
    max_leaves=20,
)
LABELS = st.dictionaries(st.sampled_from(["a", "b", "c", NAMESPACE_LABEL]), st.sampled_from(["", "x", "xy", "yx"]))


@settings(max_examples=400)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_selector_error(text: str) -> None:
    try:
        sel = parse(text)
    except SelectorError as exc:
        assert 0 <= exc.position <= len(text)
        return
    assert parse(sel.canonical()).canonical() == sel.canonical()


SYMBOLS = st.sampled_from(
    ["a", "b", " ", "==", "!=", "!", "&&", "||", "(", ")", "'x'", '"y"', "{", "}", ",", "in", "not", "has(", "all()",
     "global()", "contains", "starts", "ends", "with", "'"]
)


@settings(max_examples=400)
@given(st.lists(SYMBOLS, max_size=20).map(" ".join))
def test_token_soup_parses_or_raises_selector_error(text: str) -> None:
    try:
        parse(text)
    except SelectorError as exc:
        assert 0 <= exc.position <= len(text)


@settings(max_examples=300)
@given(TREES, LABELS)
def test_generated_selectors_round_trip_and_match_alike(tree: Selector, labels: dict[str, str]) -> None:
    text = tree.render()
    parsed = parse(text)
    assert parsed.evaluate(labels) == tree.evaluate(labels)
    assert parsed.matches(labels) == tree.evaluate(labels)  # compiled form agrees with the definition
    canonical = parsed.canonical()
    again = parse(canonical)
    assert again == parsed.normalised()
    assert again.canonical() == canonical
    assert again.matches(labels) == tree.evaluate(labels)  # normalising keeps the meaning
