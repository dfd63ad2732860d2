"""Fixtures: every books test runs on SQLite (a temp file) and on PostgreSQL (its own schema).

The provider is the sandbox's pure core in-process, so a test decides when (and how often, and
in which order) each webhook event reaches the books.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.api.repository import Repository
from live.api.storage import open_repository
from live.commerce.ledger import check
from live.commerce.provider import ProviderEvent
from live.commerce.sandbox import CARD_SUCCEEDS, SandboxCore
from live.commerce.service import CheerNotice, Commerce
from live.commerce.settings import CommerceSettings
from live.commerce.signing import HEADER, sign
from live.commerce.storage import open_commerce_store
from live.commerce.store import CommerceStore

PG_ADMIN_DSN = os.environ.get("LIVETWIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def pg_schema() -> tuple[asyncpg.Connection, str]:
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {PG_ADMIN_DSN}: {error}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {error}")
    schema = f"livetwin_test_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    return admin, schema


@pytest.fixture
async def database(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    admin, schema = await pg_schema()
    try:
        yield f"{PG_ADMIN_DSN}?search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgres"], indirect=True)


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def repo(database: str | None, tmp_path: Path) -> AsyncIterator[Repository]:
    store = await open_repository(database, tmp_path)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def books(
    request: pytest.FixtureRequest, repo: Repository, database: str | None, tmp_path: Path
) -> AsyncIterator[CommerceStore]:
    """The books; after every test (unless it corrupts them on purpose) the ledger check passes."""
    store = await open_commerce_store(database, tmp_path)
    try:
        yield store
        if request.node.get_closest_marker("corrupts_books") is None:
            report = await check(store)
            assert report.ok, f"the books do not check after this test: {report.problems}"
    finally:
        await store.close()


@pytest.fixture
def sandbox(clock: Clock) -> SandboxCore:
    return SandboxCore(clock=clock, settle_after_s=5.0)


@pytest.fixture
def commerce(books: CommerceStore, sandbox: SandboxCore, repo: Repository, clock: Clock) -> Commerce:
    return Commerce(books, sandbox, repo, CommerceSettings(), clock=clock)


WEBHOOK_SECRET = b"whsec_test"


class Shop:
    """The API and the commerce routes on a real socket, the sandbox core as the provider.

    Webhooks are not sent by themselves: ``deliver`` signs and posts what the sandbox emitted,
    so a test chooses their order, their lateness and their duplicates.
    """

    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        commerce: Commerce,
        sandbox: SandboxCore,
        clock: Clock,
        cheers: list[CheerNotice],
    ) -> None:
        self.http = client
        self.commerce = commerce
        self.sandbox = sandbox
        self.clock = clock
        self.cheers = cheers
        self.events: list[ProviderEvent] = []

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["Idempotency-Key"] = key
        async with self.http.request(method, f"/api/v1{path}", json=json, headers=sent) as response:
            body = await response.json() if response.content_type == "application/json" else None
            self.last_headers = response.headers
            return response.status, body

    async def user(self, name: str) -> str:
        password = "correct horse battery"
        status, _ = await self.call("POST", "/accounts", json={"username": name, "password": password})
        assert status == 201
        status, body = await self.call("POST", "/sessions", json={"username": name, "password": password})
        assert status == 201
        token: str = body["token"]
        return token

    async def channel(self, token: str, name: str) -> None:
        status, _ = await self.call("POST", "/channels", token=token, json={"name": name})
        assert status == 201

    def pending(self) -> list[ProviderEvent]:
        self.events.extend(self.sandbox.take_events())
        return self.events

    async def post_event(
        self, event: ProviderEvent, *, secret: bytes = WEBHOOK_SECRET, at: float | None = None
    ) -> tuple[int, Any]:
        body = event.encode()
        header = sign(secret, body, self.clock() if at is None else at)
        async with self.http.post(
            "/api/v1/payments/webhook",
            data=body,
            headers={HEADER: header, "Content-Type": "application/json"},
        ) as response:
            return response.status, await response.json()

    async def deliver(self) -> None:
        """Every pending event, in the order emitted."""
        self.pending()
        events, self.events = self.events, []
        for event in events:
            status, _ = await self.post_event(event)
            assert status == 200

    async def buy(
        self, token: str, bits: int = 100, card: str = CARD_SUCCEEDS, key: str | None = None
    ) -> tuple[int, Any]:
        return await self.call(
            "POST",
            "/me/bits",
            token=token,
            json={"bits": bits, "card": card},
            key=key or secrets.token_hex(8),
        )


@pytest.fixture
def cheer_rate() -> Any:
    """The shop's cheer budget per account: unlimited here; a test parametrizes it to test it."""
    from live.api.ratelimit import Rate

    return Rate(1_000_000, 1_000_000.0)


@pytest.fixture
async def shop(
    repo: Repository,
    books: CommerceStore,
    sandbox: SandboxCore,
    clock: Clock,
    tmp_path: Path,
    cheer_rate: Any,
) -> AsyncIterator[Shop]:
    from live.api.app import ApiSettings, setup_api
    from live.api.auth import Passwords
    from live.api.ratelimit import Rate
    from live.commerce.ads import AdBreaks
    from live.commerce.http import setup_commerce
    from live.ingest.registry import LiveStreamRegistry

    cheers: list[CheerNotice] = []

    async def announce(notice: CheerNotice) -> None:
        cheers.append(notice)

    settings = CommerceSettings(
        ad_creatives=(("/ads/0/master.m3u8", 15.0), ("/ads/1/master.m3u8", 15.0)), cheer_rate=cheer_rate
    )
    commerce = Commerce(books, sandbox, repo, settings, announce=announce, clock=clock)
    app = web.Application()
    api = setup_api(
        app,
        repo,
        LiveStreamRegistry(),
        public_base_rtmp="rtmp://h/live",
        public_base_http="http://h",
        settings=ApiSettings(signup_rate=Rate(1000, 1000.0), login_rate=Rate(1000, 1000.0)),
        passwords=Passwords(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
        clock=clock,
    )
    setup_commerce(app, api, commerce, AdBreaks(books, settings, None, clock), WEBHOOK_SECRET)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Shop(client, commerce, sandbox, clock, cheers)
    finally:
        await client.close()
