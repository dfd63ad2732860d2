"""The chat node over real WebSocket connections with the in-process broker."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest
from live.chat.broker import MemoryBroker
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings, SlowClientPolicy
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import TableAuth, TableRelationships, join


async def test_message_sent_by_one_client_reaches_every_client_in_one_batch_frame(
    server: ChatServer, auth: TableAuth
) -> None:
    alice = await join(server.port, "lobby", auth.account("alice"))
    viewers = [await join(server.port, "lobby") for _ in range(3)]
    await alice.send(type="send", text="hello Kappa world")
    for viewer in [alice, *viewers]:
        frame = await viewer.until_text("hello Kappa world")
        (message,) = frame["messages"]
        assert message["user"] == "alice" and message["id"] == 1
        assert message["emotes"] == [[6, 10, "Kappa"]]
        assert isinstance(message["sent_at"], int) and message["badges"] == []


async def test_burst_of_messages_is_batched_into_fewer_frames_in_id_order(
    server: ChatServer, auth: TableAuth
) -> None:
    viewer = await join(server.port, "lobby")
    senders = [await join(server.port, "lobby", auth.account(f"user{i}")) for i in range(10)]
    for i, sender in enumerate(senders):
        await sender.send(type="send", text=f"line {i}")
    await viewer.until(lambda f: len(viewer.texts) == 10)
    assert viewer.ids == list(range(1, 11))
    assert len([f for f in viewer.frames if f["type"] == "messages"]) < 10


async def test_anonymous_viewer_reads_but_cannot_send(server: ChatServer) -> None:
    viewer = await join(server.port, "lobby")
    assert viewer.welcome["user"] is None
    await viewer.send(type="send", text="hi")
    error = await viewer.next()
    assert error == {"type": "error", "code": "auth_required", "message": error["message"]}


async def test_auth_frame_signs_in_an_open_connection(server: ChatServer, auth: TableAuth) -> None:
    token = auth.account("bob")
    client = await join(server.port, "lobby")
    await client.send(type="auth", token="wrong")
    assert (await client.next())["code"] == "bad_token"
    await client.send(type="auth", token=token)
    assert await client.next() == {"type": "authenticated", "user": "bob", "role": "viewer"}
    await client.send(type="send", text="now I can")
    await client.until_text("now I can")


async def test_malformed_frames_get_error_frames_and_the_connection_survives(
    server: ChatServer, auth: TableAuth
) -> None:
    client = await join(server.port, "lobby", auth.account("carol"))
    for raw, code in [
        ("not json", "bad_json"),
        ("[1]", "bad_json"),
        ('{"type": 3}', "bad_type"),
        ('{"type": "send"}', "bad_field"),
        ('{"type": "send", "text": "' + "x" * 600 + '"}', "too_long"),
    ]:
        await client.ws.send(raw)
        assert (await client.next())["code"] == code
    await client.send(type="send", text="still here")
    await client.until_text("still here")


async def test_frame_over_the_size_limit_closes_with_1009(server: ChatServer, auth: TableAuth) -> None:
    client = await join(server.port, "lobby", auth.account("dave"))
    await client.ws.send('{"type":"send","text":"' + "x" * 5000 + '"}')
    with pytest.raises(ConnectionClosed) as closed:
        await client.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_unknown_room_bad_path_and_bad_token_are_refused_at_the_handshake(server: ChatServer) -> None:
    for path, status in [
        ("/chat/nosuchroom", 404),
        ("/other", 404),
        ("/chat/lobby?token=forged", 401),
        ("/chat/lobby?after=-1", 400),
        ("/chat/lobby?after=999999", 400),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=5)
        assert refused.value.response.status_code == status


async def test_join_replays_the_last_history_messages_without_deleted_ones(auth: TableAuth) -> None:
    node = ChatServer(auth, MemoryBroker(), ChatSettings(batch_interval_s=0.01, join_history=5))
    await node.start("127.0.0.1", 0)
    try:
        owner = await join(node.port, "lobby", "token-streamer")
        for i in range(8):
            await owner.send(type="send", text=f"m{i}")
        await owner.until_text("m7")
        await owner.send(type="delete", id=8)
        await owner.until(lambda f: f["type"] == "moderation")
        late = await join(node.port, "lobby")
        await late.until_text("m6")
        assert late.texts == ["m2", "m3", "m4", "m5", "m6"]
        assert late.welcome["last_id"] == 9
    finally:
        await node.close()


async def test_resume_from_last_seen_id_delivers_the_rest_once(server: ChatServer, auth: TableAuth) -> None:
    sender = await join(server.port, "lobby", auth.account("erin"))
    reader = await join(server.port, "lobby")
    for i in range(3):
        await sender.send(type="send", text=f"before {i}")
    await reader.until_text("before 2")
    last = reader.ids[-1]
    await reader.ws.close()
    for i in range(3):
        await sender.send(type="send", text=f"during {i}")
    await sender.until_text("during 2")
    back = await join(server.port, "lobby", after=last)
    assert back.welcome["truncated"] is False
    await back.until_text("during 2")
    await sender.send(type="send", text="after")
    await back.until_text("after")
    assert back.texts == ["during 0", "during 1", "during 2", "after"]
    assert back.ids == list(range(last + 1, last + 5))


async def test_resume_older_than_the_window_is_reported_truncated(auth: TableAuth) -> None:
    node = ChatServer(
        auth,
        MemoryBroker(history_window=4),
        ChatSettings(batch_interval_s=0.01, join_history=4, history_window=4),
    )
    await node.start("127.0.0.1", 0)
    try:
        owner = await join(node.port, "lobby", "token-streamer")
        for i in range(10):
            await owner.send(type="send", text=f"m{i}")
        await owner.until_text("m9")
        back = await join(node.port, "lobby", after=2)
        assert back.welcome["truncated"] is True
        await back.until_text("m9")
        assert back.ids == [7, 8, 9, 10]
    finally:
        await node.close()


async def test_viewer_rate_limit_refuses_the_21st_message_with_retry_after(
    server: ChatServer, auth: TableAuth
) -> None:
    client = await join(server.port, "lobby", auth.account("frank"))
    for i in range(20):
        await client.send(type="send", text=f"n{i}")
    await client.send(type="send", text="one too many")
    error = await client.until(lambda f: f["type"] == "error")
    assert error["code"] == "rate_limited" and 0 < error["retry_after_ms"] <= 30_001
    await client.until_text("n19")
    assert "one too many" not in client.texts


async def test_broadcaster_and_moderators_get_the_higher_rate_limit(
    server: ChatServer, auth: TableAuth
) -> None:
    owner = await join(server.port, "lobby", "token-streamer")
    for i in range(30):
        await owner.send(type="send", text=f"b{i}")
    await owner.until_text("b29")
    assert not [f for f in owner.frames if f["type"] == "error"]
    assert owner.frames[-1]["messages"][-1]["badges"] == ["broadcaster"]


async def test_moderation_actions_are_broadcast_and_enforced(server: ChatServer, auth: TableAuth) -> None:
    owner = await join(server.port, "lobby", "token-streamer")
    mod_token, troll_token = auth.account("mia"), auth.account("troll")
    mod = await join(server.port, "lobby", mod_token)
    troll = await join(server.port, "lobby", troll_token)
    viewer = await join(server.port, "lobby")

    await mod.send(type="ban", user="troll")
    assert (await mod.until(lambda f: f["type"] == "error"))["code"] == "forbidden"
    await owner.send(type="mod", user="mia")
    await viewer.until(lambda f: f.get("action") == "mod")
    await mod.send(type="timeout", user="troll", seconds=600, reason="spam")
    event = await viewer.until(lambda f: f.get("action") == "timeout")
    assert event["user"] == "troll" and event["seconds"] == 600 and event["by"] == "mia"
    await troll.send(type="send", text="can I talk")
    refused = await troll.until(lambda f: f["type"] == "error")
    assert refused["code"] == "timed_out" and refused["retry_after_ms"] > 590_000
    await mod.send(type="ban", user="streamer")
    assert (await mod.until(lambda f: f["type"] == "error"))["code"] == "bad_target"
    await owner.send(type="unban", user="troll")
    await troll.until(lambda f: f.get("action") == "unban")
    await troll.send(type="send", text="thanks")
    await viewer.until_text("thanks")


async def test_room_modes_apply_to_viewers_but_not_moderators(
    server: ChatServer, auth: TableAuth, relationships: TableRelationships
) -> None:
    owner = await join(server.port, "lobby", "token-streamer")
    fan = await join(server.port, "lobby", auth.account("fan"))
    relationships.subscribers.add("subbed")
    subbed = await join(server.port, "lobby", auth.account("subbed"))
    await owner.send(type="modes", subscribers_only=True, emote_only=True)
    event = await fan.until(lambda f: f.get("action") == "modes")
    assert event["modes"]["subscribers_only"] and event["modes"]["emote_only"]
    await fan.send(type="send", text="Kappa")
    assert (await fan.until(lambda f: f["type"] == "error"))["code"] == "subscribers_only"
    await subbed.send(type="send", text="words")
    assert (await subbed.until(lambda f: f["type"] == "error"))["code"] == "emote_only"
    await subbed.send(type="send", text="Kappa PogChamp")
    frame = await owner.until_text("Kappa PogChamp")
    assert frame["messages"][0]["badges"] == ["subscriber"]
    await owner.send(type="send", text="owner ignores modes")
    await fan.until_text("owner ignores modes")


async def test_clear_chat_hides_earlier_messages_from_later_joiners(
    server: ChatServer, auth: TableAuth
) -> None:
    owner = await join(server.port, "lobby", "token-streamer")
    for i in range(3):
        await owner.send(type="send", text=f"old {i}")
    await owner.send(type="clear")
    await owner.send(type="send", text="fresh")
    await owner.until_text("fresh")
    late = await join(server.port, "lobby")
    await late.until_text("fresh")
    assert late.texts == ["fresh"]


async def test_slow_client_is_disconnected_with_a_reason_and_others_keep_receiving(auth: TableAuth) -> None:
    settings = ChatSettings(
        batch_interval_s=0.005,
        send_queue_bytes=16 * 1024,
        rate_limit_privileged=100_000,
        rate_limit=100_000,
        frame_rate_per_s=100_000.0,
        frame_burst=100_000,
        ping_interval_s=None,
        socket_send_buffer=4096,
    )
    node = ChatServer(auth, MemoryBroker(), settings)
    await node.start("127.0.0.1", 0)
    try:
        owner = await join(node.port, "lobby", "token-streamer")
        # A client that never reads: its kernel buffers fill, then the transport's, then it is cut off.
        stalled = await connect(f"ws://127.0.0.1:{node.port}/chat/lobby", compression=None, max_queue=1)
        stalled.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.transport.pause_reading()
        healthy = await join(node.port, "lobby")
        text = "y" * 400
        for i in range(20_000):
            await owner.send(type="send", text=f"{i} {text}")
            if node.stats().slow_disconnects:
                break
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        assert node.stats().slow_disconnects == 1
        await owner.send(type="send", text="after the cut")
        await healthy.until_text("after the cut", timeout=10)
        stalled.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(stalled.recv(), 10)
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1008
    finally:
        await node.close()


async def test_skip_policy_tells_a_slow_client_which_ids_it_missed(auth: TableAuth) -> None:
    settings = ChatSettings(
        batch_interval_s=0.005,
        send_queue_bytes=16 * 1024,
        rate_limit_privileged=100_000,
        rate_limit=100_000,
        frame_rate_per_s=100_000.0,
        frame_burst=100_000,
        slow_client=SlowClientPolicy.SKIP,
        ping_interval_s=None,
        socket_send_buffer=4096,
    )
    node = ChatServer(auth, MemoryBroker(), settings)
    await node.start("127.0.0.1", 0)
    try:
        owner = await join(node.port, "lobby", "token-streamer")
        stalled = await join(node.port, "lobby")
        stalled.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.ws.transport.pause_reading()
        text = "z" * 400
        for i in range(20_000):
            await owner.send(type="send", text=f"{i} {text}")
            if node.stats().slow_skips:
                break
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        assert node.stats().slow_skips == 1
        stalled.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        stalled.ws.transport.resume_reading()

        async def keep_talking() -> None:
            for k in range(400):
                await owner.send(type="send", text=f"tick {k}")
                await asyncio.sleep(0.02)

        talker = asyncio.create_task(keep_talking())
        try:
            skipped = await stalled.until(lambda f: f["type"] == "skipped", timeout=10)
            await stalled.until(lambda f: f["type"] == "messages", timeout=10)
        finally:
            talker.cancel()
        seen = stalled.ids
        assert skipped["from"] <= skipped["to"]
        assert set(range(skipped["from"], skipped["to"] + 1)).isdisjoint(seen)
        assert seen == sorted(seen)
    finally:
        await node.close()


async def test_a_ban_older_than_the_history_window_still_holds_on_a_node_joining_later(
    auth: TableAuth,
) -> None:
    broker = MemoryBroker(history_window=3)
    settings = ChatSettings(batch_interval_s=0.01, join_history=3, history_window=3)
    first = ChatServer(auth, broker, settings)
    await first.start("127.0.0.1", 0)
    troll_token = auth.account("troll")
    try:
        owner = await join(first.port, "lobby", "token-streamer")
        await owner.send(type="ban", user="troll")
        for i in range(6):
            await owner.send(type="send", text=f"pushing the ban out of the window {i}")
        await owner.until_text("pushing the ban out of the window 5")
        second = ChatServer(auth, broker, settings)
        await second.start("127.0.0.1", 0)
        try:
            troll = await join(second.port, "lobby", troll_token)
            await troll.send(type="send", text="am I still banned")
            assert (await troll.until(lambda f: f["type"] == "error"))["code"] == "banned"
        finally:
            await second.close()
    finally:
        await first.close()


def test_open_broker_picks_memory_by_default_nats_for_a_nats_url_and_refuses_others() -> None:
    from live.chat.brokers import open_broker
    from live.chat.nats_broker import NatsBroker

    assert isinstance(open_broker(None), MemoryBroker)
    nats_broker = open_broker("nats://127.0.0.1:4222", history_window=50)
    assert isinstance(nats_broker, NatsBroker) and nats_broker.history_window == 50
    with pytest.raises(ValueError, match="nats://"):
        open_broker("redis://127.0.0.1:6379")


async def test_requests_that_pass_routing_but_fail_the_upgrade_leave_nothing_behind(
    server: ChatServer,
) -> None:
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /chat/lobby HTTP/1.1\r\nHost: x\r\n\r\n")  # no Upgrade: websockets answers 426
        status = await reader.readline()
        assert b"426" in status
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.1)
    gc.collect()
    assert len(server._handshakes) == 0


async def test_a_connection_guessing_tokens_is_closed_after_five_failures(server: ChatServer) -> None:
    client = await join(server.port, "lobby")
    for i in range(5):
        await client.send(type="auth", token=f"guess-{i}")
        assert (await client.next())["code"] == "bad_token"
    with pytest.raises(ConnectionClosed) as closed:
        await client.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "too many failed sign-ins"
