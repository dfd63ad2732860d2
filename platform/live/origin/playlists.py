"""LL-HLS playlist rendering from the store's state (pure: state in, text out).

URL layout, relative to ``/hls/{channel}/``::

    master.m3u8                         multivariant playlist
    {rendition}.m3u8                    media playlist (blocking reload, delta updates)
    {rendition}/{epoch}/init.mp4        EXT-X-MAP
    {rendition}/{epoch}/{msn}.m4s       segment
    {rendition}/{epoch}/{msn}.{i}.m4s   part

``epoch`` names one stream (run) of the channel, so media URLs are immutable and a restarted stream
(which starts again at msn 0) can never be served from a stale cache. A resumed stream (another
ingest node took it over, ``OriginStore.resume``) keeps its playlists and numbering: its new run
has a new epoch and init, after an EXT-X-DISCONTINUITY.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from live.origin.store import DURATION_SLACK_S, ChannelState, RenditionState, Segment
from live.package.parts import InitSegment
from live.package.timing import ChannelTiming

#: EXT-X-SKIP needs version 9 (RFC 8216bis 8, protocol version compatibility).
MEDIA_PLAYLIST_VERSION = 9


def init_uri(epoch: str, rendition: str) -> str:
    return f"{rendition}/{epoch}/init.mp4"


def segment_uri(epoch: str, rendition: str, msn: int) -> str:
    return f"{rendition}/{epoch}/{msn}.m4s"


def part_uri(epoch: str, rendition: str, msn: int, index: int) -> str:
    return f"{rendition}/{epoch}/{msn}.{index}.m4s"


def media_playlist_uri(rendition: str) -> str:
    return f"{rendition}.m3u8"


def format_program_date_time(epoch_s: float) -> str:
    """ISO 8601 with milliseconds and a Z (RFC 8216bis 4.4.4.6)."""
    stamp = datetime.fromtimestamp(epoch_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def decimal(value: float) -> str:
    """A decimal-floating-point attribute value (RFC 8216bis 4.2), at most 5 decimals."""
    text = f"{value:.5f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant stream of a multivariant playlist: its rendition, rates and playlist URI."""

    init: InitSegment
    peak_bps: int | None
    average_bps: int | None
    uri: str

    @property
    def has_video(self) -> bool:
        init = self.init
        return init.width is not None or any(
            codec.split(".")[0] in ("avc1", "avc3", "hvc1", "hev1", "av01", "vp09")
            for codec in init.codecs.split(",")
        )


def render_multivariant(channel: ChannelState) -> str:
    """The live channel's renditions as variant streams (see ``render_variants``)."""
    return render_variants(
        Variant(rend.init, rend.peak_bandwidth(), rend.average_bandwidth(),
                media_playlist_uri(rend.name))
        for rend in channel.renditions.values()
    )


def render_variants(variants: Iterable[Variant]) -> str:
    """Every rendition as a variant stream (RFC 8216bis 4.4.6.2).

    Video renditions carry muxed audio (the packager's default), so each is complete on its
    own; an audio-only rendition becomes an audio-only variant (CODECS without video), which
    players pick only when nothing else fits. BANDWIDTH is the larger of the declared peak and
    the peak segment rate seen; AVERAGE-BANDWIDTH the mean over the segments held.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in sorted(variants, key=lambda variant: not variant.has_video):
        init = variant.init
        peak = max(init.bandwidth, variant.peak_bps or 0)
        average = min(variant.average_bps or init.bandwidth, peak)
        attrs = [f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={average}", f'CODECS="{init.codecs}"']
        if init.width is not None and init.height is not None:
            attrs.append(f"RESOLUTION={init.width}x{init.height}")
        if init.frame_rate is not None:
            attrs.append(f"FRAME-RATE={init.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"


def media_head(timing: ChannelTiming, first_msn: int, *, parts: bool = True,
               playlist_type: str | None = None, discontinuity_sequence: int = 0) -> list[str]:
    """The header tags of a media playlist (RFC 8216bis 4.4.3, LL-HLS 4.4.3.7-8).

    ``parts`` adds PART-INF and PART-HOLD-BACK (the live low-latency playlist); without them
    it heads a segment-only playlist such as the DVR's, which still blocks and skips.
    """
    control = f"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={decimal(timing.can_skip_until_s)},"
    if parts:
        control += f"PART-HOLD-BACK={decimal(timing.part_hold_back_s)},"
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{MEDIA_PLAYLIST_VERSION}",
             f"#EXT-X-TARGETDURATION:{timing.target_duration_s}"]
    if playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{playlist_type}")
    if parts:
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={decimal(timing.part_target_s)}")
    lines.append(f"#EXT-X-SERVER-CONTROL:{control}HOLD-BACK={decimal(timing.hold_back_s)}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first_msn}")
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    return lines


def skippable_segments(rend: RenditionState, can_skip_until_s: float) -> int:
    """How many leading segments a delta update replaces with EXT-X-SKIP (RFC 8216bis 6.2.5.1).

    Only complete segments that end at least CAN-SKIP-UNTIL before the end of the playlist.
    """
    boundary = rend.edge_s - can_skip_until_s + DURATION_SLACK_S
    # segment ends increase along the window and only the last one can be open (its end is
    # the edge, past any boundary), so a binary search finds the count
    return bisect_right(rend.segments, boundary, key=_end_s)


def _end_s(seg: Segment) -> float:
    return seg.end_s


def _segment_lines(lines: list[str], rend: RenditionState, seg: Segment,
                   channel: ChannelState) -> None:
    """One segment's lines; a gap segment (no media: its publisher's keyframe came late, or its
    encoder stopped) is EXT-X-GAP with GAP=YES parts (RFC 8216bis 4.4.4.7, 4.4.4.9), so players
    skip its time or take it from another variant instead of requesting it."""
    if seg.block:
        lines.append(seg.block)
        return
    if not seg.parts and not seg.complete:
        return
    settled = seg.complete and (not seg.parts or not rend.part_listed(seg.parts[-1], channel.timing))
    first = len(lines)
    if seg.discontinuity:  # a resumed run: new timestamps and init (RFC 8216bis 4.4.4.3, 4.4.4.5)
        lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f'#EXT-X-MAP:URI="{init_uri(seg.epoch, rend.name)}"')
    lines.append("#EXT-X-PROGRAM-DATE-TIME:" + format_program_date_time(seg.program_date_time))
    for part in seg.parts:
        if not rend.part_listed(part, channel.timing):
            continue
        line = (f"#EXT-X-PART:DURATION={decimal(part.duration_s)},"
                f'URI="{part_uri(seg.epoch, rend.name, part.msn, part.index)}"')
        if part.independent:
            line += ",INDEPENDENT=YES"
        lines.append(line + ",GAP=YES" if part.gap else line)
    if seg.complete:
        if seg.gap:
            lines.append("#EXT-X-GAP")
        lines.append(f"#EXTINF:{decimal(seg.duration_s)},")
        lines.append(segment_uri(seg.epoch, rend.name, seg.msn))
    if settled:  # nothing in this block can change any more: render it once
        seg.block = "\n".join(lines[first:])


def render_media(channel: ChannelState, rendition: str, *, skip: bool = False) -> str:
    """One media playlist (RFC 8216bis 4.4.3-4.4.5 with the LL-HLS tags of 4.4.4.9, 4.4.5.2-3).

    ``skip`` asks for a delta update; it is ignored once the stream has ended.
    """
    rend = channel.renditions[rendition]
    timing = channel.timing
    epoch = channel.epoch
    first_msn = rend.segments[0].msn if rend.segments else 0
    lines = media_head(timing, first_msn, discontinuity_sequence=rend.discontinuity_sequence)
    skipped = skippable_segments(rend, timing.can_skip_until_s) if skip and not channel.ended else 0
    # the init of the first segment listed (after a resume, older runs have their own)
    listed = rend.segments[skipped] if skipped < len(rend.segments) else None
    map_epoch = listed.epoch if listed is not None else epoch
    lines.append(f'#EXT-X-MAP:URI="{init_uri(map_epoch, rendition)}"')
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    for seg in islice(rend.segments, skipped, None):
        _segment_lines(lines, rend, seg, channel)
    oldest = rend.segments[0].program_date_time if rend.segments else 0.0
    for date_range in channel.date_ranges:
        if date_range.end_s >= oldest:
            lines.extend(date_range.lines)
    if channel.ended:
        lines.append("#EXT-X-ENDLIST")
    elif rend.last is not None:
        msn, index = rend.last.next_part
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_uri(epoch, rendition, msn, index)}"')
    for other in channel.renditions.values():
        if other.name == rendition or other.last is None:
            continue
        lines.append(f'#EXT-X-RENDITION-REPORT:URI="{media_playlist_uri(other.name)}",'
                     f"LAST-MSN={other.last.msn},LAST-PART={other.last.part}")
    return "\n".join(lines) + "\n"
