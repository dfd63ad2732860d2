"""Who a chat client is and who owns a room: the questions chat asks the platform API.

``ChatAuth`` is the seam; ``RepositoryChatAuth`` answers it from the API's store (sessions are
bearer tokens kept only as SHA-256, see live.api.auth). Identity is the account id, because a
channel names its broadcaster by ``owner_id``; names are how moderators address users, so
``account_id`` turns a moderation target's name into an id (the broadcaster cannot be banned).
``Relationships`` is the seam to commerce (subscriptions, follows) that subscribers-only and
followers-only modes read; ``NoRelationshipStore`` is the honest answer while the platform keeps no
such records (nobody is a subscriber or follower, so those modes admit only broadcaster and mods).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from live.api.repository import Repository
from live.chat.moderation import Relationship


class UnknownChannel(LookupError):
    """The room names no channel: the client asked for a room that does not exist (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class ChatUser:
    account_id: int
    name: str


class ChatAuth(Protocol):
    async def user_for_token(self, token: str) -> ChatUser | None:
        """The account a live session token belongs to, else None."""
        ...

    async def channel_owner(self, channel: str) -> int | None:
        """The broadcaster's account id (None for a channel without an owner account).

        Raises ``UnknownChannel`` when no such channel exists.
        """
        ...

    async def account_id(self, username: str) -> int | None:
        """The id of the account with this name (any letter case), else None."""
        ...


class Relationships(Protocol):
    async def relationship(self, channel: str, user: ChatUser) -> Relationship: ...


class NoRelationshipStore:
    """The platform records no subscriptions or follows yet: everyone is neither."""

    async def relationship(self, channel: str, user: ChatUser) -> Relationship:
        return Relationship()


class RepositoryChatAuth:
    """``ChatAuth`` over the platform's Repository (SQLite or PostgreSQL)."""

    def __init__(self, repo: Repository, token_max_chars: int = 256) -> None:
        self._repo = repo
        self._token_max = token_max_chars

    async def user_for_token(self, token: str) -> ChatUser | None:
        if not token or len(token) > self._token_max:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        session = await self._repo.session_by_token_hash(digest, time.time())
        return None if session is None else ChatUser(session.account.id, session.account.username)

    async def channel_owner(self, channel: str) -> int | None:
        record = await self._repo.channel(channel)
        if record is None:
            raise UnknownChannel(channel)
        return record.owner_id

    async def account_id(self, username: str) -> int | None:
        found = await self._repo.account_by_username(username)
        return None if found is None else found[0].id
