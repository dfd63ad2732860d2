"""The books on PostgreSQL through an asyncpg pool (READ COMMITTED, row locks where money moves).

Statements are written with ``?`` placeholders, numbered ``$1..`` here once per statement text.
Balance changes take row locks in one global order (see ``live.commerce.ledger``), so
deadlocks are rare; when one happens anyway, or a unique race aborts a transaction, the whole
function is run again on a fresh transaction, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from live.commerce.migrations import VERSION_TABLE, pending
from live.commerce.store import Row

T = TypeVar("T")

_MIGRATION_LOCK = 0x6C69766563306D31
_ATTEMPTS = 8


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...`` (our statements never hold a literal ``?``)."""
    parts = sql.split("?")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], start=1):
        out.append(f"${number}{part}")
    return "".join(out)


class _PostgresTx:
    dialect = "postgres"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def one(self, sql: str, *args: Any) -> Row | None:
        row = await self._db.fetchrow(numbered(sql), *args)
        return None if row is None else tuple(row)

    async def all(self, sql: str, *args: Any) -> list[Row]:
        return [tuple(row) for row in await self._db.fetch(numbered(sql), *args)]

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._db.execute(numbered(sql), *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class PostgresCommerceStore:
    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 1, max_size: int = 20) -> PostgresCommerceStore:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)"
                )
                current = await connection.fetchval(f"SELECT max(version) FROM {VERSION_TABLE}")
                for migration in pending(current or 0):
                    for statement in migration.postgres:
                        await connection.execute(statement)
                    await connection.execute(
                        f"INSERT INTO {VERSION_TABLE} (version) VALUES ($1)", migration.version
                    )
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def run(self, fn: Callable[[_PostgresTx], Awaitable[T]]) -> T:
        for attempt in range(_ATTEMPTS):
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    return await fn(_PostgresTx(connection))
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._pool.close()
