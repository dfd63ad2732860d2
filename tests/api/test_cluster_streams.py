"""`/api/v1/streams` and the channel's `live` from the control plane (issue 16): an API node
knows the channels live on any ingest node, also with no stream and no ingest role of its own.

Real NATS JetStream (127.0.0.1:4222): an ingest node's ``StreamLeases`` holds a channel, the API
node's ``LeaseDirectory`` polls the bucket.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from live.api.repository import Repository
from live.ingest.leases import LeaseDirectory, LeaseSettings, StreamLeases

NATS_URL = os.environ.get("LIVETWIN_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
async def bucket() -> AsyncIterator[str]:
    name = f"test_directory_{uuid.uuid4().hex[:12]}"
    yield name
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_key_value(name)
    finally:
        await nc.close()


async def test_an_api_node_lists_the_streams_of_every_ingest_node(
        make_client: Any, repo: Repository, bucket: str) -> None:
    await repo.create_channel("faraway", None, "k_faraway_1")
    live: set[str] = set()
    ingest = StreamLeases(LeaseSettings(NATS_URL, "ingest-7", bucket=bucket, details=(
        ("origins", "http://10.0.0.2:8080 http://10.0.0.3:8080"), ("rtmp", "rtmp://10.0.0.5/live"),
        ("roles", "ingest"))), is_live=live.__contains__, on_lost=lambda *_: None)
    directory = LeaseDirectory(NATS_URL, bucket, interval_s=0.2)
    await ingest.start()
    await directory.start()
    try:
        client = await make_client(cluster=directory.channels)
        assert await client.call("GET", "/streams") == (200, {"streams": [], "cluster": []})
        _, channel = await client.call("GET", "/channels/faraway")
        assert channel["live"] is False

        live.add("faraway")
        await ingest.acquire("faraway")
        polls = directory.polls
        async with asyncio.timeout(10):
            while directory.polls < polls + 2:
                await asyncio.sleep(0.05)
        status, body = await client.call("GET", "/streams")
        assert status == 200 and body["streams"] == []  # nothing live on this node itself
        assert body["cluster"] == [{"channel": "faraway", "node": "ingest-7",
                                    "rtmp": "rtmp://10.0.0.5/live", "roles": ["ingest"],
                                    "origins": ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]}]
        _, channel = await client.call("GET", "/channels/faraway")
        assert channel["live"] is True and channel["stream"] is None

        live.discard("faraway")
        await ingest.release("faraway")  # the stream ended: it leaves every API node's list
        polls = directory.polls
        async with asyncio.timeout(10):
            while directory.polls < polls + 2:
                await asyncio.sleep(0.05)
        assert (await client.call("GET", "/streams"))[1]["cluster"] == []
    finally:
        await directory.close()
        await ingest.close()


async def test_the_directory_refuses_a_url_that_is_not_nats() -> None:
    with pytest.raises(ValueError, match="expected nats://"):
        LeaseDirectory("http://127.0.0.1:4222")
