"""The server-side connection core, driven by the client-side core byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.ingest.rtmp import amf0
from live.ingest.rtmp.chunks import ChunkReader, ChunkWriter
from live.ingest.rtmp.client_protocol import (
    ClientConnection,
    ClientState,
    PublishRejected,
    PublishStarted,
)
from live.ingest.rtmp.errors import RtmpProtocolError
from live.ingest.rtmp.handshake import HANDSHAKE_SIZE, ServerHandshake
from live.ingest.rtmp.messages import MessageType, UserControlEvent, user_control
from live.ingest.rtmp.server_protocol import (
    Connected,
    MediaReceived,
    MetadataReceived,
    PublishEnded,
    PublishRequested,
    ServerConnection,
)


def pump(client: ClientConnection, server: ServerConnection, accept: bool = True) -> list:
    """Exchange bytes until both sides are quiet; returns the server's events."""
    events = []
    for _ in range(20):
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server)
        for event in server.events_received():
            events.append(event)
            if isinstance(event, PublishRequested):
                if accept:
                    server.accept_publish(event.stream_id)
                else:
                    server.reject_publish(event.stream_id, "NetStream.Publish.BadName", "no")
        to_client = server.data_to_send()
        if to_client:
            client.receive_data(to_client)
        if not to_server and not to_client:
            break
    return events


def test_publish_flow_connects_creates_a_stream_and_starts_publishing() -> None:
    client = ClientConnection("live", "rtmp://127.0.0.1/live", "abc12345")
    server = ServerConnection()
    events = pump(client, server)
    assert isinstance(events[0], Connected) and events[0].app == "live"
    assert events[1] == PublishRequested(1, "abc12345", "live", "")
    assert client.state is ClientState.PUBLISHING
    assert PublishStarted(1) in client.events_received()


def test_rejected_publish_reaches_the_client_as_an_error_status() -> None:
    client = ClientConnection("live", "rtmp://127.0.0.1/live", "wrongkey")
    server = ServerConnection()
    pump(client, server, accept=False)
    assert client.state is ClientState.REJECTED
    rejected = [e for e in client.events_received() if isinstance(e, PublishRejected)]
    assert rejected[0].code == "NetStream.Publish.BadName"


def _publishing_session() -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection("live", "rtmp://127.0.0.1/live", "abc12345")
    server = ServerConnection()
    pump(client, server)
    client.events_received()
    return client, server


def test_media_metadata_and_unpublish_come_out_as_events() -> None:
    client, server = _publishing_session()
    client.send_metadata({"width": 1280.0, "framerate": 30.0})
    client.send_video(0, b"\x17\x00\x00\x00\x00config")
    client.send_audio(0, b"\xaf\x00\x12\x10")
    client.send_video(33, b"\x27\x01\x00\x00\x00frame")
    client.unpublish()
    server.receive_data(client.data_to_send())
    events = server.events_received()
    assert events[0] == MetadataReceived(1, {"width": 1280.0, "framerate": 30.0})
    assert [(e.type_id, e.timestamp) for e in events if isinstance(e, MediaReceived)] == [
        (9, 0), (8, 0), (9, 33)
    ]
    assert isinstance(events[-1], PublishEnded) and events[-1].reason == "FCUnpublish"


@given(st.lists(st.integers(0, 20_000), max_size=40))
@settings(max_examples=100)
def test_any_split_of_the_client_bytes_yields_the_same_events(cuts: list[int]) -> None:
    client = ClientConnection("live", "rtmp://127.0.0.1/live", "abc12345")
    server = ServerConnection()
    # Script the whole client side first against a reference server, then replay it split.
    reference = ServerConnection()
    transcript = bytearray()
    for _ in range(10):
        data = client.data_to_send()
        transcript += data
        if data:
            reference.receive_data(data)
        for event in reference.events_received():
            if isinstance(event, PublishRequested):
                reference.accept_publish(event.stream_id)
        reply = reference.data_to_send()
        if reply:
            client.receive_data(reply)
    for ts in range(0, 400, 40):
        client.send_video(ts, b"\x27\x01\x00\x00\x00" + bytes(ts % 251 for _ in range(300)))
    transcript += client.data_to_send()

    def events_for(pieces: list[bytes]) -> list:
        srv = ServerConnection()
        out = []
        for piece in pieces:
            if piece:
                srv.receive_data(piece)
            while events := srv.events_received():
                for event in events:
                    out.append(event)
                    if isinstance(event, PublishRequested):
                        srv.accept_publish(event.stream_id)
        return out

    data = bytes(transcript)
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert events_for(pieces) == events_for([data])
    assert server.state.value == "handshake"


def _handshaken() -> tuple[ServerConnection, ChunkWriter]:
    server = ServerConnection()
    server.receive_data(b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(HANDSHAKE_SIZE))
    server.data_to_send()
    return server, ChunkWriter()


def test_a_command_before_connect_is_a_protocol_error() -> None:
    server, writer = _handshaken()
    with pytest.raises(RtmpProtocolError, match="before connect"):
        server.receive_data(writer.write(3, 20, 0, 0, amf0.encode("createStream", 2.0, None)))


def test_connect_to_an_unknown_application_is_refused() -> None:
    server, writer = _handshaken()
    with pytest.raises(RtmpProtocolError, match="unknown application"):
        server.receive_data(writer.write(3, 20, 0, 0, amf0.encode("connect", 1.0, {"app": "x"})))
    replies = ChunkReader().feed(server.data_to_send())
    assert any(b"NetConnection.Connect.Rejected" in m.payload for m in replies)


def _connected() -> tuple[ServerConnection, ChunkWriter, ChunkReader]:
    """A server after connect, the client's writer, and a reader of everything the server sent."""
    server, writer = _handshaken()
    replies = ChunkReader()
    server.receive_data(writer.write(3, 20, 0, 0, amf0.encode("connect", 1.0, {"app": "live"})))
    replies.feed(server.data_to_send())
    return server, writer, replies


def test_ping_request_gets_a_ping_response_with_the_same_timestamp() -> None:
    server, writer, replies = _connected()
    server.receive_data(writer.write(2, 4, 0, 0, user_control(UserControlEvent.PING_REQUEST, 777)))
    (reply,) = replies.feed(server.data_to_send())
    assert reply.type_id == MessageType.USER_CONTROL
    assert reply.payload == user_control(UserControlEvent.PING_RESPONSE, 777)


def test_acknowledgements_follow_the_peer_window() -> None:
    server, writer, replies = _connected()
    server.receive_data(writer.write(2, 5, 0, 0, (1000).to_bytes(4, "big")))
    assert replies.feed(server.data_to_send()) == []
    server.receive_data(writer.write(3, 20, 0, 0, amf0.encode("releaseStream", 2.0, None, "k" * 3000)))
    acks = [m for m in replies.feed(server.data_to_send()) if m.type_id == 3]
    assert len(acks) == 1
    assert int.from_bytes(acks[0].payload, "big") == server.bytes_received


def test_media_on_a_stream_that_is_not_publishing_is_dropped() -> None:
    server, writer = _handshaken()
    server.receive_data(writer.write(3, 20, 0, 0, amf0.encode("connect", 1.0, {"app": "live"})))
    server.receive_data(writer.write(6, 9, 1, 0, b"\x17\x01\x00\x00\x00"))
    assert not [e for e in server.events_received() if isinstance(e, MediaReceived)]
    assert server.media_dropped == 1


def test_publishing_twice_on_one_stream_is_a_protocol_error() -> None:
    client, server = _publishing_session()
    writer = ChunkWriter()
    with pytest.raises(RtmpProtocolError):
        server.receive_data(
            writer.write(5, 20, 1, 0, amf0.encode("publish", 9.0, None, "other", "live")))


def test_wrong_rtmp_version_in_c0_is_refused() -> None:
    with pytest.raises(RtmpProtocolError, match="version"):
        ServerHandshake().receive(b"\x06" + bytes(HANDSHAKE_SIZE))


@given(st.binary(min_size=1, max_size=3000))
@settings(max_examples=200)
def test_random_bytes_after_the_handshake_raise_only_protocol_errors(data: bytes) -> None:
    server, _ = _handshaken()
    try:
        server.receive_data(data)
    except RtmpProtocolError:
        pass
