"""The DVR index: one JSON line per fact about a recording, and the parser that trusts none of it.

A recording's ``index.jsonl`` is append-only. A line is written only after what it describes is
on disk under its final name (``live.dvr.disk`` writes to a temporary file and renames it), so a
crash can cost at most the line being written; that torn or otherwise corrupt line is skipped at
start with a logged reason and the rest is served. The records:

* ``run``: a stream (or a resumed one after a crash) begins; its segments' media sequence
  numbers start at ``run`` and its first segment follows a discontinuity (RFC 8216bis 4.4.4.3);
* ``init``: one rendition's initialization segment of that run (the EXT-X-MAP) and the
  attributes its variant stream needs;
* ``segment``: one complete segment of one rendition (msn, duration, program date-time,
  discontinuity, byte size);
* ``end``: the stream ended cleanly; the recording is a VOD from then on.

Pure: records in, text out, and back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from live.package.parts import InitSegment
from live.package.timing import ChannelTiming


class CorruptEntry(ValueError):
    """An index line that cannot be trusted (torn by a crash, edited, or from a newer format)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    run: int  # media sequence number of the run's first segment
    started_at: float  # wall clock, epoch seconds
    target_duration_s: int
    part_target_s: float

    @property
    def timing(self) -> ChannelTiming:
        return ChannelTiming(self.target_duration_s, self.part_target_s)


@dataclass(frozen=True, slots=True)
class InitRecord:
    run: int
    rendition: str
    codecs: str
    bandwidth: int
    width: int | None
    height: int | None
    frame_rate: float | None
    nbytes: int

    @classmethod
    def of(cls, run: int, init: InitSegment) -> InitRecord:
        return cls(run, init.rendition, init.codecs, init.bandwidth, init.width, init.height,
                   init.frame_rate, len(init.data))

    def init_segment(self) -> InitSegment:
        """The variant's attributes (the bytes stay on disk)."""
        return InitSegment(self.rendition, b"", self.codecs, self.bandwidth, self.width,
                           self.height, self.frame_rate)


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    rendition: str
    msn: int
    duration_s: float
    program_date_time: float  # capture wall clock of its first frame, epoch seconds
    run: int
    discontinuity: bool  # the first segment of a run that resumed the recording
    nbytes: int

    @property
    def end_pdt(self) -> float:
        return self.program_date_time + self.duration_s


@dataclass(frozen=True, slots=True)
class EndRecord:
    ended_at: float


Record = RunRecord | InitRecord | SegmentRecord | EndRecord

_KINDS: dict[str, type[RunRecord] | type[InitRecord] | type[SegmentRecord] | type[EndRecord]] = {
    "run": RunRecord, "init": InitRecord, "segment": SegmentRecord, "end": EndRecord,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def encode(record: Record) -> bytes:
    """One index line, newline included."""
    fields = {"type": _KIND_OF[type(record)], **asdict(record)}
    return (json.dumps(fields, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _check(record: Record) -> None:
    numbers = [value for value in asdict(record).values()
               if isinstance(value, int | float) and not isinstance(value, bool)]
    if any(not math.isfinite(value) or value < 0 for value in numbers):
        raise CorruptEntry("a number is negative or not finite")
    if isinstance(record, SegmentRecord) and not (0 < record.duration_s <= 3600 and record.nbytes > 0):
        raise CorruptEntry(f"segment {record.msn}: duration {record.duration_s} or size "
                           f"{record.nbytes} is impossible")
    if isinstance(record, SegmentRecord | InitRecord) and not _safe_name(record.rendition):
        raise CorruptEntry(f"rendition {record.rendition!r} is not a safe file name")


def _safe_name(name: str) -> bool:
    return 0 < len(name) <= 64 and name[0].isalnum() and all(
        ch.isascii() and (ch.isalnum() or ch in "_-") for ch in name)


def decode(line: bytes) -> Record:
    """Parse one line; ``CorruptEntry`` says why it cannot be used."""
    if not line.endswith(b"\n"):
        raise CorruptEntry("the line is torn (no newline: the write was cut short)")
    try:
        fields: Any = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptEntry(f"not JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise CorruptEntry("not a JSON object")
    cls = _KINDS.get(fields.pop("type", None))
    if cls is None:
        raise CorruptEntry("unknown record type")
    try:
        record: Record = cls(**fields)
    except TypeError as exc:
        raise CorruptEntry(f"wrong fields: {exc}") from exc
    hints = {"run": int, "msn": int, "nbytes": int, "bandwidth": int, "rendition": str,
             "codecs": str, "discontinuity": bool, "target_duration_s": int}
    for name, kind in hints.items():
        if name in fields and (not isinstance(fields[name], kind)
                               or (kind is int and isinstance(fields[name], bool))):
            raise CorruptEntry(f"{name} is not {kind.__name__}")
    for name in ("duration_s", "program_date_time", "started_at", "ended_at", "part_target_s"):
        if name in fields and not isinstance(fields[name], int | float):
            raise CorruptEntry(f"{name} is not a number")
    _check(record)
    return record
