"""A chat node as its own process (so a chaos test can SIGKILL it): `ChatServer` over NATS.

`python tests/chaos/chat_node.py HOST PORT NATS_URL ROOM USER...`: every USER signs in with the
token ``token-USER``; ROOM is owned by the first. Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from live.chat.auth import ChatUser, UnknownChannel
from live.chat.nats_broker import NatsBroker
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings


class ListAuth:
    def __init__(self, room: str, users: list[str]) -> None:
        self.room = room
        self.users = {f"token-{name}": ChatUser(i + 1, name) for i, name in enumerate(users)}

    async def user_for_token(self, token: str) -> ChatUser | None:
        return self.users.get(token)

    async def channel_owner(self, channel: str) -> int | None:
        if channel != self.room:
            raise UnknownChannel(channel)
        return 1

    async def account_id(self, username: str) -> int | None:
        return next((u.account_id for u in self.users.values() if u.name == username), None)


async def main(host: str, port: int, nats_url: str, room: str, users: list[str]) -> None:
    settings = ChatSettings(batch_interval_s=0.02, rate_limit=10_000, rate_limit_privileged=10_000,
                            frame_rate_per_s=1000.0)
    node = ChatServer(ListAuth(room, users), NatsBroker(nats_url, connect_timeout_s=3.0), settings)
    await node.start(host, port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]))
