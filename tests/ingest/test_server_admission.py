"""Nobody without a key can hold the RTMP ingest: the publish deadline, per-address caps, the
ban after repeated wrong keys, small buffers before a key is accepted, and media-only liveness."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.admission import Admission, AdmissionLimits, address_key
from live.ingest.rtmp.chunks import ChunkWriter
from live.ingest.rtmp.client_protocol import ClientState
from live.ingest.rtmp.handshake import HANDSHAKE_SIZE
from live.ingest.rtmp.messages import MessageType, UserControlEvent, user_control
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

from ..conftest import resolve, rtmp_publish


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (reading what it sends)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def start(registry: LiveStreamRegistry, **overrides: float) -> RtmpServer:
    server = RtmpServer(resolve, registry, RtmpServerSettings(port=0, **overrides))  # type: ignore[arg-type]
    await server.start()
    return server


@pytest.fixture
async def servers() -> AsyncIterator[list[RtmpServer]]:
    started: list[RtmpServer] = []
    yield started
    for server in started:
        await server.close()


async def handshake(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x03" + os.urandom(HANDSHAKE_SIZE))
    await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
    writer.write(bytes(HANDSHAKE_SIZE))
    await writer.drain()
    return reader, writer


async def test_a_peer_that_trickles_bytes_without_a_key_is_cut_at_the_publish_deadline(
    registry: LiveStreamRegistry, servers: list[RtmpServer]
) -> None:
    server = await start(registry, publish_timeout_s=1.0, handshake_timeout_s=5.0, idle_timeout_s=30.0)
    servers.append(server)
    reader, writer = await handshake(server.port)
    # a chunk header for a message that never completes: one byte every 0.2 s
    trickle = bytes((0x03, 0, 0, 0, 0, 0x10, 0, 0x14, 0, 0, 0, 0)) + b"\x00" * 100

    async def drip() -> None:
        for byte in trickle:
            writer.write(bytes((byte,)))
            await writer.drain()
            await asyncio.sleep(0.2)

    dripping = asyncio.create_task(drip())
    try:
        assert await closed_within(reader, 3.0)
    finally:
        dripping.cancel()
        writer.close()


async def test_each_address_may_hold_only_so_many_connections(
    registry: LiveStreamRegistry, servers: list[RtmpServer]
) -> None:
    server = await start(registry, max_connections_per_address=3)
    servers.append(server)
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await closed_within(reader, 2.0)  # the fourth is refused at once
    writer.close()
    assert server.connections_refused == 1
    assert not await closed_within(held[0][0], 0.3)  # the three stay
    held[0][1].close()
    await asyncio.sleep(0.2)
    client, _, again = await rtmp_publish(server.port, "key_alpha_123")  # a freed slot is usable
    assert client.state is ClientState.PUBLISHING
    again.close()
    for _, other in held[1:]:
        other.close()


async def test_an_address_sending_wrong_keys_is_refused_for_a_while(
    registry: LiveStreamRegistry, servers: list[RtmpServer]
) -> None:
    server = await start(registry, failed_publish_limit=3, failed_publish_window_s=60,
                         failed_publish_ban_s=300)
    servers.append(server)
    for i in range(3):
        client, _, writer = await rtmp_publish(server.port, f"wrong_key_{i:04d}")
        assert client.state is ClientState.REJECTED
        writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await closed_within(reader, 2.0)  # refused before the handshake, even with a good key next
    writer.close()
    try:
        client, _, writer = await rtmp_publish(server.port, "key_alpha_123")
        writer.close()
        state: ClientState | None = client.state
    except ConnectionError:
        state = None
    assert state is not ClientState.PUBLISHING


async def test_once_publishing_only_media_keeps_the_connection_alive(
    registry: LiveStreamRegistry, servers: list[RtmpServer]
) -> None:
    server = await start(registry, idle_timeout_s=1.0)
    servers.append(server)
    client, reader, writer = await rtmp_publish(server.port, "key_alpha_123")
    assert client.state is ClientState.PUBLISHING
    pinger = ChunkWriter()

    async def ping() -> None:
        while True:
            writer.write(pinger.write(2, MessageType.USER_CONTROL, 0, 0,
                                      user_control(UserControlEvent.PING_REQUEST, 1)))
            await writer.drain()
            await asyncio.sleep(0.2)

    pinging = asyncio.create_task(ping())
    try:
        assert await closed_within(reader, 3.0)
        assert registry.get("alpha") is None
    finally:
        pinging.cancel()
        writer.close()


async def test_before_a_key_is_accepted_a_large_message_closes_the_connection(
    registry: LiveStreamRegistry, servers: list[RtmpServer]
) -> None:
    server = await start(registry)
    servers.append(server)
    reader, writer = await handshake(server.port)
    big = ChunkWriter().write(3, MessageType.COMMAND_AMF0, 0, 0, b"\x05" * (1 << 20))
    writer.write(big[:4096])
    await writer.drain()
    assert await closed_within(reader, 2.0)
    assert server.protocol_errors == 1
    writer.close()


def test_admission_counts_per_address_and_ipv6_by_64() -> None:
    admission = Admission(AdmissionLimits(max_per_address=2, failed_limit=2, failed_window_s=10, ban_s=100))
    assert admission.admit("2001:db8::1", 0) is None
    assert admission.admit("2001:db8::2", 0) is None
    assert admission.admit("2001:db8::3", 0) is not None  # same /64
    assert admission.admit("2001:db8:0:1::1", 0) is None  # another /64
    admission.release("2001:db8::1")
    assert admission.admit("2001:db8::9", 0) is None
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_admission_bans_after_failures_in_the_window_then_forgives() -> None:
    admission = Admission(AdmissionLimits(failed_limit=3, failed_window_s=10, ban_s=100))
    assert not admission.publish_failed("192.0.2.1", 0)
    assert not admission.publish_failed("192.0.2.1", 1)
    assert not admission.publish_failed("192.0.2.1", 20)  # the first two fell out of the window
    assert not admission.publish_failed("192.0.2.1", 21)
    assert admission.publish_failed("192.0.2.1", 22)
    assert admission.admit("192.0.2.1", 50) is not None
    assert admission.admit("192.0.2.2", 50) is None  # others are unaffected
    assert admission.admit("192.0.2.1", 123) is None  # the ban has run out


async def test_stream_keys_never_reach_the_log(
    registry: LiveStreamRegistry, servers: list[RtmpServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = await start(registry)
    servers.append(server)
    with caplog.at_level(logging.DEBUG):
        for key in ("key_alpha_123", "wrong_secret_key_42"):
            _, _, writer = await rtmp_publish(server.port, key)
            writer.close()
        await asyncio.sleep(0.2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "rtmp" in text and "key_alpha_123" not in text and "wrong_secret_key_42" not in text
