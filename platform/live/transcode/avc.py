"""What an encoder emits (Annex B) turned into what the rest of the media path carries.

Encoders write H.264/H.265 as Annex B byte streams (ITU-T H.264 Annex B, H.265 Annex B) and,
with a global header, their parameter sets the same way. ``AccessUnit`` carries length-prefixed
NAL units and ``VideoConfig`` the decoder configuration record (ISO/IEC 14496-15 5.3.3.1 avcC,
8.3.3.1 hvcC), so both are rewritten here with the shared codecs in ``live.media``: an
encoded rung's config is built exactly as ingest builds a publisher's.
"""

from __future__ import annotations

from live.media import avc, hevc
from live.media.bits import MediaFormatError
from live.media.units import VideoConfig


def config_from_global_header(codec: str, extradata: bytes) -> VideoConfig:
    """The VideoConfig of an encoder whose global header (Annex B parameter sets) is given."""
    nals = avc.split_annexb(extradata)
    if codec == "h264":
        sps, pps = avc.parameter_sets(nals)
        if not sps or not pps:
            raise MediaFormatError("H.264 encoder header holds no SPS and PPS")
        return avc.video_config_from_parameter_sets(sps, pps)
    if codec == "h265":
        by_type: dict[int, list[bytes]] = {hevc.NAL_VPS: [], hevc.NAL_SPS: [], hevc.NAL_PPS: []}
        for nal in nals:
            group = by_type.get(hevc.nal_unit_type(nal))
            if group is not None and nal not in group:
                group.append(nal)
        if not all(by_type.values()):
            raise MediaFormatError("H.265 encoder header holds no VPS, SPS and PPS")
        record = hevc.build_hevc_record(by_type[hevc.NAL_VPS], by_type[hevc.NAL_SPS], by_type[hevc.NAL_PPS])
        return hevc.video_config_from_record(record)
    raise ValueError(f"no decoder configuration for codec {codec!r}")


def packet_to_avcc(data: bytes) -> bytes:
    """One encoded packet (Annex B) as a length-prefixed access unit (4-byte lengths)."""
    return avc.annexb_to_avcc(data)
