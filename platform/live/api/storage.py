"""Pick and open the store `live serve` was told to use."""

from __future__ import annotations

from pathlib import Path

from live.api.repository import Repository

SQLITE_FILE_NAME = "livetwin.sqlite3"


async def open_repository(database: str | None, data_dir: Path) -> Repository:
    """None: the embedded SQLite file ``data_dir/livetwin.sqlite3``; ``postgresql://...``: PostgreSQL.

    Either way the schema is migrated to the latest version before this returns. A data
    directory made here is owner-only (0700), and the database file is 0600 whoever made it.
    """
    if database is None:
        from live.api.sqlite_store import SqliteRepository

        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return await SqliteRepository.open(data_dir / SQLITE_FILE_NAME)
    scheme = database.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        from live.api.postgres_store import PostgresRepository

        return await PostgresRepository.open(database)
    raise ValueError(
        f"--database {scheme + '://...' if scheme != database else database!r}: "
        "expected a postgresql:// URL (or none for the embedded SQLite store)"
    )
