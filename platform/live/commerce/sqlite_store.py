"""The books on the embedded SQLite file: one connection, one thread, one transaction at a time.

Transactions are ``BEGIN IMMEDIATE`` (the write lock up front, so two writers never deadlock
on an upgrade) and serialized by an asyncio lock: the connection is shared by every request,
so two transactions must never interleave their statements on it.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from live.commerce.migrations import VERSION_TABLE, pending
from live.commerce.store import Row

T = TypeVar("T")


class _SqliteTx:
    dialect = "sqlite"

    def __init__(self, store: SqliteCommerceStore) -> None:
        self._store = store

    async def one(self, sql: str, *args: Any) -> Row | None:
        return await self._store._call(lambda: self._store._db.execute(sql, args).fetchone())

    async def all(self, sql: str, *args: Any) -> list[Row]:
        return await self._store._call(lambda: list(self._store._db.execute(sql, args).fetchall()))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._store._call(lambda: self._store._db.execute(sql, args).rowcount)


class SqliteCommerceStore:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._db = connection
        self._executor = executor
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SqliteCommerceStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commerce")
        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, cls._connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
                current = db.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()[0]
                for migration in pending(current or 0):
                    for statement in migration.sqlite:
                        db.execute(statement)
                    db.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", (migration.version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except BaseException:
            db.close()
            raise
        return db

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError("the commerce store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self, fn: Callable[[_SqliteTx], Awaitable[T]]) -> T:
        async with self._lock:
            await self._call(functools.partial(self._db.execute, "BEGIN IMMEDIATE"))
            try:
                result = await fn(_SqliteTx(self))
                await self._call(functools.partial(self._db.execute, "COMMIT"))
            except BaseException:
                # a failed COMMIT (the file busy past the timeout) leaves the transaction open
                await asyncio.shield(self._call(self._rollback))
                raise
            return result

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)
