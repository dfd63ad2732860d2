"""hls.js in Chromium through an origin hang: the player resumes within 2 s of SIGCONT.

The probe stands in for viewers elsewhere in the suite; here the reference player itself (a
bare page holding only hls.js with `lowLatencyMode`, driven by tests/e2e/play_hls.cjs) plays
the channel while `live serve` is stopped with SIGSTOP for HANG_S. A page script records the
playhead every 100 ms (epoch ms, which this process's `time.time()` shares), so the resume is
read to a tenth of a second: the first advance of the playhead after SIGCONT; hls.js must end
with no fatal error (it kept the session rather than giving up).

Then it must play on in real time (at least 0.8 s of media per second from 2 s after SIGCONT).
That failed in about half the runs until the segmenter covered holes with gap parts: the
transcoder drops the frames that went late during the hang, and the media element then held a
hole (e.g. buffered [8, 20.76], [24, 24.2]) that hls.js does not jump, so the playhead stayed at
its edge to the end with no error. With EXT-X-GAP over the missing time hls.js skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from live.webui import HLS_JS_PATH, default_web_root

from loadgen.faults import process
from loadgen.faults.timeline import Timeline

from .harness import ROOT
from .live_serve import LiveServe
from .test_stream_chaos import KEY, RESUME_S, _live, _publisher

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
PLAY_SCRIPT = ROOT / "tests/e2e/play_hls.cjs"
WEB_ROOT = default_web_root()
PLAY_S = 26
HANG_AT_S = 8.0  # after playback started
HANG_S = 4.0
#: installed in the page once playback started: the playhead every 100 ms (bounded: 600 entries)
RECORD_PLAYHEAD = (
    "(() => { const v = document.querySelector('video'); const p = window.livetwinStats.playhead = [];"
    " const id = setInterval(() => { if (p.length >= 600) { clearInterval(id); return; }"
    " p.push([Date.now(), v.currentTime]); }, 100); return true; })()"
)

#: what the media element holds near the end: a hole in it is where a player sticks
BUFFERED = ("(() => { const v = document.querySelector('video'); return {t: v.currentTime, buffered:"
            " Array.from({length: v.buffered.length}, (_, i) => [v.buffered.start(i), v.buffered.end(i)])};"
            " })()")


def _require() -> None:
    missing = [what for ok, what in (
        (shutil.which("node") is not None, "Node.js (`node` on PATH)"),
        (CHROMIUM.is_file(), f"Chromium at {CHROMIUM}"),
        ((WEB_ROOT / "node_modules" / "playwright-core").is_dir() and (WEB_ROOT / HLS_JS_PATH).is_file(),
         "hls.js and playwright-core (`npm ci --prefix platform/web`)"),
    ) if not ok]
    if missing:  # tests/conftest.py fails a skip under CI
        pytest.skip("needs " + ", ".join(missing))


def playhead_resume_s(playhead: list[list[float]], back_epoch_s: float) -> float | None:
    """Seconds from ``back_epoch_s`` to the first advance of the playhead at or after it."""
    back_ms = back_epoch_s * 1000
    for (_, before), (at_ms, now) in itertools.pairwise(playhead):
        if at_ms >= back_ms and now > before:
            return round((at_ms - back_ms) / 1000, 3)
    return None


def played_ratio(playhead: list[list[float]], from_epoch_s: float) -> float | None:
    """Media seconds played per wall second from ``from_epoch_s`` to the last sample."""
    after = [(at_ms, now) for at_ms, now in playhead if at_ms >= from_epoch_s * 1000]
    if len(after) < 2 or after[-1][0] <= after[0][0]:
        return None
    return round((after[-1][1] - after[0][1]) / ((after[-1][0] - after[0][0]) / 1000), 3)


def stills(playhead: list[list[float]], min_s: float = 0.5) -> list[tuple[float, float]]:
    """(epoch s, length s) of each time the playhead stood still at least ``min_s``: the
    stalls the viewer saw."""
    found: list[tuple[float, float]] = []
    since = playhead[0][0] if playhead else 0.0
    for (_, before), (at_ms, now) in itertools.pairwise(playhead):
        if now > before:
            if (at_ms - since) / 1000 >= min_s:
                found.append((since / 1000, round((at_ms - since) / 1000, 3)))
            since = at_ms
    if playhead and (playhead[-1][0] - since) / 1000 >= min_s:
        found.append((since / 1000, round((playhead[-1][0] - since) / 1000, 3)))
    return found


async def test_hls_js_resumes_within_2s_of_an_origin_hang(tmp_path: Path) -> None:
    _require()
    timeline = Timeline("browser-origin-hang")
    serve = LiveServe(tmp_path, "--channel", f"chaos={KEY}")
    publisher = _publisher(tmp_path, "")
    player: asyncio.subprocess.Process | None = None
    events: list[dict[str, Any]] = []
    try:
        serve.start()
        publisher.argv[-2] = f"rtmp://127.0.0.1:{serve.rtmp}/live/{KEY}"
        publisher.start()
        await _live(serve.base)
        await asyncio.sleep(4)
        player = await asyncio.create_subprocess_exec(
            "node", str(PLAY_SCRIPT), "--web-root", str(WEB_ROOT), "--url", f"{serve.base}/",
            "--bare", f"{serve.base}/hls/chaos/master.m3u8", "--seconds", str(PLAY_S),
            "--chromium", str(CHROMIUM), "--startup-timeout", "25",
            "--actions", json.dumps([{"at": 0, "js": RECORD_PLAYHEAD}, {"at": PLAY_S - 2, "js": BUFFERED}]),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert player.stdout is not None
        async with asyncio.timeout(60):  # the player's "started" (or an early "done")
            while not any(e.get("event") in ("started", "done") for e in events):
                line = await player.stdout.readline()
                if not line:
                    break
                with contextlib.suppress(json.JSONDecodeError):
                    events.append(json.loads(line))
        assert any(e.get("event") == "started" for e in events), events
        timeline.note("hls.js playing")
        await asyncio.sleep(HANG_AT_S)
        await asyncio.to_thread(process.hang, serve, HANG_S, timeline)
        back = time.time()
        out, err = await asyncio.wait_for(player.communicate(), PLAY_S + 45)
        for text in out.decode(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(text))
        done = next((e for e in events if e.get("event") == "done"), None)
        assert done is not None and done.get("ok"), f"{done}; stderr:\n{err.decode(errors='replace')[-2000:]}"
        stats = done["stats"]
        playhead = stats.get("playhead") or []
        resumed = playhead_resume_s(playhead, back)
        epoch_to_t = time.time() - time.monotonic() + timeline.t0  # epoch of the timeline's zero
        still = stills(playhead)
        for start, length in still:
            timeline.events.append({"t_s": round(start - epoch_to_t, 3), "event": "viewer stall",
                                    "length_s": length})
        timeline.result(player_resumed_after_sigcont_s=resumed,
                        played_per_second_from_2s_after=played_ratio(playhead, back + RESUME_S),
                        longest_stall_s=max((length for _, length in still), default=0.0),
                        hls_errors=stats["errors"], hls_fatal_errors=stats["fatalErrors"],
                        waiting_events=stats["stalls"], http_errors=len(done.get("httpErrors", [])),
                        error_log=stats["errorLog"][:10], playhead_samples=len(playhead),
                        # the player's view each second: playhead, hls.js latency to the live edge
                        buffered_near_end=[e["result"] for e in events if e.get("event") == "action"][-1:],
                        per_second=[(round(e["stats"]["currentTime"], 2), e["stats"]["latency"])
                                    for e in events if e.get("event") == "sample"])
    finally:
        if player is not None and player.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                player.kill()
            await player.wait()
        publisher.close()
        serve.close()
        timeline.write()
    results = timeline.results
    print(f"hls.js through an origin hang: {results}")
    assert results["playhead_samples"] > 100, results
    assert results["hls_fatal_errors"] == 0, results
    assert resumed is not None and resumed < RESUME_S, results
    assert results["played_per_second_from_2s_after"] >= 0.8, results
