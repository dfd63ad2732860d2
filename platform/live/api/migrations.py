"""Schema migrations for both stores: a numbered list, applied in order, recorded in schema_version.

Each migration is one step per dialect, written out rather than generated, so what runs on a
database is exactly what a reviewer reads here. A store applies every step above the version
it finds, each in its own transaction together with the bump of ``schema_version``; a database
newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


class SchemaTooNew(Exception):
    """The database was migrated by a newer livetwin than this one."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "accounts, sessions, channels",
        sqlite=(
            """CREATE TABLE accounts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                username TEXT NOT NULL,
                username_key TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            """CREATE TABLE sessions (
                token_hash BLOB PRIMARY KEY,
                account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL
            )""",
            "CREATE INDEX sessions_expires_at ON sessions(expires_at)",
            """CREATE TABLE channels (
                name TEXT PRIMARY KEY,
                owner_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
                stream_key TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX channels_owner_id ON channels(owner_id)",
        ),
        postgres=(
            """CREATE TABLE accounts (
                id BIGSERIAL PRIMARY KEY,
                username TEXT NOT NULL,
                username_key TEXT NOT NULL CONSTRAINT accounts_username_key UNIQUE,
                password_hash TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE sessions (
                token_hash BYTEA PRIMARY KEY,
                account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX sessions_expires_at ON sessions(expires_at)",
            "CREATE INDEX sessions_account_id ON sessions(account_id)",
            """CREATE TABLE channels (
                name TEXT CONSTRAINT channels_name_key PRIMARY KEY,
                owner_id BIGINT REFERENCES accounts(id) ON DELETE SET NULL,
                stream_key TEXT NOT NULL CONSTRAINT channels_stream_key_key UNIQUE,
                title TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX channels_owner_id ON channels(owner_id)",
        ),
    ),
    Migration(
        2,
        "stream keys stored as their SHA-256, never in plaintext",
        # SQLite cannot drop a UNIQUE column in place: rebuild the table. The store registers
        # livetwin_sha256() on its connection for this step.
        sqlite=(
            """CREATE TABLE channels_v2 (
                name TEXT PRIMARY KEY,
                owner_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
                stream_key_hash BLOB NOT NULL UNIQUE,
                title TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL
            )""",
            "INSERT INTO channels_v2 (name, owner_id, stream_key_hash, title, created_at) "
            "SELECT name, owner_id, livetwin_sha256(stream_key), title, created_at FROM channels",
            "DROP TABLE channels",
            "ALTER TABLE channels_v2 RENAME TO channels",
            "CREATE INDEX channels_owner_id ON channels(owner_id)",
            "CREATE INDEX sessions_account_id ON sessions(account_id)",
        ),
        postgres=(
            "ALTER TABLE channels ADD COLUMN stream_key_hash BYTEA",
            "UPDATE channels SET stream_key_hash = sha256(convert_to(stream_key, 'UTF8'))",
            "ALTER TABLE channels ALTER COLUMN stream_key_hash SET NOT NULL",
            "ALTER TABLE channels ADD CONSTRAINT channels_stream_key_hash_key UNIQUE (stream_key_hash)",
            "ALTER TABLE channels DROP COLUMN stream_key",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def pending(current: int) -> tuple[Migration, ...]:
    """The steps to run on a database at ``current``; raise if it is ahead of this code."""
    if current > LATEST_VERSION:
        raise SchemaTooNew(
            f"database schema is version {current}, this livetwin knows up to {LATEST_VERSION}: "
            "upgrade livetwin before pointing it at this database"
        )
    return tuple(m for m in MIGRATIONS if m.version > current)


def check_sequence(migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Versions must run 1, 2, 3... with no gap or repeat (a test holds the list to it)."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise AssertionError(f"migration {migration.version} out of order; expected {expected}")
