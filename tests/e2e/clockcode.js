// The painted capture clock, read back from a decoded picture in the browser: a port of the
// reader in the Python clockcode module (loadgen/clockcode.py, moving to live/selftest/), which
// paints it. Glass-to-glass is the display time of a frame minus the clock painted into it, so
// it covers the whole path (publisher encode, ingest, transcode, packaging, origin, player
// buffer, decode), which no container timestamp or PROGRAM-DATE-TIME does.
//
// The code is ROWS rows of COLUMNS cells at the top of the frame; every row starts white, black
// and ends black, white (guards giving the black and white levels); the 66 data cells carry 48
// bits of epoch milliseconds, a CRC-16/CCITT-FALSE of their 6 bytes and the trailer 1, 0. Cells
// are found by relative position; the middle half of each is sampled and a cell too close to the
// threshold makes the whole reading null, so a damaged code never reads as a wrong time.
//
// Loaded into the page by play_hls.cjs (window.livetwinClockcode) and by node for the
// cross-check against the Python painter (module.exports).
'use strict';

(function (root) {
  const ROWS = 3;
  const COLUMNS = 26;
  const CELLS_PER_HEIGHT = 15;
  const TIMESTAMP_BITS = 48;
  const CRC_BITS = 16;
  const LEFT_GUARD = [1, 0];
  const RIGHT_GUARD = [0, 1];
  const TRAILER = [1, 0];
  const MIN_CONTRAST = 48;
  const AMBIGUITY = 0.2;
  const DATA_COLUMNS = COLUMNS - LEFT_GUARD.length - RIGHT_GUARD.length;

  function crc16(bytes) {
    let crc = 0xffff;
    for (const byte of bytes) {
      crc ^= byte << 8;
      for (let i = 0; i < 8; i++) {
        crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
        crc &= 0xffff;
      }
    }
    return crc;
  }

  function msBytes(ms) {
    const bytes = [];
    for (let i = TIMESTAMP_BITS / 8 - 1; i >= 0; i--) bytes.push(Math.floor(ms / 2 ** (8 * i)) % 256);
    return bytes;
  }

  function decodeBits(bits) {
    if (bits.length !== ROWS * DATA_COLUMNS) return null;
    let ms = 0;
    for (let i = 0; i < TIMESTAMP_BITS; i++) ms = ms * 2 + bits[i];
    let crc = 0;
    for (let i = TIMESTAMP_BITS; i < TIMESTAMP_BITS + CRC_BITS; i++) crc = crc * 2 + bits[i];
    const trailer = bits.slice(TIMESTAMP_BITS + CRC_BITS);
    if (trailer.length !== TRAILER.length || trailer.some((b, i) => b !== TRAILER[i])) return null;
    return crc16(msBytes(ms)) === crc ? ms : null;
  }

  // Mean luma of the middle half of cell (r, c); `pixels` is RGBA (canvas getImageData) or gray.
  function cellMean(pixels, width, height, channels, r, c) {
    const cellW = width / COLUMNS;
    const cellH = height / CELLS_PER_HEIGHT;
    const y0 = Math.round((r + 0.25) * cellH);
    const y1 = Math.max(Math.round((r + 0.75) * cellH), y0 + 1);
    const x0 = Math.round((c + 0.25) * cellW);
    const x1 = Math.max(Math.round((c + 0.75) * cellW), x0 + 1);
    let sum = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = (y * width + x) * channels;
        sum += channels === 1 ? pixels[i]
          : 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
      }
    }
    return sum / ((y1 - y0) * (x1 - x0));
  }

  // The painted epoch milliseconds, or null. `pixels` holds at least the top ROWS cell rows of a
  // `width` x `height` picture (any scale of the painted one), `channels` values per pixel.
  function read(pixels, width, height, channels) {
    channels = channels || 4;
    if (width < COLUMNS * 2 || height < CELLS_PER_HEIGHT * 2) return null;
    const means = [];
    for (let r = 0; r < ROWS; r++) {
      const row = [];
      for (let c = 0; c < COLUMNS; c++) row.push(cellMean(pixels, width, height, channels, r, c));
      means.push(row);
    }
    const guardCols = [0, 1, COLUMNS - 2, COLUMNS - 1];
    const guardBits = LEFT_GUARD.concat(RIGHT_GUARD);
    const whites = [];
    const blacks = [];
    for (let r = 0; r < ROWS; r++) {
      guardCols.forEach((c, i) => (guardBits[i] ? whites : blacks).push(means[r][c]));
    }
    const low = Math.max(...blacks);
    const high = Math.min(...whites);
    if (high - low < MIN_CONTRAST) return null;
    const threshold = (low + high) / 2;
    const margin = AMBIGUITY * (high - low);
    const bits = [];
    for (let r = 0; r < ROWS; r++) {
      for (let c = LEFT_GUARD.length; c < COLUMNS - RIGHT_GUARD.length; c++) {
        const value = means[r][c];
        if (Math.abs(value - threshold) < margin) return null;
        bits.push(value > threshold ? 1 : 0);
      }
    }
    return decodeBits(bits);
  }

  // Rows of pixels the code covers at the top of a picture `height` tall (what to read back).
  function stripHeight(height) {
    return Math.min(height, Math.ceil(ROWS * height / CELLS_PER_HEIGHT) + 1);
  }

  const api = { read: read, stripHeight: stripHeight, crc16: crc16, COLUMNS: COLUMNS };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.livetwinClockcode = api;
})(typeof window !== 'undefined' ? window : globalThis);
