"""A reconnecting publisher: the old stream's last parts and its end never touch the new stream."""

from __future__ import annotations

from live.mediapath import StreamSink
from live.origin.store import OriginStore
from live.package.parts import InitSegment, Part
from live.package.sink import PartSink
from live.package.timing import ChannelTiming

TIMING = ChannelTiming(2, 0.334)
INIT = InitSegment("360p30", b"\x00\x00\x00\x10ftypiso6", "avc1.64001e,mp4a.40.2", 1_000_000, 640, 360, 30.0)


def part(msn: int, index: int) -> Part:
    return Part("360p30", msn, index, b"moofmdat", 0.334, index == 0, 1.7e9, False)


def test_the_old_streams_end_does_not_end_the_stream_that_replaced_it() -> None:
    origin = OriginStore()
    old = StreamSink(origin, "demo", TIMING)
    old.publish_init("demo", INIT, TIMING)
    old.publish_part("demo", part(0, 0))
    new = StreamSink(origin, "demo", TIMING)  # the publisher reconnected
    new.publish_init("demo", INIT, TIMING)
    new.publish_part("demo", part(0, 0))
    old.publish_part("demo", part(0, 1))  # the old worker's flush arrives late
    old.drop_rendition("demo", "360p30")
    old.end("demo")
    state = origin.channel("demo")
    assert state is new.state and not state.ended
    rendition = state.rendition("360p30")
    assert rendition is not None and rendition.last is not None
    assert (rendition.last.msn, rendition.last.part) == (0, 0)
    new.end("demo")
    assert state.ended


def test_a_stream_sink_is_a_part_sink() -> None:
    sink: PartSink = StreamSink(OriginStore(), "demo", TIMING)
    assert isinstance(sink, PartSink)
