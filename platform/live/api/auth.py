"""Credentials: argon2id password hashes, bearer session tokens, stream keys.

Tokens carry 256 random bits (``secrets.token_urlsafe(32)``) and only their SHA-256 is stored:
a leaked table reveals no usable token, and since the token is uniformly random a fast hash
loses nothing against guessing (unlike passwords, which get argon2id, RFC 9106). Stream keys
are stored the same way: generated keys carry 192 random bits, and seeded keys must be at least
``SEEDED_KEY_MIN`` characters outside development. Other
components (chat, commerce) check tokens through ``authenticate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import argon2

from live.api.models import Account
from live.api.repository import Repository

TOKEN_MAX_CHARS = 256
STREAM_KEY_PREFIX = "live_"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_stream_key() -> str:
    return STREAM_KEY_PREFIX + secrets.token_urlsafe(24)


def stream_key_hash(stream_key: str) -> bytes:
    """What the store keeps of a stream key, and what a publisher's key is looked up by."""
    return hashlib.sha256(stream_key.encode()).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 2.1), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX_CHARS:
        return None
    return token


async def authenticate(repo: Repository, token: str, now: float | None = None) -> Account | None:
    """The account a live (unexpired, not revoked) session token belongs to, else None."""
    if not token or len(token) > TOKEN_MAX_CHARS:
        return None
    session = await repo.session_by_token_hash(token_hash(token), time.time() if now is None else now)
    return None if session is None else session.account


class Passwords:
    """argon2id hashing off the event loop, with at most ``concurrency`` hashes in flight.

    Each hash holds ``memory_cost`` KiB (64 MiB by default) for ~0.1 s, so the bound is what
    keeps a login flood from many addresses from exhausting memory; excess waits its turn.
    """

    def __init__(self, hasher: argon2.PasswordHasher | None = None, concurrency: int = 2) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, spend the same work and answer False.

        Doing the work for unknown usernames keeps response time from telling which exist.
        """
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            stored_hash = self._dummy
            password = password + "\x00unknown-user"  # never matches: valid passwords have no NUL
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except argon2.exceptions.InvalidHashError:
            return True
