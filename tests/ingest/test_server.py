"""The asyncio RTMP server over real sockets: keys, one publisher per channel, hostile peers."""

from __future__ import annotations

import asyncio
import logging
import os
import random

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.client_protocol import ClientState
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

from ..conftest import rtmp_publish


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_known_key_publishes_and_the_channel_goes_live(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    client, reader, writer = await rtmp_publish(rtmp_server.port, "key_alpha_123")
    assert client.state is ClientState.PUBLISHING
    stream = registry.get("alpha")
    assert stream is not None and stream.protocol == "rtmp"
    writer.close()
    await until(lambda: registry.get("alpha") is None)


async def test_unknown_key_is_rejected_and_the_connection_closed(rtmp_server: RtmpServer) -> None:
    client, reader, writer = await rtmp_publish(rtmp_server.port, "not_a_key_999")
    assert client.state is ClientState.REJECTED
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # the server closed it
    writer.close()


async def test_second_publisher_on_a_channel_gets_bad_name(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    first, _, first_writer = await rtmp_publish(rtmp_server.port, "key_alpha_123")
    second, _, second_writer = await rtmp_publish(rtmp_server.port, "key_alpha_123")
    assert first.state is ClientState.PUBLISHING
    assert second.state is ClientState.REJECTED
    codes = [e.code for e in second.events_received() if hasattr(e, "code")]
    assert "NetStream.Publish.BadName" in codes
    assert registry.get("alpha") is not None  # the first one is untouched
    first_writer.close()
    second_writer.close()


async def test_unpublish_frees_the_channel_for_a_new_publisher(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    client, reader, writer = await rtmp_publish(rtmp_server.port, "key_bravo_456")
    client.unpublish()
    writer.write(client.data_to_send())
    await writer.drain()
    await until(lambda: registry.get("bravo") is None)
    again, _, again_writer = await rtmp_publish(rtmp_server.port, "key_bravo_456")
    assert again.state is ClientState.PUBLISHING
    writer.close()
    again_writer.close()


async def test_silent_peer_is_dropped_after_the_handshake_timeout(rtmp_server: RtmpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", rtmp_server.port)
    writer.write(b"\x03" + bytes(100))  # a partial C1, then nothing
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()


async def test_garbage_closes_only_the_offending_connections(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    good, _, good_writer = await rtmp_publish(rtmp_server.port, "key_alpha_123")
    rng = random.Random(1234)
    errors_before = rtmp_server.protocol_errors

    async def hostile(seed: int) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", rtmp_server.port)
        body = bytes(rng.getrandbits(8) for _ in range(4000))
        if seed % 2:  # a valid handshake, then garbage chunks
            w.write(b"\x03" + os.urandom(1536))
            await r.readexactly(1 + 1536 * 2)
            w.write(os.urandom(1536) + body)
        else:
            w.write(bytes([seed % 256]) + body)
        try:
            await w.drain()
            async with asyncio.timeout(5):
                while await r.read(65536):
                    pass
        except ConnectionError:
            pass
        w.close()

    await asyncio.gather(*(hostile(i) for i in range(16)))
    await until(lambda: rtmp_server.active_connections == 1)
    assert rtmp_server.protocol_errors > errors_before
    assert good.state is ClientState.PUBLISHING
    assert registry.get("alpha") is not None
    good.send_metadata({"width": 640.0})
    good_writer.write(good.data_to_send())
    await good_writer.drain()
    good_writer.close()


async def test_partial_messages_on_too_many_chunk_streams_close_the_connection(
    rtmp_server: RtmpServer,
) -> None:
    client, reader, writer = await rtmp_publish(rtmp_server.port, "key_alpha_123")
    # Type 0 headers announcing 16 MiB messages on ever more chunk streams, each followed by
    # one chunk: the server must refuse past its chunk-stream limit, not buffer them all.
    errors_before = rtmp_server.protocol_errors
    try:
        for csid in range(8, 8 + 80):
            basic = bytes([csid]) if csid < 64 else bytes([0, csid - 64])
            writer.write(basic + bytes(3) + (0xFFFFFF).to_bytes(3, "big") + b"\x09"
                         + (1).to_bytes(4, "little") + bytes(4096))  # one full chunk each
            await writer.drain()
        async with asyncio.timeout(5):
            while await reader.read(65536):
                pass
    except ConnectionError:
        pass
    writer.close()
    await until(lambda: rtmp_server.active_connections == 0)
    assert rtmp_server.protocol_errors == errors_before + 1


async def test_shutdown_with_a_live_publisher_ends_it_cleanly(
    registry: LiveStreamRegistry, key_resolver, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    server = RtmpServer(key_resolver, registry, RtmpServerSettings(port=0))
    await server.start()
    client, reader, writer = await rtmp_publish(server.port, "key_alpha_123")
    assert registry.get("alpha") is not None
    with caplog.at_level(logging.INFO):
        await server.close()
        await asyncio.sleep(0.05)  # let asyncio run the stream callbacks of the ended tasks
    assert registry.get("alpha") is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("server shutting down" in r.getMessage() for r in caplog.records)
    writer.close()
