"""Fixtures: a real RTMP server on an ephemeral port with a static key table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

KEYS = {"key_alpha_123": "alpha", "key_bravo_456": "bravo"}


async def resolve(stream_key: str) -> str | None:
    return KEYS.get(stream_key)


@pytest.fixture
def registry() -> LiveStreamRegistry:
    return LiveStreamRegistry()


@pytest.fixture
async def rtmp_server(registry: LiveStreamRegistry) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(
        resolve, registry,
        RtmpServerSettings(port=0, handshake_timeout_s=2.0, idle_timeout_s=5.0),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()
