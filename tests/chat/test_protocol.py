"""The chat protocol core: any client bytes parse or fail with a ClientError; events round-trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.chat.protocol import (
    AddModerator,
    Ban,
    ChatMessage,
    ClearChat,
    ClientError,
    DeleteMessage,
    EmoteRange,
    ModeChange,
    ModerationEvent,
    PeerError,
    RemoveModerator,
    Send,
    Timeout,
    Unban,
    batch_frame,
    decode_event,
    emote_ranges,
    encode_event,
    parse_client_message,
)
from live.chat.settings import DEFAULT_EMOTES

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
types = st.sampled_from(
    ["send", "auth", "ping", "delete", "timeout", "ban", "unban", "clear", "mod", "unmod", "modes", "nope"]
)
frames = st.builds(
    lambda t, members: {"type": t, **members},
    types,
    st.dictionaries(
        st.sampled_from(
            [
                "text",
                "token",
                "id",
                "user",
                "seconds",
                "reason",
                "slow",
                "emote_only",
                "followers_min",
                "nonce",
            ]
        ),
        json_values,
        max_size=4,
    ),
)


@settings(max_examples=200)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_either_parse_or_raise_client_error(raw: bytes | str) -> None:
    try:
        parse_client_message(raw)
    except ClientError as error:
        assert error.code and error.message


@settings(max_examples=200)
@given(frame=frames)
def test_typed_frames_with_arbitrary_members_either_parse_or_name_the_fault(frame: dict[str, Any]) -> None:
    try:
        message = parse_client_message(json.dumps(frame))
    except ClientError as error:
        assert error.code in {"bad_type", "bad_field", "bad_text", "empty_text", "too_long"}
        return
    if isinstance(message, Send):
        assert 1 <= len(message.text) <= 500 and message.text == message.text.strip()
    if isinstance(message, Timeout):
        assert 1 <= message.seconds <= 1_209_600


def test_timeouts_outside_one_second_to_two_weeks_are_refused() -> None:
    for seconds in (0, 1_209_601, 1.5, "60"):
        with pytest.raises(ClientError, match="seconds"):
            parse_client_message(json.dumps({"type": "timeout", "user": "abc", "seconds": seconds}))
    assert parse_client_message('{"type":"timeout","user":"abc","seconds":1209600}') == Timeout(
        "abc", 1_209_600
    )


def test_oversized_frames_and_control_characters_are_refused() -> None:
    with pytest.raises(ClientError) as too_big:
        parse_client_message(b"{" + b" " * 5000 + b"}", max_bytes=4096)
    assert too_big.value.code == "too_large"
    with pytest.raises(ClientError) as control:
        parse_client_message('{"type":"send","text":"a\\u0000b"}')
    assert control.value.code == "bad_text"


users = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=3, max_size=25)
actions = st.one_of(
    st.builds(DeleteMessage, st.integers(1, 2**40)),
    st.builds(Timeout, users, st.integers(1, 1_209_600), st.text(max_size=20)),
    st.builds(Ban, users, st.text(max_size=20)),
    st.builds(Unban, users),
    st.just(ClearChat()),
    st.builds(AddModerator, users),
    st.builds(RemoveModerator, users),
    st.builds(
        ModeChange,
        st.none() | st.integers(0, 120),
        st.none() | st.booleans(),
        st.none() | st.integers(0, 7_776_000),
        st.none() | st.booleans(),
        st.none() | st.booleans(),
        st.none() | st.booleans(),
    ).filter(lambda c: c != ModeChange()),
)
texts = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="\x7f\u2028\u2029"),
    min_size=1,
    max_size=60,
)
events = st.one_of(
    st.builds(
        ChatMessage,
        st.integers(0, 2**40),
        users,
        texts,
        st.integers(0, 2**45),
        st.lists(st.sampled_from(["broadcaster", "moderator", "subscriber"]), max_size=2).map(tuple),
        st.lists(
            st.builds(
                EmoteRange, st.integers(0, 99), st.integers(0, 99), st.sampled_from(sorted(DEFAULT_EMOTES))
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(ModerationEvent, st.integers(0, 2**40), st.integers(0, 2**45), users, actions),
)


@settings(max_examples=200)
@given(event=events)
def test_room_events_round_trip_through_the_broker_encoding(event: ChatMessage | ModerationEvent) -> None:
    assert decode_event(encode_event(event)) == event


@settings(max_examples=100)
@given(batch=st.lists(events.filter(lambda e: isinstance(e, ChatMessage)), max_size=5))
def test_batch_frame_is_the_json_list_of_its_messages(batch: list[ChatMessage]) -> None:
    frame = json.loads(batch_frame(encode_event(e) for e in batch))
    assert frame["type"] == "messages"
    assert [decode_event(json.dumps(m)) for m in frame["messages"]] == batch


@settings(max_examples=100)
@given(words=st.lists(st.sampled_from(sorted(DEFAULT_EMOTES)) | st.text("abc ", max_size=6), max_size=8))
def test_emote_ranges_point_at_exactly_the_emote_names(words: list[str]) -> None:
    text = " ".join(words)
    for emote in emote_ranges(text, DEFAULT_EMOTES):
        assert text[emote.start : emote.end + 1] == emote.name


def test_peer_payloads_that_are_not_room_events_are_peer_errors() -> None:
    for raw in [
        b"\xff",
        b'{"type":"message","id":-1}',
        b'{"type":"moderation","id":1,"at":1,"by":"abc","action":"send","text":"x"}',
        b'{"type":"other"}',
    ]:
        with pytest.raises(PeerError):
            decode_event(raw)
