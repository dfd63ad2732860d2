"""Two chat nodes sharing rooms through the real NATS JetStream server on 127.0.0.1:4222.

Skipped only when NATS is unreachable outside CI; with CI=true an unreachable NATS fails.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from live.chat.nats_broker import SNAPSHOT_BUCKET, NatsBroker, stream_name
from live.chat.protocol import ChatMessage, encode_event
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from websockets.exceptions import ConnectionClosed

from ..conftest import in_ci
from .conftest import Client, TableAuth, join

pytestmark = pytest.mark.nats

NATS_URL = os.environ.get("LIVETWIN_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
async def room(auth: TableAuth) -> AsyncIterator[str]:
    url = urlsplit(NATS_URL)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port or 4222), 2)
        writer.close()
        nc = await asyncio.wait_for(nats.connect(NATS_URL, allow_reconnect=False), 5)
    except (OSError, TimeoutError) as error:
        if in_ci():
            pytest.fail(f"NATS at {NATS_URL} is required in CI: {error}")
        pytest.skip(f"NATS at {NATS_URL} unreachable: {error}")
    name = "t" + uuid.uuid4().hex[:20]
    auth.channel(name, "token-streamer")
    try:
        yield name
    finally:
        try:
            await nc.jetstream().delete_stream(stream_name(name))
        except Exception:  # never created: nothing to remove
            pass
        try:
            await (await nc.jetstream().key_value(SNAPSHOT_BUCKET)).purge(name)
        except Exception:  # no snapshot was saved
            pass
        await nc.close()


async def _node(auth: TableAuth, window: int = 500, **settings: Any) -> ChatServer:
    broker = NatsBroker(NATS_URL, history_window=window)
    node = ChatServer(auth, broker, ChatSettings(batch_interval_s=0.02, **settings))
    await node.start("127.0.0.1", 0)
    return node


async def _stop(*nodes: ChatServer) -> None:
    for node in nodes:
        await node.close()
        await node.broker.close()


async def test_message_sent_on_node_a_reaches_clients_on_node_b(auth: TableAuth, room: str) -> None:
    a, b = await _node(auth), await _node(auth)
    try:
        sender = await join(a.port, room, auth.account("alice"))
        readers = [await join(b.port, room) for _ in range(3)]
        await sender.send(type="send", text="across nodes")
        for reader in readers:
            frame = await reader.until_text("across nodes")
            assert frame["messages"][0]["user"] == "alice" and frame["messages"][0]["id"] == 1
        await readers[0].ws.close()
    finally:
        await _stop(a, b)


async def test_moderation_on_one_node_is_enforced_on_the_other(auth: TableAuth, room: str) -> None:
    a, b = await _node(auth), await _node(auth)
    try:
        owner = await join(a.port, room, "token-streamer")
        troll = await join(b.port, room, auth.account("troll"))
        await owner.send(type="ban", user="troll", reason="spam")
        event = await troll.until(lambda f: f.get("action") == "ban")
        assert event["by"] == "streamer"
        await troll.send(type="send", text="let me in")
        assert (await troll.until(lambda f: f["type"] == "error"))["code"] == "banned"
        await owner.send(type="modes", slow=30)
        await troll.until(lambda f: f.get("action") == "modes")
        fresh = await _node(auth)  # joins later: rebuilds bans and modes from the stream
        try:
            late = await join(fresh.port, room, "token-troll")
            assert late.welcome["modes"]["slow"] == 30
            await late.send(type="send", text="new node, same ban")
            assert (await late.until(lambda f: f["type"] == "error"))["code"] == "banned"
        finally:
            await _stop(fresh)
    finally:
        await _stop(a, b)


async def test_a_node_joining_later_replays_history_from_jetstream(auth: TableAuth, room: str) -> None:
    a = await _node(auth)
    try:
        owner = await join(a.port, room, "token-streamer")
        for i in range(5):
            await owner.send(type="send", text=f"early {i}")
        await owner.until_text("early 4")
        b = await _node(auth)
        try:
            late = await join(b.port, room)
            assert late.welcome["last_id"] == 5
            await late.until_text("early 4")
            assert late.texts == [f"early {i}" for i in range(5)] and late.ids == [1, 2, 3, 4, 5]
        finally:
            await _stop(b)
    finally:
        await _stop(a)


async def test_an_event_whose_live_copy_was_lost_is_recovered_from_the_stream(
    auth: TableAuth, room: str
) -> None:
    a = await _node(auth)
    nc = await nats.connect(NATS_URL)
    try:
        reader = await join(a.port, room)
        owner = await join(a.port, room, "token-streamer")
        await owner.send(type="send", text="first")
        await reader.until_text("first")
        # A publisher that died between the stream append and the live copy: only JetStream has it.
        lost = ChatMessage(0, "streamer", "only in the stream", 1_700_000_000_000)
        await nc.jetstream().publish(
            f"chat.log.{room}", encode_event(lost).encode(), stream=stream_name(room)
        )
        await reader.until_text("only in the stream", timeout=10)
        await owner.send(type="send", text="third")
        await reader.until_text("third")
        assert reader.ids == [1, 2, 3]
    finally:
        await nc.close()
        await _stop(a)


@pytest.mark.slow
async def test_closing_node_a_mid_run_its_clients_resume_on_b_without_loss_or_duplicates(
    auth: TableAuth, room: str
) -> None:
    limits = {"rate_limit": 1000, "rate_limit_privileged": 1000, "frame_rate_per_s": 1000.0}
    a, b = await _node(auth, **limits), await _node(auth, **limits)
    try:
        on_a = [await join(a.port, room) for _ in range(3)]
        on_b = [await join(b.port, room)]
        senders = [await join(b.port, room, auth.account(f"talker{i}")) for i in range(2)]
        sent = 0

        async def talk() -> None:
            nonlocal sent
            for k in range(60):
                for sender in senders:
                    await sender.send(type="send", text=f"{sender.welcome['user']} says {k}")
                    sent += 1
                await asyncio.sleep(0.01)

        async def read(client: Client) -> None:
            while True:
                await client.next()

        talker = asyncio.create_task(talk())
        readers = [asyncio.create_task(read(c)) for c in on_a]
        while sent < 40:
            await asyncio.sleep(0.01)
        await a.close()  # every client on A is told 1001 going away
        for task in readers:
            with pytest.raises(ConnectionClosed):
                await task
        resumed: list[Client] = []
        for client in on_a:
            last = client.ids[-1] if client.ids else 0
            back = await join(b.port, room, after=last)
            assert back.welcome["truncated"] is False
            resumed.append(back)
        await talker
        final = f"{senders[-1].welcome['user']} says 59"
        for client in [*resumed, *on_b]:
            await client.until_text(final, timeout=10)
        total = on_b[0].ids[-1]
        assert on_b[0].ids == list(range(1, total + 1))
        for before, after in zip(on_a, resumed, strict=True):
            assert before.ids + after.ids == list(range(1, total + 1))
    finally:
        await _stop(b)
        await a.broker.close()


async def test_a_ban_older_than_the_stream_window_still_holds_on_a_node_joining_later(
    auth: TableAuth, room: str
) -> None:
    a = await _node(auth, window=3, join_history=3, history_window=3)
    try:
        owner = await join(a.port, room, "token-streamer")
        troll_token = auth.account("troll")
        await owner.send(type="ban", user="troll")
        await owner.send(type="modes", emote_only=True)
        for i in range(6):
            await owner.send(type="send", text=f"filler {i}")
        await owner.until_text("filler 5")
        fresh = await _node(auth, window=3, join_history=3, history_window=3)
        try:
            troll = await join(fresh.port, room, troll_token)
            assert troll.welcome["modes"]["emote_only"] is True
            await troll.send(type="send", text="Kappa")
            assert (await troll.until(lambda f: f["type"] == "error"))["code"] == "banned"
        finally:
            await _stop(fresh)
    finally:
        await _stop(a)
