"""Elementary streams as MPEG-TS carries them, turned into the units every ingest produces.

MPEG-TS PES packets carry H.264 and H.265 as Annex B byte streams (ITU-T H.264 Annex B,
H.265 Annex B; ISO/IEC 13818-1 2.14) and AAC as ADTS frames (ISO/IEC 14496-3 1.A.2). The rest of
the platform wants what FLV gives: length-prefixed NAL units with the parameter sets in a
decoder configuration record, and raw AAC blocks with an AudioSpecificConfig. ``AnnexBVideo``
and ``AdtsAudio`` do that conversion, one PES payload at a time; malformed payloads are counted
in the shared ``EsStats`` and skipped, never raised. Timestamps arrive on the 90 kHz clock,
already unwrapped; the demuxer's ``to_ms`` puts them on its millisecond timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from live.media import avc, hevc
from live.media.aac import AacError, AdtsHeader, audio_config_from_adts, parse_adts_header
from live.media.bits import MediaFormatError
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

CLOCK_HZ = 90_000
AAC_FRAME_SAMPLES = 1024
_H264_DROP = frozenset({avc.NAL_AUD, avc.NAL_SPS, avc.NAL_PPS, avc.NAL_SPS_EXT})
_H265_AUD = 35
_H265_DROP = frozenset({hevc.NAL_VPS, hevc.NAL_SPS, hevc.NAL_PPS, _H265_AUD})

#: A 90 kHz timestamp to milliseconds on the demuxer's timeline.
ToMs = Callable[[int], int]
Unit = VideoConfig | AudioConfig | AccessUnit


@dataclass(slots=True)
class EsStats:
    pes_dropped: int = 0  # PES packets lost to a gap, a bad header, the size limit or no PTS
    bad_units: int = 0  # access units with malformed NAL framing, parameter sets or ADTS
    units_before_config: int = 0  # video before its first SPS/PPS


def split_annexb_lenient(data: bytes | bytearray | memoryview) -> list[bytes]:
    """NAL units between Annex B start codes; bytes before the first start code are dropped
    (a PES that lost its head to a gap still yields its complete NAL units)."""
    buf = bytes(data)
    start = buf.find(b"\x00\x00\x01")
    if start < 0:
        return []
    return avc.split_annexb(buf[start:])


class AnnexBVideo:
    """H.264/H.265 access units in Annex B form -> ``VideoConfig`` on every new set of
    parameter sets, then ``AccessUnit``s of length-prefixed NAL units (AUDs and parameter sets
    stripped: the configuration carries them)."""

    def __init__(self, stats: EsStats) -> None:
        self.stats = stats
        self.config: VideoConfig | None = None
        self._parameter_sets: tuple[bytes, ...] = ()

    def feed(self, h265: bool, body: memoryview, pts: int | None, dts: int | None, to_ms: ToMs,
             wallclock: float) -> list[Unit]:
        if pts is None or dts is None:
            self.stats.pes_dropped += 1
            return []
        try:
            nals = split_annexb_lenient(body)
        except MediaFormatError:
            self.stats.bad_units += 1
            return []
        kinds = [hevc.nal_unit_type(nal) if h265 else avc.nal_unit_type(nal) for nal in nals]
        out: list[Unit] = []
        self._update_config(h265, nals, kinds, out)
        if self.config is None:
            self.stats.units_before_config += 1
            return out
        drop = _H265_DROP if h265 else _H264_DROP
        frame = [nal for nal, kind in zip(nals, kinds, strict=True) if kind not in drop]
        if not frame:
            return out
        keyframe = any(16 <= kind <= 21 for kind in kinds) if h265 else avc.NAL_IDR in kinds
        try:
            data = avc.join_avcc(frame, self.config.nal_length_size)
        except ValueError:
            self.stats.bad_units += 1
            return out
        out.append(AccessUnit(TrackKind.VIDEO, to_ms(dts), to_ms(pts), data, keyframe, wallclock))
        return out

    def _update_config(self, h265: bool, nals: list[bytes], kinds: list[int], out: list[Unit]) -> None:
        if h265:
            vps = tuple(n for n, k in zip(nals, kinds, strict=True) if k == hevc.NAL_VPS)
            sps = tuple(n for n, k in zip(nals, kinds, strict=True) if k == hevc.NAL_SPS)
            pps = tuple(n for n, k in zip(nals, kinds, strict=True) if k == hevc.NAL_PPS)
            if not (vps and sps and pps):
                return
            sets = vps + sps + pps
        else:
            sps, pps = avc.parameter_sets(nals)
            if not (sps and pps):
                return
            sets = sps + pps
        if sets == self._parameter_sets:
            return
        try:
            if h265:
                config = hevc.video_config_from_record(hevc.build_hevc_record(vps, sps, pps))
            else:
                config = avc.video_config_from_parameter_sets(sps, pps)
        except (MediaFormatError, ValueError, IndexError):
            self.stats.bad_units += 1
            return
        self._parameter_sets = sets
        if config != self.config:
            self.config = config
            out.append(config)


class AdtsAudio:
    """ADTS frames -> an ``AudioConfig`` (again when the header changes) and one raw-block
    ``AccessUnit`` per frame; frames after the first of a PES are 1024 samples apart, and a PES
    without a PTS continues from the previous one."""

    def __init__(self, stats: EsStats) -> None:
        self.stats = stats
        self.config: AudioConfig | None = None
        self._key: tuple[int, int, int] | None = None
        self._next: int | None = None

    def feed(self, body: memoryview, pts: int | None, to_ms: ToMs, wallclock: float) -> list[Unit]:
        timestamp = pts if pts is not None else self._next
        if timestamp is None:
            self.stats.pes_dropped += 1
            return []
        out: list[Unit] = []
        at = 0
        while len(body) - at >= 7:
            try:
                header = parse_adts_header(body[at : at + 9])
            except AacError:
                self.stats.bad_units += 1
                break
            if header.raw_data_blocks != 1 or at + header.frame_length > len(body) \
                    or header.payload_length <= 0:
                self.stats.bad_units += 1
                break
            if not self._update_config(header, out):
                break
            raw = bytes(body[at + header.header_length : at + header.frame_length])
            ms = to_ms(timestamp)
            out.append(AccessUnit(TrackKind.AUDIO, ms, ms, raw, True, wallclock))
            timestamp += AAC_FRAME_SAMPLES * CLOCK_HZ // header.sample_rate
            at += header.frame_length
        self._next = timestamp
        return out

    def _update_config(self, header: AdtsHeader, out: list[Unit]) -> bool:
        key = (header.object_type, header.sample_rate_index, header.channel_config)
        if key == self._key:
            return True
        try:
            config = audio_config_from_adts(header)
        except (MediaFormatError, ValueError, KeyError):
            self.stats.bad_units += 1
            return False
        self._key = key
        self.config = config
        out.append(config)
        return True
