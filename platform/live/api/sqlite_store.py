"""The embedded store: one SQLite file, driven from a single worker thread.

The stdlib driver blocks, so every statement runs on one dedicated thread (which also makes
the connection's use strictly serial, as sqlite3 wants). WAL keeps readers from waiting on the
writer; foreign keys are on so a deleted account takes its sessions with it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from live.api.auth import stream_key_hash
from live.api.migrations import pending
from live.api.models import Account, Channel, Session
from live.api.repository import Conflict, NotFound

T = TypeVar("T")

_CHANNEL_COLUMNS = "name, owner_id, stream_key_hash, title, created_at"


def _channel(row: tuple[Any, ...]) -> Channel:
    return Channel(name=row[0], owner_id=row[1], stream_key_hash=bytes(row[2]), title=row[3],
                   created_at=row[4])


def _conflict(error: sqlite3.IntegrityError) -> Conflict:
    """Name the taken field from SQLite's "UNIQUE constraint failed: table.column" message."""
    text = str(error)
    for column, field in (("username_key", "username"), ("stream_key", "stream_key"),
                          ("channels.name", "name")):
        if column in text:
            return Conflict(field, f"{field} is already taken")
    raise error


class SqliteRepository:
    """``Repository`` over a SQLite file; open with ``await SqliteRepository.open(path)``."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._db = connection
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SqliteRepository:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, cls._connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # The file holds password and key hashes: owner-only, created so (no window at 0644).
        # SQLite gives its -wal and -shm files the main file's permissions.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        db.create_function("livetwin_sha256", 1, stream_key_hash, deterministic=True)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            SqliteRepository._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")  # one migrator at a time, even across processes
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            for migration in pending(row[0] or 0):
                for statement in migration.sqlite:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)

    async def schema_version(self) -> int:
        row = await self._run(self._one, "SELECT max(version) FROM schema_version", ())
        return int(row[0]) if row else 0

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return list(self._db.execute(sql, params).fetchall())

    def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._db.execute(sql, params).rowcount

    # accounts and sessions

    async def create_account(self, username: str, password_hash: str) -> Account:
        def insert() -> Account:
            now = time.time()
            try:
                row = self._db.execute(
                    "INSERT INTO accounts (username, username_key, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?) RETURNING id",
                    (username, username.lower(), password_hash, now),
                ).fetchone()
            except sqlite3.IntegrityError as error:
                raise _conflict(error) from None
            return Account(id=row[0], username=username, created_at=now)

        return await self._run(insert)

    async def account_by_username(self, username: str) -> tuple[Account, str] | None:
        row = await self._run(
            self._one,
            "SELECT id, username, created_at, password_hash FROM accounts WHERE username_key = ?",
            (username.lower(),),
        )
        if row is None:
            return None
        return Account(id=row[0], username=row[1], created_at=row[2]), row[3]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        changed = await self._run(
            self._change, "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
        )
        if not changed:
            raise NotFound(f"no account {account_id}")

    async def change_password(self, account_id: int, password_hash: str, keep: bytes | None) -> int:
        def change() -> int:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._change("UPDATE accounts SET password_hash = ? WHERE id = ?",
                                       (password_hash, account_id))
                if not changed:
                    raise NotFound(f"no account {account_id}")
                revoked = self._change("DELETE FROM sessions WHERE account_id = ? AND token_hash IS NOT ?",
                                       (account_id, keep))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return revoked

        return await self._run(change)

    async def create_session(self, account_id: int, token_hash: bytes, expires_at: float) -> None:
        await self._run(
            self._change,
            "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, account_id, time.time(), expires_at),
        )

    async def session_by_token_hash(self, token_hash: bytes, now: float) -> Session | None:
        row = await self._run(
            self._one,
            "SELECT a.id, a.username, a.created_at, s.expires_at FROM sessions s "
            "JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ? AND s.expires_at > ?",
            (token_hash, now),
        )
        if row is None:
            return None
        return Session(Account(id=row[0], username=row[1], created_at=row[2]), expires_at=row[3])

    async def delete_session(self, token_hash: bytes) -> None:
        await self._run(self._change, "DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    async def delete_sessions_of(self, account_id: int, keep: bytes | None = None) -> int:
        return await self._run(
            self._change, "DELETE FROM sessions WHERE account_id = ? AND token_hash IS NOT ?",
            (account_id, keep),
        )

    async def delete_expired_sessions(self, now: float) -> int:
        return await self._run(self._change, "DELETE FROM sessions WHERE expires_at <= ?", (now,))

    # channels and stream keys

    async def create_channel(self, name: str, owner_id: int | None, stream_key: str) -> Channel:
        def insert() -> Channel:
            try:
                row = self._db.execute(
                    "INSERT INTO channels (name, owner_id, stream_key_hash, title, created_at) "
                    f"VALUES (?, ?, ?, '', ?) RETURNING {_CHANNEL_COLUMNS}",
                    (name, owner_id, stream_key_hash(stream_key), time.time()),
                ).fetchone()
            except sqlite3.IntegrityError as error:
                raise _conflict(error) from None
            return _channel(row)

        return await self._run(insert)

    async def ensure_channel(self, name: str, stream_key: str) -> Channel:
        def upsert() -> Channel:
            try:
                row = self._db.execute(
                    "INSERT INTO channels (name, owner_id, stream_key_hash, title, created_at) "
                    "VALUES (?, NULL, ?, '', ?) "
                    "ON CONFLICT(name) DO UPDATE SET stream_key_hash = excluded.stream_key_hash "
                    f"RETURNING {_CHANNEL_COLUMNS}",
                    (name, stream_key_hash(stream_key), time.time()),
                ).fetchone()
            except sqlite3.IntegrityError as error:
                raise _conflict(error) from None
            return _channel(row)

        return await self._run(upsert)

    async def channel(self, name: str) -> Channel | None:
        row = await self._run(self._one, f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE name = ?", (name,))
        return None if row is None else _channel(row)

    async def channel_by_stream_key(self, stream_key: str) -> Channel | None:
        row = await self._run(
            self._one, f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE stream_key_hash = ?",
            (stream_key_hash(stream_key),)
        )
        return None if row is None else _channel(row)

    async def _update_channel(self, sql: str, params: tuple[Any, ...], name: str) -> Channel:
        def update() -> Channel:
            try:
                row = self._db.execute(sql, params).fetchone()
            except sqlite3.IntegrityError as error:
                raise _conflict(error) from None
            if row is None:
                raise NotFound(f"no channel {name!r}")
            return _channel(row)

        return await self._run(update)

    async def set_stream_key(self, name: str, stream_key: str) -> Channel:
        return await self._update_channel(
            f"UPDATE channels SET stream_key_hash = ? WHERE name = ? RETURNING {_CHANNEL_COLUMNS}",
            (stream_key_hash(stream_key), name), name,
        )

    async def set_title(self, name: str, title: str) -> Channel:
        return await self._update_channel(
            f"UPDATE channels SET title = ? WHERE name = ? RETURNING {_CHANNEL_COLUMNS}",
            (title, name), name,
        )

    async def list_channels(self) -> list[Channel]:
        rows = await self._run(self._all, f"SELECT {_CHANNEL_COLUMNS} FROM channels ORDER BY name", ())
        return [_channel(row) for row in rows]

    async def channels_page(self, after: str | None, limit: int) -> list[Channel]:
        rows = await self._run(
            self._all, f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE name > ? ORDER BY name LIMIT ?",
            (after or "", limit),
        )
        return [_channel(row) for row in rows]

    async def channels_owned_by(self, owner_id: int) -> list[Channel]:
        rows = await self._run(
            self._all, f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE owner_id = ? ORDER BY name",
            (owner_id,),
        )
        return [_channel(row) for row in rows]
