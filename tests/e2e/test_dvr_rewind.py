"""Rewind in the real player: hls.js in Chromium, on the viewer page, seeks 60 s back with the
seek bar (the DVR playlist, segments from disk), plays 20 s there, and the "go live" button
brings it back to the low-latency playlist with the playhead under 2 s from the live edge. A
15 s pause then resumes where it paused (from the DVR: the live playlist has moved on)."""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.serve import Platform

from .test_browser_playback import (
    CHANNEL,
    LIVE_BOUND_S,
    _check_prerequisites,
    _events,
    _play,
    _settings,
    _start_publisher,
    _stop,
    _wait_for_master,
)

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

REWIND_S = 60
REWOUND_PLAY_S = 20
REWIND_AT_S = 5  # after playback started
GO_LIVE_AT_S = REWIND_AT_S + 8 + REWOUND_PLAY_S  # 8 s to load the DVR playlist and start there
PAUSE_AT_S = GO_LIVE_AT_S + 12
PAUSE_S = 15
PLAY_S = PAUSE_AT_S + PAUSE_S + 10
LIVE_LATENCY_S = 2.0

REWIND = f"""(() => {{
  const seek = document.getElementById('seek');
  seek.value = String(Number(seek.max) - {REWIND_S});
  seek.dispatchEvent(new Event('change'));
  return Number(seek.max);
}})()"""
GO_LIVE = "(() => { document.getElementById('live').click(); return window.livetwinStats.mode; })()"
PAUSE = "(() => { document.getElementById('video').pause(); return window.livetwinStats.behindLive; })()"
RESUME = "(() => { document.getElementById('video').play(); return window.livetwinStats.mode; })()"


async def _dvr_seconds(http: aiohttp.ClientSession, base: str) -> float:
    async with http.get(f"{base}/api/v1/channels/{CHANNEL}/videos") as response:
        videos = (await response.json())["videos"]
    return float(videos[0]["duration_s"]) if videos else 0.0


def _between(samples: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [s for s in samples if start <= s["wall"] < end]


@pytest.mark.timeout(330)
async def test_hls_js_rewinds_a_minute_plays_twenty_seconds_and_returns_live(tmp_path: Path) -> None:
    _check_prerequisites()
    async with Platform(_settings(tmp_path)) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        publisher = await _start_publisher(platform.ports.rtmp, 240)  # stopped at the end
        try:
            async with aiohttp.ClientSession() as http:
                await _wait_for_master(http, f"{base}/hls/{CHANNEL}/master.m3u8", 20)
                async with asyncio.timeout(REWIND_S + 40):
                    while await _dvr_seconds(http, base) < REWIND_S + 10:
                        await asyncio.sleep(1)
            actions = json.dumps([{"at": REWIND_AT_S, "js": REWIND}, {"at": GO_LIVE_AT_S, "js": GO_LIVE},
                                  {"at": PAUSE_AT_S, "js": PAUSE},
                                  {"at": PAUSE_AT_S + PAUSE_S, "js": RESUME}])
            out, err = await _play(f"{base}/watch/{CHANNEL}", PLAY_S, "--actions", actions)
        finally:
            await _stop(publisher)

    events = _events(out)
    log = err.decode(errors="replace")[-4000:]
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None and done["ok"], f"{done}; stderr:\n{log}"
    rewind, go_live, pause, resume = [e for e in events if e["event"] == "action"]
    assert rewind["result"] >= REWIND_S + 10, rewind  # the seek bar spanned the DVR window
    samples = [{"wall": e["wall"], **e["stats"]} for e in events if e["event"] == "sample"]
    rewound = [s for s in _between(samples, rewind["wall"], go_live["wall"])
               if s["mode"] == "dvr" and s["state"] == "playing" and s["behindLive"] is not None]
    summary = [(s["mode"], s["state"], s["behindLive"] and round(s["behindLive"], 1),
                s["latency"] and round(s["latency"], 2), round(s["currentTime"], 1)) for s in samples]
    print("samples (mode, state, behind live, hls latency, currentTime):", summary)
    assert len(rewound) >= REWOUND_PLAY_S - 5, summary
    behind = [s["behindLive"] for s in rewound]
    assert all(REWIND_S - 10 <= b <= REWIND_S + 15 for b in behind), summary
    played = rewound[-1]["currentTime"] - rewound[0]["currentTime"]
    assert played >= REWOUND_PLAY_S - 6, summary
    back = _between(samples, go_live["wall"] + 8000, pause["wall"])
    assert back and all(s["mode"] == "live" and s["state"] == "playing" for s in back), summary
    latencies = [s["latency"] for s in back]
    assert None not in latencies, summary
    # back to low latency: under 2 s (the median of the samples), never far from the edge
    assert statistics.median(latencies) < LIVE_LATENCY_S, summary
    assert max(latencies) <= LIVE_BOUND_S, summary
    # resumed where it paused: about PAUSE_S behind live (plus the latency it had), from the DVR
    resumed = [s for s in _between(samples, resume["wall"] + 4000, float("inf"))
               if s["state"] == "playing" and s["behindLive"] is not None]
    assert resumed and all(s["mode"] == "dvr" for s in resumed), summary
    assert all(PAUSE_S - 3 <= s["behindLive"] <= PAUSE_S + 6 for s in resumed), summary
    assert done["stats"]["fatalErrors"] == 0, done["stats"]["errorLog"]
    print("dvr rewind:", json.dumps({"behind_live_s": [round(b, 1) for b in behind],
                                     "rewound_played_s": round(played, 1),
                                     "live_latency_s": [round(s["latency"], 2) for s in back],
                                     "resumed_behind_live_s": [round(s["behindLive"], 1)
                                                               for s in resumed]}))
