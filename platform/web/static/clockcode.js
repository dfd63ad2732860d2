// The painted capture clock (a port of live/selftest/clockcode.py, same layout and checks):
// ROWS rows of COLUMNS black/white cells across the top of the picture carry 48 bits of epoch
// milliseconds, a CRC-16 of them and two trailer bits, between white-black / black-white guards.
// The studio's test card paints it; the WebRTC viewer reads it back from each decoded frame.
'use strict';

(function () {
  const ROWS = 3;
  const COLUMNS = 26;
  const CELLS_PER_HEIGHT = 15;
  const TIMESTAMP_BITS = 48;
  const CRC_BITS = 16;
  const LEFT_GUARD = [1, 0];
  const RIGHT_GUARD = [0, 1];
  const DATA_COLUMNS = COLUMNS - LEFT_GUARD.length - RIGHT_GUARD.length;
  const TRAILER = [1, 0];
  const MIN_CONTRAST = 48;
  const AMBIGUITY = 0.2;

  function crc16(bytes) {
    let crc = 0xFFFF;
    for (const byte of bytes) {
      crc ^= byte << 8;
      for (let i = 0; i < 8; i++) {
        crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
        crc &= 0xFFFF;
      }
    }
    return crc;
  }

  function msBytes(ms) {
    const bytes = [];
    for (let i = 5; i >= 0; i--) bytes.push(Math.floor(ms / 2 ** (8 * i)) % 256);
    return bytes;
  }

  function encodeBits(ms) {
    const bits = [];
    for (let i = TIMESTAMP_BITS - 1; i >= 0; i--) bits.push(Math.floor(ms / 2 ** i) % 2);
    const crc = crc16(msBytes(ms));
    for (let i = CRC_BITS - 1; i >= 0; i--) bits.push((crc >> i) & 1);
    return bits.concat(TRAILER);
  }

  function decodeBits(bits) {
    let ms = 0;
    for (let i = 0; i < TIMESTAMP_BITS; i++) ms = ms * 2 + bits[i];
    let crc = 0;
    for (let i = TIMESTAMP_BITS; i < TIMESTAMP_BITS + CRC_BITS; i++) crc = (crc << 1) | bits[i];
    const trailer = bits.slice(TIMESTAMP_BITS + CRC_BITS);
    if (trailer.length !== TRAILER.length || trailer.some(function (b, i) { return b !== TRAILER[i]; })) return null;
    return crc16(msBytes(ms)) === crc ? ms : null;
  }

  function edges(length, count) {
    const out = [];
    for (let i = 0; i <= count; i++) out.push(Math.round(i * length / count));
    return out;
  }

  // Paint `ms` into the top of a 2D canvas context of size width x height.
  function paint(ctx, width, height, ms) {
    const bits = encodeBits(ms);
    const xs = edges(width, COLUMNS);
    const ys = edges(height, CELLS_PER_HEIGHT);
    for (let r = 0; r < ROWS; r++) {
      const row = LEFT_GUARD.concat(bits.slice(r * DATA_COLUMNS, (r + 1) * DATA_COLUMNS), RIGHT_GUARD);
      for (let c = 0; c < COLUMNS; c++) {
        ctx.fillStyle = row[c] ? '#ffffff' : '#000000';
        ctx.fillRect(xs[c], ys[r], xs[c + 1] - xs[c], ys[r + 1] - ys[r]);
      }
    }
  }

  // The painted ms from an ImageData of a whole frame (any scale), or null.
  function read(image) {
    const width = image.width;
    const height = image.height;
    if (width < COLUMNS * 2 || height < CELLS_PER_HEIGHT * 2) return null;
    const data = image.data;
    const cellW = width / COLUMNS;
    const cellH = height / CELLS_PER_HEIGHT;
    const means = [];
    for (let r = 0; r < ROWS; r++) {
      const y0 = Math.round((r + 0.25) * cellH);
      const y1 = Math.max(Math.round((r + 0.75) * cellH), y0 + 1);
      const row = [];
      for (let c = 0; c < COLUMNS; c++) {
        const x0 = Math.round((c + 0.25) * cellW);
        const x1 = Math.max(Math.round((c + 0.75) * cellW), x0 + 1);
        let sum = 0;
        let n = 0;
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const i = (y * width + x) * 4;
            sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
            n++;
          }
        }
        row.push(sum / n);
      }
      means.push(row);
    }
    const whites = [];
    const blacks = [];
    for (let r = 0; r < ROWS; r++) {
      whites.push(means[r][0], means[r][COLUMNS - 1]);
      blacks.push(means[r][1], means[r][COLUMNS - 2]);
    }
    const low = Math.max.apply(null, blacks);
    const high = Math.min.apply(null, whites);
    if (high - low < MIN_CONTRAST) return null;
    const threshold = (low + high) / 2;
    const margin = AMBIGUITY * (high - low);
    const bits = [];
    for (let r = 0; r < ROWS; r++) {
      for (let c = LEFT_GUARD.length; c < COLUMNS - RIGHT_GUARD.length; c++) {
        const v = means[r][c];
        if (Math.abs(v - threshold) < margin) return null;
        bits.push(v > threshold ? 1 : 0);
      }
    }
    return decodeBits(bits);
  }

  window.livetwinClock = { paint: paint, read: read, encodeBits: encodeBits, decodeBits: decodeBits,
    stripHeight: function (height) { return Math.round(ROWS * height / CELLS_PER_HEIGHT); } };
})();
