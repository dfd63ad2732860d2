"""Security properties: ownership, key rotation reaching ingest, login throttles, password
change and log-out-everywhere, the publisher's address, hostile bodies."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from live.api.app import ApiSettings
from live.api.ratelimit import Rate
from live.api.repository import Repository
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.client_protocol import ClientState
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

from ..conftest import rtmp_publish
from ..logs import every_logger_at_debug, logged_text

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
    assert channel is not None and channel.title == ""
    assert await repo.channel_by_stream_key(created["stream_key"]) == channel


async def test_channels_seeded_from_the_command_line_belong_to_no_account(
    client: Any, repo: Repository
) -> None:
    await repo.ensure_channel("seeded", "seed_key_abc")
    token = await client.signup_and_login("anyone")
    status, _ = await client.call("POST", "/channels/seeded/stream-key", token=token)
    assert status == 403
    assert (await repo.channel_by_stream_key("seed_key_abc")) is not None




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
        publisher, _, writer = await rtmp_publish(rtmp.port, old_key)
        state = publisher.state
        assert state is ClientState.PUBLISHING
        writer.close()
        async with asyncio.timeout(5):
            while streams.get("bcast") is not None:
                await asyncio.sleep(0.01)

        _, rotated = await client.call("POST", "/channels/bcast/stream-key", token=token)
        publisher, _, writer = await rtmp_publish(rtmp.port, old_key)
        state = publisher.state  # the publisher reconnects with the old key
        assert state is ClientState.REJECTED
        writer.close()
        publisher, _, writer = await rtmp_publish(rtmp.port, rotated["stream_key"])
        state = publisher.state
        assert state is ClientState.PUBLISHING
        writer.close()
    finally:
        await rtmp.close()


async def test_rotating_the_key_cuts_the_live_publisher_at_once(
    client: Any, repo: Repository, streams: LiveStreamRegistry
) -> None:
    async def resolve(stream_key: str) -> str | None:
        channel = await repo.channel_by_stream_key(stream_key)
        return None if channel is None else channel.name

    rtmp = RtmpServer(resolve, streams, RtmpServerSettings(port=0, handshake_timeout_s=2, idle_timeout_s=5))
    await rtmp.start()
    try:
        token = await client.signup_and_login("cutme")
        _, created = await client.call("POST", "/channels", token=token, json={"name": "cutme"})
        publisher, _, writer = await rtmp_publish(rtmp.port, created["stream_key"])
        state = publisher.state
        assert state is ClientState.PUBLISHING and streams.get("cutme") is not None
        reader = writer.transport.get_protocol()._stream_reader  # type: ignore[attr-defined]
        status, _ = await client.call("POST", "/channels/cutme/stream-key", token=token)
        assert status == 200 and streams.get("cutme") is None  # off air when the answer comes
        async with asyncio.timeout(2):
            while await reader.read(65536):  # drain what was sent, then the server's close
                pass
        writer.close()
    finally:
        await rtmp.close()


async def test_the_publisher_address_reaches_the_channel_owner_only(
    client: Any, streams: LiveStreamRegistry
) -> None:
    owner = await client.signup_and_login("homeip")
    other = await client.signup_and_login("curious")
    await client.call("POST", "/channels", token=owner, json={"name": "homeip"})
    streams.claim("homeip", "rtmp", "203.0.113.9:50123")
    _, listing = await client.call("GET", "/streams")
    assert listing["streams"][0]["channel"] == "homeip"
    for token in (None, other):
        for path in ("/streams", "/channels/homeip", "/channels"):
            status, body = await client.call("GET", path, token=token)
            assert status == 200 and "203.0.113.9" not in str(body), (path, body)
    _, mine = await client.call("GET", "/channels/homeip", token=owner)
    assert mine["publisher_address"] == "203.0.113.9:50123"


async def test_brute_force_logins_hit_429_with_retry_after(client: Any) -> None:
    await client.call("POST", "/accounts", json={"username": "target", "password": PASSWORD})
    statuses = []
    for i in range(12):
        guess = {"username": "target", "password": f"guess{i:04d}"}
        status, _ = await client.call("POST", "/sessions", json=guess)
        statuses.append(status)
    free = client.api.settings.login_backoff.free_failures
    assert statuses[: free + 1] == [401] * (free + 1) and statuses[-1] == 429
    status, body = await client.call("POST", "/sessions", json={"username": "target", "password": PASSWORD})
    assert (status, body["error"]) == (429, "rate_limited")  # even the right password waits
    assert int(client.last_headers["Retry-After"]) >= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_guesses_from_many_addresses_meet_an_exponential_per_account_backoff(
    make_client: Any,
) -> None:
    clock = Clock()
    client = await make_client(ApiSettings(trust_forwarded_for=True), clock=clock)
    await client.call("POST", "/accounts", json={"username": "target", "password": PASSWORD})
    free = client.api.settings.login_backoff.free_failures

    async def guess(i: int, password: str = "wrong password") -> int:
        headers = {"X-Forwarded-For": f"10.0.0.1, 198.51.100.{i % 250}"}  # the last hop counts
        status, _ = await client.call("POST", "/sessions", headers=headers,
                                      json={"username": "target", "password": password})
        return int(status)

    assert [await guess(i) for i in range(free)] == [401] * free
    waits = []
    for i in range(free, free + 4):
        assert await guess(i) == 401  # one more wrong guess...
        assert await guess(i + 100) == 429  # ...then this account waits, whatever the address
        waits.append(int(client.last_headers["Retry-After"]))
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8]
    assert await guess(7) == 401
    clock.now += 16
    assert await guess(8, PASSWORD) == 201  # the owner gets in once the wait is over...
    assert [await guess(9 + i) for i in range(free + 1)] == [401] * (free + 1)  # ...which clears it


async def test_successful_logins_do_not_use_up_the_address_allowance(make_client: Any) -> None:
    client = await make_client(ApiSettings(login_rate=Rate(capacity=2, per_second=0.001)))
    await client.call("POST", "/accounts", json={"username": "regular", "password": PASSWORD})
    for _ in range(5):
        status, _ = await client.call("POST", "/sessions", json={"username": "regular", "password": PASSWORD})
        assert status == 201


async def test_the_forwarded_address_is_ignored_unless_trusted(make_client: Any) -> None:
    client = await make_client(ApiSettings(login_rate=Rate(capacity=2, per_second=0.001)))
    await client.call("POST", "/accounts", json={"username": "target", "password": PASSWORD})
    creds = {"username": "target", "password": "wrong password"}
    statuses = [(await client.call("POST", "/sessions", json=creds,
                                   headers={"X-Forwarded-For": f"203.0.113.{i}"}))[0] for i in range(3)]
    assert statuses == [401, 401, 429]  # a spoofed header buys no fresh allowance


async def test_password_change_needs_the_old_password_and_revokes_other_sessions(client: Any) -> None:
    here = await client.signup_and_login("changer")
    _, other = await client.call("POST", "/sessions", json={"username": "changer", "password": PASSWORD})
    elsewhere = other["token"]
    status, body = await client.call("POST", "/me/password", token=here,
                                     json={"old_password": "not my password", "new_password": "n" * 12})
    assert (status, body["field"]) == (403, "old_password")
    assert (await client.call("POST", "/me/password", json={"old_password": PASSWORD,
                                                             "new_password": "n" * 12}))[0] == 401
    status, body = await client.call("POST", "/me/password", token=here,
                                     json={"old_password": PASSWORD, "new_password": "short"})
    assert (status, body["field"]) == (400, "new_password")
    status, _ = await client.call("POST", "/me/password", token=here,
                                  json={"old_password": PASSWORD, "new_password": "a brand new secret"})
    assert status == 204
    assert (await client.call("GET", "/sessions/current", token=here))[0] == 200
    assert (await client.call("GET", "/sessions/current", token=elsewhere))[0] == 401
    old = {"username": "changer", "password": PASSWORD}
    assert (await client.call("POST", "/sessions", json=old))[0] == 401
    new = {"username": "changer", "password": "a brand new secret"}
    assert (await client.call("POST", "/sessions", json=new))[0] == 201


async def test_log_out_everywhere_revokes_every_session_of_the_account_only(client: Any) -> None:
    first = await client.signup_and_login("everywhere")
    _, second = await client.call("POST", "/sessions", json={"username": "everywhere", "password": PASSWORD})
    bystander = await client.signup_and_login("bystander")
    assert (await client.call("POST", "/sessions/revoke-all"))[0] == 401
    assert (await client.call("POST", "/sessions/revoke-all", token=first))[0] == 204
    for token in (first, second["token"]):
        assert (await client.call("GET", "/sessions/current", token=token))[0] == 401
    assert (await client.call("GET", "/sessions/current", token=bystander))[0] == 200


async def test_a_taken_username_answers_409(client: Any) -> None:
    """Documented in docs/security.md: names are public anyway (channel pages)."""
    await client.signup_and_login("takenname")
    taken = {"username": "TakenName", "password": PASSWORD}
    status, body = await client.call("POST", "/accounts", json=taken)
    assert (status, body["field"]) == (409, "username")


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


async def test_passwords_tokens_and_stream_keys_never_reach_the_log(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with every_logger_at_debug(), caplog.at_level(logging.DEBUG):
        token = await client.signup_and_login("quiet", password="very secret pass")
        await client.call("POST", "/sessions", json={"username": "quiet", "password": "wrong secret pass"})
        _, created = await client.call("POST", "/channels", token=token, json={"name": "quietch"})
        _, rotated = await client.call("POST", "/channels/quietch/stream-key", token=token)
        await client.call("POST", "/me/password", token=token,
                          json={"old_password": "very secret pass", "new_password": "newer secret pass"})
    text = logged_text(caplog.records)
    assert "very secret pass" not in text and "wrong secret pass" not in text and token not in text
    assert "newer secret pass" not in text
    assert created["stream_key"] not in text and rotated["stream_key"] not in text


async def test_a_password_change_the_database_fails_half_way_leaves_the_old_password_and_sessions(
    client: Any, repo: Repository
) -> None:
    """Issue 23: a 5xx must not hide a half-written change (new password, old sessions alive)."""
    from .test_storage import _fail_session_deletes

    here = await client.signup_and_login("halfway")
    _, other = await client.call("POST", "/sessions", json={"username": "halfway", "password": PASSWORD})
    await _fail_session_deletes(repo)
    status, _ = await client.call("POST", "/me/password", token=here,
                                  json={"old_password": PASSWORD, "new_password": "a brand new secret"})
    assert status >= 500
    old = {"username": "halfway", "password": PASSWORD}
    assert (await client.call("POST", "/sessions", json=old))[0] == 201
    assert (await client.call("GET", "/sessions/current", token=other["token"]))[0] == 200
