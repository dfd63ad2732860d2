"""WHIP in and WHEP out through the real platform, with aiortc clients standing in for OBS and
a browser: offer/answer, every refusal a client can earn, DELETE and timeouts freeing what a
session held, and memory back at its baseline after a flood."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from live.api.ratelimit import Rate
from live.config import ChannelSeed, ServeSettings
from live.selftest.webrtc_client import ClockVideoTrack, WhepViewer, WhipPublisher, post_offer
from live.serve import Platform
from live.webrtc.sessions import WebRtcLimits
from live.webrtc.settings import WebRtcSettings

pytestmark = [pytest.mark.slow]

CHANNEL, KEY = "demo", "demo_key_123"
OTHER, OTHER_KEY = "other", "other_key_456"


def settings(tmp_path: Path, **limits: Any) -> ServeSettings:
    return ServeSettings(
        rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
        channels=(ChannelSeed(CHANNEL, KEY), ChannelSeed(OTHER, OTHER_KEY)),
        webrtc=WebRtcSettings(limits=WebRtcLimits(**limits)),
    )


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(settings(tmp_path, ice_timeout_s=2.0)) as running:
        yield running


def base(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.ports.http}"


async def wait_for_ladder(platform: Platform, timeout_s: float = 30.0) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout_s):
        while True:
            async with http.get(f"{base(platform)}/api/v1/streams") as response:
                streams = (await response.json())["streams"]
            if streams and (streams[0].get("transcode") or {}).get("renditions"):
                return dict(streams[0])
            await asyncio.sleep(0.25)


async def offer_sdp(direction: str = "sendonly") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if direction == "sendonly":
        pc.addTransceiver(ClockVideoTrack(), direction="sendonly")
    else:
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


def assert_all_freed(platform: Platform) -> None:
    service = platform.webrtc
    assert service is not None
    assert not service.whip and not service.whep and len(service.table) == 0, service.table
    assert not service.relays
    assert len(platform.streams) == 0


@pytest.mark.timeout(120)
async def test_whip_publishes_into_the_ladder_and_whep_plays_it_then_delete_frees_everything(
        platform: Platform) -> None:
    async with WhipPublisher(base(platform), CHANNEL, KEY, audio=True) as publisher:
        assert publisher.answer is not None and publisher.answer.status == 201
        assert publisher.answer.headers["Content-Type"].startswith("application/sdp")
        assert publisher.location is not None and publisher.location.startswith(f"/whip/{CHANNEL}/sessions/")
        health = await wait_for_ladder(platform)
        assert health["protocol"] == "whip" and health["video_codec"] == "h264"
        assert health["audio_codec"] == "opus"  # the ladder's audio is AAC, transcoded once
        assert {"source", "360p30"} <= set(health["transcode"]["renditions"])

        viewer = WhepViewer(base(platform), CHANNEL, "360p30", read_clock=True)
        answer = await viewer.start()
        assert answer.status == 201, answer.body
        assert answer.location is not None and answer.location.startswith(f"/whep/{CHANNEL}/sessions/")
        await asyncio.sleep(6)
        frames, latencies = viewer.stats.frames, sorted(viewer.stats.latencies_ms)
        audio_packets = viewer.stats.audio_packets
        await viewer.close()
        assert frames >= 60, viewer.stats
        assert audio_packets >= 100, viewer.stats  # AAC -> Opus, 20 ms packets
        assert latencies and latencies[len(latencies) // 2] < 1000, latencies
        print(f"aiortc WHIP -> 360p30 -> aiortc WHEP: {frames} frames, painted-clock latency p50 "
              f"{latencies[len(latencies) // 2]:.0f} ms, p95 {latencies[int(len(latencies) * .95)]:.0f} ms")
        await asyncio.sleep(0.2)
        assert not platform.webrtc.whep and not platform.webrtc.relays  # type: ignore[union-attr]
        # the HLS ladder of the same publication
        async with aiohttp.ClientSession() as http, http.get(
                f"{base(platform)}/hls/{CHANNEL}/master.m3u8") as response:
            master = await response.text()
            assert response.status == 200 and "#EXT-X-STREAM-INF" in master
            assert "mp4a.40.2" in master, master
    await asyncio.sleep(0.3)
    assert_all_freed(platform)


@pytest.mark.timeout(60)
async def test_refusals_are_clear_4xx_answers(platform: Platform) -> None:
    url = f"{base(platform)}/whip/{CHANNEL}"
    good = await offer_sdp()
    async with aiohttp.ClientSession() as http:
        assert (await post_offer(http, url, "v=0\r\nnonsense", KEY)).status == 400
        no_h264 = good.replace("H264/90000", "X264/90000")
        refused = await post_offer(http, url, no_h264, KEY)
        assert refused.status == 400 and "H.264" in refused.body
        wrong = await post_offer(http, url, good, "not_the_key_0")
        assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await post_offer(http, url, good, OTHER_KEY)).status == 401  # another channel's key
        assert (await post_offer(http, url, good)).status == 401
        async with http.post(url, data=good, headers={"Authorization": f"Bearer {KEY}",
                                                      "Content-Type": "text/plain"}) as response:
            assert response.status == 415
        assert (await post_offer(http, f"{base(platform)}/whep/{CHANNEL}", await offer_sdp("recvonly"))
                ).status == 404  # not live
        async with http.patch(f"{url}/sessions/nope", data="a=candidate") as response:
            assert response.status == 405 and response.headers["Allow"] == "DELETE"
        async with http.delete(f"{url}/sessions/nope") as response:
            assert response.status == 404
    assert_all_freed(platform)


@pytest.mark.timeout(60)
async def test_a_second_publisher_gets_409_and_an_unknown_rendition_404(platform: Platform) -> None:
    async with WhipPublisher(base(platform), CHANNEL, KEY):
        await wait_for_ladder(platform)
        async with aiohttp.ClientSession() as http:
            busy = await post_offer(http, f"{base(platform)}/whip/{CHANNEL}", await offer_sdp(), KEY)
            assert busy.status == 409
            missing = await post_offer(http, f"{base(platform)}/whep/{CHANNEL}/9000p",
                                       await offer_sdp("recvonly"))
            assert missing.status == 404 and "360p30" in missing.body
    await asyncio.sleep(0.3)
    assert_all_freed(platform)


@pytest.mark.timeout(60)
async def test_a_session_whose_ice_never_completes_is_dropped_and_frees_the_channel(
        platform: Platform) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await post_offer(http, f"{base(platform)}/whip/{CHANNEL}", await offer_sdp(), KEY)
    assert answer.status == 201 and len(platform.streams) == 1
    await asyncio.sleep(2.0 + 1.5)  # ice_timeout_s + one reaper period
    assert platform.webrtc is not None and platform.webrtc.ice_timeouts == 1
    assert_all_freed(platform)


@pytest.mark.timeout(120)
async def test_a_flood_of_posts_gets_429_and_memory_returns_to_its_baseline(tmp_path: Path) -> None:
    flood = settings(tmp_path, ice_timeout_s=1.0, per_client=Rate(capacity=10, per_second=5.0))
    async with Platform(flood) as platform:
        url = f"{base(platform)}/whip/{CHANNEL}"
        good, bad = await offer_sdp(), "v=0\r\ngarbage\r\n"

        async def round_of_abuse(http: aiohttp.ClientSession) -> list[int]:
            statuses = [(await post_offer(http, url, bad, KEY)).status for _ in range(20)]
            answer = await post_offer(http, url, good, KEY)  # answered, never connected
            statuses.append(answer.status)
            await asyncio.sleep(2.5)  # the abandoned session times out
            return statuses

        async with aiohttp.ClientSession() as http:
            await round_of_abuse(http)  # warm every code path and cache
            gc.collect()
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                statuses: list[int] = []
                for _ in range(4):
                    statuses += await round_of_abuse(http)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
        assert 429 in statuses and 400 in statuses, statuses
        assert set(statuses) <= {400, 201, 429}, statuses
        assert_all_freed(platform)
        peers = sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())
        assert peers == 0
        assert after - baseline < 512 * 1024, f"{(after - baseline) / 1024:.0f} KiB left after the flood"


@pytest.mark.timeout(90)
async def test_when_the_publisher_leaves_its_viewers_are_closed_and_freed(platform: Platform) -> None:
    publisher = WhipPublisher(base(platform), CHANNEL, KEY)
    await publisher.__aenter__()
    try:
        await wait_for_ladder(platform)
        viewer = WhepViewer(base(platform), CHANNEL)
        assert (await viewer.start()).status == 201
        async with asyncio.timeout(20):
            while viewer.stats.frames == 0:
                await asyncio.sleep(0.2)
    finally:
        await publisher.close()
    async with asyncio.timeout(20):
        while platform.webrtc is not None and (platform.webrtc.whep or platform.webrtc.relays):
            await asyncio.sleep(0.2)
    viewer.location = None  # the server already ended the session
    await viewer.close()
    assert_all_freed(platform)
