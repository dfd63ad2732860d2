"""The SRT stream ID in the access-control syntax (``#!::r=live/KEY,m=publish``) or bare."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live.ingest.srt.streamid import StreamId, StreamIdError, parse_stream_id


@pytest.mark.parametrize(("text", "expected"), [
    ("#!::r=live/key_alpha_123,m=publish", StreamId("key_alpha_123")),
    ("#!::m=publish,r=live/key_alpha_123,u=alice,s=abc",
     StreamId("key_alpha_123", "publish", "alice", "abc")),
    ("#!::r=key_alpha_123,m=publish,t=stream", StreamId("key_alpha_123")),
    ("%23!::r=live/key_alpha_123,m=publish", StreamId("key_alpha_123")),
    ("key_alpha_123", StreamId("key_alpha_123")),
    ("live/key_alpha_123", StreamId("key_alpha_123")),
])
def test_the_stream_key_is_read_from_every_accepted_form(text: str, expected: StreamId) -> None:
    assert parse_stream_id(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("#!::r=live/key_alpha_123", "this listener only takes publishers"),  # m defaults to request
    ("#!::r=live/key_alpha_123,m=request", "only takes publishers"),
    ("#!::r=live/key_alpha_123,m=steal", "is not one of"),
    ("#!::m=publish", "no resource"),
    ("#!::r=live/a b,m=publish", "is not live/KEY"),
    ("#!::r=live/k,m=publish,x=1", "unsupported keys"),
    ("#!::r=live/k,r=live/j,m=publish", "repeats"),
    ("#!::r=live/k,m=publish,t=file", "only t=stream"),
    ("#!::garbage", "not key=value"),
    ("", "neither"),
    ("two words", "neither"),
    ("k" * 600, "longer than 512"),
])
def test_malformed_or_non_publishing_ids_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(StreamIdError, match=reason) as caught:
        parse_stream_id(text)
    assert caught.value.mode == ("publishers" in reason)


@given(st.text(max_size=600))
def test_any_text_parses_or_raises_stream_id_error(text: str) -> None:
    try:
        parsed = parse_stream_id(text)
    except StreamIdError:
        return
    assert 1 <= len(parsed.stream_key) <= 128
