"""`journal.entry_hash` spells the canonical JSON out by hand for speed; it must stay byte for byte what the
definition says: SHA-256(prev || canonical_json({seq, at, actor, action, subject, payload}))."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from registry.journal import canonical_json, entry_hash

texts = st.text(st.characters(exclude_categories=["Cs"]))  # any text UTF-8 can carry


@given(st.text("0123456789abcdef", min_size=64, max_size=64), st.integers(0, 2**63), texts, texts, texts, texts,
       texts)
def test_entry_hash_is_the_hash_of_the_canonical_json(
    prev: str, seq: int, at: str, actor: str, action: str, subject: str, payload: str
) -> None:
    body = canonical_json(
        {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "payload": payload}
    )
    assert entry_hash(prev, seq, at, actor, action, subject, payload) == hashlib.sha256(
        (prev + body).encode()
    ).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts | st.dates(),
    lambda inner: st.lists(inner) | st.tuples(inner, inner) | st.dictionaries(texts, inner),
    max_leaves=30,
)


@given(json_values)
def test_canonical_json_is_sorted_compact_utf8_json(value: object) -> None:
    """The encoder is called directly for speed: the bytes stay json.dumps' with the canonical options."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert canonical_json(value) == expected
