"""A wall-clock stamp painted into the picture, readable after scaling and lossy coding.

Glass-to-glass latency needs the capture instant carried *inside* the pixels: timestamps in
the container (PTS, PROGRAM-DATE-TIME) are rewritten by every stage and cover only part of the
path. The publisher paints ``time.time()`` in milliseconds into each frame it generates; a
probe viewer reads it back from the decoded picture, so the difference covers everything from
capture to decode (docs/glass-to-glass.md).

The code is a grid of big black/white cells across the top of the frame:
``ROWS`` rows of ``COLUMNS`` cells, each ``1/COLUMNS`` of the frame width (about 11 px at
284x160) and ``1/CELLS_PER_HEIGHT`` of its height. Every row starts with white, black and
ends with black, white (guards); those give the reader its black and white levels and prove a
code is present at all. The 66 data cells carry 48 bits of epoch milliseconds, a CRC-16 of
them and two fixed bits. Cells are located by relative position only, so any scaled copy of
the frame reads the same; the reader samples the middle of each cell (edges blur under
scaling and chroma/DCT artefacts) and refuses cells that are too close to the threshold, so a
damaged code reads as None rather than as a wrong time.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

ROWS: Final = 3
COLUMNS: Final = 26
#: Cell height as a fraction of the frame height: 1/15 keeps cells square at 16:9.
CELLS_PER_HEIGHT: Final = 15
TIMESTAMP_BITS: Final = 48
CRC_BITS: Final = 16
#: Left guard (white, black) and right guard (black, white) of every row.
LEFT_GUARD: Final = (1, 0)
RIGHT_GUARD: Final = (0, 1)
DATA_COLUMNS: Final = COLUMNS - len(LEFT_GUARD) - len(RIGHT_GUARD)
DATA_CELLS: Final = ROWS * DATA_COLUMNS
#: Cells left over after timestamp and CRC; painted as 1, 0 and checked by the reader.
TRAILER: Final = (1, 0)
#: The reader needs white - black of at least this many 8-bit levels to believe a code is there.
MIN_CONTRAST: Final = 48
#: A cell within this fraction of the contrast from the threshold is ambiguous: no reading.
AMBIGUITY: Final = 0.2
MAX_MS: Final = (1 << TIMESTAMP_BITS) - 1

#: Luma levels for video range Y (ITU-R BT.601/709: black 16, white 235) and full-range RGB.
_Y_LEVELS: Final = (16, 235)
_RGB_LEVELS: Final = (0, 255)

assert TIMESTAMP_BITS + CRC_BITS + len(TRAILER) == DATA_CELLS


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): detects every 1- and 2-bit misread."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_bits(ms: int) -> list[int]:
    """The 66 data cells for ``ms``: timestamp MSB first, CRC-16 of its 6 bytes, trailer."""
    if not 0 <= ms <= MAX_MS:
        raise ValueError(f"timestamp {ms} ms does not fit in {TIMESTAMP_BITS} bits")
    crc = crc16(ms.to_bytes(TIMESTAMP_BITS // 8, "big"))
    bits = [(ms >> (TIMESTAMP_BITS - 1 - i)) & 1 for i in range(TIMESTAMP_BITS)]
    bits += [(crc >> (CRC_BITS - 1 - i)) & 1 for i in range(CRC_BITS)]
    return bits + list(TRAILER)


def decode_bits(bits: list[int]) -> int | None:
    """The timestamp the data cells carry, or None when the CRC or the trailer disagrees."""
    if len(bits) != DATA_CELLS:
        return None
    ms = 0
    for bit in bits[:TIMESTAMP_BITS]:
        ms = (ms << 1) | bit
    crc = 0
    for bit in bits[TIMESTAMP_BITS:TIMESTAMP_BITS + CRC_BITS]:
        crc = (crc << 1) | bit
    if tuple(bits[TIMESTAMP_BITS + CRC_BITS:]) != TRAILER:
        return None
    if crc16(ms.to_bytes(TIMESTAMP_BITS // 8, "big")) != crc:
        return None
    return ms


def _row_cells(ms: int) -> list[list[int]]:
    bits = encode_bits(ms)
    return [
        [*LEFT_GUARD, *bits[r * DATA_COLUMNS:(r + 1) * DATA_COLUMNS], *RIGHT_GUARD]
        for r in range(ROWS)
    ]


def _edges(length: int, count: int) -> list[int]:
    return [round(i * length / count) for i in range(count + 1)]


def strip_height(height: int) -> int:
    """Rows of pixels the code covers at the top of a frame ``height`` tall."""
    return round(ROWS * height / CELLS_PER_HEIGHT)


def paint(frame: npt.NDArray[np.uint8], ms: int) -> npt.NDArray[np.uint8]:
    """Paint ``ms`` into ``frame`` in place and return it.

    ``frame`` is either a luma plane (H x W, video-range levels 16/235) or an RGB(A) picture
    (H x W x C, levels 0/255). Painting RGB gives gray cells, so conversion to yuv420p leaves
    the chroma neutral and the code entirely in Y.
    """
    if frame.ndim not in (2, 3) or frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 H x W or H x W x C array, got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    if width < COLUMNS * 2 or height < CELLS_PER_HEIGHT * 2:
        raise ValueError(f"frame {width}x{height} is too small to carry a clock code")
    black, white = _Y_LEVELS if frame.ndim == 2 else _RGB_LEVELS
    xs = _edges(width, COLUMNS)
    ys = _edges(height, CELLS_PER_HEIGHT)
    for r, row in enumerate(_row_cells(ms)):
        for c, bit in enumerate(row):
            frame[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = white if bit else black
    return frame


def _cell_means(y_plane: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Mean luma of the central half of every cell, as a ROWS x COLUMNS array."""
    height, width = y_plane.shape
    means = np.empty((ROWS, COLUMNS))
    cell_w = width / COLUMNS
    cell_h = height / CELLS_PER_HEIGHT
    for r in range(ROWS):
        y0 = round((r + 0.25) * cell_h)
        y1 = max(round((r + 0.75) * cell_h), y0 + 1)
        band = y_plane[y0:y1].astype(np.float64)
        for c in range(COLUMNS):
            x0 = round((c + 0.25) * cell_w)
            x1 = max(round((c + 0.75) * cell_w), x0 + 1)
            means[r, c] = band[:, x0:x1].mean()
    return means


def read(y_plane: npt.NDArray[np.uint8]) -> int | None:
    """The painted epoch milliseconds, or None when no trustworthy code is there.

    ``y_plane`` is the luma (or any grayscale) of a frame at any scale of the painted one.
    """
    if y_plane.ndim != 2:
        raise ValueError(f"expected a 2-D luma plane, got shape {y_plane.shape}")
    height, width = y_plane.shape
    if width < COLUMNS * 2 or height < CELLS_PER_HEIGHT * 2:
        return None
    means = _cell_means(y_plane)
    guard_cols = [0, 1, COLUMNS - 2, COLUMNS - 1]
    guard_bits = [*LEFT_GUARD, *RIGHT_GUARD]
    whites = [means[r, c] for r in range(ROWS) for c, b in zip(guard_cols, guard_bits, strict=True) if b]
    blacks = [means[r, c] for r in range(ROWS) for c, b in zip(guard_cols, guard_bits, strict=True) if not b]
    low, high = max(blacks), min(whites)
    if high - low < MIN_CONTRAST:
        return None
    threshold = (low + high) / 2
    margin = AMBIGUITY * (high - low)
    data = means[:, len(LEFT_GUARD):COLUMNS - len(RIGHT_GUARD)].ravel()
    if np.any(np.abs(data - threshold) < margin):
        return None
    return decode_bits([int(v > threshold) for v in data])
