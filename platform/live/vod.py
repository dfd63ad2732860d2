"""`live transcode INPUT --out DIR`: the live media path run on a file, as fast as it goes.

The file's access units go through the same TranscodePipeline (file mode: nothing is dropped
for lateness), the same LadderPackager and the same origin store and playlist renderer as a
live stream, and the ended channel is written out as a static LL-HLS tree:
``DIR/master.m3u8``, one media playlist per rung, and each rung's init, part and segment
files at the relative URIs the playlists name. It is the VOD upload path and the transcode
throughput benchmark in one.

The whole output is held in memory until it is written (the packager's sink here is the
in-memory origin store), so the input size bounds it: about the sum of the ladder's bitrates
times the duration.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from live.media.units import AccessUnit, TrackKind
from live.origin.playlists import init_uri, part_uri, render_media, render_multivariant, segment_uri
from live.origin.store import ChannelState, OriginSettings, OriginStore
from live.package.ladder_packager import LadderPackager, PackagingSettings
from live.transcode.encoders import EncoderSettings, select_encoder
from live.transcode.filesource import open_file, read_units
from live.transcode.ladder import LadderSettings, SourceInfo, build_ladder
from live.transcode.pipeline import TranscodePipeline, TranscodeSettings

log = logging.getLogger("live.vod")

VOD_CHANNEL = "vod"


@dataclass(frozen=True, slots=True)
class VodResult:
    out_dir: Path
    renditions: tuple[str, ...]
    retired: dict[str, str]
    source_frames: int
    media_s: float
    wall_s: float
    encoder: str
    files: int
    bytes_written: int

    @property
    def realtime_factor(self) -> float:
        return self.media_s / self.wall_s if self.wall_s > 0 else float("inf")


def transcode_file(
    source_path: Path,
    out_dir: Path,
    *,
    settings: PackagingSettings | None = None,
    ladder_settings: LadderSettings | None = None,
    encoder_settings: EncoderSettings | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> VodResult:
    """Transcode ``source_path`` into an LL-HLS tree under ``out_dir``."""
    settings = settings or PackagingSettings()
    started = time.perf_counter()
    source = open_file(source_path)
    ladder = build_ladder(
        SourceInfo(source.video.width, source.video.height, source.fps, source.video.codec,
                   audio=source.audio),
        ladder_settings,
    )
    encoder = select_encoder(source.video.codec)
    pipeline = TranscodePipeline(
        source.video, ladder, encoder,
        TranscodeSettings(realtime=False, encoder=encoder_settings or EncoderSettings()),
        audio=source.audio,
    )
    origin = OriginStore(OriginSettings(
        timing=settings.timing, dvr_window_s=10 * 365 * 86400.0, channel_byte_budget=1 << 40,
    ))
    origin.open(VOD_CHANNEL, settings.timing)
    packager = LadderPackager(VOD_CHANNEL, origin, settings, source_has_audio=source.audio is not None)
    for event in pipeline.start():
        packager.handle(event)
    frames = 0
    first_ms: int | None = None
    last_ms = 0
    for unit in shifted_to_zero(read_units(source_path, with_audio=source.audio is not None)):
        if unit.kind is TrackKind.VIDEO:
            frames += 1
            first_ms = unit.pts_ms if first_ms is None else min(first_ms, unit.pts_ms)
            last_ms = max(last_ms, unit.pts_ms)
            events = pipeline.push_video(unit)
            if on_progress is not None and frames % 30 == 0:
                on_progress((last_ms - (first_ms or 0)) / 1000)
        else:
            events = pipeline.push_audio(unit)
        for event in events:
            packager.handle(event)
    for event in pipeline.flush():
        packager.handle(event)
    packager.finish()
    state = origin.channel(VOD_CHANNEL)
    if state is None or not packager.active:
        raise RuntimeError(f"{source_path}: no rendition could be packaged: {packager.retired}")
    files, nbytes = write_tree(state, out_dir)
    media_s = (last_ms - (first_ms or 0)) / 1000 + 1 / source.fps
    return VodResult(out_dir, packager.active, packager.retired, frames, media_s,
                     time.perf_counter() - started, encoder.name, files, nbytes)


def shifted_to_zero(units: Iterator[AccessUnit], lookahead: int = 64) -> Iterator[AccessUnit]:
    """Shift every track by one offset so no DTS is negative.

    MP4 edit lists (B-frame delay) and AAC priming put the first DTS below zero; packaging
    needs a non-negative timeline. The offset comes from the lowest DTS among the first
    ``lookahead`` units and applies to both tracks, so audio/video sync is untouched.
    """
    head = list(itertools.islice(units, lookahead))
    lowest = min((u.dts_ms for u in head), default=0)
    offset = -lowest if lowest < 0 else 0
    for unit in itertools.chain(head, units):
        if offset:
            unit = replace(unit, dts_ms=unit.dts_ms + offset, pts_ms=unit.pts_ms + offset)
        if unit.dts_ms < 0:
            raise ValueError(f"DTS {unit.dts_ms} ms still negative after shifting by {offset} ms")
        yield unit


def write_tree(state: ChannelState, out_dir: Path) -> tuple[int, int]:
    """Write an ended channel's playlists and media files; returns (files, bytes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[int] = []

    def put(relative: str, data: bytes | memoryview) -> None:
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(len(data))

    put("master.m3u8", render_multivariant(state).encode())
    for name, rendition in state.renditions.items():
        put(f"{name}.m3u8", render_media(state, name).encode())
        put(init_uri(state.epoch, name), rendition.init.data)
        for segment in rendition.segments:
            if segment.data is not None:
                put(segment_uri(state.epoch, name, segment.msn), segment.data)
            for part in segment.parts:
                put(part_uri(state.epoch, name, part.msn, part.index), part.data)
    return len(written), sum(written)
