"""FLV tags: demux video/audio tag bodies to configs and access units, mux them back, and read
and write FLV files (Adobe FLV spec v10.1, Annex E; Enhanced RTMP v1 for HEVC).

RTMP carries each audio/video message as one FLV tag body, so ``FlvTagDemuxer`` is fed one tag at
a time and is what the RTMP ingest uses; ``FlvReader`` cuts an FLV file (or any byte stream of
one) into those tags. Both are pure: bytes in, events out. Malformed input from outside raises
``FlvError`` with the reason, and nothing else.

Policy for media before its sequence header: the unit is dropped and counted under a
``DropReason`` in ``FlvTagDemuxer.dropped`` (it cannot be decoded, but the stream recovers once
the header arrives, so dropping beats closing the publisher's connection).

Timestamps are taken as given: RTMP's 32-bit millisecond clock wraps after ~49.7 days, and
unwrapping it is the transport's job (the RTMP server does it before feeding tags here). The
keyframe flag is the tag's FrameType (1 = key frame, 4 = generated key frame), which is what
FFmpeg's FLV demuxer reports; ``avc.contains_idr`` checks the bitstream itself.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

from live.media import aac, avc, hevc
from live.media.bits import MediaFormatError
from live.media.streambuffer import StreamBuffer
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

# E.4.3.1 VIDEODATA FrameType.
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE_INTER = 3
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5
CODEC_AVC = 7
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2

# Enhanced RTMP v1: ExVideoTagHeader PacketType.
PACKET_SEQUENCE_START = 0
PACKET_CODED_FRAMES = 1
PACKET_SEQUENCE_END = 2
PACKET_CODED_FRAMES_X = 3
PACKET_METADATA = 4
PACKET_MPEG2TS_SEQUENCE_START = 5
FOURCC_AVC = b"avc1"
FOURCC_HEVC = b"hvc1"

# E.4.2.1 AUDIODATA.
SOUND_FORMAT_AAC = 10
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1
# SoundFormat 10, SoundRate 3 (44 kHz), SoundSize 1 (16-bit), SoundType 1: E.4.2.1 says AAC
# always uses these; the real rate and channels are in the AudioSpecificConfig.
_AAC_TAG_BYTE = 0xAF

_CTO_MIN = -(1 << 23)
_CTO_MAX = (1 << 23) - 1
_U32 = struct.Struct(">I")
_TAG_HEADER = struct.Struct(">BHBBHBHB")  # type, size(3), timestamp(3), ext, stream id(3)
_FILE_HEADER_SIZE = 9
MAX_TAG_SIZE = (1 << 24) - 1


class FlvError(MediaFormatError):
    """The FLV data (a tag body or a file) is malformed or uses an unsupported codec."""


class DropReason(enum.Enum):
    """Why a well-formed tag produced no event."""

    NO_VIDEO_CONFIG = "video frame before the video sequence header"
    NO_AUDIO_CONFIG = "audio frame before the AAC sequence header"
    EMPTY_FRAME = "coded frame packet without data"
    VIDEO_COMMAND = "video info/command frame"
    VIDEO_METADATA = "enhanced video metadata packet"
    END_OF_SEQUENCE = "end of sequence marker"
    SCRIPT_DATA = "script data tag"
    REPEATED_CONFIG = "sequence header identical to the current one"


@dataclass(frozen=True, slots=True)
class FlvHeader:
    """The 9-byte FLV file header (E.2)."""

    version: int
    has_audio: bool
    has_video: bool


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLV tag (E.4.1): RTMP audio/video/data messages have exactly this shape."""

    tag_type: int
    timestamp_ms: int  # 32-bit: TimestampExtended << 24 | Timestamp
    body: bytes


Event = VideoConfig | AudioConfig | AccessUnit


def _s24(view: memoryview, pos: int) -> int:
    value = (view[pos] << 16) | (view[pos + 1] << 8) | view[pos + 2]
    return value - (1 << 24) if value & 0x800000 else value


class FlvTagDemuxer:
    """Turn FLV audio/video tag bodies into VideoConfig, AudioConfig and AccessUnit events.

    Sequence headers produce a config event when they differ from the current one; coded
    frames produce access units with ``dts = tag timestamp`` and ``pts = dts + composition
    time offset`` (E.4.3.1 CompositionTime, a signed 24-bit value).
    """

    def __init__(self) -> None:
        self.video_config: VideoConfig | None = None
        self.audio_config: AudioConfig | None = None
        self.dropped: dict[DropReason, int] = {}

    def feed(
        self,
        tag_type: int,
        timestamp_ms: int,
        body: bytes | bytearray | memoryview,
        wallclock: float,
    ) -> list[Event]:
        view = memoryview(body).cast("B")
        try:
            if tag_type == TAG_VIDEO:
                return self._video(timestamp_ms, view, wallclock)
            if tag_type == TAG_AUDIO:
                return self._audio(timestamp_ms, view, wallclock)
        except FlvError:
            raise
        except MediaFormatError as exc:
            raise FlvError(f"{_TAG_NAMES.get(tag_type, tag_type)} tag at {timestamp_ms} ms: {exc}") from exc
        if tag_type == TAG_SCRIPT:
            return self._drop(DropReason.SCRIPT_DATA)
        raise FlvError(f"unknown FLV tag type {tag_type}")

    def _drop(self, reason: DropReason) -> list[Event]:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return []

    def _video(self, dts: int, view: memoryview, wallclock: float) -> list[Event]:
        if len(view) < 1:
            raise FlvError(f"empty video tag at {dts} ms")
        first = view[0]
        if first & 0x80:
            return self._enhanced_video(dts, view, wallclock)
        frame_type = first >> 4
        codec_id = first & 0x0F
        if frame_type == FRAME_COMMAND:
            return self._drop(DropReason.VIDEO_COMMAND)
        if not FRAME_KEY <= frame_type <= FRAME_GENERATED_KEY:
            raise FlvError(f"video tag at {dts} ms has reserved frame type {frame_type}")
        if codec_id != CODEC_AVC:
            raise FlvError(f"video codec id {codec_id} is not supported (only 7, AVC)")
        if len(view) < 5:
            raise FlvError(f"AVC video tag at {dts} ms is {len(view)} bytes, header needs 5")
        packet_type = view[1]
        cto = _s24(view, 2)
        if packet_type == AVC_SEQUENCE_HEADER:
            return self._video_config(avc.video_config_from_record(view[5:]))
        if packet_type == AVC_NALU:
            return self._coded_frame(dts, cto, frame_type, view[5:], wallclock)
        if packet_type == AVC_END_OF_SEQUENCE:
            return self._drop(DropReason.END_OF_SEQUENCE)
        raise FlvError(f"AVCPacketType {packet_type} at {dts} ms is reserved")

    def _enhanced_video(self, dts: int, view: memoryview, wallclock: float) -> list[Event]:
        frame_type = (view[0] >> 4) & 0x07
        packet_type = view[0] & 0x0F
        if frame_type == FRAME_COMMAND and packet_type != PACKET_METADATA:
            return self._drop(DropReason.VIDEO_COMMAND)
        if not FRAME_KEY <= frame_type <= FRAME_COMMAND:
            raise FlvError(f"enhanced video tag at {dts} ms has reserved frame type {frame_type}")
        if len(view) < 5:
            raise FlvError(f"enhanced video tag at {dts} ms is too short for its FourCC")
        fourcc = bytes(view[1:5])
        if fourcc not in (FOURCC_AVC, FOURCC_HEVC):
            raise FlvError(f"video FourCC {fourcc!r} is not supported (avc1, hvc1)")
        if packet_type == PACKET_SEQUENCE_START:
            record = view[5:]
            if fourcc == FOURCC_HEVC:
                return self._video_config(hevc.video_config_from_record(record))
            return self._video_config(avc.video_config_from_record(record))
        if packet_type == PACKET_CODED_FRAMES:
            if len(view) < 8:
                raise FlvError(f"CodedFrames tag at {dts} ms ends inside its composition time")
            return self._coded_frame(dts, _s24(view, 5), frame_type, view[8:], wallclock)
        if packet_type == PACKET_CODED_FRAMES_X:
            return self._coded_frame(dts, 0, frame_type, view[5:], wallclock)
        if packet_type == PACKET_SEQUENCE_END:
            return self._drop(DropReason.END_OF_SEQUENCE)
        if packet_type == PACKET_METADATA:
            return self._drop(DropReason.VIDEO_METADATA)
        raise FlvError(f"enhanced video PacketType {packet_type} at {dts} ms is not supported")

    def _video_config(self, config: VideoConfig) -> list[Event]:
        if self.video_config is not None and self.video_config.record == config.record:
            return self._drop(DropReason.REPEATED_CONFIG)
        self.video_config = config
        return [config]

    def _coded_frame(
        self, dts: int, cto: int, frame_type: int, payload: memoryview, wallclock: float
    ) -> list[Event]:
        if not payload:
            return self._drop(DropReason.EMPTY_FRAME)
        config = self.video_config
        if config is None:
            return self._drop(DropReason.NO_VIDEO_CONFIG)
        avc.check_avcc(payload, config.nal_length_size)
        return [
            AccessUnit(
                kind=TrackKind.VIDEO,
                dts_ms=dts,
                pts_ms=dts + cto,
                data=bytes(payload),
                keyframe=frame_type in (FRAME_KEY, FRAME_GENERATED_KEY),
                ingest_wallclock=wallclock,
            )
        ]

    def _audio(self, dts: int, view: memoryview, wallclock: float) -> list[Event]:
        if len(view) < 1:
            raise FlvError(f"empty audio tag at {dts} ms")
        sound_format = view[0] >> 4
        if sound_format != SOUND_FORMAT_AAC:
            raise FlvError(f"audio SoundFormat {sound_format} is not supported (only 10, AAC)")
        if len(view) < 2:
            raise FlvError(f"AAC audio tag at {dts} ms has no AACPacketType")
        packet_type = view[1]
        if packet_type == AAC_SEQUENCE_HEADER:
            config = aac.audio_config_from_asc(view[2:])
            if self.audio_config is not None and self.audio_config.record == config.record:
                return self._drop(DropReason.REPEATED_CONFIG)
            self.audio_config = config
            return [config]
        if packet_type != AAC_RAW:
            raise FlvError(f"AACPacketType {packet_type} at {dts} ms is reserved")
        if len(view) == 2:
            return self._drop(DropReason.EMPTY_FRAME)
        if self.audio_config is None:
            return self._drop(DropReason.NO_AUDIO_CONFIG)
        return [
            AccessUnit(
                kind=TrackKind.AUDIO,
                dts_ms=dts,
                pts_ms=dts,
                data=bytes(view[2:]),
                keyframe=True,
                ingest_wallclock=wallclock,
            )
        ]


_TAG_NAMES = {TAG_AUDIO: "audio", TAG_VIDEO: "video", TAG_SCRIPT: "script"}


def _s24_bytes(value: int) -> bytes:
    if not _CTO_MIN <= value <= _CTO_MAX:
        raise ValueError(f"composition time offset {value} ms does not fit 24 bits")
    return (value & 0xFFFFFF).to_bytes(3, "big")


def video_sequence_header_body(config: VideoConfig) -> bytes:
    """The tag body announcing a video config: legacy AVC, or Enhanced RTMP SequenceStart."""
    if config.codec == "h265":
        return bytes([0x80 | FRAME_KEY << 4 | PACKET_SEQUENCE_START]) + FOURCC_HEVC + config.record
    if config.codec != "h264":
        raise ValueError(f"FLV cannot carry video codec {config.codec!r}")
    return bytes([FRAME_KEY << 4 | CODEC_AVC, AVC_SEQUENCE_HEADER, 0, 0, 0]) + config.record


def video_frame_body(config: VideoConfig, unit: AccessUnit) -> bytes:
    """The tag body of one coded video frame; the composition offset is ``pts - dts``.

    For H.265, a zero offset uses CodedFramesX (no offset field), as OBS does.
    """
    frame_type = FRAME_KEY if unit.keyframe else FRAME_INTER
    cto = unit.pts_ms - unit.dts_ms
    if config.codec == "h265":
        if cto == 0:
            return bytes([0x80 | frame_type << 4 | PACKET_CODED_FRAMES_X]) + FOURCC_HEVC + unit.data
        return (
            bytes([0x80 | frame_type << 4 | PACKET_CODED_FRAMES])
            + FOURCC_HEVC
            + _s24_bytes(cto)
            + unit.data
        )
    return bytes([frame_type << 4 | CODEC_AVC, AVC_NALU]) + _s24_bytes(cto) + unit.data


def video_end_of_sequence_body(config: VideoConfig) -> bytes:
    if config.codec == "h265":
        return bytes([0x80 | FRAME_KEY << 4 | PACKET_SEQUENCE_END]) + FOURCC_HEVC
    return bytes([FRAME_KEY << 4 | CODEC_AVC, AVC_END_OF_SEQUENCE, 0, 0, 0])


def audio_sequence_header_body(config: AudioConfig) -> bytes:
    if config.codec != "aac":
        raise ValueError(f"FLV muxing supports AAC audio only, not {config.codec!r}")
    return bytes([_AAC_TAG_BYTE, AAC_SEQUENCE_HEADER]) + config.record


def audio_frame_body(unit: AccessUnit) -> bytes:
    return bytes([_AAC_TAG_BYTE, AAC_RAW]) + unit.data


class FlvTagMuxer:
    """Build FLV tags from configs and access units: the inverse of FlvTagDemuxer.

    The tag timestamp is the unit's DTS. Muxing a unit before its track's config is a caller
    bug and raises ValueError.
    """

    def __init__(self) -> None:
        self.video_config: VideoConfig | None = None
        self.audio_config: AudioConfig | None = None

    def mux(self, item: Event, timestamp_ms: int = 0) -> FlvTag:
        """One tag for ``item``; configs are stamped with ``timestamp_ms`` (usually 0)."""
        if isinstance(item, VideoConfig):
            self.video_config = item
            return FlvTag(TAG_VIDEO, timestamp_ms, video_sequence_header_body(item))
        if isinstance(item, AudioConfig):
            self.audio_config = item
            return FlvTag(TAG_AUDIO, timestamp_ms, audio_sequence_header_body(item))
        if item.kind is TrackKind.VIDEO:
            if self.video_config is None:
                raise ValueError("video access unit muxed before a VideoConfig")
            return FlvTag(TAG_VIDEO, item.dts_ms, video_frame_body(self.video_config, item))
        if self.audio_config is None:
            raise ValueError("audio access unit muxed before an AudioConfig")
        return FlvTag(TAG_AUDIO, item.dts_ms, audio_frame_body(item))

    def end_of_sequence(self, timestamp_ms: int) -> FlvTag:
        if self.video_config is None:
            raise ValueError("end of sequence before a VideoConfig")
        return FlvTag(TAG_VIDEO, timestamp_ms, video_end_of_sequence_body(self.video_config))


# --- FLV files (E.2, E.3) ---------------------------------------------------------------


def encode_file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    """The FLV header plus PreviousTagSize0."""
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + _U32.pack(_FILE_HEADER_SIZE) + _U32.pack(0)


def encode_tag(tag: FlvTag) -> bytes:
    """One tag (11-byte header, body) followed by its PreviousTagSize."""
    size = len(tag.body)
    if size > MAX_TAG_SIZE:
        raise ValueError(f"an FLV tag body cannot hold {size} bytes")
    if not 0 <= tag.timestamp_ms <= 0xFFFFFFFF:
        raise ValueError(f"FLV timestamp {tag.timestamp_ms} does not fit 32 bits")
    if not 0 <= tag.tag_type <= 0x1F:
        raise ValueError(f"FLV tag type {tag.tag_type} does not fit 5 bits")
    ts = tag.timestamp_ms
    header = _TAG_HEADER.pack(
        tag.tag_type, size >> 8, size & 0xFF, (ts >> 16) & 0xFF, ts & 0xFFFF, ts >> 24, 0, 0
    )
    return header + tag.body + _U32.pack(size + 11)


class FlvReader:
    """Incremental FLV file parser: ``feed(bytes)`` returns the header and tags those bytes
    complete, however the file is split; ``feed_eof()`` checks the file did not end mid-tag.

    It holds at most one partial tag (bounded by ``max_tag_size``) plus the last chunk fed.
    PreviousTagSize fields are checked against the tag before them when ``strict`` is set.
    """

    def __init__(self, max_tag_size: int = MAX_TAG_SIZE, strict: bool = True) -> None:
        self.max_tag_size = max_tag_size
        self.strict = strict
        self._buffer = StreamBuffer()
        self._ready: list[FlvHeader | FlvTag] = []
        self._at_boundary = False
        self._failed: FlvError | None = None
        self._parser = self._parse()
        next(self._parser)

    def feed(self, data: bytes | bytearray | memoryview) -> list[FlvHeader | FlvTag]:
        if self._failed is not None:
            raise FlvError(f"reader already failed: {self._failed}")
        self._buffer.feed(data)
        try:
            next(self._parser)
        except FlvError as exc:
            self._failed = exc
            raise
        ready, self._ready = self._ready, []
        return ready

    def feed_eof(self) -> None:
        if self._failed is not None:
            raise FlvError(f"reader already failed: {self._failed}")
        if len(self._buffer) or not self._at_boundary:
            raise FlvError(f"FLV data ends inside a header or tag ({len(self._buffer)} bytes left)")

    def _parse(self) -> Generator[None, None, None]:
        read = self._buffer.read_exact
        yield
        header = yield from read(_FILE_HEADER_SIZE)
        if header[:3] != b"FLV":
            raise FlvError(f"not an FLV file: signature {header[:3]!r}")
        (offset,) = _U32.unpack_from(header, 5)
        if not _FILE_HEADER_SIZE <= offset <= 1 << 16:
            raise FlvError(f"FLV DataOffset {offset} is out of range")
        yield from read(offset - _FILE_HEADER_SIZE)
        self._ready.append(FlvHeader(header[3], bool(header[4] & 0x04), bool(header[4] & 0x01)))
        expected_previous = 0
        self._at_boundary = True
        while True:
            (previous,) = _U32.unpack((yield from read(4)))
            if self.strict and previous != expected_previous:
                raise FlvError(
                    f"PreviousTagSize {previous} does not match the last tag's {expected_previous}"
                )
            raw = yield from read(11)
            self._at_boundary = False
            kind, size_hi, size_lo, ts_hi, ts_lo, ts_ext, _sid_hi, _sid_lo = _TAG_HEADER.unpack(raw)
            if kind & 0x20:
                raise FlvError("encrypted FLV tags (Filter bit) are not supported")
            size = size_hi << 8 | size_lo
            if size > self.max_tag_size:
                raise FlvError(f"FLV tag of {size} bytes exceeds the {self.max_tag_size} limit")
            body = yield from read(size)
            timestamp = ts_ext << 24 | ts_hi << 16 | ts_lo
            self._ready.append(FlvTag(kind & 0x1F, timestamp, body))
            expected_previous = size + 11
            self._at_boundary = True


def iter_flv(chunks: Iterable[bytes | bytearray | memoryview]) -> Iterator[FlvHeader | FlvTag]:
    """Header and tags of an FLV file given as chunks (e.g. reads from a file object)."""
    reader = FlvReader()
    for chunk in chunks:
        yield from reader.feed(chunk)
    reader.feed_eof()


def read_flv(data: bytes | bytearray | memoryview) -> tuple[FlvHeader, list[FlvTag]]:
    """Parse a whole FLV file held in memory."""
    items = list(iter_flv([data]))
    if not items or not isinstance(items[0], FlvHeader):
        raise FlvError("FLV data holds no header")
    return items[0], [item for item in items[1:] if isinstance(item, FlvTag)]


def write_flv(tags: Iterable[FlvTag], has_audio: bool = True, has_video: bool = True) -> bytes:
    return encode_file_header(has_audio, has_video) + b"".join(encode_tag(t) for t in tags)
