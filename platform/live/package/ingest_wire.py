"""The CMAF push format between a packager and an origin (DASH-IF Live Media Ingest, interface 1).

One long-running HTTP POST per track carries, in this order (docs/scaleout.md cites the spec):

* the CMAF header: ``ftyp`` + ``moov`` (resent identically on every new connection);
* each CMAF chunk (``moof`` + ``mdat``) as the packager produces it;
* an empty ``mfra`` box when the stream is over.

What LL-HLS needs beyond the boxes (the part's media sequence number and index, whether it ends
its segment, its capture wall-clock, the rendition's CODECS/BANDWIDTH, the channel's timing, a
gap part that has no media at all) travels in a ``uuid`` box (ISO/IEC 14496-12 4.2, a box type
readers skip) placed right before the header and before each chunk. Its payload is a small JSON
object whose ``size`` says how many bytes of CMAF boxes follow it.

Pure core: ``encode_*`` build bytes; ``IngestParser.feed(bytes)`` returns events, parsing with a
generator-based reader so a push split at any byte parses the same. Every length an outsider
sends is bounded; anything else is an ``IngestFormatError`` whose message is the logged reason.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Generator
from dataclasses import dataclass

from live.package.fmp4 import box
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming

#: The extended type of our metadata box (uuid5 of the URL namespace and a fixed name).
INFO_UUID = uuid.uuid5(uuid.NAMESPACE_URL, "https://livetwin.invalid/cmaf-ingest/info").bytes
#: Largest metadata JSON accepted (a part's is about 200 bytes).
MAX_INFO_BYTES = 4096
#: Largest CMAF header or chunk accepted (a 0.33 s part of 1080p60 at 12 Mb/s is ~500 kB).
MAX_MEDIA_BYTES = 16 * 1024 * 1024
#: Box types a chunk may be made of (ISO/IEC 23000-19 7.3.2; prft/emsg are optional extras).
CHUNK_BOXES = frozenset({b"styp", b"prft", b"emsg", b"moof", b"mdat"})
#: The empty MovieFragmentRandomAccessBox that ends a track (DASH-IF ingest 6.1 item 6).
END_OF_TRACK = box(b"mfra")


class IngestFormatError(ValueError):
    """The push is malformed; the remote end is at fault (HTTP 400) and the push is closed."""


@dataclass(frozen=True, slots=True)
class TrackHeader:
    """A track's CMAF header arrived (first on every connection)."""

    init: InitSegment
    timing: ChannelTiming
    #: The stream's first segment number: > 0 when it continues a stream another ingest node
    #: pushed (the origin resumes that stream's playlists after a discontinuity).
    start_msn: int = 0


@dataclass(frozen=True, slots=True)
class PartReceived:
    part: Part


@dataclass(frozen=True, slots=True)
class TrackDropped:
    """The packager retired this rendition."""


@dataclass(frozen=True, slots=True)
class TrackEnded:
    """The stream is over for this track (the empty ``mfra``)."""


IngestEvent = TrackHeader | PartReceived | TrackDropped | TrackEnded


# -- encoding (the pushing side) ----------------------------------------------------------------


def _info(fields: dict[str, object]) -> bytes:
    return box(b"uuid", INFO_UUID, json.dumps(fields, separators=(",", ":")).encode())


def encode_header(init: InitSegment, timing: ChannelTiming, start_msn: int = 0) -> bytes:
    info = _info({"kind": "init", "size": len(init.data), "codecs": init.codecs,
                  "bandwidth": init.bandwidth, "width": init.width, "height": init.height,
                  "frame_rate": init.frame_rate, "target_duration": timing.target_duration_s,
                  "part_target": timing.part_target_s,
                  "min_skip_window": timing.min_skip_window_s, "start_msn": start_msn})
    return info + init.data


def encode_part(part: Part) -> bytes:
    info = _info({"kind": "part", "size": len(part.data), "msn": part.msn, "index": part.index,
                  "duration": part.duration_s, "independent": part.independent,
                  "capture": part.capture_wallclock, "segment_end": part.segment_end,
                  "decode_time": part.decode_time, "gap": part.gap})
    return info + part.data


def encode_drop() -> bytes:
    return _info({"kind": "drop", "size": 0})


# -- parsing (the origin's side) ----------------------------------------------------------------


class _Reader:
    """Bytes fed in, exact reads out; ``read_exact`` is a generator that waits for data."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False

    def read_exact(self, n: int) -> Generator[None, None, bytes]:
        while len(self.buffer) < n:
            if self.eof:
                raise IngestFormatError(f"push ended inside a box ({len(self.buffer)} of {n} bytes)")
            yield
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def at_eof(self) -> Generator[None, None, bool]:
        while not self.buffer and not self.eof:
            yield
        return not self.buffer and self.eof


def _box_head(head: bytes) -> tuple[int, bytes]:
    size, kind = struct.unpack(">I4s", head)
    if size < 8:
        raise IngestFormatError(f"box {kind!r} of size {size} (64-bit and to-end sizes are not "
                                "accepted)")
    return size, kind


def split_boxes(data: bytes) -> list[tuple[bytes, memoryview]]:
    """Top-level boxes of ``data`` as (type, payload); they must tile it exactly."""
    view = memoryview(data)
    boxes = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 8:
            raise IngestFormatError(f"{len(data) - offset} stray bytes after the last box")
        size, kind = _box_head(data[offset:offset + 8])
        if offset + size > len(data):
            raise IngestFormatError(f"box {kind!r} of {size} bytes overruns its {len(data) - offset}")
        boxes.append((kind, view[offset + 8:offset + size]))
        offset += size
    return boxes


def check_header(data: bytes) -> None:
    kinds = [kind for kind, _ in split_boxes(data)]
    if kinds != [b"ftyp", b"moov"]:
        raise IngestFormatError(f"a CMAF header is ftyp + moov, not {kinds}")


def chunk_decode_time(data: bytes) -> int:
    """Check a CMAF chunk's shape and return the ``tfdt`` of its first track fragment."""
    boxes = split_boxes(data)
    kinds = [kind for kind, _ in boxes]
    if not set(kinds) <= CHUNK_BOXES or b"moof" not in kinds or b"mdat" not in kinds \
            or kinds.index(b"moof") > kinds.index(b"mdat"):
        raise IngestFormatError(f"a CMAF chunk is [styp] moof mdat, not {kinds}")
    moof = bytes(next(payload for kind, payload in boxes if kind == b"moof"))
    for kind, traf in split_boxes(moof):
        if kind != b"traf":
            continue
        for inner, payload in split_boxes(bytes(traf)):
            if inner == b"tfdt":
                if len(payload) < 8:
                    raise IngestFormatError("tfdt box too short")
                version = payload[0]
                if version == 1 and len(payload) >= 12:
                    return int(struct.unpack(">Q", payload[4:12])[0])
                return int(struct.unpack(">I", payload[4:8])[0])
        raise IngestFormatError("traf without tfdt (DASH-IF ingest 6.2 item 2)")
    raise IngestFormatError("moof without traf")


def _number(info: dict[str, object], key: str, kind: type[int] | type[float],
            optional: bool = False) -> float | int | None:
    value = info.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or (kind is int and not isinstance(value, int)) or not math.isfinite(value):
        raise IngestFormatError(f"metadata {key!r}={value!r} is not a finite {kind.__name__}")
    return value


def _flag(info: dict[str, object], key: str) -> bool:
    value = info.get(key)
    if not isinstance(value, bool):
        raise IngestFormatError(f"metadata {key!r}={value!r} is not a boolean")
    return value


class IngestParser:
    """One track's push: ``feed(data)`` then ``feed_eof()``; each returns the events completed."""

    def __init__(self, rendition: str) -> None:
        self.rendition = rendition
        self._reader = _Reader()
        self._events: list[IngestEvent] = []
        self._parser = self._parse()
        self._failed: IngestFormatError | None = None
        self.ended = False
        next(self._parser)

    def feed(self, data: bytes) -> list[IngestEvent]:
        self._reader.buffer += data
        return self._step()

    def feed_eof(self) -> list[IngestEvent]:
        self._reader.eof = True
        return self._step()

    def _step(self) -> list[IngestEvent]:
        if self._failed is not None:
            raise self._failed
        try:
            next(self._parser)
        except StopIteration:
            pass
        except IngestFormatError as exc:
            self._failed = exc
            raise
        events, self._events = self._events, []
        return events

    def _parse(self) -> Generator[None, None, None]:
        info = yield from self._read_info()
        if info.get("kind") != "init":
            raise IngestFormatError(f"a push starts with the CMAF header, not {info.get('kind')!r}")
        data = yield from self._read_media(info)
        check_header(data)
        start_msn = _number(info, "start_msn", int, True) or 0
        if not 0 <= start_msn < 2**53:
            raise IngestFormatError(f"metadata start_msn={start_msn} is out of range")
        self._events.append(TrackHeader(*self._header(info, data), int(start_msn)))
        while True:
            if (yield from self._reader.at_eof()):
                return  # the push stopped between boxes: what came is whole
            head = yield from self._reader.read_exact(8)
            size, kind = _box_head(head)
            if kind == b"mfra":
                if size != 8:
                    raise IngestFormatError("the end-of-track mfra box must be empty")
                self._events.append(TrackEnded())
                self.ended = True
                if not (yield from self._reader.at_eof()):
                    raise IngestFormatError("data after the end-of-track mfra box")
                return
            if kind != b"uuid":
                raise IngestFormatError(f"expected a metadata box before each chunk, got {kind!r}")
            info = yield from self._read_info_body(size)
            match info.get("kind"):
                case "part":
                    data = yield from self._read_media(info, allow_empty=True)
                    self._events.append(PartReceived(self._part(info, data)))
                case "drop":
                    self._events.append(TrackDropped())
                case "init":
                    raise IngestFormatError("a second CMAF header inside one push")
                case other:
                    raise IngestFormatError(f"unknown metadata kind {other!r}")

    def _read_info(self) -> Generator[None, None, dict[str, object]]:
        head = yield from self._reader.read_exact(8)
        size, kind = _box_head(head)
        if kind != b"uuid":
            raise IngestFormatError(f"expected the metadata box, got {kind!r}")
        return (yield from self._read_info_body(size))

    def _read_info_body(self, size: int) -> Generator[None, None, dict[str, object]]:
        if not 24 < size <= 24 + MAX_INFO_BYTES:
            raise IngestFormatError(f"metadata box of {size} bytes (at most {24 + MAX_INFO_BYTES})")
        body = yield from self._reader.read_exact(size - 8)
        if body[:16] != INFO_UUID:
            raise IngestFormatError("a uuid box that is not ours")
        try:
            info = json.loads(body[16:])
        except (UnicodeDecodeError, ValueError) as exc:
            raise IngestFormatError(f"metadata is not JSON: {exc}") from None
        if not isinstance(info, dict):
            raise IngestFormatError("metadata is not a JSON object")
        return info

    def _read_media(self, info: dict[str, object], allow_empty: bool = False
                    ) -> Generator[None, None, bytes]:
        size = _number(info, "size", int)
        assert isinstance(size, int)
        if not (0 if allow_empty else 1) <= size <= MAX_MEDIA_BYTES:
            raise IngestFormatError(f"media of {size} bytes (1..{MAX_MEDIA_BYTES})")
        return (yield from self._reader.read_exact(size))

    def _header(self, info: dict[str, object], data: bytes) -> tuple[InitSegment, ChannelTiming]:
        codecs, bandwidth = info.get("codecs"), _number(info, "bandwidth", int)
        if not isinstance(codecs, str) or not codecs:
            raise IngestFormatError(f"metadata codecs={codecs!r} is not a string")
        width, height = _number(info, "width", int, True), _number(info, "height", int, True)
        try:
            timing = ChannelTiming(
                target_duration_s=int(_number(info, "target_duration", int) or 0),
                part_target_s=float(_number(info, "part_target", float) or 0),
                min_skip_window_s=float(_number(info, "min_skip_window", float) or 0))
        except ValueError as exc:
            raise IngestFormatError(f"timing: {exc}") from None
        frame_rate = _number(info, "frame_rate", float, True)
        init = InitSegment(self.rendition, data, codecs, int(bandwidth or 0),
                           None if width is None else int(width),
                           None if height is None else int(height),
                           None if frame_rate is None else float(frame_rate))
        return init, timing

    def _part(self, info: dict[str, object], data: bytes) -> Part:
        gap = _flag(info, "gap")
        decode_time = _number(info, "decode_time", int)
        if gap != (not data):
            raise IngestFormatError("a gap part has no media and a media part has some")
        if data and chunk_decode_time(data) != decode_time:
            raise IngestFormatError(f"tfdt {chunk_decode_time(data)} differs from the metadata's "
                                    f"decode_time {decode_time}")
        return Part(self.rendition, int(_number(info, "msn", int) or 0),
                    int(_number(info, "index", int) or 0), data,
                    float(_number(info, "duration", float) or 0.0), _flag(info, "independent"),
                    float(_number(info, "capture", float) or 0.0), _flag(info, "segment_end"),
                    int(decode_time or 0), gap)
