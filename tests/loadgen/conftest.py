"""Fixtures: the repository's real RTMP server on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

KEYS = {"probe_key_1": "probe"}


async def resolve(stream_key: str) -> str | None:
    return KEYS.get(stream_key)


@pytest.fixture
def registry() -> LiveStreamRegistry:
    return LiveStreamRegistry()


@pytest.fixture
async def rtmp_server(registry: LiveStreamRegistry) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(
        resolve, registry,
        RtmpServerSettings(port=0, handshake_timeout_s=5.0, idle_timeout_s=10.0),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()
