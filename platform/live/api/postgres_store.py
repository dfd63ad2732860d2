"""The scale-out store: PostgreSQL through an asyncpg connection pool.

Every statement is a single round trip; key rotation is one ``UPDATE ... RETURNING`` so the
old key stops resolving the moment it commits, on every node that asks. Migrations run under
a transaction-scoped advisory lock, so nodes starting together migrate once.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from live.api.auth import stream_key_hash
from live.api.migrations import pending
from live.api.models import Account, Channel, Session
from live.api.repository import Conflict, NotFound

#: Arbitrary, fixed: the advisory lock id every livetwin node migrates under.
_MIGRATION_LOCK = 0x6C69766574776E31

_CHANNEL_COLUMNS = "name, owner_id, stream_key_hash, title, created_at"

_CONSTRAINT_FIELDS = {
    "accounts_username_key": "username",
    "channels_name_key": "name",
    "channels_stream_key_key": "stream_key",
    "channels_stream_key_hash_key": "stream_key",
}


def _channel(row: asyncpg.Record) -> Channel:
    return Channel(name=row["name"], owner_id=row["owner_id"],
                   stream_key_hash=bytes(row["stream_key_hash"]), title=row["title"],
                   created_at=row["created_at"])


def _conflict(error: asyncpg.UniqueViolationError) -> Conflict:
    field = _CONSTRAINT_FIELDS.get(error.constraint_name or "")
    if field is None:
        raise error
    return Conflict(field, f"{field} is already taken")


class PostgresRepository:
    """``Repository`` over PostgreSQL; open with ``await PostgresRepository.open(dsn)``.

    Query parameters of the DSN that libpq does not know (``?search_path=...``) are passed to
    the server as settings, which is how the tests give every run its own schema.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 1, max_size: int = 10) -> PostgresRepository:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            async with pool.acquire() as connection:
                await cls._migrate(connection)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    @staticmethod
    async def _migrate(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = await connection.fetchval("SELECT max(version) FROM schema_version")
            for migration in pending(current or 0):
                for statement in migration.postgres:
                    await connection.execute(statement)
                await connection.execute("INSERT INTO schema_version (version) VALUES ($1)",
                                         migration.version)

    async def close(self) -> None:
        await self._pool.close()

    async def schema_version(self) -> int:
        value = await self._pool.fetchval("SELECT max(version) FROM schema_version")
        return int(value or 0)

    # accounts and sessions

    async def create_account(self, username: str, password_hash: str) -> Account:
        now = time.time()
        try:
            account_id = await self._pool.fetchval(
                "INSERT INTO accounts (username, username_key, password_hash, created_at) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                username, username.lower(), password_hash, now,
            )
        except asyncpg.UniqueViolationError as error:
            raise _conflict(error) from None
        return Account(id=account_id, username=username, created_at=now)

    async def account_by_username(self, username: str) -> tuple[Account, str] | None:
        row = await self._pool.fetchrow(
            "SELECT id, username, created_at, password_hash FROM accounts WHERE username_key = $1",
            username.lower(),
        )
        if row is None:
            return None
        account = Account(id=row["id"], username=row["username"], created_at=row["created_at"])
        return account, row["password_hash"]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        status = await self._pool.execute(
            "UPDATE accounts SET password_hash = $1 WHERE id = $2", password_hash, account_id
        )
        if status == "UPDATE 0":
            raise NotFound(f"no account {account_id}")

    async def change_password(self, account_id: int, password_hash: str, keep: bytes | None) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            status = await connection.execute(
                "UPDATE accounts SET password_hash = $1 WHERE id = $2", password_hash, account_id
            )
            if status == "UPDATE 0":
                raise NotFound(f"no account {account_id}")
            revoked: str = await connection.execute(
                "DELETE FROM sessions WHERE account_id = $1 AND token_hash IS DISTINCT FROM $2",
                account_id, keep,
            )
        return int(revoked.rsplit(" ", 1)[-1])

    async def create_session(self, account_id: int, token_hash: bytes, expires_at: float) -> None:
        await self._pool.execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash, account_id, time.time(), expires_at,
        )

    async def session_by_token_hash(self, token_hash: bytes, now: float) -> Session | None:
        row = await self._pool.fetchrow(
            "SELECT a.id, a.username, a.created_at, s.expires_at FROM sessions s "
            "JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            token_hash, now,
        )
        if row is None:
            return None
        account = Account(id=row["id"], username=row["username"], created_at=row["created_at"])
        return Session(account, expires_at=row["expires_at"])

    async def delete_session(self, token_hash: bytes) -> None:
        await self._pool.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def delete_sessions_of(self, account_id: int, keep: bytes | None = None) -> int:
        status: str = await self._pool.execute(
            "DELETE FROM sessions WHERE account_id = $1 AND token_hash IS DISTINCT FROM $2",
            account_id, keep,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def delete_expired_sessions(self, now: float) -> int:
        status: str = await self._pool.execute("DELETE FROM sessions WHERE expires_at <= $1", now)
        return int(status.rsplit(" ", 1)[-1])

    # channels and stream keys

    async def _channel_row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._pool.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as error:
            raise _conflict(error) from None

    async def create_channel(self, name: str, owner_id: int | None, stream_key: str) -> Channel:
        row = await self._channel_row(
            "INSERT INTO channels (name, owner_id, stream_key_hash, title, created_at) "
            f"VALUES ($1, $2, $3, '', $4) RETURNING {_CHANNEL_COLUMNS}",
            name, owner_id, stream_key_hash(stream_key), time.time(),
        )
        assert row is not None
        return _channel(row)

    async def ensure_channel(self, name: str, stream_key: str) -> Channel:
        row = await self._channel_row(
            "INSERT INTO channels (name, owner_id, stream_key_hash, title, created_at) "
            "VALUES ($1, NULL, $2, '', $3) "
            "ON CONFLICT (name) DO UPDATE SET stream_key_hash = excluded.stream_key_hash "
            f"RETURNING {_CHANNEL_COLUMNS}",
            name, stream_key_hash(stream_key), time.time(),
        )
        assert row is not None
        return _channel(row)

    async def channel(self, name: str) -> Channel | None:
        row = await self._pool.fetchrow(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE name = $1", name)
        return None if row is None else _channel(row)

    async def channel_by_stream_key(self, stream_key: str) -> Channel | None:
        row = await self._pool.fetchrow(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE stream_key_hash = $1",
            stream_key_hash(stream_key),
        )
        return None if row is None else _channel(row)

    async def set_stream_key(self, name: str, stream_key: str) -> Channel:
        row = await self._channel_row(
            f"UPDATE channels SET stream_key_hash = $1 WHERE name = $2 RETURNING {_CHANNEL_COLUMNS}",
            stream_key_hash(stream_key), name,
        )
        if row is None:
            raise NotFound(f"no channel {name!r}")
        return _channel(row)

    async def set_title(self, name: str, title: str) -> Channel:
        row = await self._channel_row(
            f"UPDATE channels SET title = $1 WHERE name = $2 RETURNING {_CHANNEL_COLUMNS}", title, name
        )
        if row is None:
            raise NotFound(f"no channel {name!r}")
        return _channel(row)

    async def list_channels(self) -> list[Channel]:
        rows = await self._pool.fetch(f"SELECT {_CHANNEL_COLUMNS} FROM channels ORDER BY name")
        return [_channel(row) for row in rows]

    async def channels_page(self, after: str | None, limit: int) -> list[Channel]:
        rows = await self._pool.fetch(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE name > $1 ORDER BY name LIMIT $2",
            after or "", limit,
        )
        return [_channel(row) for row in rows]

    async def channels_owned_by(self, owner_id: int) -> list[Channel]:
        rows = await self._pool.fetch(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE owner_id = $1 ORDER BY name", owner_id
        )
        return [_channel(row) for row in rows]
