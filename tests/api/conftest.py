"""Fixtures: every store-backed test runs twice, on SQLite (a temp file) and on PostgreSQL.

Each PostgreSQL test gets its own schema (``search_path`` travels in the DSN), dropped
afterwards, so parallel runs on the shared server never meet. Without the server the
PostgreSQL half is skipped locally; in CI (``CI`` set) it fails instead. Tests marked
``postgres`` are PostgreSQL concerns and run on PostgreSQL only (no SQLite half to skip).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.api.app import Api, ApiSettings, setup_api
from live.api.repository import Repository
from live.api.storage import open_repository
from live.ingest.registry import LiveStreamRegistry

from ..conftest import skip_or_fail

PG_ADMIN_DSN = os.environ.get("LIVETWIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

PUBLIC_RTMP = "rtmp://stream.example:1935/live"
PUBLIC_HTTP = "https://watch.example"


async def _pg_admin() -> asyncpg.Connection | None:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {error}")
        return None


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str | None]:
    """What ``open_repository`` is given: None (SQLite under tmp_path) or a schema-scoped DSN."""
    if request.param == "sqlite":
        yield None
        return
    admin = await _pg_admin()
    assert admin is not None
    schema = f"livetwin_test_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN_DSN}?search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        postgres_only = metafunc.definition.get_closest_marker("postgres") is not None
        metafunc.parametrize("database", ["postgres"] if postgres_only else ["sqlite", "postgres"],
                             indirect=True)


@pytest.fixture
async def repo(database: str | None, tmp_path: Path) -> AsyncIterator[Repository]:
    store = await open_repository(database, tmp_path)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def streams() -> LiveStreamRegistry:
    return LiveStreamRegistry()


class ApiClient:
    """A real aiohttp server on an ephemeral port with the API mounted, and a client for it."""

    def __init__(self, client: TestClient[web.Request, web.Application], api: Api) -> None:
        self.http = client
        self.api = api

    async def call(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                   data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, f"/api/v1{path}", json=json, data=data,
                                     headers=sent) as response:
            body = await response.json() if response.content_type == "application/json" else None
            self.last_headers = response.headers
            return response.status, body

    async def signup_and_login(self, username: str, password: str = "correct horse battery") -> str:
        status, _ = await self.call("POST", "/accounts", json={"username": username, "password": password})
        assert status == 201
        status, body = await self.call("POST", "/sessions", json={"username": username, "password": password})
        assert status == 201
        token: str = body["token"]
        return token


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(repo: Repository, streams: LiveStreamRegistry) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(settings: ApiSettings | None = None, **kwargs: Any) -> ApiClient:
        app = web.Application(client_max_size=1 << 20)
        api = setup_api(app, repo, streams, public_base_rtmp=PUBLIC_RTMP, public_base_http=PUBLIC_HTTP,
                        settings=settings, **kwargs)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return ApiClient(client, api)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> ApiClient:
    made: ApiClient = await make_client()
    return made
