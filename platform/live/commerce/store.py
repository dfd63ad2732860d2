"""The one storage interface of the books: run a function in one database transaction.

Commerce logic is written once, against ``Tx`` (three statement shapes, ``?`` placeholders),
and runs unchanged on the embedded SQLite file and on PostgreSQL. Every money movement and the
business record it belongs to are written by one such function, so they commit together or
not at all. ``CommerceStore.run`` retries a function whose transaction lost a deadlock or a
serialization race (PostgreSQL), so callers see either its result or its own exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = tuple[Any, ...]


class Tx(Protocol):
    """One open transaction. ``execute`` answers the number of rows changed."""

    dialect: str

    async def one(self, sql: str, *args: Any) -> Row | None: ...
    async def all(self, sql: str, *args: Any) -> list[Row]: ...
    async def execute(self, sql: str, *args: Any) -> int: ...


class CommerceStore(Protocol):
    dialect: str

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Call ``fn`` inside one transaction; commit when it returns, roll back when it raises."""
        ...

    async def close(self) -> None: ...
