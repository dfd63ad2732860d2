"""Where a packager's output goes: the ``PartSink`` protocol.

The packager (``ladder_packager``) writes each rendition's init segment and then its parts to a
sink, retires a rendition it can no longer package, and ends the stream. It knows no more about
the sink than these four operations, so the in-memory origin (``live.origin.store.OriginStore``),
a push to remote origins over HTTP and a DVR store on disk are interchangeable behind it, and
none of them touches the segmenter.

A sink refuses what it cannot take by raising ``PublishError``: the packager published
something wrong (out of order, over a target duration), so the packager is at fault and
retires that rendition; the stream's other renditions go on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming


class StreamIds:
    """Fresh stream ids (a stream's epoch in its media URLs): the clock's milliseconds in base 36,
    strictly increasing even when the clock repeats or steps back. The origin names local
    streams with one, a CMAF pusher the streams it pushes to every origin."""

    _DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> str:
        value = self._last = max(int(self._clock() * 1000), self._last + 1)
        out = ""
        while True:
            value, rem = divmod(value, 36)
            out = self._DIGITS[rem] + out
            if value == 0:
                return out


class PublishError(ValueError):
    """The packager published something the sink cannot serve; the packager is at fault."""


@runtime_checkable
class PartSink(Protocol):
    """The four things a packager does to a channel's output, in this order per rendition:
    one init, then its parts; a rendition may be dropped at any time; the stream ends once."""

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        """Add (or repeat, identically) rendition ``init.rendition``; ``timing`` is the channel's,
        the same for every init of one stream."""

    def publish_part(self, channel: str, part: Part) -> None:
        """Append the next part of ``part.rendition``, whose init was published before."""

    def drop_rendition(self, channel: str, rendition: str) -> None:
        """Withdraw a rendition the packager retired; unknown names are ignored."""

    def end(self, channel: str) -> None:
        """The stream ended (also when nothing was published for it): close open segments."""


class TeeSink:
    """One packager's output to several sinks, in order (the origin first, then e.g. the DVR).

    A sink that refuses an operation (``PublishError``) stops it there: what the first sink
    refuses never reaches the others, so they see the same accepted stream.
    """

    def __init__(self, *sinks: PartSink) -> None:
        self.sinks = sinks

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        for sink in self.sinks:
            sink.publish_init(channel, init, timing)

    def publish_part(self, channel: str, part: Part) -> None:
        for sink in self.sinks:
            sink.publish_part(channel, part)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        for sink in self.sinks:
            sink.drop_rendition(channel, rendition)

    def end(self, channel: str) -> None:
        for sink in self.sinks:
            sink.end(channel)
