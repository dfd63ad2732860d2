"""Glass to glass over WebRTC with the independent client, Debian's Chromium.

The studio page publishes a clock test card over WHIP (``canvas.captureStream``), a viewer page
plays it over WHEP and reads the painted capture clock from every decoded frame
(``requestVideoFrameCallback`` + canvas): display time minus painted time is the glass-to-glass
delay, p95 under half a second. Then hls.js plays the same publication over LL-HLS, proving WHIP
feeds the normal ladder. Needs Chromium, Node 20 and ``npm ci --prefix platform/web``; locally
a missing one skips, in CI it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform
from live.webui import default_web_root

pytestmark = [pytest.mark.slow]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = Path(__file__).with_name("webrtc_g2g.cjs")
WEB_ROOT = default_web_root()
CHANNEL, STREAM_KEY = "studio", "studio_key_123"
WHEP_S, HLS_S = 30, 15
P95_GOAL_MS = 500.0


def _require(present: bool, what: str) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what}")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@pytest.mark.timeout(240)
async def test_chromium_publishes_over_whip_and_plays_over_whep_under_half_a_second(tmp_path: Path) -> None:
    _require(shutil.which("node") is not None, "Node.js 20 (`node` on PATH)")
    _require(CHROMIUM.is_file(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    _require((WEB_ROOT / "node_modules" / "playwright-core").is_dir(),
             "playwright-core: run `npm ci --prefix platform/web`")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed(CHANNEL, STREAM_KEY),))
    async with Platform(settings) as platform:
        node = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), "--web-root", str(WEB_ROOT), "--chromium", str(CHROMIUM),
            "--base", f"http://127.0.0.1:{platform.ports.http}", "--channel", CHANNEL,
            "--key", STREAM_KEY, "--seconds", str(WHEP_S), "--hls-seconds", str(HLS_S),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        ingest_fps: list[float] = []

        async def watch_ingest() -> None:
            url = f"http://127.0.0.1:{platform.ports.http}/api/v1/streams"
            async with aiohttp.ClientSession() as http:
                while True:
                    await asyncio.sleep(1.0)
                    async with http.get(url) as response:
                        streams = (await response.json())["streams"]
                    if streams and streams[0]["uptime_s"] > 6:
                        ingest_fps.append(streams[0]["fps"])

        watcher = asyncio.get_running_loop().create_task(watch_ingest())
        try:
            out, err = await asyncio.wait_for(node.communicate(), WHEP_S + HLS_S + 150)
        finally:
            watcher.cancel()
            if node.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    node.kill()
                await node.wait()
        webrtc = platform.webrtc
        assert webrtc is not None
        await asyncio.sleep(0.5)
        left = (len(webrtc.whip), len(webrtc.whep), len(webrtc.table))

    events: list[dict[str, Any]] = []
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    log = err.decode(errors="replace")[-3000:]
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None and done["ok"], f"{done}; stderr:\n{log}"
    assert not [e for e in events if e["event"] == "pageerror"], events
    whep = next(e for e in events if e["event"] == "whep")
    hls = next(e for e in events if e["event"] == "hls")
    first_frame_ms = next(e["ms"] for e in events if e["event"] == "whep-first-frame")
    latencies = whep["latencies"]
    hls_latencies = hls["latencies"]
    summary = {
        "whep_first_frame_ms": first_frame_ms,
        "whep_frames_in_window": whep["framesInWindow"], "whep_clock_frames": len(latencies),
        "whep_g2g_p50_ms": round(_quantile(latencies, 0.5)) if latencies else None,
        "whep_g2g_p95_ms": round(_quantile(latencies, 0.95)) if latencies else None,
        "whep_g2g_max_ms": round(max(latencies)) if latencies else None,
        "whep_picture": f"{whep['width']}x{whep['height']}",
        "hls_g2g_p50_ms": round(_quantile(hls_latencies, 0.5)) if hls_latencies else None,
        "hls_g2g_p95_ms": round(_quantile(hls_latencies, 0.95)) if hls_latencies else None,
        "hls_stalls": hls["stats"]["stalls"], "hls_levels": hls["stats"]["levels"],
        "whip_ingest_fps_median": _quantile(ingest_fps, 0.5) if ingest_fps else None,
    }
    print("webrtc glass to glass:", json.dumps(summary))
    assert left == (0, 0, 0), f"sessions left after the pages closed: {left}"
    # the viewer saw (nearly) every frame Chromium's encoder sent, each with a readable clock
    assert ingest_fps and len(latencies) >= 0.8 * _quantile(ingest_fps, 0.5) * WHEP_S, summary
    assert _quantile(latencies, 0.95) < P95_GOAL_MS, summary
    # the same WHIP publication through the normal ladder, in hls.js
    assert hls["stats"]["engine"] == "hls.js" and hls["stats"]["fatalErrors"] == 0, hls["stats"]
    assert hls["stats"]["levels"] >= 2 and len(hls_latencies) >= 5 * HLS_S, summary
