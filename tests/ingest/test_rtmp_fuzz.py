"""Fuzzing what an RTMP peer controls before it has a key: the handshake and the first messages.

The handshake parses the same however C0/C1/C2 are split, echoes C1 in S2 and hands back
exactly the bytes that follow C2; anything else raises only ``RtmpProtocolError``. After the
handshake, arbitrary bytes in arbitrary pieces raise only protocol errors, and the connection
never holds more than the pre-publish limits (plus the piece being read) until a key is accepted.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.ingest.rtmp import amf0
from live.ingest.rtmp.chunks import ChunkWriter
from live.ingest.rtmp.errors import LimitExceeded, RtmpProtocolError
from live.ingest.rtmp.handshake import HANDSHAKE_SIZE, HandshakeState, ServerHandshake
from live.ingest.rtmp.messages import MessageType, parse_u32, parse_user_control
from live.ingest.rtmp.server_protocol import PRE_PUBLISH_LIMITS, PublishRequested, ServerConnection


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return [p for p in pieces if p]


@settings(max_examples=150)
@given(c1=st.binary(min_size=HANDSHAKE_SIZE, max_size=HANDSHAKE_SIZE),
       c2=st.binary(min_size=HANDSHAKE_SIZE, max_size=HANDSHAKE_SIZE),
       rest=st.binary(max_size=300), cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_the_handshake_parses_the_same_however_it_is_split(
    c1: bytes, c2: bytes, rest: bytes, cuts: list[int]
) -> None:
    handshake = ServerHandshake()
    sent = b"\x03" + c1 + c2 + rest
    pieces = _split(sent, cuts)
    out, after = b"", b""
    for index, piece in enumerate(pieces):
        after = handshake.receive(piece)
        out += handshake.data_to_send()
        if handshake.state is HandshakeState.DONE:
            after += b"".join(pieces[index + 1:])
            break
    assert handshake.state is HandshakeState.DONE
    assert after == rest
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE and out[0] == 3
    s2 = out[1 + HANDSHAKE_SIZE:]
    assert s2[:4] == c1[:4] and s2[8:] == c1[8:]  # S2 echoes C1 (RTMP 1.0, 5.2.4)


@settings(max_examples=300)
@given(data=st.binary(max_size=2 * HANDSHAKE_SIZE + 200), cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_arbitrary_handshake_bytes_raise_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    handshake = ServerHandshake()
    try:
        for piece in _split(data, cuts):
            handshake.receive(piece)
            if handshake.state is HandshakeState.DONE:
                break
    except RtmpProtocolError:
        assert data[0] != 3
        return
    if len(data) >= 1 + HANDSHAKE_SIZE:
        assert data[0] == 3 and handshake.state is not HandshakeState.AWAIT_C0C1


def _handshaken() -> ServerConnection:
    server = ServerConnection()
    server.receive_data(b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(HANDSHAKE_SIZE))
    server.data_to_send()
    return server


_PREFIXES = st.sampled_from([
    b"",
    ChunkWriter().write(3, MessageType.COMMAND_AMF0, 0, 0,
                        amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"})),
])


@settings(max_examples=300)
@given(prefix=_PREFIXES, data=st.binary(min_size=1, max_size=20_000),
       cuts=st.lists(st.integers(0, 20_000), max_size=10))
def test_peer_bytes_before_a_key_raise_only_protocol_errors_and_stay_within_small_limits(
    prefix: bytes, data: bytes, cuts: list[int]
) -> None:
    server = _handshaken()
    limit = PRE_PUBLISH_LIMITS.max_pending_bytes
    try:
        for piece in _split(prefix + data, cuts):
            server.receive_data(piece)
            server.events_received()
            server.data_to_send()
            assert server.buffered_bytes <= limit + len(piece)
    except RtmpProtocolError:
        pass


def test_a_message_over_the_pre_publish_size_is_refused_until_a_key_is_accepted() -> None:
    big = b"\x05" * (PRE_PUBLISH_LIMITS.max_message_size + 1)
    server = _handshaken()
    with pytest.raises(LimitExceeded):
        server.receive_data(ChunkWriter().write(3, MessageType.COMMAND_AMF0, 0, 0, big)[:64])

    server = _handshaken()
    writer = ChunkWriter()
    server.receive_data(writer.write(3, MessageType.COMMAND_AMF0, 0, 0,
                                     amf0.encode("connect", 1.0, {"app": "live"})))
    server.receive_data(writer.write(3, MessageType.COMMAND_AMF0, 0, 0,
                                     amf0.encode("createStream", 2.0, None)))
    server.receive_data(writer.write(8, MessageType.COMMAND_AMF0, 1, 0,
                                     amf0.encode("publish", 3.0, None, "key", "live")))
    requested = [e for e in server.events_received() if isinstance(e, PublishRequested)]
    server.accept_publish(requested[0].stream_id)
    server.receive_data(writer.write(6, MessageType.VIDEO, 1, 0, b"\x17\x01" + big))  # a keyframe: fine now


@settings(max_examples=300)
@given(payload=st.binary(max_size=16))
def test_user_control_and_u32_payloads_parse_or_raise_protocol_errors(payload: bytes) -> None:
    for parse in (lambda: parse_user_control(payload), lambda: parse_u32(payload, "fuzz")):
        try:
            parse()
        except RtmpProtocolError:
            pass
