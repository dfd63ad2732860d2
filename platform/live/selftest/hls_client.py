"""An HLS / LL-HLS client core: playlist parsing and "what to fetch next" (pure, no I/O).

The probe viewer (`live.selftest.probe`) is a thin asyncio shell around this, and the Locust
LL-HLS viewers of `loadgen` plan their requests with it. Parsing follows RFC 8216bis
(draft-pantos-hls-rfc8216bis): attribute lists (4.2), the multivariant tags (4.4.6), media
segment tags (4.4.4) with the LL-HLS additions EXT-X-PART (4.4.4.9), EXT-X-PRELOAD-HINT
(4.4.5.3), EXT-X-SERVER-CONTROL (4.4.3.8), EXT-X-PART-INF (4.4.3.7) and EXT-X-SKIP (4.4.5.2);
blocking reload is 6.2.5.2. Parts are optional, so plain HLS (ffmpeg's ``-f hls``) goes
through the same code.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

#: Bound on the playlists we accept; a server sending more is broken or hostile.
MAX_PLAYLIST_BYTES = 4 * 1024 * 1024

_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)\s*(?:,|$)')


class PlaylistError(ValueError):
    """The server sent a playlist this client cannot use (the server is at fault)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A sub-range of a resource (EXT-X-BYTERANGE, BYTERANGE=): ``length`` bytes at ``offset``."""

    offset: int
    length: int | None  # None: to the end (a preload hint without BYTERANGE-LENGTH)

    def header(self) -> str:
        end = "" if self.length is None else str(self.offset + self.length - 1)
        return f"bytes={self.offset}-{end}"


@dataclass(frozen=True, slots=True)
class Variant:
    """One EXT-X-STREAM-INF entry of a multivariant playlist."""

    uri: str
    bandwidth: int
    resolution: tuple[int, int] | None = None
    codecs: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    uri: str
    duration: float
    independent: bool = False
    byterange: ByteRange | None = None
    gap: bool = False  # GAP=YES: missing media, never fetched (RFC 8216bis 4.4.4.9)


@dataclass(frozen=True, slots=True)
class Segment:
    """A media segment; ``uri`` is None while it is still being produced (only parts so far)."""

    msn: int
    uri: str | None
    duration: float
    parts: tuple[Part, ...] = ()
    program_date_time: float | None = None
    map_uri: str | None = None
    byterange: ByteRange | None = None
    discontinuity: bool = False
    gap: bool = False  # EXT-X-GAP: missing media, never fetched (RFC 8216bis 4.4.4.7)


@dataclass(frozen=True, slots=True)
class PreloadHint:
    uri: str
    byterange: ByteRange | None = None


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]
    part_target: float | None = None
    can_block_reload: bool = False
    preload_hint: PreloadHint | None = None
    endlist: bool = False

    @property
    def next_position(self) -> tuple[int, int]:
        """(MSN, part index) of the first part not listed yet: what a blocking reload waits for."""
        if not self.segments:
            return self.media_sequence, 0
        last = self.segments[-1]
        if last.uri is None:
            return last.msn, len(last.parts)
        return last.msn + 1, 0


@dataclass(frozen=True, slots=True)
class Fetch:
    """One resource the player needs next, in decode order."""

    msn: int
    part: int | None  # None: the whole segment
    uri: str
    byterange: ByteRange | None
    #: Wall-clock (epoch s) at which this media starts, from EXT-X-PROGRAM-DATE-TIME.
    program_date_time: float | None
    completes_segment: bool
    map_uri: str | None

    @property
    def is_marker(self) -> bool:
        """Nothing to download: the segment's parts were all played before it was complete, or
        this is missing time (a gap) the player steps over."""
        return not self.uri


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where playback stands: the next thing to play is part ``part`` of segment ``msn``."""

    msn: int
    part: int = 0

    def after(self, fetch: Fetch) -> Cursor:
        if fetch.part is None or fetch.completes_segment:
            return Cursor(fetch.msn + 1, 0)
        return Cursor(fetch.msn, fetch.part + 1)


@dataclass(frozen=True, slots=True)
class Plan:
    fetches: tuple[Fetch, ...]
    #: Segments that left the playlist before we played them (we fell behind the window).
    skipped_segments: int = 0
    cursor: Cursor = field(default_factory=lambda: Cursor(0))


def parse_attributes(text: str) -> dict[str, str]:
    """An attribute list (RFC 8216bis 4.2) with quotes removed from quoted-string values."""
    attributes: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _ATTRIBUTE.match(text, pos)
        if match is None or match.end() == pos:
            raise PlaylistError(f"malformed attribute list at {text[pos:pos + 40]!r}")
        value = match.group(2)
        attributes[match.group(1)] = value[1:-1] if value.startswith('"') else value
        pos = match.end()
    return attributes


def _lines(text: str) -> list[str]:
    if len(text) > MAX_PLAYLIST_BYTES:
        raise PlaylistError(f"playlist of {len(text)} bytes exceeds {MAX_PLAYLIST_BYTES}")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not a playlist: first line is not #EXTM3U (RFC 8216bis 4.4.1.1)")
    return lines


def _number(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise PlaylistError(f"{what} is not a number: {value!r}") from None


def _integer(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PlaylistError(f"{what} is not an integer: {value!r}") from None


def _byterange(spec: str, previous_end: int | None) -> ByteRange:
    length, _, offset = spec.partition("@")
    if offset:
        return ByteRange(_integer(offset, "byte range offset"), _integer(length, "byte range length"))
    if previous_end is None:
        raise PlaylistError(f"byte range {spec!r} has no offset and nothing precedes it")
    return ByteRange(previous_end, _integer(length, "byte range length"))


def _date(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise PlaylistError(f"bad EXT-X-PROGRAM-DATE-TIME {value!r}") from None


def is_multivariant(text: str) -> bool:
    return any(line.startswith("#EXT-X-STREAM-INF") for line in _lines(text))


def parse_multivariant(text: str, base_url: str) -> list[Variant]:
    """The variant streams of a multivariant playlist, URIs made absolute against ``base_url``."""
    variants: list[Variant] = []
    lines = _lines(text)
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = parse_attributes(line.split(":", 1)[1])
        elif line.startswith("#"):
            continue
        elif pending is not None:
            resolution = None
            if "RESOLUTION" in pending:
                w, _, h = pending["RESOLUTION"].partition("x")
                resolution = (_integer(w, "RESOLUTION width"), _integer(h, "RESOLUTION height"))
            if "BANDWIDTH" not in pending:
                raise PlaylistError(f"EXT-X-STREAM-INF for {line} lacks BANDWIDTH (RFC 8216bis 4.4.6.2)")
            stem = line.rsplit("/", 1)[-1].split("?", 1)[0].removesuffix(".m3u8")
            variants.append(Variant(
                uri=urljoin(base_url, line), bandwidth=_integer(pending["BANDWIDTH"], "BANDWIDTH"),
                resolution=resolution, codecs=pending.get("CODECS"), name=pending.get("NAME", stem),
            ))
            pending = None
    if not variants:
        raise PlaylistError("multivariant playlist lists no variant streams")
    return variants


def pick_variant(variants: list[Variant], choice: str | None) -> Variant:
    """``None``/``"lowest"``/``"highest"`` by bandwidth among video variants, else by name or ``NNNp``."""
    video = [v for v in variants
             if v.resolution is not None or any(c in (v.codecs or "avc") for c in ("avc", "hvc", "hev"))]
    pool = video or variants
    if choice in (None, "lowest"):
        return min(pool, key=lambda v: v.bandwidth)
    if choice == "highest":
        return max(pool, key=lambda v: v.bandwidth)
    for variant in variants:
        if variant.name == choice:
            return variant
        if variant.resolution is not None and choice == f"{variant.resolution[1]}p":
            return variant
    names = ", ".join(v.name if v.resolution is None else f"{v.name} ({v.resolution[1]}p)"
                      for v in variants)
    raise LookupError(f"no rendition {choice!r} (have {names})")


def parse_media(text: str, base_url: str) -> MediaPlaylist:
    """A media playlist with every URI absolute; the trailing in-progress segment has ``uri`` None."""
    lines = _lines(text)
    target: float | None = None
    sequence = 0
    part_target: float | None = None
    can_block = False
    hint: PreloadHint | None = None
    endlist = False
    segments: list[Segment] = []
    parts: list[Part] = []
    map_uri: str | None = None
    pdt: float | None = None
    duration: float | None = None
    seg_range: ByteRange | None = None
    discontinuity = gap = False
    msn: int | None = None
    previous_end: dict[str, int] = {}
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if not line.startswith("#"):
            if duration is None:
                raise PlaylistError(f"segment {line} has no EXTINF (RFC 8216bis 4.4.4.1)")
            msn = sequence if msn is None else msn
            uri = urljoin(base_url, line)
            segments.append(Segment(msn, uri, duration, tuple(parts), pdt, map_uri, seg_range, discontinuity,
                                    gap))
            if seg_range is not None and seg_range.length is not None:
                previous_end[uri] = seg_range.offset + seg_range.length
            if pdt is not None:
                pdt += duration
            msn += 1
            parts, duration, seg_range, discontinuity, gap = [], None, None, False, False
        elif tag == "#EXT-X-TARGETDURATION":
            target = _number(value, "EXT-X-TARGETDURATION")
        elif tag == "#EXT-X-MEDIA-SEQUENCE":
            sequence = _integer(value, "EXT-X-MEDIA-SEQUENCE")
        elif tag == "#EXT-X-PART-INF":
            part_target = _number(parse_attributes(value).get("PART-TARGET", ""), "PART-TARGET")
        elif tag == "#EXT-X-SERVER-CONTROL":
            can_block = parse_attributes(value).get("CAN-BLOCK-RELOAD") == "YES"
        elif tag == "#EXT-X-MAP":
            attrs = parse_attributes(value)
            if "URI" not in attrs:
                raise PlaylistError("EXT-X-MAP without URI (RFC 8216bis 4.4.4.5)")
            map_uri = urljoin(base_url, attrs["URI"])
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            pdt = _date(value)
        elif tag == "#EXTINF":
            duration = _number(value.split(",", 1)[0], "EXTINF duration")
        elif tag == "#EXT-X-BYTERANGE":
            seg_range = _byterange(value, None if not segments else previous_end.get(segments[-1].uri or ""))
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif tag == "#EXT-X-GAP":
            gap = True
        elif tag == "#EXT-X-SKIP":
            skipped = _integer(parse_attributes(value).get("SKIPPED-SEGMENTS", ""), "SKIPPED-SEGMENTS")
            msn = (sequence if msn is None else msn) + skipped
        elif tag == "#EXT-X-PART":
            attrs = parse_attributes(value)
            if "URI" not in attrs or "DURATION" not in attrs:
                raise PlaylistError(f"EXT-X-PART needs URI and DURATION (RFC 8216bis 4.4.4.9): {line}")
            uri = urljoin(base_url, attrs["URI"])
            part_range = None
            if "BYTERANGE" in attrs:
                part_range = _byterange(attrs["BYTERANGE"], previous_end.get(uri))
                if part_range.length is not None:
                    previous_end[uri] = part_range.offset + part_range.length
            parts.append(Part(uri, _number(attrs["DURATION"], "part DURATION"),
                              attrs.get("INDEPENDENT") == "YES", part_range, attrs.get("GAP") == "YES"))
        elif tag == "#EXT-X-PRELOAD-HINT":
            attrs = parse_attributes(value)
            if attrs.get("TYPE") == "PART" and "URI" in attrs:
                start = attrs.get("BYTERANGE-START")
                length = attrs.get("BYTERANGE-LENGTH")
                hint_range = None if start is None else ByteRange(
                    _integer(start, "BYTERANGE-START"),
                    None if length is None else _integer(length, "BYTERANGE-LENGTH"))
                hint = PreloadHint(urljoin(base_url, attrs["URI"]), hint_range)
        elif tag == "#EXT-X-ENDLIST":
            endlist = True
    if parts:
        msn = sequence if msn is None else msn
        segments.append(Segment(msn, None, sum(p.duration for p in parts), tuple(parts), pdt, map_uri))
    if target is None:
        raise PlaylistError("media playlist lacks EXT-X-TARGETDURATION (RFC 8216bis 4.4.3.1)")
    return MediaPlaylist(target, sequence, tuple(segments), part_target, can_block, hint, endlist)


def start_cursor(playlist: MediaPlaylist) -> Cursor:
    """Where a player joins: the start of a finished stream, else the newest independent point.

    Live joins the newest INDEPENDENT part (or segment start) so the first frames are as
    fresh as the stream allows; a real player would also hold back PART-HOLD-BACK.
    """
    segments = playlist.segments
    if not segments:
        return Cursor(playlist.media_sequence, 0)
    if playlist.endlist:
        return Cursor(segments[0].msn, 0)
    for seg in reversed(segments):
        for index in range(len(seg.parts) - 1, -1, -1):
            if seg.parts[index].independent or index == 0:
                return Cursor(seg.msn, index)
        if seg.uri is not None:
            return Cursor(seg.msn, 0)
    return Cursor(segments[0].msn, 0)


def plan(playlist: MediaPlaylist, cursor: Cursor, already: Container[str]) -> Plan:
    """Everything listed from ``cursor`` on, in order; whole segments where none of it is played.

    ``already`` holds URIs fetched ahead (preload hints); they appear in the plan so the
    cursor moves past them, and the caller skips the download. Gap segments and parts appear
    as markers (nothing to download) so the cursor steps over the missing time.
    """
    fetches: list[Fetch] = []
    skipped = 0
    segments = playlist.segments
    if segments and cursor.msn < segments[0].msn:
        skipped = segments[0].msn - cursor.msn
        cursor = Cursor(segments[0].msn, 0)
    for seg in segments:
        if seg.msn < cursor.msn:
            continue
        first = cursor.part if seg.msn == cursor.msn else 0
        if first == 0 and seg.uri is not None and not any(p.uri in already for p in seg.parts):
            fetches.append(Fetch(seg.msn, None, "" if seg.gap else seg.uri, seg.byterange,
                                 seg.program_date_time, True, seg.map_uri))
            continue
        if first > len(seg.parts):
            if seg.uri is None:
                break  # the playlist is older than what we have played
            skipped += 1  # its parts aged out of the playlist mid-segment
            continue
        start = seg.program_date_time
        if start is not None:
            start += sum(p.duration for p in seg.parts[:first])
        for index in range(first, len(seg.parts)):
            part = seg.parts[index]
            last = seg.uri is not None and index == len(seg.parts) - 1
            uri = "" if part.gap or seg.gap else part.uri
            fetches.append(Fetch(seg.msn, index, uri, part.byterange, start, last, seg.map_uri))
            if start is not None:
                start += part.duration
        if seg.uri is not None and not seg.parts[first:]:
            # every listed part is played (or was never listed): nothing left but to move on
            fetches.append(Fetch(seg.msn, len(seg.parts), "", None, None, True, seg.map_uri))
    return Plan(tuple(fetches), skipped, cursor)


def blocking_reload_url(url: str, msn: int, part: int | None) -> str:
    """``url`` with ``_HLS_msn``/``_HLS_part`` (RFC 8216bis 6.2.5.2), other query kept."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    kept = [q for q in query.split("&") if q and not q.startswith(("_HLS_msn=", "_HLS_part="))]
    params = {"_HLS_msn": str(msn)} | ({} if part is None else {"_HLS_part": str(part)})
    return urlunsplit((scheme, netloc, path, "&".join([*kept, urlencode(params)]), fragment))
