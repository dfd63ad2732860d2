"""Channel leases on the real NATS JetStream server (127.0.0.1:4222): one ingest node per key.

Each test uses its own bucket (deleted afterwards), so its TTL is the one the test sets.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from live.ingest.leases import LeaseSettings, StreamLeases, list_leases
from live.ingest.registry import ChannelBusy

NATS_URL = os.environ.get("LIVETWIN_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
async def bucket() -> AsyncIterator[str]:
    name = f"test_leases_{uuid.uuid4().hex[:12]}"
    yield name
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_key_value(name)
    finally:
        await nc.close()


class Node:
    def __init__(self, bucket: str, name: str, ttl_s: float = 6.0, grace_s: float = 5.0) -> None:
        self.live: set[str] = set()
        self.lost: list[tuple[str, str]] = []
        self.leases = StreamLeases(
            LeaseSettings(NATS_URL, name, ttl_s=ttl_s, claim_grace_s=grace_s, bucket=bucket),
            is_live=self.live.__contains__,
            on_lost=lambda channel, reason: self.lost.append((channel, reason)))

    async def __aenter__(self) -> StreamLeases:
        await self.leases.start()
        return self.leases

    async def __aexit__(self, *exc: object) -> None:
        await self.leases.close()


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.1)


async def test_a_second_node_is_refused_while_the_first_holds_the_channel(bucket: str) -> None:
    async with Node(bucket, "ingest-a") as a, Node(bucket, "ingest-b") as b:
        await a.acquire("alpha")
        with pytest.raises(ChannelBusy, match="live on ingest node ingest-a"):
            await b.acquire("alpha")
        assert await b.holder("alpha") == "ingest-a"
        await a.acquire("alpha")  # the holder may take it again (its publisher reconnected)
        await b.acquire("beta")  # other channels are free
        await a.release("alpha")
        await b.acquire("alpha")
        assert await a.holder("alpha") == "ingest-b"
        assert b.refused == 1


async def test_a_dead_nodes_lease_expires_and_another_node_takes_the_channel(bucket: str) -> None:
    dead = Node(bucket, "ingest-dead", ttl_s=1.0)
    await dead.leases.start()
    dead.live.add("alpha")
    await dead.leases.acquire("alpha")
    for held in dead.leases._held.values():  # the node dies: no renewal, no release
        assert held.task is not None
        held.task.cancel()
    dead.leases._held.clear()
    await dead.leases.close()
    async with Node(bucket, "ingest-b", ttl_s=1.0) as b:
        with pytest.raises(ChannelBusy):
            await b.acquire("alpha")

        async def taken() -> bool:
            try:
                await b.acquire("alpha")
            except ChannelBusy:
                return False
            return True
        await until(taken)
        assert await b.holder("alpha") == "ingest-b"


async def test_a_live_channel_is_renewed_past_its_ttl_and_a_finished_one_released(bucket: str) -> None:
    node = Node(bucket, "ingest-a", ttl_s=1.0, grace_s=0.0)
    async with node as a, Node(bucket, "ingest-b", ttl_s=1.0) as b:
        node.live.add("alpha")
        await a.acquire("alpha")
        await asyncio.sleep(2.5)  # past the TTL: only renewals keep it
        assert await b.holder("alpha") == "ingest-a"
        node.live.discard("alpha")  # the stream ended here

        async def released() -> bool:
            return await b.holder("alpha") is None
        await until(released)
        assert node.lost == []


async def test_a_holder_whose_lease_was_taken_over_is_told(bucket: str) -> None:
    node = Node(bucket, "ingest-a", ttl_s=1.5)
    async with node as a, Node(bucket, "ingest-b", ttl_s=1.5) as b:
        node.live.add("alpha")
        await a.acquire("alpha")
        assert b._kv is not None
        await b._kv.purge("alpha")  # as if it had expired during a partition ...
        await b.acquire("alpha")  # ... and another node took it

        async def told() -> bool:
            return bool(node.lost)
        await until(told)
        assert node.lost[0][0] == "alpha" and "lost" in node.lost[0][1]
        assert await a.holder("alpha") == "ingest-b"


async def test_the_control_plane_lists_where_each_channel_lives(bucket: str) -> None:
    assert await list_leases(NATS_URL, bucket) == {}
    settings = LeaseSettings(NATS_URL, "ingest-a", bucket=bucket,
                             details=(("origins", "http://o1:8080 http://o2:8080"),))
    leases = StreamLeases(settings, is_live=lambda _: True, on_lost=lambda *_: None)
    await leases.start()
    try:
        await leases.acquire("alpha")
        await leases.acquire("beta")
        found = await list_leases(NATS_URL, bucket)
        assert sorted(found) == ["alpha", "beta"]
        assert found["alpha"]["node"] == "ingest-a"
        assert found["alpha"]["origins"] == "http://o1:8080 http://o2:8080"
        await leases.release("beta")
        assert sorted(await list_leases(NATS_URL, bucket)) == ["alpha"]
    finally:
        await leases.close()


async def test_an_unreachable_control_plane_refuses_the_publisher(bucket: str) -> None:
    node = Node(bucket, "ingest-a")
    await node.leases.start()
    assert node.leases._nc is not None
    await node.leases._nc.close()  # the control plane is gone
    with pytest.raises(ChannelBusy, match="control plane cannot be reached"):
        await node.leases.acquire("alpha")
    await node.leases.close()
