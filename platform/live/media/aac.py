"""AAC: AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and ADTS framing (14496-3 1.A.2).

FLV and MP4 carry AAC as one AudioSpecificConfig plus raw data blocks; some encoders (and
MPEG-TS) wrap each block in an ADTS header instead. ``AacError`` (a ``MediaFormatError``) is the
only exception malformed input raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from live.media.bits import BitReader, BitstreamError, BitWriter, MediaFormatError
from live.media.units import AudioConfig

# Table 1.18: samplingFrequencyIndex; 13 and 14 are reserved, 15 means "24-bit value follows".
SAMPLE_RATES: tuple[int, ...] = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip
_ESCAPE_RATE_INDEX = 15
_ESCAPE_OBJECT_TYPE = 31

AOT_AAC_MAIN = 1
AOT_AAC_LC = 2
AOT_SBR = 5  # HE-AAC
AOT_PS = 29  # HE-AAC v2

# 1.6.2.1: object types whose specific config is a GASpecificConfig.
_GA_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
# Object types this module can write a complete AudioSpecificConfig for.
BUILDABLE_OBJECT_TYPES = frozenset({1, 2, 3, 4, 5, 29})

# Table 1.19: channelConfiguration -> output channels (0 = defined by a program_config_element).
_CHANNELS_BY_CONFIG = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
_CONFIG_BY_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}


class AacError(MediaFormatError):
    """Malformed or unsupported AudioSpecificConfig or ADTS frame."""


@dataclass(frozen=True, slots=True)
class Asc:
    """What an AudioSpecificConfig says.

    For HE-AAC (SBR, object type 5) and HE-AAC v2 (PS, 29) ``sample_rate`` and ``channels``
    are the decoder's output (the SBR rate; stereo for PS), which is what players and PyAV
    report; ``core_sample_rate`` and ``channel_config`` are the AAC core's.
    """

    object_type: int  # as signalled first: 5 or 29 for explicit HE-AAC
    core_object_type: int  # the underlying coder (2 for HE-AAC over AAC-LC)
    core_sample_rate: int
    sample_rate: int
    channel_config: int
    channels: int
    frame_length: int  # samples per frame of the core: 1024 or 960 (GA only)

    @property
    def codec_string(self) -> str:
        """RFC 6381 3.3 / ISO/IEC 14496-3: ``mp4a.40.<audio object type>``."""
        return f"mp4a.40.{self.object_type}"


def _read_object_type(r: BitReader) -> int:
    aot = r.read_bits(5)
    if aot == _ESCAPE_OBJECT_TYPE:
        aot = 32 + r.read_bits(6)
    if aot == 0:
        raise AacError("audio object type 0 (null object) is not a codec")
    return aot


def _read_sample_rate(r: BitReader) -> int:
    index = r.read_bits(4)
    if index == _ESCAPE_RATE_INDEX:
        rate = r.read_bits(24)
        if rate == 0:
            raise AacError("explicit sampling frequency of 0 Hz")
        return rate
    if index >= len(SAMPLE_RATES):
        raise AacError(f"samplingFrequencyIndex {index} is reserved")
    return SAMPLE_RATES[index]


def _program_config_channels(r: BitReader) -> int:
    """Output channels of a program_config_element (14496-3 4.4.1.1, Table 4.2)."""
    r.skip_bits(4 + 2 + 4)  # element_instance_tag, object_type, sampling_frequency_index
    front, side, back = r.read_bits(4), r.read_bits(4), r.read_bits(4)
    lfe, assoc, cc = r.read_bits(2), r.read_bits(3), r.read_bits(4)
    for _ in range(2):  # mono_mixdown, stereo_mixdown
        if r.read_flag():
            r.skip_bits(4)
    if r.read_flag():  # matrix_mixdown_idx_present
        r.skip_bits(3)
    channels = 0
    for _ in range(front + side + back):
        channels += 2 if r.read_flag() else 1
        r.skip_bits(4)
    r.skip_bits(4 * lfe + 4 * assoc + 5 * cc)
    channels += lfe
    if channels == 0:
        raise AacError("program_config_element declares no channels")
    return channels


def parse_audio_specific_config(data: bytes | bytearray | memoryview) -> Asc:
    """Parse an AudioSpecificConfig (14496-3 1.6.2.1), including both escape codes."""
    if not data:
        raise AacError("empty AudioSpecificConfig")
    r = BitReader(data)
    try:
        return _parse_asc(r)
    except BitstreamError as exc:
        raise AacError(f"truncated AudioSpecificConfig: {exc}") from exc


def _parse_asc(r: BitReader) -> Asc:
    object_type = _read_object_type(r)
    core_rate = _read_sample_rate(r)
    channel_config = r.read_bits(4)
    core_type = object_type
    output_rate = core_rate
    if object_type in (AOT_SBR, AOT_PS):
        output_rate = _read_sample_rate(r)
        core_type = _read_object_type(r)
        if core_type == 22:
            r.skip_bits(4)  # extensionChannelConfiguration
    frame_length = 1024
    channels: int | None = None
    if core_type in _GA_TYPES:
        frame_length = 960 if r.read_flag() else 1024
        if r.read_flag():  # dependsOnCoreCoder
            r.skip_bits(14)
        r.skip_bits(1)  # extensionFlag: what follows it cannot change rate or channels
        if channel_config == 0:
            channels = _program_config_channels(r)
    if channels is None:
        if channel_config == 0:
            raise AacError(
                f"channel layout in a program_config_element for object type {core_type} "
                "is not supported"
            )
        if channel_config not in _CHANNELS_BY_CONFIG:
            raise AacError(f"channelConfiguration {channel_config} is reserved")
        channels = _CHANNELS_BY_CONFIG[channel_config]
    if object_type == AOT_PS and channels == 1:
        channels = 2
    return Asc(
        object_type=object_type,
        core_object_type=core_type,
        core_sample_rate=core_rate,
        sample_rate=output_rate,
        channel_config=channel_config,
        channels=channels,
        frame_length=frame_length,
    )


def audio_config_from_asc(data: bytes | bytearray | memoryview) -> AudioConfig:
    asc = parse_audio_specific_config(data)
    return AudioConfig(
        codec="aac",
        codec_string=asc.codec_string,
        sample_rate=asc.sample_rate,
        channels=asc.channels,
        object_type=asc.object_type,
        record=bytes(data),
    )


def _write_object_type(w: BitWriter, aot: int) -> None:
    if aot >= _ESCAPE_OBJECT_TYPE:
        w.write_bits(_ESCAPE_OBJECT_TYPE, 5)
        w.write_bits(aot - 32, 6)
    else:
        w.write_bits(aot, 5)


def _write_sample_rate(w: BitWriter, rate: int) -> None:
    if rate in SAMPLE_RATES:
        w.write_bits(SAMPLE_RATES.index(rate), 4)
    else:
        if not 0 < rate < 1 << 24:
            raise ValueError(f"sample rate {rate} does not fit an AudioSpecificConfig")
        w.write_bits(_ESCAPE_RATE_INDEX, 4)
        w.write_bits(rate, 24)


def build_audio_specific_config(object_type: int, sample_rate: int, channels: int) -> bytes:
    """Write an AudioSpecificConfig for an AAC coder (object types 1-4) or explicit HE-AAC
    (5: SBR, 29: SBR+PS over AAC-LC, with ``sample_rate``/``channels`` the output's)."""
    if object_type not in BUILDABLE_OBJECT_TYPES:
        raise ValueError(f"cannot build an AudioSpecificConfig for object type {object_type}")
    w = BitWriter()
    _write_object_type(w, object_type)
    if object_type in (AOT_SBR, AOT_PS):
        if sample_rate % 2:
            raise ValueError(f"HE-AAC output rate {sample_rate} is not twice a core rate")
        core_channels = 1 if object_type == AOT_PS else channels
        if object_type == AOT_PS and channels != 2:
            raise ValueError("HE-AAC v2 (PS) always decodes to 2 channels")
        _write_sample_rate(w, sample_rate // 2)
        w.write_bits(_channel_config(core_channels), 4)
        _write_sample_rate(w, sample_rate)
        _write_object_type(w, AOT_AAC_LC)
    else:
        _write_sample_rate(w, sample_rate)
        w.write_bits(_channel_config(channels), 4)
    w.write_bits(0, 3)  # GASpecificConfig: 1024-sample frames, no core coder, no extension
    return w.getvalue()


def _channel_config(channels: int) -> int:
    try:
        return _CONFIG_BY_CHANNELS[channels]
    except KeyError:
        raise ValueError(f"no channelConfiguration for {channels} channels") from None


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    """An ADTS fixed + variable header (14496-3 1.A.2.2.1)."""

    object_type: int  # profile_ObjectType + 1
    sample_rate_index: int
    channel_config: int
    frame_length: int  # whole frame, header included
    header_length: int  # 7, or 9 with CRC
    raw_data_blocks: int  # number_of_raw_data_blocks_in_frame + 1

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATES[self.sample_rate_index]

    @property
    def payload_length(self) -> int:
        return self.frame_length - self.header_length


def parse_adts_header(data: bytes | bytearray | memoryview) -> AdtsHeader:
    if len(data) < 7:
        raise AacError(f"ADTS header needs 7 bytes, got {len(data)}")
    b = bytes(data[:7])
    if b[0] != 0xFF or b[1] & 0xF6 != 0xF0:
        raise AacError(f"no ADTS syncword/layer 0 at the start: {b[:2].hex()}")
    protection_absent = b[1] & 0x01
    profile = b[2] >> 6
    rate_index = (b[2] >> 2) & 0x0F
    if rate_index >= len(SAMPLE_RATES):
        raise AacError(f"ADTS sampling_frequency_index {rate_index} is reserved")
    channel_config = ((b[2] & 0x01) << 2) | (b[3] >> 6)
    frame_length = ((b[3] & 0x03) << 11) | (b[4] << 3) | (b[5] >> 5)
    header_length = 7 if protection_absent else 9
    if frame_length < header_length:
        raise AacError(f"ADTS aac_frame_length {frame_length} is shorter than its header")
    return AdtsHeader(
        object_type=profile + 1,
        sample_rate_index=rate_index,
        channel_config=channel_config,
        frame_length=frame_length,
        header_length=header_length,
        raw_data_blocks=(b[6] & 0x03) + 1,
    )


def iter_adts_frames(data: bytes | bytearray | memoryview) -> Iterator[tuple[AdtsHeader, bytes]]:
    """Each ADTS frame's header and raw data block; the input must be whole frames."""
    buf = bytes(data)
    pos = 0
    while pos < len(buf):
        header = parse_adts_header(buf[pos:])
        if header.raw_data_blocks != 1:
            raise AacError(
                f"ADTS frame with {header.raw_data_blocks} raw data blocks cannot be split"
            )
        if pos + header.frame_length > len(buf):
            raise AacError(
                f"ADTS frame at byte {pos} claims {header.frame_length} bytes, "
                f"{len(buf) - pos} left"
            )
        yield header, buf[pos + header.header_length : pos + header.frame_length]
        pos += header.frame_length


def audio_config_from_adts(header: AdtsHeader) -> AudioConfig:
    """The AudioConfig an ADTS header implies (ADTS cannot signal HE-AAC explicitly)."""
    if header.channel_config == 0:
        raise AacError("ADTS channel_configuration 0 (in-band PCE) is not supported")
    asc = build_audio_specific_config(
        header.object_type, header.sample_rate, _CHANNELS_BY_CONFIG[header.channel_config]
    )
    return audio_config_from_asc(asc)


def build_adts_header(config: AudioConfig, payload_length: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw data block of AAC-LC/Main/SSR/LTP."""
    asc = parse_audio_specific_config(config.record)
    if asc.object_type > 4:
        raise ValueError(f"ADTS cannot carry object type {asc.object_type}")
    if asc.sample_rate not in SAMPLE_RATES or not 1 <= asc.channel_config <= 7:
        raise ValueError("ADTS needs a table sample rate and a channelConfiguration of 1-7")
    frame_length = payload_length + 7
    if frame_length >= 1 << 13:
        raise ValueError(f"an ADTS frame cannot hold {payload_length} bytes")
    w = BitWriter()
    w.write_bits(0xFFF, 12)
    w.write_bits(0, 1)  # ID: MPEG-4
    w.write_bits(0, 2)  # layer
    w.write_bits(1, 1)  # protection_absent
    w.write_bits(asc.object_type - 1, 2)
    w.write_bits(SAMPLE_RATES.index(asc.sample_rate), 4)
    w.write_bits(0, 1)  # private_bit
    w.write_bits(asc.channel_config, 3)
    w.write_bits(0, 4)  # original_copy, home, copyright bits
    w.write_bits(frame_length, 13)
    w.write_bits(0x7FF, 11)  # adts_buffer_fullness: variable rate
    w.write_bits(0, 2)  # one raw data block
    return w.getvalue()
