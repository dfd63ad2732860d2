"""Fixtures shared by every suite: the repository's real RTMP server on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

#: Stream keys the test server accepts, and the channel each one publishes.
STREAM_KEYS = {"key_alpha_123": "alpha", "key_bravo_456": "bravo", "probe_key_1": "probe"}


async def resolve(stream_key: str) -> str | None:
    return STREAM_KEYS.get(stream_key)


@pytest.fixture
def key_resolver() -> Callable[[str], Awaitable[str | None]]:
    return resolve


@pytest.fixture
def registry() -> LiveStreamRegistry:
    return LiveStreamRegistry()


@pytest.fixture
async def rtmp_server(registry: LiveStreamRegistry) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(
        resolve, registry,
        RtmpServerSettings(port=0, handshake_timeout_s=2.0, idle_timeout_s=10.0),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()
