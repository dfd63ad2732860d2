"""Chat served by `live serve`: an API session token signs a viewer in, and a message fans out."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from pathlib import Path

import aiohttp
import pytest
import websockets
from live.config import ServeSettings
from live.serve import Platform

from ..logs import every_logger_at_debug, logged_text


async def next_of_type(ws: websockets.ClientConnection, kind: str) -> dict:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def test_a_signed_in_user_chats_and_a_reader_receives_it(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        api = f"http://127.0.0.1:{platform.ports.http}/api/v1"
        credentials = {"username": "streamer_1", "password": "correct horse battery staple"}
        async with http.post(f"{api}/accounts", json=credentials) as response:
            assert response.status == 201
        async with http.post(f"{api}/sessions", json=credentials) as response:
            token = (await response.json())["token"]
        async with http.post(f"{api}/channels", json={"name": "lobby"},
                             headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201

        chat = f"ws://127.0.0.1:{platform.ports.chat}/chat/lobby"
        async with websockets.connect(chat) as reader, \
                websockets.connect(f"{chat}?token={token}") as writer:
            welcome = await next_of_type(writer, "welcome")
            assert welcome["user"] == "streamer_1" and welcome["role"] == "broadcaster"
            await writer.send(json.dumps({"type": "send", "text": "hello from the platform"}))
            batch = await next_of_type(reader, "messages")
            (message,) = batch["messages"]
            assert message["user"] == "streamer_1" and message["text"] == "hello from the platform"

        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"{chat}?token=not-a-session"):
                pass
        assert refused.value.response.status_code == 401


async def test_chat_tokens_never_reach_any_log_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """websockets logs the request line and every frame at DEBUG: the token must be gone from both."""
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        api = f"http://127.0.0.1:{platform.ports.http}/api/v1"
        credentials = {"username": "quiet_one", "password": "correct horse battery staple"}
        async with http.post(f"{api}/accounts", json=credentials) as response:
            assert response.status == 201
        async with http.post(f"{api}/sessions", json=credentials) as response:
            token = (await response.json())["token"]
        async with http.post(f"{api}/channels", json={"name": "lobby"},
                             headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201
        chat = f"ws://127.0.0.1:{platform.ports.chat}/chat/lobby"
        with every_logger_at_debug(), caplog.at_level(logging.DEBUG):
            async with websockets.connect(chat) as first_frame:
                await first_frame.send(json.dumps({"type": "auth", "token": "guessed-" + token[8:]}))
                assert (await next_of_type(first_frame, "error"))["code"] == "bad_token"
                await first_frame.send(json.dumps({"type": "auth", "token": token}))
                assert (await next_of_type(first_frame, "authenticated"))["user"] == "quiet_one"
            async with websockets.connect(f"{chat}?token={token}") as in_the_url:
                assert (await next_of_type(in_the_url, "welcome"))["user"] == "quiet_one"
    text = logged_text(caplog.records)
    assert "websockets" in text  # the library did log the handshake and the frames
    assert token not in text and token[8:] not in text


async def _viewer_token(http: aiohttp.ClientSession, platform: Platform, username: str) -> str:
    """On this platform: a streamer with the channel "lobby", and ``username``'s session token."""
    api = f"http://127.0.0.1:{platform.ports.http}/api/v1"
    tokens = []
    for name in ("streamer_1", username):
        credentials = {"username": name, "password": "correct horse battery staple"}
        async with http.post(f"{api}/accounts", json=credentials) as response:
            assert response.status == 201
        async with http.post(f"{api}/sessions", json=credentials) as response:
            tokens.append((await response.json())["token"])
    async with http.post(f"{api}/channels", json={"name": "lobby"},
                         headers={"Authorization": f"Bearer {tokens[0]}"}) as response:
        assert response.status == 201
    return tokens[1]


async def test_two_platforms_sharing_a_chat_rate_store_give_a_user_one_allowance(tmp_path: Path) -> None:
    import redis.asyncio as redis

    from ..conftest import skip_or_fail

    url = "redis://127.0.0.1:6379/0"
    probe = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await probe.ping()
    except (redis.RedisError, OSError) as error:
        skip_or_fail(f"Redis not reachable at {url}: {error}")
    username = f"u_{secrets.token_hex(6)}"  # the shared count is per user name, fresh for each run
    try:
        async with Platform(ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path / "a",
                                          chat_rate_store=url)) as first, \
                Platform(ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path / "b",
                                       chat_rate_store=url)) as second, \
                aiohttp.ClientSession() as http:
            refused = []
            for node in (first, second):
                token = await _viewer_token(http, node, username)
                async with websockets.connect(f"ws://127.0.0.1:{node.ports.chat}/chat/lobby") as ws:
                    await ws.send(json.dumps({"type": "auth", "token": token}))
                    assert (await next_of_type(ws, "authenticated"))["role"] == "viewer"
                    for i in range(15):  # a viewer's allowance is 20 in 30 s, on both nodes together
                        await ws.send(json.dumps({"type": "send", "text": f"line {i}"}))
                    await ws.send(json.dumps({"type": "ping", "nonce": 1}))
                    errors = []
                    async with asyncio.timeout(10):
                        while (frame := json.loads(await ws.recv()))["type"] != "pong":
                            if frame["type"] == "error":
                                errors.append(frame["code"])
                    refused.append(errors)
            assert refused == [[], ["rate_limited"] * 10]
    finally:
        await probe.delete(f"livetwin:chat:rate:{username}")
        await probe.aclose()
