"""Records the platform's store holds. Plain frozen data; the store decides how they persist."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    owner_id: int | None  # None for channels made by `live serve --channel NAME=KEY`
    stream_key_hash: bytes  # SHA-256 of the key; the key itself is shown once, never stored
    title: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    expires_at: float
