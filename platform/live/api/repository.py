"""The one storage interface the platform talks to.

Two real implementations sit behind it: SQLite (the embedded default, a file under ``--data``)
and PostgreSQL (``--database postgresql://...``). Every method is a coroutine so that the
PostgreSQL driver never blocks the event loop; the SQLite one runs its statements in a thread.

Stream keys are passed in as the publisher sends them and stored only as their SHA-256
(``auth.stream_key_hash``), like session tokens; no method gives a key back.

Both raise the same two exceptions, so callers never see a driver's error type: ``Conflict``
when a unique name or key is taken, ``NotFound`` when a method that changes a row finds none.
"""

from __future__ import annotations

from typing import Protocol

from live.api.models import Account, Channel, Session


class StoreError(Exception):
    """Base of the errors every repository implementation raises the same way."""


class Conflict(StoreError):
    """A unique value (``field``: "username", "name" or "stream_key") is already taken."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(StoreError, LookupError):
    """The row a change names does not exist."""


class Repository(Protocol):
    async def close(self) -> None: ...

    # accounts and sessions
    async def create_account(self, username: str, password_hash: str) -> Account:
        """Raise Conflict("username") when the name is taken in any letter case."""
        ...
    async def account_by_username(self, username: str) -> tuple[Account, str] | None:
        """The account and its stored password hash, matched case-insensitively."""
        ...
    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        """Store a rehashed password (argon2 parameters raised since it was set)."""
        ...
    async def change_password(self, account_id: int, password_hash: str, keep: bytes | None) -> int:
        """Store a new password and revoke every other session (all but ``keep``), in one
        transaction: a failure half-way leaves both as they were. Answers how many were revoked."""
        ...
    async def create_session(self, account_id: int, token_hash: bytes, expires_at: float) -> None: ...
    async def session_by_token_hash(self, token_hash: bytes, now: float) -> Session | None: ...
    async def delete_session(self, token_hash: bytes) -> None: ...
    async def delete_sessions_of(self, account_id: int, keep: bytes | None = None) -> int:
        """Revoke every session of the account except ``keep`` (a token hash); answers how many."""
        ...
    async def delete_expired_sessions(self, now: float) -> int:
        """Drop sessions past their expiry; answers how many went."""
        ...

    # channels and stream keys
    async def create_channel(self, name: str, owner_id: int | None, stream_key: str) -> Channel:
        """Raise Conflict("name") or Conflict("stream_key") when either is taken."""
        ...
    async def ensure_channel(self, name: str, stream_key: str) -> Channel:
        """Create the channel, or set its key if it exists (``live serve --channel NAME=KEY``)."""
        ...
    async def channel(self, name: str) -> Channel | None: ...
    async def channel_by_stream_key(self, stream_key: str) -> Channel | None:
        """The channel whose stored key hash is the hash of ``stream_key``."""
        ...
    async def set_stream_key(self, name: str, stream_key: str) -> Channel:
        """Replace the key in one statement, so the old one resolves to nothing from then on."""
        ...
    async def set_title(self, name: str, title: str) -> Channel: ...
    async def list_channels(self) -> list[Channel]: ...
    async def channels_page(self, after: str | None, limit: int) -> list[Channel]:
        """Up to ``limit`` channels in name order, starting after the name ``after``."""
        ...
    async def channels_owned_by(self, owner_id: int) -> list[Channel]: ...
