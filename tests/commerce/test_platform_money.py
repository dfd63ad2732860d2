"""Money in `live serve` with the embedded sandbox: real signed webhooks over HTTP, cheers in chat
within a second, subscribers-only chat and the subscriber badge following the subscription."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from live.commerce.ledger import check
from live.commerce.storage import open_commerce_store
from live.config import ServeSettings
from live.serve import Platform

CARD = "4242424242424242"


async def next_of_type(ws: websockets.ClientConnection, kind: str, timeout_s: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame  # type: ignore[no-any-return]


async def test_bits_cheers_and_subscriptions_through_the_whole_platform(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        api = f"http://127.0.0.1:{platform.ports.http}/api/v1"

        async def call(method: str, path: str, token: str, body: Any = None, key: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"}
            if key:
                headers["Idempotency-Key"] = key
            async with http.request(method, api + path, json=body, headers=headers) as response:
                return response.status, await response.json()

        tokens = {}
        for name in ("streamer", "viewer"):
            credentials = {"username": name, "password": "correct horse battery staple"}
            async with http.post(f"{api}/accounts", json=credentials) as response:
                assert response.status == 201
            async with http.post(f"{api}/sessions", json=credentials) as response:
                tokens[name] = (await response.json())["token"]
        streamer, viewer = tokens["streamer"], tokens["viewer"]
        assert (await call("POST", "/channels", streamer, {"name": "lobby"}))[0] == 201

        status, _ = await call("POST", "/me/bits", viewer, {"bits": 500, "card": CARD}, key="buy-1")
        assert status == 202
        async with asyncio.timeout(15):
            while (await call("GET", "/me/wallet", viewer))[1]["bits"] != 500:
                await asyncio.sleep(0.05)

        chat = f"ws://127.0.0.1:{platform.ports.chat}/chat/lobby"
        async with (
            websockets.connect(chat) as reader,
            websockets.connect(f"{chat}?token={viewer}") as talker,
            websockets.connect(f"{chat}?token={streamer}") as broadcaster,
        ):
            for ws in (reader, talker, broadcaster):
                await next_of_type(ws, "welcome")
            started = time.monotonic()
            status, _ = await call(
                "POST", "/channels/lobby/cheers", viewer, {"bits": 100, "message": "gg"}, key="cheer-1"
            )
            assert status == 201
            cheer = await next_of_type(reader, "cheer", timeout_s=1.0)
            assert time.monotonic() - started < 1.0
            assert (cheer["user"], cheer["bits"], cheer["text"]) == ("viewer", 100, "gg")

            await broadcaster.send(json.dumps({"type": "modes", "subscribers_only": True}))
            await next_of_type(reader, "moderation")
            await talker.send(json.dumps({"type": "send", "text": "let me in"}))
            refused = await next_of_type(talker, "error")
            assert refused["code"] == "subscribers_only"

            status, _ = await call(
                "POST", "/channels/lobby/subscriptions", viewer, {"tier": 1, "card": CARD}, key="sub-1"
            )
            assert status == 202
            async with asyncio.timeout(15):
                while (await call("GET", "/channels/lobby/subscription", viewer))[0] != 200:
                    await asyncio.sleep(0.05)
            # the same connection, no reconnect: the benefit follows the subscription at once
            await talker.send(json.dumps({"type": "send", "text": "subscribed now"}))
            batch = await next_of_type(reader, "messages")
            (message,) = batch["messages"]
            assert message["text"] == "subscribed now" and "subscriber" in message["badges"]

        await asyncio.sleep(1.0)  # duplicates of the webhooks still in flight land
        _, earnings = await call("GET", "/channels/lobby/earnings", streamer)
        assert earnings["unpaid"] == {"USD": 100 + 499 * 5000 // 10000}
    store = await open_commerce_store(None, tmp_path)
    try:
        report = await check(store)
        assert report.ok, report.problems
    finally:
        await store.close()
