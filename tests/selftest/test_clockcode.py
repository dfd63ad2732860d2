"""The painted clock reads back exactly after scaling and low-bitrate H.264, and never lies."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.selftest import clockcode

NOW_MS = 1_795_000_000_000  # late 2026
timestamps = st.integers(min_value=0, max_value=clockcode.MAX_MS)


def busy_picture(width: int, height: int, seed: int) -> np.ndarray:
    """Noise and stripes around the code, so the encoder spends its bits everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (xx * 3 + yy * 2 + seed * 17) % 256
    rgb = np.stack([base, (base * 7) % 256, 255 - base], axis=-1).astype(np.int16)
    rgb += rng.integers(-40, 40, size=rgb.shape, dtype=np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def h264_round_trip(frames: list[av.VideoFrame], bitrate: int) -> list[av.VideoFrame]:
    """Encode with libx264 at ``bitrate`` bit/s, decode, and return the decoded pictures."""
    width, height = frames[0].width, frames[0].height
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bitrate
    encoder.framerate = 30
    encoder.time_base = Fraction(1, 30)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0", "g": "30",
                       "rc-lookahead": "0", "maxrate": str(bitrate), "bufsize": str(bitrate)}
    decoder = av.CodecContext.create("h264", "r")
    decoded: list[av.VideoFrame] = []
    for i, frame in enumerate(frames):
        frame.pts = i
        for packet in encoder.encode(frame.reformat(format="yuv420p")):
            decoded.extend(decoder.decode(packet))
    for packet in encoder.encode(None):
        decoded.extend(decoder.decode(packet))
    decoded.extend(decoder.decode(None))
    return decoded


def luma(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="gray")


@given(timestamps)
@settings(max_examples=200, deadline=None)
def test_bits_round_trip_for_every_48_bit_timestamp(ms: int) -> None:
    assert clockcode.decode_bits(clockcode.encode_bits(ms)) == ms


@given(timestamps, st.data())
@settings(max_examples=200, deadline=None)
def test_any_single_or_double_cell_flip_is_detected(ms: int, data: st.DataObject) -> None:
    bits = clockcode.encode_bits(ms)
    flips = data.draw(st.sets(st.integers(0, clockcode.DATA_CELLS - 1), min_size=1, max_size=2))
    for i in flips:
        bits[i] ^= 1
    assert clockcode.decode_bits(bits) is None


def test_timestamps_beyond_48_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="48 bits"):
        clockcode.encode_bits(clockcode.MAX_MS + 1)
    with pytest.raises(ValueError):
        clockcode.encode_bits(-1)


@given(timestamps, st.sampled_from([(1280, 720), (284, 160), (426, 240), (640, 360), (1920, 1080)]))
@settings(max_examples=60, deadline=None)
def test_painted_luma_reads_back_exactly_at_any_resolution(ms: int, size: tuple[int, int]) -> None:
    width, height = size
    plane = np.full((height, width), 128, dtype=np.uint8)
    assert clockcode.read(clockcode.paint(plane, ms)) == ms


@given(timestamps, st.sampled_from([(284, 160), (426, 240), (640, 360)]))
@settings(max_examples=40, deadline=None)
def test_rgb_painted_at_720p_reads_back_after_downscaling(ms: int, size: tuple[int, int]) -> None:
    rgb = clockcode.paint(busy_picture(1280, 720, ms % 97), ms)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    small = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
    assert clockcode.read(luma(small)) == ms


def test_frames_without_a_code_read_as_none() -> None:
    assert clockcode.read(np.full((160, 284), 128, dtype=np.uint8)) is None
    assert clockcode.read(busy_picture(284, 160, 3)[:, :, 0]) is None
    assert clockcode.read(np.zeros((10, 10), dtype=np.uint8)) is None


@given(timestamps, st.integers(0, clockcode.DATA_CELLS - 1))
@settings(max_examples=100, deadline=None)
def test_a_damaged_cell_never_reads_as_another_time(ms: int, cell: int) -> None:
    plane = clockcode.paint(np.full((160, 284), 128, dtype=np.uint8), ms)
    row, col = divmod(cell, clockcode.DATA_COLUMNS)
    col += len(clockcode.LEFT_GUARD)
    x0, x1 = round(col * 284 / clockcode.COLUMNS), round((col + 1) * 284 / clockcode.COLUMNS)
    rows = clockcode.CELLS_PER_HEIGHT
    y0, y1 = round(row * 160 / rows), round((row + 1) * 160 / rows)
    plane[y0:y1, x0:x1] = 251 - plane[y0:y1, x0:x1]  # invert one cell: 16 <-> 235
    assert clockcode.read(plane) is None
    plane[y0:y1, x0:x1] = 125  # gray: ambiguous, not a guess
    assert clockcode.read(plane) is None


@pytest.mark.slow
def test_codes_survive_720p_encode_then_ladder_scaling_and_low_bitrate_h264() -> None:
    """The transcoder's path: 720p publish at 1.5 Mb/s, decode, scale, re-encode starved."""
    painted = [NOW_MS + i * 33 for i in range(12)]
    source = [
        av.VideoFrame.from_ndarray(clockcode.paint(busy_picture(1280, 720, i), ms), format="rgb24")
        for i, ms in enumerate(painted)
    ]
    published = h264_round_trip(source, 1_500_000)
    assert [clockcode.read(luma(f)) for f in published] == painted
    for (width, height), bitrate in (((284, 160), 100_000), ((426, 240), 200_000), ((640, 360), 400_000)):
        scaled = [f.reformat(width=width, height=height, format="yuv420p") for f in published]
        decoded = h264_round_trip(scaled, bitrate)
        assert [(f.width, f.height) for f in decoded] == [(width, height)] * len(painted)
        assert [clockcode.read(luma(f)) for f in decoded] == painted
