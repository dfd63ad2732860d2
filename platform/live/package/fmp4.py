"""A CMAF / fragmented-MP4 writer: init segments (ftyp + moov) and fragments (moof + mdat).

Pure functions from typed track and sample descriptions to bytes; nothing here reads a clock
or a file. Box layouts follow ISO/IEC 14496-12 (ISOBMFF, section numbers below), the sample
entries ISO/IEC 14496-15 (avcC/hvcC) and 14496-14 (esds), and the CMAF constraints of
ISO/IEC 23000-19 section 7 (one sample description per track, empty sample tables in the
``moov``, ``default-base-is-moof``, ``tfdt`` in every ``traf``).

Fragments are built with one ``struct.pack`` per ``trun`` and the payload joined once, so a
part costs a handful of allocations whatever its sample count.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from live.media.units import AudioConfig, VideoConfig

VIDEO_TIMESCALE = 90_000
AAC_FRAME_SAMPLES = 1024

# Sample flags (ISO/IEC 14496-12 8.8.3.1): sample_depends_on=2 ("does not depend on others",
# an I/IDR picture) for sync samples; depends_on=1 plus sample_is_non_sync_sample otherwise.
SYNC_SAMPLE_FLAGS = 0x0200_0000
NON_SYNC_SAMPLE_FLAGS = 0x0101_0000

_TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000
_TRUN_DATA_OFFSET = 0x000001
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTS = 0x000800

_UNITY_MATRIX = struct.pack(">9I", 0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000)
_MAX_BOX = 0xFFFF_FFFF


class Fmp4Error(ValueError):
    """A track or sample description the writer cannot represent (the caller's fault)."""


class TrackType(Enum):
    VIDEO = "vide"
    AUDIO = "soun"


@dataclass(frozen=True, slots=True)
class Track:
    """One track of an init segment: its ID, timescale and decoder configuration."""

    track_id: int
    timescale: int
    config: VideoConfig | AudioConfig

    @property
    def type(self) -> TrackType:
        return TrackType.VIDEO if isinstance(self.config, VideoConfig) else TrackType.AUDIO


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a fragment, times in the track's timescale."""

    data: bytes
    duration: int
    sync: bool
    composition_offset: int = 0  # PTS - DTS, may be negative (trun version 1)


@dataclass(frozen=True, slots=True)
class TrackRun:
    """The samples of one track in one fragment, starting at ``decode_time`` (the ``tfdt``)."""

    track_id: int
    decode_time: int
    samples: Sequence[Sample]


def video_track(config: VideoConfig, track_id: int = 1) -> Track:
    return Track(track_id, VIDEO_TIMESCALE, config)


def audio_track(config: AudioConfig, track_id: int = 2) -> Track:
    """An AAC track whose timescale is its sample rate, so every frame lasts exactly 1024 ticks."""
    return Track(track_id, config.sample_rate, config)


# -- box primitives ---------------------------------------------------------------------------


def box(kind: bytes, *payload: bytes) -> bytes:
    """A plain box (ISO/IEC 14496-12 4.2): 32-bit size, 4-character type, payload."""
    size = 8 + sum(len(p) for p in payload)
    if size > _MAX_BOX:
        raise Fmp4Error(f"{kind.decode('ascii')} box of {size} bytes needs a 64-bit size")
    return b"".join((struct.pack(">I4s", size, kind), *payload))


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox (ISO/IEC 14496-12 4.2): a plain box whose payload starts with version and flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


# -- init segment -----------------------------------------------------------------------------


def ftyp() -> bytes:
    """File type box (4.3) with the CMAF brand ``cmfc`` (ISO/IEC 23000-19 7.2) and ``iso6``,
    the ISOBMFF brand that permits ``tfdt`` and trun version 1 (negative composition offsets)."""
    return box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"mp41")


def styp() -> bytes:
    """Segment type box (8.16.2) that may start a CMAF segment (23000-19 7.3.3.2 brand ``cmfs``)."""
    return box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh", b"cmfs", b"cmfc")


def init_segment(tracks: Sequence[Track]) -> bytes:
    """``ftyp`` + ``moov`` for one or more tracks (CMAF 7.3.2.1: sample tables empty, ``mvex``)."""
    if not tracks:
        raise Fmp4Error("an init segment needs at least one track")
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids) or min(ids) < 1:
        raise Fmp4Error(f"track IDs must be distinct and positive, got {ids}")
    for t in tracks:
        if t.timescale < 1:
            raise Fmp4Error(f"track {t.track_id}: timescale must be positive, got {t.timescale}")
    moov = box(
        b"moov",
        _mvhd(max(ids) + 1),
        *(_trak(t) for t in tracks),
        box(b"mvex", *(_trex(t.track_id) for t in tracks)),
    )
    return ftyp() + moov


def _mvhd(next_track_id: int) -> bytes:
    """Movie header (8.2.2), version 0; duration 0 because the movie is fragmented."""
    return full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, 1000, 0),  # creation, modification, timescale, duration
        struct.pack(">IH10x", 0x0001_0000, 0x0100),  # rate 1.0, volume 1.0, reserved
        _UNITY_MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", next_track_id),
    )  # fmt: skip


def _tkhd(track: Track) -> bytes:
    """Track header (8.3.2); flags 3 = enabled and in movie. Width/height are 16.16 fixed point."""
    config = track.config
    audio = not isinstance(config, VideoConfig)
    width, height = (config.width, config.height) if isinstance(config, VideoConfig) else (0, 0)
    return full_box(
        b"tkhd", 0, 0x000003,
        struct.pack(">IIII", 0, 0, track.track_id, 0),  # creation, modification, id, reserved
        struct.pack(">I8x", 0),  # duration, reserved
        struct.pack(">hhH2x", 0, 1 if audio else 0, 0x0100 if audio else 0),  # layer, group, volume
        _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip


def _mdhd(timescale: int) -> bytes:
    """Media header (8.4.2); language ``und`` packed as three 5-bit letters."""
    und = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)
    return full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, und, 0))


def _hdlr(track_type: TrackType) -> bytes:
    """Handler reference (8.4.3)."""
    name = b"VideoHandler\x00" if track_type is TrackType.VIDEO else b"SoundHandler\x00"
    return full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, track_type.value.encode("ascii")), name)


def _trak(track: Track) -> bytes:
    media_header = (
        full_box(b"vmhd", 0, 1, bytes(8))  # 12.1.2: graphicsmode copy, opcolor 0
        if track.type is TrackType.VIDEO
        else full_box(b"smhd", 0, 0, bytes(4))  # 12.2.2: balance 0
    )
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(track)),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", media_header, dinf, stbl)
    mdia = box(b"mdia", _mdhd(track.timescale), _hdlr(track.type), minf)
    return box(b"trak", _tkhd(track), mdia)


def _sample_entry(track: Track) -> bytes:
    config = track.config
    if isinstance(config, VideoConfig):
        return _visual_sample_entry(config)
    return _mp4a(config, track.track_id)


def _visual_sample_entry(config: VideoConfig) -> bytes:
    """VisualSampleEntry (12.1.3) ``avc1`` + ``avcC`` (14496-15 5.4.2) or ``hvc1`` + ``hvcC`` (8.4.1).

    ``avc1``/``hvc1`` (parameter sets only in the record) is what CMAF requires for ``cmfc``.
    """
    if config.codec == "h264":
        kind, record_kind = b"avc1", b"avcC"
    elif config.codec == "h265":
        kind, record_kind = b"hvc1", b"hvcC"
    else:
        raise Fmp4Error(f"no CMAF sample entry for video codec {config.codec!r}")
    if not config.record:
        raise Fmp4Error(f"{config.codec} config has no decoder configuration record")
    if not (0 < config.width <= 0xFFFF and 0 < config.height <= 0xFFFF):
        raise Fmp4Error(f"video dimensions {config.width}x{config.height} out of range")
    return box(
        kind,
        struct.pack(">6xH", 1),  # reserved, data_reference_index
        bytes(16),  # pre_defined, reserved, pre_defined[3]
        struct.pack(">HHIIIH", config.width, config.height, 0x0048_0000, 0x0048_0000, 0, 1),
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        box(record_kind, config.record),
    )


def _mp4a(config: AudioConfig, track_id: int) -> bytes:
    """AudioSampleEntry ``mp4a`` (12.2.3) with an ``esds`` (14496-14 5.6) carrying the ASC."""
    if config.codec != "aac":
        raise Fmp4Error(f"no CMAF sample entry for audio codec {config.codec!r}")
    if not config.record:
        raise Fmp4Error("AAC config has no AudioSpecificConfig")
    if not 0 < config.channels <= 0xFFFF or config.sample_rate < 1:
        raise Fmp4Error(f"AAC config {config.channels} ch @ {config.sample_rate} Hz out of range")
    rate = config.sample_rate << 16 if config.sample_rate <= 0xFFFF else 0
    return box(
        b"mp4a",
        struct.pack(">6xH", 1),
        struct.pack(">8xHHHHI", config.channels, 16, 0, 0, rate),
        _esds(config.record, track_id),
    )


def _descriptor(tag: int, *payload: bytes) -> bytes:
    """An MPEG-4 descriptor (14496-1 8.3.3): tag, expandable size (7 bits per byte), payload."""
    size = sum(len(p) for p in payload)
    if size >= 1 << 28:
        raise Fmp4Error(f"descriptor of {size} bytes too large")
    length = [size & 0x7F]
    size >>= 7
    while size:
        length.append(0x80 | (size & 0x7F))
        size >>= 7
    return b"".join((bytes((tag, *reversed(length))), *payload))


def _esds(asc: bytes, track_id: int) -> bytes:
    decoder_config = _descriptor(
        0x04,  # DecoderConfigDescriptor
        struct.pack(">BB3sII", 0x40, (0x05 << 2) | 1, bytes(3), 0, 0),  # AAC, AudioStream
        _descriptor(0x05, asc),  # DecoderSpecificInfo = AudioSpecificConfig
    )
    es = _descriptor(
        0x03,  # ES_Descriptor
        struct.pack(">HB", track_id & 0xFFFF, 0),
        decoder_config,
        _descriptor(0x06, b"\x02"),  # SLConfigDescriptor, predefined = MP4
    )
    return full_box(b"esds", 0, 0, es)


def _trex(track_id: int) -> bytes:
    """Track extends (8.8.3): defaults are left 0; every ``trun`` carries its own values."""
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))


# -- fragments --------------------------------------------------------------------------------


def fragment(sequence_number: int, runs: Sequence[TrackRun], *, segment_start: bool = False) -> bytes:
    """One CMAF chunk: ``moof`` (8.8.4) + ``mdat`` (8.1.1), optionally preceded by ``styp``.

    Every ``traf`` has ``tfhd`` with default-base-is-moof (8.8.7; CMAF 7.5.16), ``tfdt``
    version 1 (8.8.12) and a version 1 ``trun`` (8.8.8) with per-sample duration, size, flags
    and signed composition offset. The mdat holds the runs' samples in the order given, so
    each ``trun`` data offset is moof size + 8 + the bytes of the runs before it.
    """
    if not 1 <= sequence_number <= 0xFFFF_FFFF:
        raise Fmp4Error(f"fragment sequence number {sequence_number} out of range")
    runs = [r for r in runs if r.samples]
    if not runs:
        raise Fmp4Error("a fragment needs at least one sample")
    # Every traf has a fixed-size header, so the moof size is known before the offsets are.
    traf_sizes = [8 + 16 + 20 + 20 + 16 * len(r.samples) for r in runs]  # traf tfhd tfdt trun
    moof_size = 8 + 16 + sum(traf_sizes)  # moof mfhd trafs
    offset = moof_size + 8
    trafs: list[bytes] = []
    payload: list[bytes] = []
    for run in runs:
        trafs.append(_traf(run, offset))
        for s in run.samples:
            payload.append(s.data)
            offset += len(s.data)
    mdat_size = offset - moof_size
    if mdat_size > _MAX_BOX:
        raise Fmp4Error(f"mdat of {mdat_size} bytes needs a 64-bit size")
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number)), *trafs)
    head = [styp()] if segment_start else []
    return b"".join((*head, moof, struct.pack(">I4s", mdat_size, b"mdat"), *payload))


def _traf(run: TrackRun, data_offset: int) -> bytes:
    if not 0 <= run.decode_time < 1 << 64:
        raise Fmp4Error(f"track {run.track_id}: decode time {run.decode_time} out of range")
    if data_offset > 0x7FFF_FFFF:
        raise Fmp4Error("trun data offset overflows 32 bits")
    n = len(run.samples)
    values: list[int] = []
    for s in run.samples:
        if not 0 <= s.duration <= 0xFFFF_FFFF:
            raise Fmp4Error(f"track {run.track_id}: sample duration {s.duration} out of range")
        if not -(1 << 31) <= s.composition_offset < 1 << 31:
            raise Fmp4Error(f"track {run.track_id}: composition offset {s.composition_offset} out of range")
        values += (
            s.duration,
            len(s.data),
            SYNC_SAMPLE_FLAGS if s.sync else NON_SYNC_SAMPLE_FLAGS,
            s.composition_offset,
        )
    trun_flags = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE | _TRUN_FLAGS | _TRUN_CTS
    return box(
        b"traf",
        full_box(b"tfhd", 0, _TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", run.track_id)),
        full_box(b"tfdt", 1, 0, struct.pack(">Q", run.decode_time)),
        full_box(b"trun", 1, trun_flags, struct.pack(f">Ii{'IIIi' * n}", n, data_offset, *values)),
    )
