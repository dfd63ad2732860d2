"""What a hostile crowd cannot do to a chat node: hold many connections from one address, flood
frames of any kind, make the store look up unknown tokens without end, or get N times the message
allowance from N nodes."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
from live.chat.auth import ChatUser
from live.chat.broker import MemoryBroker
from live.chat.message_limits import RedisMessageLimiter
from live.chat.ratelimit import SignInGuard, TokenBucket
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..conftest import skip_or_fail
from .conftest import TableAuth, join

REDIS_URL = os.environ.get("LIVETWIN_TEST_REDIS", "redis://127.0.0.1:6379/0")


class CountingAuth(TableAuth):
    """TableAuth that counts token lookups (each one is a store query on the platform)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def user_for_token(self, token: str) -> ChatUser | None:
        self.lookups += 1
        return await super().user_for_token(token)


@pytest.fixture
def counting_auth() -> CountingAuth:
    table = CountingAuth()
    table.channel("lobby", table.account("streamer"))
    return table


async def _node(auth: TableAuth, **settings: object) -> ChatServer:
    node = ChatServer(auth, MemoryBroker(), ChatSettings(batch_interval_s=0.01, **settings))  # type: ignore[arg-type]
    await node.start("127.0.0.1", 0)
    return node


@pytest.fixture
async def limited(counting_auth: CountingAuth) -> AsyncIterator[ChatServer]:
    node = await _node(counting_auth, max_connections_per_address=3, frame_rate_per_s=2.0, frame_burst=5,
                       failed_sign_in_limit=4, failed_sign_in_window_s=60.0, failed_sign_in_ban_s=60.0)
    try:
        yield node
    finally:
        await node.close()


async def test_connections_past_the_per_address_cap_are_refused_at_accept(limited: ChatServer) -> None:
    held = [await join(limited.port, "lobby") for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{limited.port}/chat/lobby", open_timeout=5)
    assert refused.value.response.status_code == 503
    await held[0].ws.close()
    await asyncio.sleep(0.05)
    again = await join(limited.port, "lobby")  # the slot is free again
    assert again.welcome["type"] == "welcome"


async def test_a_connection_flooding_pings_is_told_to_wait_then_closed(limited: ChatServer) -> None:
    client = await join(limited.port, "lobby")
    for nonce in range(5):  # the burst
        await client.send(type="ping", nonce=nonce)
        assert (await client.next())["type"] == "pong"
    await client.send(type="ping", nonce=5)
    refused = await client.next()
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after_ms"] <= 501
    with pytest.raises(ConnectionClosed) as closed:
        for nonce in range(6, 40):
            await client.send(type="ping", nonce=nonce)
            await client.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "too many frames"


async def test_auth_and_moderation_frames_share_the_connections_frame_allowance(
    limited: ChatServer, counting_auth: CountingAuth
) -> None:
    owner = await join(limited.port, "lobby", "token-streamer")
    for _ in range(5):
        await owner.send(type="clear")
    await owner.send(type="auth", token="token-streamer")
    refused = await owner.until(lambda f: f["type"] == "error")
    assert refused["code"] == "rate_limited"  # the auth frame past the burst was not looked up
    assert counting_auth.lookups == 1  # the handshake's only


async def test_an_unknown_token_is_looked_up_once_however_often_it_is_sent(
    limited: ChatServer, counting_auth: CountingAuth
) -> None:
    for _ in range(3):
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{limited.port}/chat/lobby?token=expired", open_timeout=5)
        assert refused.value.response.status_code == 401
    client = await join(limited.port, "lobby")
    await client.send(type="auth", token="expired")
    assert (await client.next())["code"] == "bad_token"
    assert counting_auth.lookups == 1


async def test_an_address_guessing_tokens_gets_no_lookups_for_a_while(
    limited: ChatServer, counting_auth: CountingAuth
) -> None:
    for guess in range(4):
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{limited.port}/chat/lobby?token=guess{guess}", open_timeout=5)
        assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{limited.port}/chat/lobby?token=token-streamer", open_timeout=5)
    assert refused.value.response.status_code == 429
    assert 0 < int(refused.value.response.headers["Retry-After"]) <= 61
    reader = await join(limited.port, "lobby")  # reading needs no token
    await reader.send(type="auth", token="token-streamer")
    assert (await reader.next())["code"] == "rate_limited"
    assert counting_auth.lookups == 4


def test_the_frame_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0 and bucket.take(0.5) > 0
    assert [bucket.take(100.0) for _ in range(4)][-1] > 0  # idle time refills to the burst, no more


def test_the_sign_in_guard_remembers_bad_tokens_and_bans_then_forgives_an_address() -> None:
    guard = SignInGuard(limit=3, window_s=10.0, ban_s=30.0, remember=2)
    assert not guard.failed("a", b"t1", 0.0)
    assert guard.known_bad(b"t1", 5.0) and not guard.known_bad(b"t2", 5.0)
    assert not guard.failed("a", b"t2", 6.0)
    assert guard.failed("a", b"t3", 7.0)  # the third within 10 s: banned
    assert not guard.known_bad(b"t1", 7.0) and guard.known_bad(b"t3", 7.0)  # only `remember` kept
    assert guard.throttled_for("a", 7.0) == 30.0 and guard.throttled_for("b", 7.0) == 0.0
    assert guard.throttled_for("a", 37.0) == 0.0
    assert not guard.known_bad(b"t3", 17.0)  # forgotten after the window
    assert not guard.failed("a", b"t4", 40.0)  # an old run does not count against a new one


@pytest.fixture
async def redis_url() -> str:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as error:
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {error}")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_two_nodes_sharing_redis_give_a_user_one_allowance_not_two(
    auth: TableAuth, redis_url: str
) -> None:
    prefix = f"livetwin:test:{secrets.token_hex(6)}"
    settings = ChatSettings(batch_interval_s=0.01, rate_limit=3, rate_limit_privileged=5, rate_window_s=30.0)
    broker = MemoryBroker()
    limiters = [RedisMessageLimiter(redis_url, 30.0, 5, prefix=prefix) for _ in range(2)]
    nodes = [ChatServer(auth, broker, settings, limiter=limiter) for limiter in limiters]
    for node in nodes:
        await node.start("127.0.0.1", 0)
    try:
        token = auth.account("chatty")
        on_a, on_b = await join(nodes[0].port, "lobby", token), await join(nodes[1].port, "lobby", token)
        answers: list[str] = []
        for i in range(6):
            client = on_a if i % 2 == 0 else on_b
            await client.send(type="send", text=f"line {i}")
            frame = await client.until(
                lambda f, i=i: f["type"] == "error"
                or (f["type"] == "messages" and any(m["text"] == f"line {i}" for m in f["messages"]))
            )
            answers.append("sent" if frame["type"] == "messages" else frame["code"])
        assert answers == ["sent", "sent", "sent", "rate_limited", "rate_limited", "rate_limited"]
    finally:
        for node, limiter in zip(nodes, limiters, strict=True):
            await node.close()
            await limiter.close()


async def test_the_shared_limit_is_the_exact_sliding_window(redis_url: str) -> None:
    limiter = RedisMessageLimiter(redis_url, 0.5, 5, prefix=f"livetwin:test:{secrets.token_hex(6)}")
    try:
        assert [await limiter.try_acquire("u", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
        wait = await limiter.try_acquire("u", 3)
        assert 0 < wait <= 0.5
        assert await limiter.try_acquire("other", 3) == 0.0  # users are counted apart
        await asyncio.sleep(wait + 0.05)
        assert await limiter.try_acquire("u", 3) == 0.0
        assert await limiter.try_acquire("u", 5) == 0.0  # the privileged limit reads the same log
    finally:
        await limiter.close()


async def test_without_redis_a_node_counts_alone_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisMessageLimiter("redis://127.0.0.1:1/0", 30.0, 5)
    try:
        assert [await limiter.try_acquire("u", 2) for _ in range(3)][-1] > 0  # the local log still limits
    finally:
        await limiter.close()
    assert sum("counting on this node alone" in r.getMessage() for r in caplog.records) == 1
