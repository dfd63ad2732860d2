"""Encoder selection and per-rung encoder settings.

A hardware encoder is used only after a real one-frame test encode succeeded in this process:
``h264_nvenc`` is compiled into most FFmpeg builds, so its presence in ``av.codecs_available``
says nothing about a usable GPU (the H100/H200 have no NVENC engine at all). The probe opens
the encoder, encodes one frame and flushes; any failure is the reason we fall back to the
software encoder, and that reason is kept in the ``EncoderChoice`` the API shows.

Low-latency settings and aligned IDRs (what the CMAF packager and LL-HLS need, RFC 8216bis
4.4.4.2 and ISO/IEC 23000-19 7.3.2): no B-frames (so DTS = PTS and no reorder delay),
closed GOPs, no scene-cut keyframes, ``keyint`` = segment length x rung fps as a ceiling, and an
IDR forced on the frame whose PTS crosses each segment boundary (the pipeline sets those).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import av
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext

from live.transcode.ladder import Rung

log = logging.getLogger(__name__)

HARDWARE = {"h264": "h264_nvenc", "h265": "hevc_nvenc"}
#: x264 presets, fastest first: the real-time guard steps towards the front under load.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
#: What a faster preset would otherwise change in the SPS/PPS (CABAC, 8x8 transform, weighted
#: prediction, reference count), pinned to ``veryfast``'s values so a rung can switch preset at
#: an IDR and keep the init segment its players already have.
_PARAMETER_SET_PINS = "cabac=1:8x8dct=1:weightp=1:ref=1"
SOFTWARE = {"h264": "libx264", "h265": "libx265"}

# AV_CODEC_FLAG_GLOBAL_HEADER: SPS/PPS go to extradata (-> avcC), not in front of every IDR.
_GLOBAL_HEADER = 1 << 22


@dataclass(frozen=True, slots=True)
class EncoderChoice:
    """The encoder a stream's rungs use and why (shown in metrics and ``/api/v1/streams``)."""

    name: str  # FFmpeg encoder name, e.g. "libx264"
    codec: str  # "h264" or "h265"
    hardware: bool
    reason: str


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """Encoder knobs shared by every rung of a stream."""

    preset: str = "veryfast"  # x264/x265 preset
    tune: str = "zerolatency"
    segment_s: float = 2.0  # IDR period: one IDR at the start of every segment
    threads: int = 0  # 0 = encoder's choice
    nvenc_preset: str = "p4"
    prefer_hardware: bool = True
    #: pin what a preset changes in the parameter sets (a preset the guard switched to)
    pin_parameter_sets: bool = False

    def __post_init__(self) -> None:
        if self.segment_s <= 0:
            raise ValueError("segment_s must be positive")


def probe_encoder(name: str, *, width: int = 256, height: int = 144) -> str | None:
    """Encode one real frame with ``name``; None if it worked, else why it did not."""
    if name not in av.codecs_available:
        return f"{name} is not compiled into this FFmpeg"
    try:
        ctx = CodecContext.create(name, "w")
        assert isinstance(ctx, VideoCodecContext)
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.framerate = Fraction(30)
        if name == "libx265":
            ctx.options = {"x265-params": "log-level=error"}
        ctx.open()
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    except Exception as exc:  # every failure mode (no device, no driver, no session) is a "no"
        return f"{name} test encode failed: {type(exc).__name__}: {exc}"
    if not packets or packets[0].size == 0:
        return f"{name} test encode produced no packet"
    return None


@lru_cache(maxsize=8)
def _probe_cached(name: str) -> str | None:
    return probe_encoder(name)


def select_encoder(codec: str = "h264", *, prefer_hardware: bool = True) -> EncoderChoice:
    """Hardware encoder if its test encode works here, else the software one (also probed)."""
    if codec not in SOFTWARE:
        raise ValueError(f"no encoder family for codec {codec!r}")
    hw_failure = "hardware encoding disabled by settings"
    if prefer_hardware:
        failure = _probe_cached(HARDWARE[codec])
        if failure is None:
            choice = EncoderChoice(HARDWARE[codec], codec, True, "test encode succeeded")
            log.info("transcode encoder: %s (%s)", choice.name, choice.reason)
            return choice
        hw_failure = failure
    sw_failure = _probe_cached(SOFTWARE[codec])
    if sw_failure is not None:
        raise RuntimeError(f"no usable {codec} encoder: {hw_failure}; {sw_failure}")
    choice = EncoderChoice(SOFTWARE[codec], codec, False, hw_failure)
    log.info("transcode encoder: %s (fallback: %s)", choice.name, choice.reason)
    return choice


def faster_preset(choice: EncoderChoice, settings: EncoderSettings) -> EncoderSettings | None:
    """The next faster x264 preset, with pinned parameter sets; None when there is none."""
    if choice.name != "libx264" or settings.preset not in X264_PRESETS:
        return None
    index = X264_PRESETS.index(settings.preset)
    if index == 0:
        return None
    return replace(settings, preset=X264_PRESETS[index - 1], pin_parameter_sets=True)


def keyint(rung: Rung, settings: EncoderSettings) -> int:
    """Frames per segment at the rung's frame rate: the GOP ceiling."""
    return max(1, round(settings.segment_s * rung.fps))


def x264_params(rung: Rung, settings: EncoderSettings) -> str:
    """The ``-x264-params`` string (shared with the ffmpeg CLI baseline in bench/)."""
    assert rung.video_kbps is not None
    gop = keyint(rung, settings)
    kbps = rung.video_kbps
    params = (
        f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:bframes=0:"
        f"bitrate={kbps}:vbv-maxrate={kbps}:vbv-bufsize={2 * kbps}"
    )
    return f"{params}:{_PARAMETER_SET_PINS}" if settings.pin_parameter_sets else params


def x265_params(rung: Rung, settings: EncoderSettings) -> str:
    assert rung.video_kbps is not None
    gop = keyint(rung, settings)
    kbps = rung.video_kbps
    return (
        f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:bframes=0:repeat-headers=0:"
        f"bitrate={kbps}:vbv-maxrate={kbps}:vbv-bufsize={2 * kbps}:log-level=error"
    )


def encoder_options(choice: EncoderChoice, rung: Rung, settings: EncoderSettings) -> dict[str, str]:
    """AVOptions for ``choice`` encoding ``rung``."""
    assert rung.video_kbps is not None
    if choice.name == "libx264":
        opts = {
            "preset": settings.preset,
            "tune": settings.tune,
            "forced-idr": "1",
            "x264-params": x264_params(rung, settings),
        }
    elif choice.name == "libx265":
        opts = {
            "preset": settings.preset,
            "tune": settings.tune,
            "forced-idr": "1",
            "x265-params": x265_params(rung, settings),
        }
    else:  # h264_nvenc / hevc_nvenc
        gop = str(keyint(rung, settings))
        kbps = rung.video_kbps
        opts = {
            "preset": settings.nvenc_preset,
            "tune": "ll",
            "rc": "cbr",
            "zerolatency": "1",
            "forced-idr": "1",
            "bf": "0",
            "g": gop,
            "strict_gop": "1",
            "no-scenecut": "1",
            "b": f"{kbps}k",
            "maxrate": f"{kbps}k",
            "bufsize": f"{2 * kbps}k",
        }
    if settings.threads:
        opts["threads"] = str(settings.threads)
    return opts


def open_encoder(choice: EncoderChoice, rung: Rung, settings: EncoderSettings) -> VideoCodecContext:
    """An opened encoder for ``rung`` taking yuv420p frames with PTS in milliseconds."""
    ctx = CodecContext.create(choice.name, "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = rung.width, rung.height, "yuv420p"
    ctx.time_base = Fraction(1, 1000)
    ctx.framerate = Fraction(rung.fps).limit_denominator(1001)
    ctx.flags = int(ctx.flags) | _GLOBAL_HEADER
    ctx.options = encoder_options(choice, rung, settings)
    ctx.open()
    return ctx
