"""The generated configurations in real nginx: coalescing, cache key, lifetimes, consistent
hashing, failover, CORS, gzip, HTTP/2 over TLS and the tier's metrics.

Every test runs Debian's nginx (``live.cdn.launcher``) in front of the real origin app
(``live.origin.app``) fed part by part; the origin counts each request it answers.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from live.cdn.config import Role, TlsFiles, Upstream
from live.cdn.launcher import CdnCluster, CdnError, ClusterSettings
from live.cdn.metrics import TierMetrics, parse_log_line

from .conftest import CountingOrigin, Feed, get, hinted_uri, part_uris, require_nginx, tier

PLAYLIST = "/hls/alpha/720p.m3u8"


def edge_of(cluster: CdnCluster, index: int = 0) -> str:
    return cluster.urls(Role.EDGE)[index]


async def test_concurrent_blocking_reloads_at_an_edge_become_one_origin_request(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)  # last published: 1.1
    async with tier(tmp_path, [origin.url]) as cluster, aiohttp.ClientSession() as http:
        url = f"{edge_of(cluster)}{PLAYLIST}?_HLS_msn=1&_HLS_part=3"
        held = [asyncio.create_task(get(http, url)) for _ in range(50)]
        await asyncio.sleep(0.4)
        assert not any(task.done() for task in held), "blocking reloads must be held"
        feed.parts(2)
        answers = await asyncio.gather(*held)
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, body, _ in answers}) == 1
    assert b"1.3.m4s" in answers[0][1]
    assert origin.requests[f"{PLAYLIST}?_HLS_msn=1&_HLS_part=3"] == 1


async def test_concurrent_requests_for_the_preload_hinted_part_become_one_origin_request(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)
    async with tier(tmp_path, [origin.url]) as cluster, aiohttp.ClientSession() as http:
        _, playlist, _ = await get(http, f"{edge_of(cluster)}{PLAYLIST}")
        hinted = f"/hls/alpha/{hinted_uri(playlist.decode())}"
        held = [asyncio.create_task(get(http, f"{edge_of(cluster)}{hinted}")) for _ in range(50)]
        await asyncio.sleep(0.4)
        assert not any(task.done() for task in held)
        feed.part()
        answers = await asyncio.gather(*held)
    assert {status for status, _, _ in answers} == {200}
    assert answers[0][1].startswith(b"alpha/720p:1.2:")
    assert origin.requests[hinted] == 1


async def test_cache_key_keeps_the_hls_directives_and_drops_every_other_argument(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(12)
    async with tier(tmp_path, [origin.url]) as cluster, aiohttp.ClientSession() as http:
        edge = edge_of(cluster)
        _, playlist, _ = await get(http, f"{edge}{PLAYLIST}")
        part = f"/hls/alpha/{part_uris(playlist.decode())[0]}"
        for attempt in range(5):
            status, _, _ = await get(http, f"{edge}{part}?x=random{attempt}&_HLS_foo=1")
            assert status == 200
            status, _, _ = await get(http, f"{edge}{PLAYLIST}?_HLS_msn=1&_HLS_part=2&x={attempt}")
            assert status == 200
        for query in ("_HLS_msn=1&_HLS_part=3", "_HLS_msn=1&_HLS_part=2&_HLS_skip=YES", "_HLS_msn=1"):
            status, _, _ = await get(http, f"{edge}{PLAYLIST}?{query}")
            assert status == 200
    # the part went upstream once, without the viewer's arguments
    assert origin.requests[part] == 1
    assert not [p for p in origin.requests if "x=" in p or "_HLS_foo" in p]
    # each distinct directive set is its own answer
    assert origin.requests[f"{PLAYLIST}?_HLS_msn=1&_HLS_part=2"] == 1
    assert origin.requests[f"{PLAYLIST}?_HLS_msn=1&_HLS_part=3"] == 1
    assert origin.requests[f"{PLAYLIST}?_HLS_msn=1&_HLS_part=2&_HLS_skip=YES"] == 1
    assert origin.requests[f"{PLAYLIST}?_HLS_msn=1"] == 1


async def test_lifetimes_follow_the_origin_parts_long_plain_reloads_short_errors_a_second(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)
    async with tier(tmp_path, [origin.url]) as cluster, aiohttp.ClientSession() as http:
        edge = edge_of(cluster)
        # plain reloads: coalesced within a tenth of a second, never older than that
        _, first, _ = await get(http, f"{edge}{PLAYLIST}")
        await asyncio.sleep(0.25)
        feed.part()
        _, second, _ = await get(http, f"{edge}{PLAYLIST}")
        assert not any(u.endswith("/1.2.m4s") for u in part_uris(first.decode()))
        assert any(u.endswith("/1.2.m4s") for u in part_uris(second.decode()))
        burst = await asyncio.gather(*(get(http, f"{edge}{PLAYLIST}") for _ in range(30)))
        assert {s for s, _, _ in burst} == {200}
        assert origin.requests[PLAYLIST] <= 2 + 2  # two reloads above, the burst within <= 2 slots
        # parts and blocking answers: cached (immutable)
        part = f"/hls/alpha/{part_uris(second.decode())[-1]}"
        blocking = f"{PLAYLIST}?_HLS_msn=1&_HLS_part=1"
        for _ in range(3):
            await get(http, f"{edge}{part}")
            await get(http, f"{edge}{blocking}")
        assert origin.requests[part] == 1 and origin.requests[blocking] == 1
        # 404: a second at most (nginx's cache clock has whole seconds: under 2 s)
        missing = "/hls/nosuch/720p.m3u8?_HLS_msn=1"
        assert (await get(http, f"{edge}{missing}"))[0] == 404
        assert (await get(http, f"{edge}{missing}"))[0] == 404
        assert origin.requests[missing] == 1
        await asyncio.sleep(2.05)
        assert (await get(http, f"{edge}{missing}"))[0] == 404
        assert origin.requests[missing] == 2
        # a 400 (no-store) is never cached
        bad = f"{PLAYLIST}?_HLS_part=1"
        for _ in range(2):
            assert (await get(http, f"{edge}{bad}"))[0] == 400
        assert origin.requests[bad] == 2


async def test_channels_hash_consistently_to_one_shield_each(
        tmp_path: Path, origin: CountingOrigin) -> None:
    channels = [f"chan{i}" for i in range(12)]
    for name in channels:
        Feed(origin.store, channel=name).start().parts(3)
    async with tier(tmp_path, [origin.url], shields=2, edges=2) as cluster, \
            aiohttp.ClientSession() as http:
        for edge in cluster.urls(Role.EDGE):
            for name in channels:
                for rendition in ("720p", "audio"):
                    url = f"{edge}/hls/{name}/{rendition}.m3u8?_HLS_msn=0&_HLS_part=1"
                    status, _, _ = await get(http, url)
                    assert status == 200
        await asyncio.sleep(1.2)  # access logs flush every second
        by_shield: dict[str, set[str]] = {}
        for node in cluster.nodes:
            if node.plan.role is Role.SHIELD:
                lines = (parse_log_line(t) for t in (node.plan.directory / "access.log")
                         .read_text().splitlines())
                by_shield[node.name] = {line.uri.split("/")[2] for line in lines if line}
    shield0, shield1 = by_shield.values()
    assert shield0 | shield1 == set(channels)
    assert not shield0 & shield1, "a channel must go through one shield from every edge"
    assert shield0 and shield1, "channels spread over both shields"
    # each channel's answer left the origin once, though both edges asked
    for name in channels:
        assert origin.requests[f"/hls/{name}/720p.m3u8?_HLS_msn=0&_HLS_part=1"] == 1


async def test_a_dead_shield_is_skipped_and_the_viewer_sees_no_error(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)
    async with tier(tmp_path, [origin.url], shields=2, edges=1) as cluster, \
            aiohttp.ClientSession() as http:
        edge = edge_of(cluster)
        assert (await get(http, f"{edge}{PLAYLIST}?_HLS_msn=1&_HLS_part=0"))[0] == 200
        await asyncio.sleep(1.2)
        owner = next(n for n in cluster.nodes if n.plan.role is Role.SHIELD
                     and "720p.m3u8" in (n.plan.directory / "access.log").read_text())
        cluster.kill(owner.name)
        feed.part()  # 1.2, only reachable through the surviving shield
        for query in ("_HLS_msn=1&_HLS_part=1", "_HLS_msn=0", "_HLS_msn=1&_HLS_part=2"):
            status, body, _ = await get(http, f"{edge}{PLAYLIST}?{query}")
            assert status == 200, body
        _, playlist, _ = await get(http, f"{edge}{PLAYLIST}")
        for uri in part_uris(playlist.decode()):
            assert (await get(http, f"{edge}/hls/alpha/{uri}"))[0] == 200


async def test_a_dead_origin_is_skipped_for_the_next_one(tmp_path: Path) -> None:
    from .conftest import make_store

    origin = CountingOrigin(make_store())
    await origin.start(listeners=2)  # two origins over one store, like two ingest targets
    try:
        Feed(origin.store).start().parts(8)
        async with tier(tmp_path, origin.urls, shields=1, edges=1) as cluster, \
                aiohttp.ClientSession() as http:
            edge = edge_of(cluster)
            assert (await get(http, f"{edge}{PLAYLIST}?_HLS_msn=1&_HLS_part=0"))[0] == 200
            await origin.sites[0].stop()
            status, body, _ = await get(http, f"{edge}{PLAYLIST}?_HLS_msn=1&_HLS_part=1")
            assert status == 200, body
    finally:
        await origin.close()


async def test_edge_adds_cors_gzips_playlists_and_answers_preflight(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)
    url = PLAYLIST + "?_HLS_msn=1&_HLS_part=0"
    async with tier(tmp_path, [origin.url]) as cluster, aiohttp.ClientSession() as http:
        edge = edge_of(cluster)
        async with http.get(f"{edge}{url}", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers.getall("Access-Control-Allow-Origin") == ["*"]
            assert "#EXTM3U" in await response.text()
        async with http.get(f"{edge}{url}", headers={"Accept-Encoding": "identity"}) as response:
            assert "Content-Encoding" not in response.headers
            assert response.headers.getall("Access-Control-Allow-Origin") == ["*"]
        async with http.options(f"{edge}{url}", headers={
                "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range"}) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "GET" in response.headers["Access-Control-Allow-Methods"]
            assert response.headers["Access-Control-Allow-Headers"] == "range"
    # one cached variant served both encodings
    assert origin.requests[url] == 1


async def test_edge_speaks_http2_over_tls(tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    require_nginx()
    if shutil.which("openssl") is None or shutil.which("curl") is None:
        pytest.fail("needs openssl and curl")
    feed.parts(8)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    async with tier(tmp_path, [origin.url], tls=TlsFiles(cert, key)) as cluster:
        edge = edge_of(cluster)
        assert edge.startswith("https://")
        curl = await asyncio.create_subprocess_exec(
            "curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
            f"{edge}{PLAYLIST}?_HLS_msn=1&_HLS_part=0", stdout=asyncio.subprocess.PIPE)
        out, _ = await curl.communicate()
    assert out.decode() == "2 200"


async def test_metrics_report_stub_status_and_cache_statuses(
        tmp_path: Path, origin: CountingOrigin, feed: Feed) -> None:
    feed.parts(8)
    async with tier(tmp_path, [origin.url], shields=1, edges=2) as cluster, \
            aiohttp.ClientSession() as http:
        for _ in range(5):
            await get(http, f"{edge_of(cluster)}{PLAYLIST}?_HLS_msn=1&_HLS_part=0")
        await asyncio.sleep(1.2)
        metrics = TierMetrics((n.name, n.plan.role, n.url, n.plan.directory) for n in cluster.nodes)
        try:
            text = await metrics.scrape()
        finally:
            await metrics.close()
    assert 'livetwin_cdn_up{node="edge0",role="edge"} 1' in text
    assert 'livetwin_cdn_responses_total{node="edge0",role="edge",cache="HIT",status="2xx"} 4' in text
    assert 'livetwin_cdn_responses_total{node="edge0",role="edge",cache="MISS",status="2xx"} 1' in text
    assert 'livetwin_cdn_hit_ratio{node="edge0",role="edge"} 0.800000' in text
    assert 'livetwin_cdn_requests_total{node="shield0",role="shield"}' in text


async def test_launcher_refuses_a_taken_port_and_a_missing_nginx(tmp_path: Path) -> None:
    require_nginx()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = ClusterSettings(origins=(Upstream.parse("http://127.0.0.1:9"),),
                                   data_dir=tmp_path, shields=0, edges=1, base_port=port)
        with pytest.raises(CdnError, match="taken"):
            await CdnCluster(settings).start()
    missing = ClusterSettings(origins=(Upstream.parse("http://127.0.0.1:9"),), data_dir=tmp_path,
                              nginx=str(tmp_path / "no-nginx"))
    with pytest.raises(CdnError, match="nginx not found"):
        await CdnCluster(missing).start()
