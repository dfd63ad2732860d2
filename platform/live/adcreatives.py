"""Ad creatives for `live serve --ad-creatives N`: a few short clips made with `live transcode`.

At start the platform makes N clips (a test pattern, each in its own hue, with a tone) and runs
each through the same path `live transcode` does (``live.vod.transcode_file``), into
``DATA/ads/{i}/master.m3u8``; they are served under ``/ads/`` and offered in the ad breaks'
asset lists. Made once: a data directory that has them already reuses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path

from aiohttp import web

from live.commerce.ads import AdBreaks
from live.transcode.encoders import EncoderSettings
from live.vod import transcode_file

log = logging.getLogger("live.ads")

URL_PREFIX = "/ads"
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+),", re.MULTILINE)


async def _source(path: Path, index: int, seconds: float) -> None:
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=640x360:rate=30,hue=h={index * 110}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={660 + 110 * index}:sample_rate=48000",
        "-t",
        f"{seconds:g}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "60",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        str(path),
    )
    if await process.wait() != 0:
        raise RuntimeError(f"ffmpeg could not make ad source {path}")


def _duration(master: Path) -> float:
    """The length of the clip: the sum of EXTINF of its first rung's media playlist."""
    rung = next(line for line in master.read_text().splitlines() if line and not line.startswith("#"))
    return round(sum(float(value) for value in _EXTINF.findall((master.parent / rung).read_text())), 3)


async def ensure_creatives(root: Path, count: int, seconds: float = 15.0) -> tuple[tuple[str, float], ...]:
    """The creatives under ``root`` (made now where missing), as (URI, duration) pairs."""
    made: list[tuple[str, float]] = []
    for index in range(count):
        out = root / str(index)
        master = out / "master.m3u8"
        if not master.is_file():
            root.mkdir(parents=True, exist_ok=True)
            source = root / f"source-{index}.mp4"
            await _source(source, index, seconds)
            result = await asyncio.to_thread(
                transcode_file, source, out, encoder_settings=EncoderSettings(preset="ultrafast")
            )
            source.unlink(missing_ok=True)
            log.info("ad creative %d: %d renditions in %.1f s", index, len(result.renditions), result.wall_s)
        made.append((f"{URL_PREFIX}/{index}/master.m3u8", _duration(master)))
    return tuple(made)


def start_ad_creatives(
    app: web.Application, ads: AdBreaks, root: Path, count: int, stack: contextlib.AsyncExitStack
) -> None:
    """Serve ``root`` under ``/ads/`` and make the clips in the background; ad breaks offer them
    as soon as they are ready (the platform serves meanwhile)."""
    root.mkdir(parents=True, exist_ok=True)
    app.router.add_static(URL_PREFIX, root)

    async def make() -> None:
        try:
            ads.creatives = await ensure_creatives(root, count)
        except Exception:
            log.exception("ad creatives could not be made; ad breaks will have none")

    task = asyncio.ensure_future(make())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
