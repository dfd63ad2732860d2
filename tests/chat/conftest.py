"""Shared fixtures for chat tests: an in-memory ChatAuth standing in for the platform API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from live.chat.auth import ChatUser, UnknownChannel
from live.chat.broker import MemoryBroker
from live.chat.moderation import Relationship
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from websockets.asyncio.client import ClientConnection, connect


class TableAuth:
    """ChatAuth over plain dicts: the platform API's answers without its store."""

    def __init__(self) -> None:
        self.tokens: dict[str, ChatUser] = {}
        self.channels: dict[str, int | None] = {}
        self._next_id = 1

    def account(self, name: str) -> str:
        """Create an account with a session; answers its token."""
        user = ChatUser(self._next_id, name)
        self._next_id += 1
        token = f"token-{name}"
        self.tokens[token] = user
        return token

    def channel(self, name: str, owner_token: str | None) -> None:
        self.channels[name] = None if owner_token is None else self.tokens[owner_token].account_id

    async def user_for_token(self, token: str) -> ChatUser | None:
        return self.tokens.get(token)

    async def channel_owner(self, channel: str) -> int | None:
        if channel not in self.channels:
            raise UnknownChannel(channel)
        return self.channels[channel]

    async def account_id(self, username: str) -> int | None:
        for user in self.tokens.values():
            if user.name.lower() == username.lower():
                return user.account_id
        return None


class TableRelationships:
    def __init__(self) -> None:
        self.subscribers: set[str] = set()
        self.follows: dict[str, float] = {}

    async def relationship(self, channel: str, user: ChatUser) -> Relationship:
        return Relationship(user.name in self.subscribers, self.follows.get(user.name))


class Client:
    """A test chat client over a real WebSocket: keeps every event it has seen, by id."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}

    @property
    def ids(self) -> list[int]:
        out: list[int] = []
        for frame in self.frames:
            if frame["type"] == "messages":
                out.extend(m["id"] for m in frame["messages"])
            elif frame["type"] == "moderation":
                out.append(frame["id"])
        return out

    @property
    def texts(self) -> list[str]:
        return [m["text"] for f in self.frames if f["type"] == "messages" for m in f["messages"]]

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        import asyncio

        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """Read frames until one satisfies ``predicate``; answers it."""
        while True:
            frame = await self.next(timeout)
            if predicate(frame):
                return frame

    async def until_text(self, text: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.until(
            lambda f: f["type"] == "messages" and any(m["text"] == text for m in f["messages"]), timeout
        )


async def join(port: int, room: str, token: str | None = None, after: int = 0) -> Client:
    query = []
    if token:
        query.append(f"token={token}")
    if after:
        query.append(f"after={after}")
    url = f"ws://127.0.0.1:{port}/chat/{room}" + ("?" + "&".join(query) if query else "")
    client = Client(await connect(url, compression=None, open_timeout=5, max_queue=None))
    client.welcome = await client.next()
    assert client.welcome["type"] == "welcome"
    return client


@pytest.fixture
def auth() -> TableAuth:
    table = TableAuth()
    table.channel("lobby", table.account("streamer"))
    return table


@pytest.fixture
def relationships() -> TableRelationships:
    return TableRelationships()


@pytest.fixture
async def server(auth: TableAuth, relationships: TableRelationships) -> AsyncIterator[ChatServer]:
    node = ChatServer(auth, MemoryBroker(), ChatSettings(batch_interval_s=0.02), relationships)
    await node.start("127.0.0.1", 0)
    try:
        yield node
    finally:
        await node.close()
