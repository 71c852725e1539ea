"""``iptrules.quote`` (memoised, with a fast path) quotes exactly as iptables-save does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from picket_agent.rendering.iptrules import quote

ALPHABET = st.sampled_from(list("abcXYZ019_-/. :\\\"'é\t"))


def reference(value: str) -> str:
    """iptables-save's rule: plain words as they are; anything else in double quotes, with
    backslash, double and single quote escaped by a backslash."""
    if value and all(c.isascii() and (c.isalnum() or c in "_-") for c in value):
        return value
    return '"' + "".join("\\" + c if c in "\\\"'" else c for c in value) + '"'


@given(st.text(ALPHABET, min_size=1, max_size=40))
def test_quote_equals_the_reference(value: str) -> None:
    assert quote(value) == reference(value)
    assert quote(value) == reference(value)  # again: the memoised answer

