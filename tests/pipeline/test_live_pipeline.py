"""The live media path in one process: ffmpeg -> RTMP -> transcode worker -> packager -> origin."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import aiohttp
import av
import m3u8
import pytest
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg,
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")]

SECONDS = 12


async def until(predicate, timeout: float):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not (result := await predicate()):
            await asyncio.sleep(0.2)
        return result


def decode_video(url: str) -> tuple[int, list[int]]:
    """(frames decoded, keyframe PTS) of the first video stream at ``url``."""
    frames, keys = 0, []
    with av.open(url) as container:
        for packet in container.demux(video=0):
            if packet.size:
                frames += 1
                if packet.is_keyframe:
                    keys.append(int(packet.pts))
                packet.decode()
    return frames, keys


async def test_published_stream_is_transcoded_packaged_and_survives_a_worker_kill(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed("demo", "demo_key_123"),))
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        ffmpeg = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
            "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-f", "flv", f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/demo_key_123",
            stderr=asyncio.subprocess.PIPE)

        async def master() -> m3u8.M3U8 | None:
            async with http.get(f"{base}/hls/demo/master.m3u8") as response:
                if response.status != 200:
                    return None
                playlist = m3u8.loads(await response.text())
                return playlist if len(playlist.playlists) >= 3 else None

        variants = await until(master, 30)
        names = sorted(p.uri.removesuffix(".m3u8") for p in variants.playlists)
        assert names == ["160p30", "360p30", "source"]

        # A blocking reload for the next part is answered once that part exists.
        async with http.get(f"{base}/hls/demo/360p30.m3u8") as response:
            live = m3u8.loads(await response.text())
        msn = live.media_sequence + len(live.segments)
        async with http.get(f"{base}/hls/demo/360p30.m3u8?_HLS_msn={msn}&_HLS_part=0") as response:
            assert response.status == 200
            assert f"/{msn}.0.m4s" in await response.text()

        # Kill the transcode worker: the server restarts it and the stream goes on.
        path = platform.media_paths.by_channel["demo"]  # type: ignore[union-attr]
        assert path.supervisor is not None and path.supervisor.pid is not None
        os.kill(path.supervisor.pid, signal.SIGKILL)
        killed_at = msn

        async def streams() -> dict | None:
            async with http.get(f"{base}/api/v1/streams") as response:
                body = await response.json()
            transcode = body["streams"][0]["transcode"] if body["streams"] else None
            return transcode if transcode and transcode["restarts"] >= 1 else None

        status = await until(streams, 20)
        assert status["encoder"] in ("libx264", "h264_nvenc")
        assert status["failure"] is None

        _, stderr = await ffmpeg.communicate()
        assert ffmpeg.returncode == 0, stderr.decode()

        async def ended() -> bool:
            async with http.get(f"{base}/hls/demo/360p30.m3u8") as response:
                return "#EXT-X-ENDLIST" in await response.text()

        await until(ended, 30)
        keyframe_sets = []
        for name in ("360p30", "160p30"):
            async with http.get(f"{base}/hls/demo/{name}.m3u8") as response:
                playlist = m3u8.loads(await response.text())
            assert playlist.is_endlist
            assert playlist.media_sequence + len(playlist.segments) > killed_at + 1
            assert all(round(seg.duration) <= playlist.target_duration for seg in playlist.segments)
            # PyAV blocks: decode in a thread so this loop can keep serving the origin
            frames, keys = await asyncio.to_thread(decode_video, f"{base}/hls/demo/{name}.m3u8")
            # frames before the kill's restart keyframe are lost; the rest arrive
            assert frames >= SECONDS * 30 * 0.6
            keyframe_sets.append(keys)
        assert keyframe_sets[0] == keyframe_sets[1]
