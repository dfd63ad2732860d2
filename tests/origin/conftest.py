"""Helpers: a store fed in lock-step like the packager feeds it (all renditions, part by part)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from live.origin.store import OriginSettings, OriginStore
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming

VIDEO = InitSegment("720p", b"\x00\x00\x00\x18ftypiso6init-720p", "avc1.64001f,mp4a.40.2",
                    3_000_000, 1280, 720, 30.0)
LOW = InitSegment("360p", b"\x00\x00\x00\x18ftypiso6init-360p", "avc1.42c01e,mp4a.40.2",
                  800_000, 640, 360, 30.0)
AUDIO = InitSegment("audio", b"\x00\x00\x00\x18ftypiso6init-audio", "mp4a.40.2", 128_000)

T0 = 1_700_000_000.0


@dataclass
class Feed:
    """Publishes parts of ``parts_per_segment`` x ``part_s`` seconds to every rendition."""

    store: OriginStore
    channel: str = "alpha"
    renditions: tuple[InitSegment, ...] = (VIDEO, LOW, AUDIO)
    parts_per_segment: int = 6
    part_s: float = 1 / 3
    part_bytes: int = 200
    msn: int = 0
    index: int = 0
    published: list[tuple[int, int]] = field(default_factory=list)

    def start(self) -> Feed:
        for init in self.renditions:
            self.store.publish_init(self.channel, init)
        return self

    @property
    def wallclock(self) -> float:
        return T0 + (self.msn * self.parts_per_segment + self.index) * self.part_s

    def payload(self, rendition: str) -> bytes:
        return self.payload_at(rendition, self.msn, self.index)

    def payload_at(self, rendition: str, msn: int, index: int) -> bytes:
        tag = f"{rendition}:{msn}.{index}:".encode()
        return tag + b"\xa5" * max(0, self.part_bytes - len(tag))

    def part(self, rendition: str | None = None) -> None:
        """One part for one rendition (or all of them), then advance the position."""
        end = self.index == self.parts_per_segment - 1
        for init in self.renditions:
            if rendition is None or init.rendition == rendition:
                self.store.publish_part(self.channel, Part(
                    init.rendition, self.msn, self.index, self.payload(init.rendition),
                    self.part_s, self.index == 0, self.wallclock, end))
        self.published.append((self.msn, self.index))
        self.msn, self.index = (self.msn + 1, 0) if end else (self.msn, self.index + 1)

    def parts(self, count: int) -> None:
        for _ in range(count):
            self.part()

    def segments(self, count: int) -> None:
        self.parts(count * self.parts_per_segment)


def make_store(target: int = 2, part_target: float = 0.334, **settings: object) -> OriginStore:
    timing = ChannelTiming(target, part_target)
    return OriginStore(OriginSettings(timing=timing, **settings))  # type: ignore[arg-type,unused-ignore]


@pytest.fixture
def store() -> OriginStore:
    return make_store()


@pytest.fixture
def feed(store: OriginStore) -> Feed:
    return Feed(store).start()
