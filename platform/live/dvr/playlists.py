"""DVR and VOD playlists from a recording (pure: catalog state in, text out).

URL layout, relative to ``/hls/{channel}/dvr/`` (the channel's latest recording) or
``/hls/{channel}/vod/{recording}/`` (any recording)::

    master.m3u8                  multivariant playlist (the renditions of the latest run)
    {rendition}.m3u8             media playlist over the whole window
    {rendition}/init-{run}.mp4   EXT-X-MAP of one run
    {rendition}/{msn}.m4s        segment

A media playlist lists segments only (the live playlist has the parts), each with its
EXT-X-PROGRAM-DATE-TIME. It offers delta updates (RFC 8216bis 6.2.5.1: a client reloading a
4-hour playlist with ``_HLS_skip=YES`` gets EXT-X-SKIP and the last CAN-SKIP-UNTIL seconds) and
blocking reload at its end. Each resumed run follows an EXT-X-DISCONTINUITY and its own
EXT-X-MAP; a segment a crash lost in one rendition only is an EXT-X-GAP (4.4.4.7). An ended
recording is a VOD: EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST (4.4.3.5, 4.4.3.4).
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import islice

from live.dvr.catalog import Recording, Track
from live.dvr.index import SegmentRecord
from live.origin.playlists import (
    Variant,
    decimal,
    format_program_date_time,
    media_head,
    media_playlist_uri,
    render_variants,
)
from live.origin.store import DURATION_SLACK_S


def init_file(run: int) -> str:
    return f"init-{run}.mp4"


def segment_file(msn: int) -> str:
    return f"{msn}.m4s"


def render_dvr_multivariant(recording: Recording) -> str:
    variants = []
    for init in recording.current_inits():
        track = recording.tracks.get(init.rendition)
        average = peak = None
        if track is not None and track.duration_s > 0:
            average = round(track.nbytes * 8 / track.duration_s)
            peak = max(round(seg.nbytes * 8 / seg.duration_s) for seg in track.segments)
        variants.append(Variant(init.init_segment(), peak, average, media_playlist_uri(init.rendition)))
    return render_variants(variants)


def skippable(track: Track, can_skip_until_s: float) -> int:
    """Leading segments that end at least CAN-SKIP-UNTIL before the playlist's end."""
    if not track.segments:
        return 0
    boundary = track.segments[-1].end_pdt - can_skip_until_s + DURATION_SLACK_S
    return bisect_right(track.segments, boundary, key=_end_pdt)


def _end_pdt(record: SegmentRecord) -> float:
    return record.end_pdt


def render_dvr_media(recording: Recording, rendition: str, *, skip: bool = False) -> str:
    """One rendition's playlist over the recording's window; ``skip`` asks for a delta update
    (ignored for a VOD)."""
    track = recording.tracks.get(rendition) or Track()
    timing = recording.timing
    segments = track.segments
    lines = media_head(timing, segments[0].msn if segments else recording.next_msn, parts=False,
                       playlist_type="VOD" if recording.ended else None,
                       discontinuity_sequence=track.discontinuities_before)
    skipped = skippable(track, timing.can_skip_until_s) if skip and not recording.ended else 0
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    previous: SegmentRecord | None = None
    for record in islice(segments, skipped, None):
        if previous is None or record.run != previous.run:
            if previous is not None:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="{rendition}/{init_file(record.run)}"')
        elif record.msn != previous.msn + 1:
            for msn in range(previous.msn + 1, record.msn):
                lines += ["#EXT-X-GAP", f"#EXTINF:{timing.target_duration_s},",
                          f"{rendition}/{segment_file(msn)}"]
        lines.append("#EXT-X-PROGRAM-DATE-TIME:" + format_program_date_time(record.program_date_time))
        lines.append(f"#EXTINF:{decimal(record.duration_s)},")
        lines.append(f"{rendition}/{segment_file(record.msn)}")
        previous = record
    if recording.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
