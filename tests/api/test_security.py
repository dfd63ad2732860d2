"""Security properties from issue 3: ownership, key rotation reaching ingest, rate limits, hostile bodies."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from live.api.app import ApiSettings
from live.api.ratelimit import Rate
from live.api.repository import Repository
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.client_protocol import ClientConnection, ClientState
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

PASSWORD = "correct horse battery"


async def test_a_token_of_one_user_cannot_rotate_or_retitle_another_users_channel(
    client: Any, repo: Repository
) -> None:
    victim = await client.signup_and_login("victim")
    attacker = await client.signup_and_login("attacker")
    _, created = await client.call("POST", "/channels", token=victim, json={"name": "victimtv"})
    status, body = await client.call("POST", "/channels/victimtv/stream-key", token=attacker)
    assert (status, body["error"]) == (403, "forbidden")
    status, _ = await client.call("PATCH", "/channels/victimtv", token=attacker, json={"title": "pwned"})
    assert status == 403
    channel = await repo.channel("victimtv")
    assert channel is not None and channel.stream_key == created["stream_key"] and channel.title == ""


async def test_channels_seeded_from_the_command_line_belong_to_no_account(
    client: Any, repo: Repository
) -> None:
    await repo.ensure_channel("seeded", "seed_key_abc")
    token = await client.signup_and_login("anyone")
    status, _ = await client.call("POST", "/channels/seeded/stream-key", token=token)
    assert status == 403
    assert (await repo.channel("seeded")).stream_key == "seed_key_abc"  # type: ignore[union-attr]


async def _publish(port: int, key: str) -> tuple[ClientState, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", key)
    async with asyncio.timeout(5):
        while client.state not in (ClientState.PUBLISHING, ClientState.REJECTED):
            writer.write(client.data_to_send())
            await writer.drain()
            data = await reader.read(65536)
            if not data:
                break
            client.receive_data(data)
    return client.state, writer


async def test_a_rotated_key_is_refused_by_the_rtmp_server(
    client: Any, repo: Repository, streams: LiveStreamRegistry
) -> None:
    async def resolve(stream_key: str) -> str | None:  # exactly how `live serve` wires it
        channel = await repo.channel_by_stream_key(stream_key)
        return None if channel is None else channel.name

    rtmp = RtmpServer(resolve, streams, RtmpServerSettings(port=0, handshake_timeout_s=2, idle_timeout_s=5))
    await rtmp.start()
    try:
        token = await client.signup_and_login("broadcaster")
        _, created = await client.call("POST", "/channels", token=token, json={"name": "bcast"})
        old_key = created["stream_key"]
        state, writer = await _publish(rtmp.port, old_key)
        assert state is ClientState.PUBLISHING
        writer.close()
        async with asyncio.timeout(5):
            while streams.get("bcast") is not None:
                await asyncio.sleep(0.01)

        _, rotated = await client.call("POST", "/channels/bcast/stream-key", token=token)
        state, writer = await _publish(rtmp.port, old_key)  # the publisher reconnects with the old key
        assert state is ClientState.REJECTED
        writer.close()
        state, writer = await _publish(rtmp.port, rotated["stream_key"])
        assert state is ClientState.PUBLISHING
        writer.close()
    finally:
        await rtmp.close()


async def test_brute_force_logins_hit_429_with_retry_after(client: Any) -> None:
    await client.call("POST", "/accounts", json={"username": "target", "password": PASSWORD})
    capacity = client.api.settings.login_rate.capacity
    statuses = []
    for i in range(capacity):
        guess = {"username": "target", "password": f"guess{i:04d}"}
        status, _ = await client.call("POST", "/sessions", json=guess)
        statuses.append(status)
    assert statuses == [401] * capacity
    status, body = await client.call("POST", "/sessions", json={"username": "target", "password": PASSWORD})
    assert (status, body["error"]) == (429, "rate_limited")  # even the right password waits
    assert int(client.last_headers["Retry-After"]) >= 1


async def test_rate_limits_are_per_client_address(make_client: Any) -> None:
    settings = ApiSettings(login_rate=Rate(capacity=2, per_second=0.001), trust_forwarded_for=True)
    client = await make_client(settings)
    await client.call("POST", "/accounts", json={"username": "target", "password": PASSWORD})
    creds = {"username": "target", "password": "wrong password"}
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(2):
        assert (await client.call("POST", "/sessions", json=creds, headers=attacker))[0] == 401
    assert (await client.call("POST", "/sessions", json=creds, headers=attacker))[0] == 429
    same_v6_net = [{"X-Forwarded-For": f"2001:db8:1:2::{i}"} for i in range(3)]
    assert [(await client.call("POST", "/sessions", json=creds, headers=h))[0] for h in same_v6_net] == [
        401, 401, 429]
    status, _ = await client.call("POST", "/sessions", json={"username": "target", "password": PASSWORD},
                                  headers={"X-Forwarded-For": "203.0.113.1"})
    assert status == 201


async def test_account_creation_is_rate_limited(client: Any) -> None:
    capacity = client.api.settings.signup_rate.capacity
    for i in range(capacity):
        status, _ = await client.call("POST", "/accounts",
                                      json={"username": f"bot_{i}", "password": PASSWORD})
        assert status == 201
    status, body = await client.call("POST", "/accounts", json={"username": "bot_more", "password": PASSWORD})
    assert (status, body["error"]) == (429, "rate_limited")
    assert int(client.last_headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b"{", "application/json"),
        (b'{"username": "abc", "password": }', "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"username": "abcd", "password": NaN}', "application/json"),
        (b'{"username": "abcd", "password": "\xff\xfe bad utf-8"}', "application/json"),
        (b'{"username": "abcd", "password": "lone \\ud800 surrogate"}', "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
    ],
    ids=["truncated", "syntax", "deep-nesting", "nan", "not-utf8", "lone-surrogate", "empty", "null"],
)
async def test_malformed_json_gets_400_naming_the_body(
    client: Any, payload: bytes, content_type: str
) -> None:
    for path in ("/accounts", "/sessions"):
        status, body = await client.call("POST", path, data=payload, headers={"Content-Type": content_type})
        assert status == 400, (path, body)
        assert body["error"] == "invalid_field" and body["field"] in ("body", "password")


async def test_oversize_bodies_are_refused_before_being_read_whole(client: Any) -> None:
    limit = client.api.settings.max_body_bytes
    big = b'{"username": "abcd", "password": "' + b"a" * limit + b'"}'
    status, body = await client.call("POST", "/accounts", data=big,
                                     headers={"Content-Type": "application/json"})
    assert (status, body["error"]) == (413, "body_too_large")

    async def chunked() -> Any:  # no Content-Length: the limit must hold while streaming
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    async with client.http.post("/api/v1/accounts", data=chunked(),
                                headers={"Content-Type": "application/json"}) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "body_too_large"


async def test_oversize_fields_get_400(client: Any) -> None:
    status, body = await client.call("POST", "/accounts", json={"username": "u" * 26, "password": PASSWORD})
    assert (status, body["field"]) == (400, "username")
    status, body = await client.call("POST", "/accounts", json={"username": "okay", "password": "p" * 257})
    assert (status, body["field"]) == (400, "password")


async def test_non_json_content_types_get_415(client: Any) -> None:
    status, body = await client.call("POST", "/accounts", data=b"username=a&password=b",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["error"]) == (415, "unsupported_media_type")


async def test_a_store_failure_answers_500_json_without_a_traceback(
    client: Any, repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    await repo.close()
    with caplog.at_level(logging.ERROR, logger="live.api"):
        status, body = await client.call("GET", "/channels")
    assert status == 500
    assert body == {"error": "internal_error", "message": "internal server error"}
    assert any(r.exc_info for r in caplog.records)  # the operator's log has it; the client does not


async def test_passwords_and_tokens_never_reach_the_log(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        token = await client.signup_and_login("quiet", password="very secret pass")
        await client.call("POST", "/sessions", json={"username": "quiet", "password": "wrong secret pass"})
        await client.call("POST", "/channels", token=token, json={"name": "quietch"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "very secret pass" not in text and "wrong secret pass" not in text and token not in text
