"""Fuzzing what reaches chat from outside (read-only use of ``live.chat``): room events from peer
nodes, and the query of the WebSocket handshake.

A peer node's payload decodes to a room event or raises ``PeerError``, whatever members and
types it carries. A handshake with any query either opens the room or is refused with 400
(bad ``after``) or 401 (unknown token), never a 500 or a dropped connection.
"""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.chat.broker import MemoryBroker
from live.chat.protocol import ChatMessage, ModerationEvent, PeerError, decode_event
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .conftest import TableAuth

_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
            | st.text(max_size=30) | st.sampled_from(["alice", "bob_2", "x", "message", "moderation"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_MEMBERS = st.sampled_from(["type", "id", "user", "text", "sent_at", "badges", "emotes", "action",
                            "at", "by", "message_id", "change", "seconds", "reason", "slow_s",
                            "target", "mode", "value"])
_EVENTS = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "moderation", "other"])},
    optional={"action": st.sampled_from(["delete", "timeout", "ban", "unban", "clear", "modes",
                                         "add_moderator", "remove_moderator", "send", "auth", "x"])},
).flatmap(lambda base: st.dictionaries(_MEMBERS, _VALUES, max_size=8).map(lambda extra: {**extra, **base}))


@settings(max_examples=500)
@given(event=_EVENTS)
def test_any_peer_event_decodes_to_a_room_event_or_a_peer_error(event: dict[str, Any]) -> None:
    try:
        decoded = decode_event(json.dumps(event))
    except PeerError as error:
        assert str(error)
        return
    assert isinstance(decoded, ChatMessage | ModerationEvent)


@settings(max_examples=300)
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_any_peer_payload_decodes_or_is_a_peer_error(raw: bytes | str) -> None:
    try:
        decode_event(raw)
    except PeerError:
        pass


@pytest.fixture
async def chat(auth: TableAuth) -> AsyncIterator[ChatServer]:
    # parsing is on trial here, not the sign-in throttle (tests/chat/test_server_limits.py)
    settings = ChatSettings(batch_interval_s=0.01, failed_sign_in_limit=1_000_000)
    node = ChatServer(auth, MemoryBroker(), settings)
    await node.start("127.0.0.1", 0)
    try:
        yield node
    finally:
        await node.close()


_QUERY_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "&=%+-_.~", max_size=60)
_PAIRS = st.lists(st.tuples(st.sampled_from(["token", "after", "x"]),
                            st.sampled_from(["", "0", "1", "007", "-1", "99999999999999999999",
                                             "token-streamer", "bogus", "%30", "1e3"])), max_size=4)
_QUERIES = _QUERY_TEXT | _PAIRS.map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_QUERIES)
async def test_any_handshake_query_opens_the_room_or_is_refused_with_400_or_401(
    chat: ChatServer, query: str
) -> None:
    try:
        async with connect(f"ws://127.0.0.1:{chat.port}/chat/lobby?{query}", open_timeout=5,
                           compression=None) as ws:
            welcome = json.loads(await ws.recv())
        status = 101
    except InvalidStatus as refused:
        status = refused.response.status_code
    parsed = parse_qs(query)
    token = parsed.get("token", [""])[-1]
    after = parsed.get("after", ["0"])[-1]
    if token and token != "token-streamer":
        assert status == 401, (query, status)
    elif not (after.isdigit() and len(after) <= 18):
        assert status == 400, (query, status)
    else:
        assert status in (101, 400), (query, status)  # 400: an id ahead of the room's messages
    if status == 101:
        assert welcome["type"] == "welcome"
