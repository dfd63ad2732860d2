"""Many viewers of one channel in one process, WHEP or LL-HLS, for load tests and benchmarks.

``python -m live.selftest.viewer_swarm --base URL --channel C --steps 10,50 --window 10`` opens
viewers in steps; after each step has settled it reports every viewer's frame (or part)
count at the start and the end of a measuring window as JSON lines on stdout (``--sync``
waits for a line on stdin first, so several swarm processes measure one window), so the process
that runs the server can measure its own CPU over exactly that window and compare what each
viewer received with what the server sent. WHEP viewers count coded frames without decoding
(``WhepViewer``); LL-HLS viewers follow the playlist with blocking reloads and download every
part, as a player does, without decoding either. ``--publish KEY`` also publishes the channel
over WHIP from this process (aiortc encodes the clock card here, not in the server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp

from live.selftest.hls_client import (
    Cursor,
    blocking_reload_url,
    parse_media,
    parse_multivariant,
    pick_variant,
    plan,
    start_cursor,
)
from live.selftest.webrtc_client import ClockVideoTrack, WhepViewer, WhipPublisher


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "wall": time.time(), **fields}) + "\n")
    sys.stdout.flush()


class HlsViewer:
    """An LL-HLS viewer that downloads every part of one rendition (no decoding)."""

    def __init__(self, base_url: str, channel: str, rendition: str | None) -> None:
        self.master = f"{base_url}/hls/{channel}/master.m3u8"
        self.rendition = rendition
        self.parts = 0
        self.bytes = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, http: aiohttp.ClientSession) -> int:
        self._task = asyncio.get_running_loop().create_task(self._run(http))
        return 200

    async def _run(self, http: aiohttp.ClientSession) -> None:
        async with http.get(self.master) as response:
            variants = parse_multivariant(await response.text(), self.master)
        url = pick_variant(variants, self.rendition).uri
        async with http.get(url) as response:
            playlist = parse_media(await response.text(), url)
        cursor: Cursor = start_cursor(playlist)
        while not playlist.endlist:
            steps = plan(playlist, cursor, ())
            cursor = steps.cursor
            for item in steps.fetches:
                if not item.is_marker:
                    async with http.get(item.uri) as response:
                        self.bytes += len(await response.read())
                    self.parts += item.part is not None
                cursor = cursor.after(item)
            msn, part = playlist.next_position
            reload = blocking_reload_url(url, msn, part)
            async with http.get(reload) as response:
                if response.status != 200:
                    await asyncio.sleep(0.2)
                    continue
                playlist = parse_media(await response.text(), url)

    @property
    def count(self) -> int:
        return self.parts

    async def close(self, http: aiohttp.ClientSession) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def swarm(args: argparse.Namespace) -> None:
    publisher: WhipPublisher | None = None
    if args.publish:
        publisher = WhipPublisher(args.base, args.channel, args.publish,
                                  track=ClockVideoTrack(args.width, args.height))
        await publisher.__aenter__()
        emit("publishing")
    viewers: list[Any] = []
    refused: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            for target in (int(s) for s in args.steps.split(",")):
                while len(viewers) < target:
                    viewer: Any = (
                        WhepViewer(args.base, args.channel, args.rendition, audio=args.audio)
                        if args.protocol == "whep" else HlsViewer(args.base, args.channel, args.rendition))
                    answer = await viewer.start(http)
                    status = answer if isinstance(answer, int) else answer.status
                    if status in (200, 201):
                        viewers.append(viewer)
                    else:
                        refused[str(status)] = refused.get(str(status), 0) + 1
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1"))
                                            if not isinstance(answer, int) else 1.0)
                await asyncio.sleep(args.settle)
                if args.sync:  # several swarms measure one window together: wait for "go"
                    emit("ready", viewers=len(viewers))
                    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                emit("window-start", viewers=len(viewers), counts=[_count(v) for v in viewers],
                     refused=refused)
                await asyncio.sleep(args.window)
                emit("window-end", viewers=len(viewers), counts=[_count(v) for v in viewers])
        finally:
            await asyncio.gather(*(v.close(http) for v in viewers), return_exceptions=True)
            if publisher is not None:
                await publisher.close()
    emit("done")


def _count(viewer: Any) -> int:
    return int(viewer.stats.frames) if isinstance(viewer, WhepViewer) else int(viewer.count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.selftest.viewer_swarm", description=__doc__)
    parser.add_argument("--base", required=True, help="http://HOST:PORT of the platform")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--protocol", choices=("whep", "hls"), default="whep")
    parser.add_argument("--rendition", default=None, help="pin one rendition (default: the server's choice)")
    parser.add_argument("--steps", default="50", help="viewer counts to reach in turn, e.g. 10,20,50")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after each step before measuring")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per step")
    parser.add_argument("--publish", default=None, metavar="KEY", help="also publish over WHIP with KEY")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--audio", action="store_true", help="WHEP viewers also take the Opus track")
    parser.add_argument("--sync", action="store_true",
                        help="before each window, print 'ready' and wait for a line on stdin")
    asyncio.run(swarm(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
