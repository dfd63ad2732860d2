"""MPEG-2 transport stream demultiplexing into the access units every ingest produces.

SRT publishers (OBS, vMix, ffmpeg) send MPEG-TS (ISO/IEC 13818-1): 188-byte packets carrying
the program association and program map tables (2.4.4.3, 2.4.4.8) and PES packets (2.4.3.6)
of H.264 (stream_type 0x1B), H.265 (0x24) and AAC in ADTS (0x0F). ``TsDemuxer`` is a pure core:
``feed(bytes)`` in any split returns ``VideoConfig``, ``AudioConfig``, ``AccessUnit`` and
``ProgramMap`` events, exactly what the FLV demuxer gives RTMP, so the rest of the platform
cannot tell the two apart. This module is the transport layer (packets, PSI, PES); the PES
payloads go to ``live.media.ts_elementary``, where Annex B video becomes length-prefixed NAL
units with its parameter sets lifted into the decoder configuration and ADTS frames become raw
AAC blocks with an AudioSpecificConfig. 33-bit 90 kHz timestamps are unwrapped (they wrap
every 26.5 h) and rebased to milliseconds on one timeline shared by both tracks.

Input from the network is never trusted: lost sync, continuity-counter gaps, bad CRCs,
truncated or oversized PES packets and malformed ADTS or parameter sets are counted in
``TsStats`` and skipped; the demuxer resynchronises and goes on. It never raises on input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from live.media.ts_elementary import CLOCK_HZ, AdtsAudio, AnnexBVideo, EsStats
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

PACKET_SIZE = 188
SYNC_BYTE = 0x47
PAT_PID = 0x0000
NULL_PID = 0x1FFF
#: 2.4.3.7: PTS and DTS are 33-bit counts of a 90 kHz clock.
TIMESTAMP_BITS = 33
TIMESTAMP_WRAP = 1 << TIMESTAMP_BITS
#: Timestamps are rebased so the first one lands here; audio that leads the first video
#: frame (encoders start it a few frames early) then never goes negative.
TIMELINE_START_MS = 1000
#: Largest PES we assemble; a publisher cannot make us buffer more (a 4K IDR is ~1-2 MB).
MAX_PES_SIZE = 8 * 1024 * 1024
#: 2.4.4.11: a PSI section is at most 1024 bytes (4096 for private sections, not read here).
MAX_SECTION_SIZE = 1024


class StreamType(IntEnum):
    """The stream_type values of Table 2-34 we demultiplex."""

    AAC_ADTS = 0x0F
    H264 = 0x1B
    H265 = 0x24


_VIDEO_CODECS = {StreamType.H264: "h264", StreamType.H265: "h265"}


@dataclass(frozen=True, slots=True)
class ProgramMap:
    """The streams the first program carries (from its PMT), and what we do with them."""

    program: int
    video_pid: int | None
    video_codec: str | None
    audio_pid: int | None
    audio_codec: str | None
    #: (pid, stream_type) of elementary streams we do not demultiplex.
    ignored: tuple[tuple[int, int], ...] = ()


Event = VideoConfig | AudioConfig | AccessUnit | ProgramMap


@dataclass(slots=True)
class TsStats(EsStats):
    """What the demuxer survived; every counter is a kind of damage, except ``packets``."""

    packets: int = 0
    bytes_skipped: int = 0  # bytes thrown away hunting for the sync byte
    transport_errors: int = 0  # packets flagged by transport_error_indicator
    continuity_errors: int = 0  # continuity_counter gaps (lost packets)
    crc_errors: int = 0
    bad_sections: int = 0


def _crc32_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc32_table()


def crc32_mpeg2(data: bytes | bytearray | memoryview) -> int:
    """The CRC_32 of PSI sections (Annex A: polynomial 0x04C11DB7, initial 0xFFFFFFFF, no
    reflection); over a whole section, CRC included, it is 0."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


class TimestampUnwrapper33:
    """A 33-bit 90 kHz timestamp onto a monotonic timeline: a jump back of more than half the
    range is a wrap; a late unit from before a wrap keeps its place."""

    __slots__ = ("_epoch", "_last")

    def __init__(self) -> None:
        self._epoch = 0
        self._last: int | None = None

    def unwrap(self, timestamp: int) -> int:
        timestamp &= TIMESTAMP_WRAP - 1
        last = self._last
        if last is not None:
            if timestamp - last < -(TIMESTAMP_WRAP >> 1):
                self._epoch += TIMESTAMP_WRAP
            elif timestamp - last > TIMESTAMP_WRAP >> 1 and self._epoch:
                return self._epoch - TIMESTAMP_WRAP + timestamp
        self._last = timestamp
        return self._epoch + timestamp


@dataclass(slots=True)
class _Section:
    """A PSI section being assembled across packets."""

    data: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class _Pes:
    """A PES packet being assembled across packets."""

    data: bytearray
    expected: int | None = None  # whole PES size when PES_packet_length is set


@dataclass(slots=True)
class _Track:
    pid: int
    kind: TrackKind
    stream_type: int
    pes: _Pes | None = None
    clock: TimestampUnwrapper33 = field(default_factory=TimestampUnwrapper33)


def _timestamp(raw: bytes | bytearray | memoryview, at: int) -> int:
    """2.4.3.7: a PTS or DTS in its 5-byte marker-bit layout."""
    return (((raw[at] >> 1) & 0x07) << 30) | (raw[at + 1] << 22) | ((raw[at + 2] >> 1) << 15) \
        | (raw[at + 3] << 7) | (raw[at + 4] >> 1)


class TsDemuxer:
    """MPEG-TS bytes in, access units and decoder configurations out (see the module doc)."""

    def __init__(self, max_pes_size: int = MAX_PES_SIZE) -> None:
        self.stats = TsStats()
        self.program_map: ProgramMap | None = None
        self._video = AnnexBVideo(self.stats)
        self._audio = AdtsAudio(self.stats)
        self._max_pes_size = max_pes_size
        self._pending = b""
        self._synced = False
        self._pmt_pid: int | None = None
        self._program = 0
        self._sections: dict[int, _Section] = {}
        self._tracks: dict[int, _Track] = {}
        self._cc: dict[int, int] = {}
        self._base: int | None = None

    @property
    def video(self) -> VideoConfig | None:
        """The current video configuration (from the latest parameter sets)."""
        return self._video.config

    @property
    def audio(self) -> AudioConfig | None:
        return self._audio.config

    # -- bytes in ------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview, wallclock: float) -> list[Event]:
        """Demultiplex ``data`` (any number of bytes); ``wallclock`` is when it arrived."""
        buf = self._pending + bytes(data) if self._pending else bytes(data)
        events: list[Event] = []
        pos = 0
        end = len(buf)
        while end - pos >= PACKET_SIZE:
            if buf[pos] != SYNC_BYTE or (
                not self._synced and end - pos > PACKET_SIZE and buf[pos + PACKET_SIZE] != SYNC_BYTE
            ):
                found = buf.find(SYNC_BYTE, pos + 1)
                skip_to = end if found < 0 else found
                self.stats.bytes_skipped += skip_to - pos
                self._synced = False
                pos = skip_to
                continue
            self._synced = True
            self._packet(memoryview(buf)[pos : pos + PACKET_SIZE], wallclock, events)
            pos += PACKET_SIZE
        self._pending = buf[pos:]
        return events

    def flush(self, wallclock: float) -> list[Event]:
        """The stream ended: emit the PES packets still being assembled."""
        events: list[Event] = []
        for track in self._tracks.values():
            pes, track.pes = track.pes, None
            if pes is not None:
                self._finish_pes(track, pes, wallclock, events)
        self._pending = b""
        return events

    # -- transport packets (2.4.3.2) -----------------------------------------------------------

    def _packet(self, packet: memoryview, wallclock: float, events: list[Event]) -> None:
        stats = self.stats
        stats.packets += 1
        flags = packet[1]
        if flags & 0x80:
            stats.transport_errors += 1
            return
        pid = ((flags & 0x1F) << 8) | packet[2]
        if pid == NULL_PID:
            return
        control = packet[3]
        adaptation = control & 0x20
        has_payload = control & 0x10
        start = 4
        discontinuity = False
        if adaptation:
            length = packet[4]
            if length > PACKET_SIZE - 5:
                stats.transport_errors += 1
                return
            discontinuity = length > 0 and bool(packet[5] & 0x80)
            start = 5 + length
        if not has_payload:
            return
        track = self._tracks.get(pid)
        if track is None and pid != PAT_PID and pid != self._pmt_pid:
            return
        counter = control & 0x0F
        last = self._cc.get(pid)
        self._cc[pid] = counter
        if last is not None and not discontinuity:
            if counter == last:
                return  # 2.4.3.3: a duplicate packet, sent once more on purpose
            if counter != (last + 1) & 0x0F:
                stats.continuity_errors += 1
                self._lose(pid)
        payload = packet[start:]
        unit_start = bool(flags & 0x40)
        if track is not None:
            self._pes_payload(track, payload, unit_start, wallclock, events)
        else:
            self._section_payload(pid, payload, unit_start, events)

    def _lose(self, pid: int) -> None:
        """Packets of ``pid`` went missing: what was being assembled is incomplete."""
        track = self._tracks.get(pid)
        if track is not None:
            if track.pes is not None:
                self.stats.pes_dropped += 1
            track.pes = None
        else:
            self._sections.pop(pid, None)

    # -- PSI: PAT and PMT (2.4.4) ----------------------------------------------------------------

    def _section_payload(self, pid: int, payload: memoryview, unit_start: bool,
                         events: list[Event]) -> None:
        section = self._sections.get(pid)
        if unit_start:
            if not payload:
                return
            pointer = payload[0]
            if 1 + pointer > len(payload):
                self.stats.bad_sections += 1
                self._sections.pop(pid, None)
                return
            if section is not None:
                section.data += payload[1 : 1 + pointer]
                self._sections_ready(pid, section, events)
            section = self._sections[pid] = _Section(bytearray(payload[1 + pointer :]))
        elif section is None:
            return
        else:
            section.data += payload
        self._sections_ready(pid, section, events)

    def _sections_ready(self, pid: int, section: _Section, events: list[Event]) -> None:
        data = section.data
        while len(data) >= 3:
            if data[0] == 0xFF:  # stuffing: nothing more in this packet
                data.clear()
                break
            total = 3 + (((data[1] & 0x0F) << 8) | data[2])
            if total > MAX_SECTION_SIZE or total < 12:
                self.stats.bad_sections += 1
                data.clear()
                break
            if len(data) < total:
                return
            self._section(pid, bytes(data[:total]), events)
            del data[:total]
        if not data and self._sections.get(pid) is section:
            del self._sections[pid]

    def _section(self, pid: int, section: bytes, events: list[Event]) -> None:
        if crc32_mpeg2(section) != 0:
            self.stats.crc_errors += 1
            return
        if not section[5] & 0x01:  # current_next_indicator: not yet applicable
            return
        body = section[8:-4]
        if pid == PAT_PID and section[0] == 0x00:
            self._pat(body)
        elif pid == self._pmt_pid and section[0] == 0x02:
            self._pmt(int.from_bytes(section[3:5], "big"), body, events)
        else:
            self.stats.bad_sections += 1

    def _pat(self, body: bytes) -> None:
        for at in range(0, len(body) - 3, 4):
            program = int.from_bytes(body[at : at + 2], "big")
            if program == 0:
                continue  # network PID
            pid = ((body[at + 2] & 0x1F) << 8) | body[at + 3]
            if pid != self._pmt_pid:
                self._pmt_pid = pid
                self._program = program
                self._cc.pop(pid, None)
            return

    def _pmt(self, program: int, body: bytes, events: list[Event]) -> None:
        if program != self._program or len(body) < 4:
            self.stats.bad_sections += 1
            return
        at = 4 + (((body[2] & 0x0F) << 8) | body[3])
        video: tuple[int, int] | None = None
        audio: tuple[int, int] | None = None
        ignored: list[tuple[int, int]] = []
        while at + 5 <= len(body):
            stream_type = body[at]
            pid = ((body[at + 1] & 0x1F) << 8) | body[at + 2]
            at += 5 + (((body[at + 3] & 0x0F) << 8) | body[at + 4])
            if stream_type in _VIDEO_CODECS and video is None:
                video = (pid, stream_type)
            elif stream_type == StreamType.AAC_ADTS and audio is None:
                audio = (pid, stream_type)
            else:
                ignored.append((pid, stream_type))
        program_map = ProgramMap(
            program=program,
            video_pid=video[0] if video else None,
            video_codec=_VIDEO_CODECS[StreamType(video[1])] if video else None,
            audio_pid=audio[0] if audio else None,
            audio_codec="aac" if audio else None,
            ignored=tuple(ignored),
        )
        if program_map == self.program_map:
            return
        self.program_map = program_map
        wanted = {pid: (kind, stream_type) for kind, found in
                  ((TrackKind.VIDEO, video), (TrackKind.AUDIO, audio)) if found
                  for pid, stream_type in (found,)}
        for pid in list(self._tracks):
            track = self._tracks[pid]
            if wanted.get(pid) != (track.kind, track.stream_type):
                del self._tracks[pid]
        for pid, (kind, stream_type) in wanted.items():
            if pid not in self._tracks:
                self._tracks[pid] = _Track(pid, kind, stream_type)
                self._cc.pop(pid, None)
        events.append(program_map)

    # -- PES (2.4.3.6) ---------------------------------------------------------------------------

    def _pes_payload(self, track: _Track, payload: memoryview, unit_start: bool,
                     wallclock: float, events: list[Event]) -> None:
        if unit_start:
            previous, track.pes = track.pes, _Pes(bytearray(payload))
            if previous is not None:
                self._finish_pes(track, previous, wallclock, events)
        elif track.pes is None:
            return  # the middle of a PES whose start we never saw
        else:
            track.pes.data += payload
        pes = track.pes
        assert pes is not None
        if pes.expected is None and len(pes.data) >= 6:
            length = int.from_bytes(pes.data[4:6], "big")
            pes.expected = 6 + length if length else 0
        if len(pes.data) > self._max_pes_size:
            self.stats.pes_dropped += 1
            track.pes = None
        elif pes.expected and len(pes.data) >= pes.expected:
            track.pes = None
            self._finish_pes(track, pes, wallclock, events)

    def _finish_pes(self, track: _Track, pes: _Pes, wallclock: float, events: list[Event]) -> None:
        data = pes.data
        if len(data) < 9 or data[0:3] != b"\x00\x00\x01" or data[6] & 0xC0 != 0x80:
            self.stats.pes_dropped += 1
            return
        if pes.expected:
            del data[pes.expected :]
        flags = data[7] >> 6
        header_end = 9 + data[8]
        if header_end > len(data) or (flags & 0x2 and data[8] < 5) or (flags == 3 and data[8] < 10):
            self.stats.pes_dropped += 1
            return
        pts = track.clock.unwrap(_timestamp(data, 9)) if flags & 0x2 else None
        dts = track.clock.unwrap(_timestamp(data, 14)) if flags == 3 else pts
        body = memoryview(data)[header_end:]
        if track.kind is TrackKind.VIDEO:
            events += self._video.feed(track.stream_type == StreamType.H265, body, pts, dts,
                                       self._ms, wallclock)
        else:
            events += self._audio.feed(body, pts, self._ms, wallclock)

    def _ms(self, timestamp: int) -> int:
        if self._base is None:
            self._base = timestamp - TIMELINE_START_MS * (CLOCK_HZ // 1000)
        return (timestamp - self._base) // (CLOCK_HZ // 1000)
