"""TeeSink: every sink sees the same accepted stream; what the first refuses goes no further."""

from __future__ import annotations

import pytest
from live.origin.store import OriginStore
from live.package.parts import InitSegment, Part
from live.package.sink import PublishError, TeeSink
from live.package.timing import ChannelTiming


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        self.calls.append(("init", init.rendition))

    def publish_part(self, channel: str, part: Part) -> None:
        self.calls.append(("part", (part.msn, part.index)))

    def drop_rendition(self, channel: str, rendition: str) -> None:
        self.calls.append(("drop", rendition))

    def end(self, channel: str) -> None:
        self.calls.append(("end", channel))


def test_the_tee_forwards_in_order_and_stops_what_the_first_sink_refuses() -> None:
    origin, second = OriginStore(), Recorder()
    tee = TeeSink(origin, second)
    init = InitSegment("720p", b"init", "avc1.64001f", 1_000_000, 1280, 720, 30.0)
    tee.publish_init("alpha", init, ChannelTiming())
    tee.publish_part("alpha", Part("720p", 0, 0, b"part", 0.3, True, 1.0, False))
    with pytest.raises(PublishError):  # out of order: the origin refuses it
        tee.publish_part("alpha", Part("720p", 5, 0, b"part", 0.3, True, 1.0, False))
    tee.drop_rendition("alpha", "720p")
    tee.end("alpha")
    assert second.calls == [("init", "720p"), ("part", (0, 0)), ("drop", "720p"), ("end", "alpha")]
