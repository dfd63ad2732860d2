"""Helpers: a DVR on a temporary directory with a simulated clock, fed like the packager feeds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from live.dvr.catalog import DvrCatalog, DvrSettings
from live.dvr.disk import LocalDiskStore
from live.dvr.service import Dvr
from live.dvr.writer import InlineWriter
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming
from live.transcode.ladder import DEFAULT_RUNGS

T0 = 1_700_000_000.0
TIMING = ChannelTiming()

#: The full default ladder (six rungs, audio muxed into each), as the packager announces it.
LADDER = tuple(
    InitSegment(rung.label, f"init-{rung.label}".encode() * 4, "avc1.64001f,mp4a.40.2",
                (rung.video_kbps + 128) * 1000, rung.height * 16 // 9, rung.height, rung.max_fps)
    for rung in DEFAULT_RUNGS
)


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


def make_dvr(root: Path, clock: Clock, **settings: float | int | bool) -> Dvr:
    """A DVR restored from ``root``, writing inline (no thread) and without fsync."""
    dvr_settings = DvrSettings(durable=False, **settings)  # type: ignore[arg-type]
    dvr = Dvr(LocalDiskStore(root, durable=False), DvrCatalog(dvr_settings, clock=clock), InlineWriter())
    dvr.restore()
    return dvr


@dataclass
class Feed:
    """Publishes 2 s segments of ``parts_per_segment`` parts to every rendition of a ladder,
    advancing the clock in step (capture time = clock)."""

    dvr: Dvr
    clock: Clock
    channel: str = "alpha"
    renditions: tuple[InitSegment, ...] = LADDER
    parts_per_segment: int = 3
    segment_s: float = 2.0
    #: bytes per segment of each rendition (scaled down from the real bitrates)
    segment_bytes: dict[str, int] = field(default_factory=dict)
    msn: int = 0

    def start(self) -> Feed:
        for init in self.renditions:
            self.dvr.recorder.publish_init(self.channel, init, TIMING)
        return self

    def nbytes(self, rendition: str) -> int:
        return self.segment_bytes.get(rendition, 300)

    def segment(self) -> dict[str, bytes]:
        """One segment of every rendition; answers each segment's bytes."""
        part_s = self.segment_s / self.parts_per_segment
        written = {}
        for init in self.renditions:
            size = self.nbytes(init.rendition) // self.parts_per_segment
            chunks = []
            for index in range(self.parts_per_segment):
                data = f"{init.rendition}:{self.msn}.{index}:".encode().ljust(size, b".")
                chunks.append(data)
                self.dvr.recorder.publish_part(self.channel, Part(
                    init.rendition, self.msn, index, data, part_s, index == 0,
                    self.clock.now + index * part_s, index == self.parts_per_segment - 1))
            written[init.rendition] = b"".join(chunks)
        self.clock.now += self.segment_s
        self.msn += 1
        return written

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.segment_s)):
            self.segment()
