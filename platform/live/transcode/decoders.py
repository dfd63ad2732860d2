"""Decoder selection: NVDEC (FFmpeg's CUDA hwaccel) when a real test decode works, else software.

Unlike NVENC, NVDEC exists on data-centre GPUs such as the H100 (which has no NVENC engine), so
a GPU worker can decode in hardware and encode with x264. As with encoders, presence in the
FFmpeg build proves nothing: the probe encodes one frame in software and decodes it through the
hardware path, and only a decoded frame from a context that reports ``is_hwaccel`` counts.
Decoded frames come back in system memory (NV12), so the per-rung scaler needs no change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
from av.codec.context import CodecContext
from av.codec.hwaccel import HWAccel
from av.video.codeccontext import VideoCodecContext

log = logging.getLogger(__name__)

_FFMPEG_DECODER = {"h264": "h264", "h265": "hevc"}
_SAMPLE_ENCODER = {"h264": "libx264", "h265": "libx265"}
_GLOBAL_HEADER = 1 << 22


@dataclass(frozen=True, slots=True)
class DecoderChoice:
    """How a stream's source is decoded (shown in metrics beside the EncoderChoice)."""

    name: str  # FFmpeg decoder name
    codec: str  # "h264" or "h265"
    hardware: bool
    reason: str
    device_type: str | None = None  # FFmpeg hwdevice type, e.g. "cuda"


def _sample(codec: str) -> tuple[bytes, bytes]:
    """A one-frame bitstream in this codec (global header, then the frame), made in software."""
    ctx = CodecContext.create(_SAMPLE_ENCODER[codec], "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 256, 144, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.flags = int(ctx.flags) | _GLOBAL_HEADER
    if codec == "h265":
        ctx.options = {"x265-params": "log-level=error"}
    ctx.open()
    frame = av.VideoFrame(256, 144, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    return bytes(ctx.extradata or b""), data


def open_decoder(choice: DecoderChoice, extradata: bytes, *, threads: int = 1) -> VideoCodecContext:
    """A decoder for ``choice`` fed the given configuration record (or Annex B header)."""
    if choice.hardware:
        assert choice.device_type is not None
        hwaccel = HWAccel(choice.device_type, allow_software_fallback=False)
        ctx = CodecContext.create(choice.name, "r", hwaccel=hwaccel)
    else:
        ctx = CodecContext.create(choice.name, "r")
    assert isinstance(ctx, VideoCodecContext)
    ctx.extradata = extradata
    if threads > 1 and not choice.hardware:
        ctx.thread_type = "AUTO"
        ctx.thread_count = threads
    else:
        ctx.thread_count = 1
    return ctx


def probe_hardware_decoder(codec: str, device_type: str = "cuda") -> str | None:
    """Decode one real frame through ``device_type``; None if it worked, else why not."""
    name = _FFMPEG_DECODER[codec]
    try:
        extradata, data = _sample(codec)
        choice = DecoderChoice(name, codec, True, "probe", device_type)
        ctx = open_decoder(choice, extradata)
        frames = ctx.decode(av.Packet(data)) + ctx.decode(None)
        hardware = ctx.is_hwaccel
    except Exception as exc:  # no device, no driver, no session: all mean "no"
        return f"{name} with {device_type} hwaccel failed: {type(exc).__name__}: {exc}"
    if not frames:
        return f"{name} with {device_type} hwaccel decoded no frame"
    if not hardware:
        return f"{name} fell back to software decoding"
    return None


@lru_cache(maxsize=4)
def _probe_cached(codec: str) -> str | None:
    return probe_hardware_decoder(codec)


def select_decoder(codec: str = "h264", *, prefer_hardware: bool = True) -> DecoderChoice:
    """NVDEC if its test decode works here, else FFmpeg's software decoder."""
    if codec not in _FFMPEG_DECODER:
        raise ValueError(f"no decoder for codec {codec!r}")
    name = _FFMPEG_DECODER[codec]
    reason = "hardware decoding disabled by settings"
    if prefer_hardware:
        failure = _probe_cached(codec)
        if failure is None:
            choice = DecoderChoice(name, codec, True, "test decode succeeded", "cuda")
            log.info("transcode decoder: %s on cuda (NVDEC)", name)
            return choice
        reason = failure
    log.info("transcode decoder: %s in software (%s)", name, reason)
    return DecoderChoice(name, codec, False, reason)
