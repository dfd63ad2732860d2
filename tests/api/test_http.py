"""The /api/v1 endpoints over a real socket, on both stores."""

from __future__ import annotations

import hashlib
from typing import Any

from live.api.auth import authenticate
from live.api.repository import Repository
from live.ingest.registry import LiveStreamRegistry
from live.media.units import VideoConfig

PASSWORD = "correct horse battery"


async def test_account_creation_answers_201_with_id_and_username(client: Any) -> None:
    status, body = await client.call("POST", "/accounts",
                                     json={"username": "Streamer_1", "password": PASSWORD})
    assert status == 201
    assert body["username"] == "Streamer_1" and isinstance(body["id"], int)
    assert "password" not in body and "password_hash" not in body


async def test_a_username_taken_in_another_letter_case_is_a_409(client: Any) -> None:
    await client.call("POST", "/accounts", json={"username": "casey", "password": PASSWORD})
    status, body = await client.call("POST", "/accounts", json={"username": "CASEY", "password": PASSWORD})
    assert status == 409
    assert body["error"] == "conflict" and body["field"] == "username"


async def test_the_password_is_stored_as_an_argon2id_hash(client: Any, repo: Repository) -> None:
    await client.call("POST", "/accounts", json={"username": "hashed", "password": PASSWORD})
    found = await repo.account_by_username("hashed")
    assert found is not None
    assert found[1].startswith("$argon2id$") and PASSWORD not in found[1]


async def test_validation_errors_name_the_field(client: Any) -> None:
    cases = [
        ({"username": "ab", "password": PASSWORD}, "username"),
        ({"username": "has space", "password": PASSWORD}, "username"),
        ({"username": "okname", "password": "short"}, "password"),
        ({"username": "okname"}, "password"),
        ({"username": 7, "password": PASSWORD}, "username"),
        ({"username": "okname", "password": PASSWORD, "admin": True}, "admin"),
        (["okname", PASSWORD], "body"),
    ]
    for payload, field in cases:
        status, body = await client.call("POST", "/accounts", json=payload)
        assert (status, body["error"], body["field"]) == (400, "invalid_field", field), payload


async def test_login_returns_a_random_token_stored_only_as_its_sha256(client: Any, repo: Repository) -> None:
    await client.call("POST", "/accounts", json={"username": "loginer", "password": PASSWORD})
    status, body = await client.call("POST", "/sessions", json={"username": "LOGINER", "password": PASSWORD})
    assert status == 201
    token = body["token"]
    assert len(token) >= 43  # 32 random bytes, base64url
    assert body["expires_at"] > client.api.clock()
    session = await repo.session_by_token_hash(hashlib.sha256(token.encode()).digest(), client.api.clock())
    assert session is not None and session.account.username == "loginer"
    account = await authenticate(repo, token)
    assert account is not None and account.username == "loginer"
    _, second = await client.call("POST", "/sessions", json={"username": "loginer", "password": PASSWORD})
    assert second["token"] != token


async def test_wrong_password_and_unknown_user_get_the_same_401(client: Any) -> None:
    await client.call("POST", "/accounts", json={"username": "known", "password": PASSWORD})
    wrong = await client.call("POST", "/sessions", json={"username": "known", "password": "not it at all"})
    unknown = await client.call("POST", "/sessions", json={"username": "unknown", "password": PASSWORD})
    assert wrong == unknown == (401, {"error": "invalid_credentials",
                                      "message": "unknown username or wrong password"})


async def test_current_session_shows_the_account_and_logout_revokes_the_token(
    client: Any, repo: Repository
) -> None:
    token = await client.signup_and_login("leaver")
    status, body = await client.call("GET", "/sessions/current", token=token)
    assert status == 200 and body["account"]["username"] == "leaver" and body["channels"] == []
    status, _ = await client.call("DELETE", "/sessions/current", token=token)
    assert status == 204
    status, body = await client.call("GET", "/sessions/current", token=token)
    assert status == 401 and body["error"] == "unauthorized"
    assert client.last_headers["WWW-Authenticate"].startswith("Bearer")
    assert await authenticate(repo, token) is None


async def test_expired_sessions_are_refused(make_client: Any, repo: Repository) -> None:
    now = [1_000_000.0]
    client = await make_client(clock=lambda: now[0])
    token = await client.signup_and_login("expiring")
    assert (await client.call("GET", "/sessions/current", token=token))[0] == 200
    now[0] += client.api.settings.session_ttl_s
    assert (await client.call("GET", "/sessions/current", token=token))[0] == 401


async def test_authenticated_routes_refuse_missing_or_malformed_tokens(client: Any) -> None:
    for headers in ({}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer " + "x" * 300}, {"Authorization": "Bearer forged"}):
        status, body = await client.call("POST", "/channels", json={"name": "nochan"}, headers=headers)
        assert (status, body["error"]) == (401, "unauthorized"), headers


async def test_channel_creation_gives_the_owner_key_and_urls(client: Any, repo: Repository) -> None:
    token = await client.signup_and_login("owner")
    status, body = await client.call("POST", "/channels", token=token,
                                     json={"name": "MyShow", "title": " Hi "})
    assert status == 201
    assert body["name"] == "myshow" and body["title"] == "Hi" and body["live"] is False
    key = body["stream_key"]
    assert key.startswith("live_") and len(key) >= 32
    assert body["publish_url"] == f"rtmp://stream.example:1935/live/{key}"
    assert body["watch_url"] == "https://watch.example/watch/myshow"
    assert body["hls_url"] == "https://watch.example/hls/myshow/master.m3u8"
    resolved = await repo.channel_by_stream_key(key)
    assert resolved is not None and resolved.name == "myshow"
    _, me = await client.call("GET", "/sessions/current", token=token)
    assert me["channels"] == ["myshow"]


async def test_channel_names_are_unique(client: Any) -> None:
    first = await client.signup_and_login("first")
    second = await client.signup_and_login("second")
    assert (await client.call("POST", "/channels", token=first, json={"name": "taken"}))[0] == 201
    status, body = await client.call("POST", "/channels", token=second, json={"name": "TAKEN"})
    assert (status, body["field"]) == (409, "name")


async def test_an_account_may_own_only_so_many_channels(client: Any) -> None:
    token = await client.signup_and_login("greedy")
    limit = client.api.settings.max_channels_per_account
    for i in range(limit):
        assert (await client.call("POST", "/channels", token=token, json={"name": f"greedy_{i}"}))[0] == 201
    status, body = await client.call("POST", "/channels", token=token, json={"name": "greedy_more"})
    assert (status, body["error"]) == (403, "forbidden")


async def test_the_key_is_shown_once_at_creation_and_in_no_channel_view_after(client: Any) -> None:
    owner = await client.signup_and_login("showowner")
    other = await client.signup_and_login("showother")
    _, created = await client.call("POST", "/channels", token=owner, json={"name": "secretive"})
    assert created["stream_key"].startswith("live_")
    for token in (None, other, "not-a-real-token", owner):
        status, body = await client.call("GET", "/channels/SECRETIVE", token=token)
        assert status == 200 and "stream_key" not in body and "publish_url" not in body
        assert body["viewer_count"] is None  # no origin wired: unknown, not zero
    status, body = await client.call("PATCH", "/channels/secretive", token=owner, json={"title": "t"})
    assert status == 200 and "stream_key" not in body
    _, listing = await client.call("GET", "/channels")
    assert [c["name"] for c in listing["channels"]] == ["secretive"]
    assert "stream_key" not in listing["channels"][0]


async def test_unknown_channels_are_404(client: Any) -> None:
    token = await client.signup_and_login("looker")
    for method, path in (("GET", "/channels/nosuch"), ("GET", "/channels/x"),
                         ("POST", "/channels/nosuch/stream-key"), ("PATCH", "/channels/nosuch")):
        status, body = await client.call(method, path, token=token, json={"title": "t"})
        assert (status, body["error"]) == (404, "not_found"), path


async def test_owner_rotates_the_key_and_the_old_one_stops_resolving(client: Any, repo: Repository) -> None:
    token = await client.signup_and_login("rotator")
    _, created = await client.call("POST", "/channels", token=token, json={"name": "rotating"})
    old = created["stream_key"]
    status, body = await client.call("POST", "/channels/rotating/stream-key", token=token)
    assert status == 200
    assert body["stream_key"] != old and body["publish_url"].endswith("/" + body["stream_key"])
    assert await repo.channel_by_stream_key(old) is None
    now = await repo.channel_by_stream_key(body["stream_key"])
    assert now is not None and now.name == "rotating"


async def test_owner_sets_the_title(client: Any) -> None:
    token = await client.signup_and_login("titler")
    await client.call("POST", "/channels", token=token, json={"name": "titled"})
    status, body = await client.call("PATCH", "/channels/titled", token=token, json={"title": "Speedrun"})
    assert status == 200 and body["title"] == "Speedrun"
    status, body = await client.call("PATCH", "/channels/titled", token=token, json={"title": "a\x07b"})
    assert (status, body["field"]) == (400, "title")


async def test_channels_and_streams_show_live_health_from_the_registry(
    client: Any, streams: LiveStreamRegistry
) -> None:
    token = await client.signup_and_login("liveone")
    await client.call("POST", "/channels", token=token, json={"name": "onair"})
    assert (await client.call("GET", "/streams")) == (200, {"streams": []})
    stream = streams.claim("onair", "rtmp", "203.0.113.9:50000")
    stream.set_video_config(VideoConfig(codec="h264", codec_string="avc1.64001f", width=1280, height=720,
                                        record=b"\x01\x64\x00\x1f\xff\xe1\x00\x00\x01\x00\x00"))
    status, body = await client.call("GET", "/streams")
    assert status == 200 and len(body["streams"]) == 1
    health = body["streams"][0]
    assert health["channel"] == "onair" and health["video_codec"] == "h264"
    assert (health["width"], health["height"]) == (1280, 720)
    assert {"fps", "bitrate_kbps", "uptime_s"} <= health.keys()
    _, channel = await client.call("GET", "/channels/onair")
    assert channel["live"] is True and channel["stream"]["channel"] == "onair"
    streams.release(stream)
    _, channel = await client.call("GET", "/channels/onair")
    assert channel["live"] is False and channel["stream"] is None


async def test_viewer_counts_come_from_the_wired_counter(make_client: Any, repo: Repository) -> None:
    client = await make_client(viewer_counts=lambda name: 42 if name == "popular" else 0)
    await repo.create_channel("popular", None, "k_popular_1")
    _, body = await client.call("GET", "/channels/popular")
    assert body["viewer_count"] == 42


async def test_unknown_routes_and_methods_answer_json(client: Any) -> None:
    status, body = await client.call("GET", "/nope")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await client.call("PUT", "/accounts")
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert "POST" in client.last_headers["Allow"]


async def test_channel_listing_pages_with_next_until_null(client: Any, repo: Repository) -> None:
    for i in range(5):
        await repo.create_channel(f"page_{i}", None, f"k_page_{i}_key")
    status, first = await client.call("GET", "/channels?limit=2")
    assert status == 200 and [c["name"] for c in first["channels"]] == ["page_0", "page_1"]
    _, second = await client.call("GET", f"/channels?limit=2&after={first['next']}")
    _, third = await client.call("GET", f"/channels?limit=2&after={second['next']}")
    assert [c["name"] for c in second["channels"] + third["channels"]] == ["page_2", "page_3", "page_4"]
    assert third["next"] is None
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                         ("limit=" + "9" * 5000, "limit"), ("after=no-dash", "after")):
        status, body = await client.call("GET", f"/channels?{query}")
        assert (status, body["field"]) == (400, field), query
