"""The OpenAPI document is true: it lists exactly the served routes, and real answers match it.

schemathesis generates requests from the document (valid and deliberately invalid) and
checks every response: no 5xx, only documented statuses and content types, bodies matching
their schemas, declared auth enforced. It runs against a real server on a real socket, in a
thread of its own (schemathesis' client blocks), on both stores.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from live.api.app import API_KEY, setup_api
from live.api.auth import new_token, token_hash
from live.api.openapi import API_PREFIX, dataclass_schema, openapi_document
from live.api.storage import open_repository
from live.ingest.registry import INGEST_PROTOCOLS, LiveStreamRegistry, StreamHealth

from .conftest import PG_ADMIN_DSN


def served_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, full path) of every route the application answers under /api/v1, sub-apps included."""
    operations: set[tuple[str, str]] = set()
    routers = [app.router]
    while routers:
        router = routers.pop()
        for resource in router.resources():
            if isinstance(resource, web.PrefixedSubAppResource):
                routers.append(resource._app.router)
                continue
            if resource.canonical.startswith(API_PREFIX):
                operations.update((route.method.upper(), resource.canonical) for route in resource)
    return operations


def documented_operations() -> set[tuple[str, str]]:
    document = openapi_document()
    return {(method.upper(), API_PREFIX + path) for path, item in document["paths"].items()
            for method in item if method != "parameters"}


def test_every_served_route_is_documented_and_every_documented_route_is_served() -> None:
    app = web.Application()
    setup_api(app, _NoStore(), LiveStreamRegistry(),  # type: ignore[arg-type]
              public_base_rtmp="rtmp://h/live", public_base_http="http://h")
    served = served_operations(app)
    assert ("POST", "/api/v1/channels/{name}/stream-key") in served  # the walk reaches the sub-app
    assert served == documented_operations()


def test_the_commerce_routes_are_documented_in_the_served_document_and_all_served() -> None:
    from live.commerce.ads import AdBreaks
    from live.commerce.http import setup_commerce
    from live.commerce.service import Commerce
    from live.commerce.settings import CommerceSettings

    app = web.Application()
    api = setup_api(app, _NoStore(), LiveStreamRegistry(),  # type: ignore[arg-type]
                    public_base_rtmp="rtmp://h/live", public_base_http="http://h")
    settings = CommerceSettings()
    commerce = Commerce(_NoStore(), _NoStore(), _NoStore(), settings)  # type: ignore[arg-type]
    setup_commerce(app, api, commerce, AdBreaks(_NoStore(), settings, None), b"secret")  # type: ignore[arg-type]
    # "*": each commerce resource's answer to other methods (405 with Allow), not an operation
    served = {operation for operation in served_operations(app) if operation[0] != "*"}
    assert ("POST", "/api/v1/channels/{name}/cheers") in served
    document = api._document
    documented = {(method.upper(), API_PREFIX + path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert served == documented
    assert documented > documented_operations()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                refs = [r["content"]["application/json"]["schema"].get("$ref", "") for r in
                        operation["responses"].values() if "content" in r]
                assert all(ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
                           for ref in refs if ref), (path, method)


def test_the_stream_schema_follows_the_registry_record() -> None:
    schema = dataclass_schema(StreamHealth)
    assert set(schema["properties"]) == {f for f in StreamHealth.__slots__}
    assert "remote" not in schema["properties"]  # public: never the broadcaster's address
    assert schema["properties"]["protocol"]["enum"] == ["rtmp", "srt", "whip"]
    assert schema["properties"]["width"] == {"type": "integer", "nullable": True}
    assert schema["properties"]["fps"] == {"type": "number"}


def test_the_stream_schema_names_every_ingest_protocol() -> None:
    protocol = openapi_document()["components"]["schemas"]["StreamHealth"]["properties"]["protocol"]
    assert protocol["enum"] == list(INGEST_PROTOCOLS) == ["rtmp", "srt", "whip"]


async def test_the_document_is_served_at_its_address(client) -> None:  # type: ignore[no-untyped-def]
    status, body = await client.call("GET", "/openapi.json")
    assert status == 200 and body == openapi_document()
    assert body["servers"] == [{"url": API_PREFIX}]


class _NoStore:
    """Route listing never touches storage; any call here would be a test bug."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"route listing called the store: {name}")


class LiveServer:
    """The API on 127.0.0.1:<ephemeral> in a background event loop of its own (schemathesis'
    client blocks), with one logged-in account owning the channel ``demo`` (the document's
    example), so owner paths are reached too.

    ``fresh()`` replaces the server by one on a new, empty store: a stateful scenario's answers
    must not depend on what earlier scenarios created (a channel name taken, a bucket spent), or
    Hypothesis sees the same choices lead to different rules and stops as "flaky".
    """

    def __init__(self, database: str | None, tmp_path: Path) -> None:
        self.database, self.tmp_path = database, tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-under-fuzz", daemon=True)
        self.thread.start()
        self.base_url = self.token = ""
        self._close: list[Callable[[], Awaitable[None]]] = []
        self._stores = 0

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def fresh(self) -> None:
        self._call(self._restart())

    def close(self) -> None:
        try:
            self._call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()

    async def _stop(self) -> None:
        while self._close:
            await self._close.pop()()

    async def _store(self) -> tuple[str | None, Path]:
        """A new, empty store: SQLite in a directory of its own; PostgreSQL in a schema of its own."""
        self._stores += 1
        directory = self.tmp_path / f"store-{self._stores}"
        directory.mkdir()
        if self.database is None or self._stores == 1:
            return self.database, directory
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        schema = f"livetwin_fuzz_{secrets.token_hex(6)}"
        await admin.execute(f'CREATE SCHEMA "{schema}"')

        async def drop() -> None:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.close()

        self._close.insert(0, drop)  # after the repository that uses it has closed
        return f"{PG_ADMIN_DSN}?search_path={schema}", directory

    async def _restart(self) -> None:
        await self._stop()
        repo = await open_repository(*await self._store())
        self._close.append(repo.close)
        app = web.Application(client_max_size=1 << 20)
        setup_api(app, repo, LiveStreamRegistry(), public_base_rtmp="rtmp://127.0.0.1/live",
                  public_base_http="http://127.0.0.1")
        api = next(r._app for r in app.router.resources()
                   if isinstance(r, web.PrefixedSubAppResource))[API_KEY]
        account = await repo.create_account("fuzzer", await api.passwords.hash("fuzzer password"))
        token = new_token()
        await repo.create_session(account.id, token_hash(token), api.clock() + 3600)
        await repo.create_channel("demo", account.id, "live_demo_key_for_fuzzing")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._close.append(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}{API_PREFIX}"
        self.token = token


@pytest.fixture
def live_server(database: str | None, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(database, tmp_path)
    try:
        server.fresh()
        yield server
    finally:
        server.close()


def fuzz_schema() -> schemathesis.BaseSchema:
    """The document as schemathesis reads it; the tests send the owner's token themselves, so
    generated cases leave Authorization alone (``ignored_auth`` still probes without it)."""
    loaded = schemathesis.openapi.from_dict(openapi_document())
    loaded.config.generation.update(with_security_parameters=False)
    # "log out everywhere" would revoke the owner's token mid-run (tests/api/test_security.py
    # covers it on its own)
    return loaded.exclude(operation_id="revokeAllSessions")


schema = fuzz_schema()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_generated_requests_get_documented_answers_and_never_a_5xx(case, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {live_server.token}"} if case.operation.security else None
    case.call_and_validate(base_url=live_server.base_url, headers=headers)


@dataclass(frozen=True)
class Rendition:
    height: int
    codec: str | None


@dataclass(frozen=True)
class Rich:
    renditions: tuple[Rendition, ...]
    tags: dict[str, float]
    best: Rendition | None


@dataclass(frozen=True)
class Opaque:
    blob: bytes


def test_nested_records_are_described_and_undescribable_fields_refused() -> None:
    schema = dataclass_schema(Rich)["properties"]
    assert schema["renditions"]["items"]["properties"]["codec"] == {"type": "string", "nullable": True}
    assert schema["tags"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert schema["best"]["nullable"] is True and schema["best"]["type"] == "object"

    with pytest.raises(TypeError, match=r"Opaque\.blob"):
        dataclass_schema(Opaque)


@pytest.mark.slow
def test_workflows_following_the_document_links_stay_within_the_document(live_server: LiveServer) -> None:
    """Create a channel, then read, retitle and re-key it as the links say, as its owner."""
    workflows = fuzz_schema().as_state_machine()

    answered: set[tuple[str, int]] = set()

    class OwnerWorkflows(workflows):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            live_server.fresh()

        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"base_url": live_server.base_url,
                    "headers": {"Authorization": f"Bearer {live_server.token}"}}

        def after_call(self, response, case):  # type: ignore[no-untyped-def]
            super().after_call(response, case)
            answered.add((case.operation.label, response.status_code))

    OwnerWorkflows.run(settings=settings(
        max_examples=25, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    ))
    print(sorted(answered))
    assert ("POST /channels", 201) in answered
    assert ("POST /channels/{name}/stream-key", 200) in answered  # the links were followed
