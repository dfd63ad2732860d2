"""Chat signs users in against the platform API's real store (SQLite via live.api.storage)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from live.api.storage import open_repository
from live.chat.auth import RepositoryChatAuth, UnknownChannel
from live.chat.broker import MemoryBroker
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .conftest import join


async def test_session_tokens_and_channel_owner_come_from_the_sqlite_store(tmp_path: Path) -> None:
    repo = await open_repository(None, tmp_path)
    try:
        owner = await repo.create_account("Streamer_1", "not-a-real-hash")
        viewer = await repo.create_account("viewer_2", "not-a-real-hash")
        await repo.create_channel("studio", owner.id, "live_key_1")
        for account, token in [(owner, "owner-token"), (viewer, "viewer-token")]:
            await repo.create_session(account.id, hashlib.sha256(token.encode()).digest(), time.time() + 3600)
        await repo.create_session(viewer.id, hashlib.sha256(b"expired").digest(), time.time() - 1)
        auth = RepositoryChatAuth(repo)
        assert await auth.channel_owner("studio") == owner.id
        with pytest.raises(UnknownChannel):
            await auth.channel_owner("nowhere")
        assert await auth.account_id("streamer_1") == owner.id

        node = ChatServer(auth, MemoryBroker(), ChatSettings(batch_interval_s=0.01))
        await node.start("127.0.0.1", 0)
        try:
            broadcaster = await join(node.port, "studio", "owner-token")
            assert (
                broadcaster.welcome["user"] == "Streamer_1" and broadcaster.welcome["role"] == "broadcaster"
            )
            chatter = await join(node.port, "studio", "viewer-token")
            assert chatter.welcome["role"] == "viewer"
            await chatter.send(type="send", text="hello from the store")
            frame = await broadcaster.until_text("hello from the store")
            assert frame["messages"][0]["user"] == "viewer_2"
            await broadcaster.send(type="ban", user="STREAMER_1")
            assert (await broadcaster.until(lambda f: f["type"] == "error"))["code"] == "bad_target"
            await broadcaster.send(type="timeout", user="viewer_2", seconds=60)
            await chatter.until(lambda f: f.get("action") == "timeout")
            for path in ["/chat/studio?token=expired", "/chat/nowhere"]:
                with pytest.raises(InvalidStatus):
                    await connect(f"ws://127.0.0.1:{node.port}{path}", open_timeout=5)
        finally:
            await node.close()
    finally:
        await repo.close()
