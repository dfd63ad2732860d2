"""What the packager hands the origin: one CMAF part at a time, with the metadata LL-HLS needs.

A rendition's output is one init segment, then a sequence of parts. Parts group into
segments: ``msn`` is the media sequence number of the segment a part belongs to and ``index``
its position in that segment (0 = first part, always independent). The last part of a segment
carries ``segment_end=True``; the concatenation of a segment's parts is the segment itself.
A gap part stands for time the rendition has no media for (its publisher sent no keyframe in
time, or its encoder was stopped): it keeps the rendition's timeline and numbering going, so an
advertised rendition never vanishes from under a player.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InitSegment:
    """The fMP4 initialization segment (ftyp + moov) of one rendition."""

    rendition: str  # e.g. "720p", "audio"
    data: bytes
    codecs: str  # RFC 6381 CODECS value for this rendition, e.g. "avc1.64001f,mp4a.40.2"
    bandwidth: int  # peak bits/s for BANDWIDTH=
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One CMAF chunk (moof + mdat) of one rendition."""

    rendition: str
    msn: int  # media sequence number of the segment this part belongs to
    index: int  # part index within the segment
    data: bytes
    duration_s: float
    independent: bool  # starts with an IDR (INDEPENDENT=YES)
    capture_wallclock: float  # publisher capture time of the first frame (epoch seconds)
    segment_end: bool  # last part of its segment
    decode_time: int = 0  # tfdt of the first sample, in the track timescale
    #: A hole in the rendition (RFC 8216bis 4.4.4.7 EXT-X-GAP, GAP=YES on EXT-X-PART): no media,
    #: ``data`` is empty; players skip it and switch to another rendition for its time.
    gap: bool = False
