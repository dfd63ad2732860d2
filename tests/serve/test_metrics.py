"""`GET /metrics`: what `loadgen run` measures the platform by, read back by Prometheus' own parser."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import aiohttp
import psutil
import pytest
from live.config import ChannelSeed, ServeSettings
from live.metrics import request_kind
from live.serve import Platform
from prometheus_client.parser import text_string_to_metric_families


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/hls/demo/master.m3u8", "multivariant"),
        ("/hls/demo/360p30.m3u8", "playlist"),
        ("/hls/demo/360p30/k3x9/12.3.m4s", "part"),
        ("/hls/demo/360p30/k3x9/12.m4s", "segment"),
        ("/hls/demo/360p30/k3x9/init.mp4", "init"),
        ("/hls/demo/360p30/k3x9/whatever", "other"),
        ("/api/v1/streams", None),
        ("/metrics", None),
        ("/watch/demo", None),
    ],
)
def test_request_kind(path: str, kind: str | None) -> None:
    assert request_kind(path) == kind


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text(errors="replace")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI (apt-get install ffmpeg)")
async def test_metrics_count_origin_requests_and_name_the_transcode_worker(tmp_path: Path) -> None:
    settings = ServeSettings(
        rtmp_port=0,
        http_port=0,
        chat_port=0,
        data_dir=tmp_path,
        channels=(ChannelSeed("demo", "demo_key_1"),),
    )
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        ffmpeg = await asyncio.create_subprocess_exec(
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-t",
            "25",
            "-f",
            "flv",
            f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/demo_key_1",
            stdin=subprocess.DEVNULL,
        )
        try:
            not_yet = 0  # 404s while the stream comes up count too
            async with asyncio.timeout(60):
                while (await _get(http, f"{base}/hls/demo/master.m3u8"))[0] != 200:
                    not_yet += 1
                    await asyncio.sleep(0.25)
            _, master = await _get(http, f"{base}/hls/demo/master.m3u8")
            rendition = next(line for line in master.splitlines() if line.endswith(".m3u8"))
            _, playlist = await _get(http, f"{base}/hls/demo/{rendition}")
            init = next(
                line.split('URI="')[1].split('"')[0] for line in playlist.splitlines() if "EXT-X-MAP" in line
            )
            assert (await _get(http, f"{base}/hls/demo/{init}"))[0] == 200
            assert (await _get(http, f"{base}/hls/nobody/master.m3u8"))[0] == 404
            status, text = await _get(http, f"{base}/metrics")
            assert status == 200
            workers = {child.pid for child in psutil.Process().children(recursive=True)}
        finally:
            ffmpeg.kill()
            await ffmpeg.wait()
    samples = _samples(text)

    def requests(kind: str, status: str) -> float:
        return samples[("livetwin_origin_requests_total", (("kind", kind), ("status", status)))]

    assert requests("playlist", "2xx") == 1
    assert requests("init", "2xx") == 1
    assert requests("multivariant", "4xx") == not_yet + 1
    assert requests("multivariant", "2xx") == 2
    assert requests("part", "2xx") == 0  # the test fetched none; /metrics itself is not counted
    assert samples[("livetwin_live_streams", ())] == 1
    pid = int(samples[("livetwin_transcode_worker_pid", (("channel", "demo"),))])
    assert pid in workers, (pid, workers)
    assert samples[("livetwin_transcode_restarts_total", (("channel", "demo"),))] == 0
    assert samples[("livetwin_parts_published_total", (("channel", "demo"),))] > 0
    for step in ("faster_preset", "halve_top_fps", "halve_fps", "stop_top_rung"):  # the guard's decisions
        assert samples[("livetwin_transcode_guard_steps_total", (("channel", "demo"), ("step", step)))] >= 0
    assert ("livetwin_renditions_in_gap", (("channel", "demo"),)) in samples
    assert ("livetwin_chat_messages_delivered_total", ()) in samples
    assert samples[("livetwin_origin_held_requests", ())] == 0
