"""Pick and open the books' store `live serve` was told to use (beside the API's own tables)."""

from __future__ import annotations

from pathlib import Path

from live.api.storage import SQLITE_FILE_NAME
from live.commerce.postgres_store import PostgresCommerceStore
from live.commerce.sqlite_store import SqliteCommerceStore
from live.commerce.store import CommerceStore


async def open_commerce_store(database: str | None, data_dir: Path) -> CommerceStore:
    """The books beside the API's tables: the same SQLite file, or the same PostgreSQL database."""
    if database is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return await SqliteCommerceStore.open(data_dir / SQLITE_FILE_NAME)
    scheme = database.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        return await PostgresCommerceStore.open(database)
    raise ValueError("expected a postgresql:// URL (or none for the embedded SQLite store)")
