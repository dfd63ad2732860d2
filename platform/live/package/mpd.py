"""The dynamic DASH MPD of a live channel (ISO/IEC 23009-1), for low-latency DASH players.

Pure: plain descriptions of representations and their segments in, MPD text out. The origin
describes the very CMAF segments and parts it serves for LL-HLS, so DASH costs no second
packaging and no copy. What the MPD states, and why:

* ``type="dynamic"`` with ``availabilityStartTime`` chosen so that media time T is on the wall
  clock at AST + T (5.3.9.5.3); ``UTCTiming`` lets players sync to the origin's clock (5.8.4.11);
* ``SegmentTemplate`` with ``$Number$`` and a ``SegmentTimeline`` (5.3.9.4, 5.3.9.6): numbers
  are the LL-HLS media sequence numbers and ``S@t`` the segments' ``tfdt``, so a segment has one
  URL and one byte string for both protocols; runs of equal durations collapse into ``@r``;
* the segment being produced is listed with its nominal duration, and
  ``availabilityTimeOffset`` = segment duration - part duration with
  ``availabilityTimeComplete="false"`` (5.3.9.5.3, DASH-IF IOP low-latency modes) tells a
  player it may request it once its first part exists: the origin then sends it with chunked
  transfer encoding, one CMAF chunk per part, as they arrive;
* ``ServiceDescription`` (Annex K) carries the target, minimum and maximum live latency and the
  playback-rate range a player may use to hold it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILES = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
UTC_HTTP_ISO = "urn:mpeg:dash:utc:http-iso:2014"
MPD_TYPE = "application/dash+xml"


@dataclass(frozen=True, slots=True)
class TimelineSegment:
    """One segment: its number ($Number$), start (``tfdt``) and duration in the timescale."""

    number: int
    start: int
    duration: int


@dataclass(frozen=True, slots=True)
class MpdRepresentation:
    id: str
    bandwidth: int
    codecs: str
    mime_type: str  # "video/mp4" or "audio/mp4"
    timescale: int
    initialization: str  # URL template relative to the MPD
    media: str  # with $Number$
    segments: tuple[TimelineSegment, ...]
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    #: Seconds before a segment's end it may be requested (LL: duration - part duration).
    availability_time_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class ServiceLatency:
    """Annex K.4.2.2: the latency a player should aim for, in milliseconds."""

    target_ms: int
    min_ms: int
    max_ms: int
    min_playback_rate: float = 0.96
    max_playback_rate: float = 1.04


@dataclass(frozen=True, slots=True)
class LiveMpd:
    period_id: str  # the stream's epoch: a restarted stream is a new period
    availability_start: float  # epoch seconds at which media time 0 is live
    publish_time: float
    minimum_update_period_s: float
    min_buffer_time_s: float
    max_segment_duration_s: float
    time_shift_buffer_depth_s: float
    latency: ServiceLatency
    utc_timing_url: str
    representations: tuple[MpdRepresentation, ...] = field(default_factory=tuple)
    ended: bool = False


def iso_datetime(epoch_s: float) -> str:
    stamp = datetime.fromtimestamp(epoch_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def iso_duration(seconds: float) -> str:
    """An xs:duration in seconds, e.g. PT2S, PT0.334S."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def timeline_runs(segments: Iterable[TimelineSegment]) -> Iterator[tuple[int | None, int, int]]:
    """``(t, d, r)`` for each ``S``: ``t`` only where the timeline is not contiguous (a gap),
    ``r`` the count of further segments of the same duration (5.3.9.6)."""
    run: list[int] = []  # [t, d, r]
    expected: int | None = None
    first = True
    for seg in segments:
        if run and seg.start == expected and seg.duration == run[1]:
            run[2] += 1
        else:
            if run:
                yield (run[0] if run[0] >= 0 else None, run[1], run[2])
            run = [seg.start if first or seg.start != expected else -1, seg.duration, 0]
            first = False
        expected = seg.start + seg.duration
    if run:
        yield (run[0] if run[0] >= 0 else None, run[1], run[2])


def _segment_template(rep: MpdRepresentation, indent: str) -> list[str]:
    start_number = rep.segments[0].number if rep.segments else 0
    attrs = [f'timescale="{rep.timescale}"', f"initialization={quoteattr(rep.initialization)}",
             f"media={quoteattr(rep.media)}", f'startNumber="{start_number}"']
    if rep.availability_time_offset > 0:
        attrs += [f'availabilityTimeOffset="{_number(rep.availability_time_offset)}"',
                  'availabilityTimeComplete="false"']
    lines = [f"{indent}<SegmentTemplate {' '.join(attrs)}>", f"{indent}  <SegmentTimeline>"]
    for t, d, r in timeline_runs(rep.segments):
        s = ([f't="{t}"'] if t is not None else []) + [f'd="{d}"'] + ([f'r="{r}"'] if r else [])
        lines.append(f"{indent}    <S {' '.join(s)}/>")
    lines += [f"{indent}  </SegmentTimeline>", f"{indent}</SegmentTemplate>"]
    return lines


def _representation(rep: MpdRepresentation, indent: str) -> list[str]:
    attrs = [f"id={quoteattr(rep.id)}", f'bandwidth="{rep.bandwidth}"',
             f"codecs={quoteattr(rep.codecs)}"]
    if rep.width is not None and rep.height is not None:
        attrs += [f'width="{rep.width}"', f'height="{rep.height}"']
    if rep.frame_rate is not None:
        attrs.append(f'frameRate="{_frame_rate(rep.frame_rate)}"')
    return [f"{indent}<Representation {' '.join(attrs)}>",
            *_segment_template(rep, indent + "  "), f"{indent}</Representation>"]


def _frame_rate(fps: float) -> str:
    """xs FrameRateType: an integer or a ratio (29.97 -> 30000/1001)."""
    if abs(fps - round(fps)) < 1e-3:
        return str(round(fps))
    return f"{round(fps * 1001)}/1001"


def render_mpd(mpd: LiveMpd) -> str:
    """The MPD document (ISO/IEC 23009-1 5.3.1.2 element order)."""
    live = not mpd.ended
    attrs = [f'xmlns="{MPD_NAMESPACE}"', f'profiles="{PROFILES}"',
             f'type="{"dynamic" if live else "static"}"',
             f'availabilityStartTime="{iso_datetime(mpd.availability_start)}"',
             f'publishTime="{iso_datetime(mpd.publish_time)}"']
    if live:
        attrs += [f'minimumUpdatePeriod="{iso_duration(mpd.minimum_update_period_s)}"',
                  f'timeShiftBufferDepth="{iso_duration(mpd.time_shift_buffer_depth_s)}"']
    else:  # the stream ended: the MPD turns static with its duration known (5.4.1)
        total = max((_end_s(rep) for rep in mpd.representations), default=0.0)
        attrs.append(f'mediaPresentationDuration="{iso_duration(total)}"')
    attrs += [f'minBufferTime="{iso_duration(mpd.min_buffer_time_s)}"',
              f'maxSegmentDuration="{iso_duration(mpd.max_segment_duration_s)}"']
    lat = mpd.latency
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<MPD {' '.join(attrs)}>"]
    lines += [
        '  <ServiceDescription id="0">',
        f'    <Latency target="{lat.target_ms}" min="{lat.min_ms}" max="{lat.max_ms}"/>',
        f'    <PlaybackRate min="{_number(lat.min_playback_rate)}" '
        f'max="{_number(lat.max_playback_rate)}"/>',
        "  </ServiceDescription>",
    ]
    lines.append(f"  <Period id={quoteattr(mpd.period_id)} start=\"PT0S\">")
    for index, (content, mime) in enumerate((("video", "video/mp4"), ("audio", "audio/mp4"))):
        reps = [rep for rep in mpd.representations if rep.mime_type == mime]
        if not reps:
            continue
        set_attrs = [f'id="{index}"', f'contentType="{content}"', f'mimeType="{mime}"',
                     'segmentAlignment="true"', 'startWithSAP="1"']
        if content == "video":
            set_attrs += [f'maxWidth="{max(rep.width or 0 for rep in reps)}"',
                          f'maxHeight="{max(rep.height or 0 for rep in reps)}"']
        lines.append(f"    <AdaptationSet {' '.join(set_attrs)}>")
        lines.append('      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>')
        ordered = sorted(reps, key=lambda rep: rep.bandwidth)
        for rep in ordered:
            lines += _representation(rep, "      ")
        lines.append("    </AdaptationSet>")
    lines.append("  </Period>")
    lines.append(f'  <UTCTiming schemeIdUri="{UTC_HTTP_ISO}" value={quoteattr(mpd.utc_timing_url)}/>')
    lines.append("</MPD>")
    return "\n".join(lines) + "\n"


def _end_s(rep: MpdRepresentation) -> float:
    if not rep.segments:
        return 0.0
    last = rep.segments[-1]
    return (last.start + last.duration) / rep.timescale


def init_timescale(init: bytes | memoryview) -> int:
    """The first track's ``mdhd`` timescale in an fMP4 init segment (ISO/IEC 14496-12 8.4.2),
    which is the timescale of the ``tfdt`` values the MPD timeline must match."""
    data = init if isinstance(init, bytes) else bytes(init)
    at = data.find(b"mdhd")
    if at < 4 or at + 24 > len(data):
        raise ValueError("init segment has no mdhd box")
    version = data[at + 4]
    offset = at + 8 + (16 if version == 1 else 8)
    if offset + 4 > len(data):
        raise ValueError("truncated mdhd box")
    (timescale,) = struct.unpack_from(">I", data, offset)
    if timescale <= 0:
        raise ValueError("mdhd timescale is 0")
    return int(timescale)
