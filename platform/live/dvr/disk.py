"""Where DVR segments live: the ``SegmentStore`` interface and its local-disk implementation.

Layout under the store's root (``--data``/dvr)::

    {channel}/{recording}/index.jsonl            the append-only index (``live.dvr.index``)
    {channel}/{recording}/{rendition}/init-{run}.mp4
    {channel}/{recording}/{rendition}/{msn}.m4s

Every file is written to a hidden temporary name and renamed into place (with ``fsync`` first
when ``durable``), and only then is its index line appended, so the index never names a torn
file: a ``kill -9`` or a power cut loses at most the segment being written. The store does
blocking file I/O: the recorder calls it from one writer thread, never from the event loop. An
object-storage store would implement the same methods (``path`` then becomes a redirect).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from live.dvr.index import (
    CorruptEntry,
    EndRecord,
    InitRecord,
    Record,
    RunRecord,
    SegmentRecord,
    decode,
    encode,
)
from live.package.parts import InitSegment

log = logging.getLogger("live.dvr")

INDEX_NAME = "index.jsonl"
#: Rewrite an index once it holds this many lines of segments retention removed (and more
#: such lines than live ones), so a 24/7 channel's index stays the size of its window.
COMPACT_AFTER_DROPPED = 2000


@dataclass(slots=True)
class LoadedRecording:
    """What a restart finds of one recording: its usable records, in index order."""

    channel: str
    recording: int
    records: list[Record] = field(default_factory=list)
    skipped: int = 0  # corrupt lines and files, each logged with its reason


class SegmentStore(Protocol):
    """Durable storage of recordings; every method may block (call it off the event loop)."""

    def load(self) -> list[LoadedRecording]: ...

    def append(self, channel: str, recording: int, record: RunRecord | EndRecord) -> None: ...

    def write_init(self, channel: str, recording: int, run: int, init: InitSegment) -> InitRecord: ...

    def write_segment(self, channel: str, recording: int, record: SegmentRecord,
                      chunks: Sequence[bytes]) -> None: ...

    def delete_segments(self, channel: str, recording: int,
                        records: Sequence[SegmentRecord]) -> None: ...

    def delete_recording(self, channel: str, recording: int) -> None: ...

    def init_path(self, channel: str, recording: int, rendition: str, run: int) -> Path: ...

    def segment_path(self, channel: str, recording: int, rendition: str, msn: int) -> Path: ...

    def segment_file(self, channel: str, recording: int, rendition: str, msn: int) -> str:
        """``segment_path`` as a string, built without ``pathlib`` (every segment request)."""
        ...


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LocalDiskStore:
    """``SegmentStore`` on a local file system."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        self._root = str(root)
        self.durable = durable
        self._dropped: dict[tuple[str, int], int] = {}
        self._lines: dict[tuple[str, int], int] = {}

    def _dir(self, channel: str, recording: int) -> Path:
        return self.root / channel / str(recording)

    def init_path(self, channel: str, recording: int, rendition: str, run: int) -> Path:
        return self._dir(channel, recording) / rendition / f"init-{run}.mp4"

    def segment_path(self, channel: str, recording: int, rendition: str, msn: int) -> Path:
        return Path(self.segment_file(channel, recording, rendition, msn))

    def segment_file(self, channel: str, recording: int, rendition: str, msn: int) -> str:
        return f"{self._root}/{channel}/{recording}/{rendition}/{msn}.m4s"

    # -- writing --------------------------------------------------------------------------------

    def _write_file(self, path: Path, chunks: Sequence[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)

    def _append_line(self, channel: str, recording: int, line: bytes) -> None:
        folder = self._dir(channel, recording)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / INDEX_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _write_all(fd, line)
            if self.durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        key = (channel, recording)
        self._lines[key] = self._lines.get(key, 0) + 1

    def append(self, channel: str, recording: int, record: RunRecord | EndRecord) -> None:
        self._append_line(channel, recording, encode(record))

    def write_init(self, channel: str, recording: int, run: int, init: InitSegment) -> InitRecord:
        record = InitRecord.of(run, init)
        self._write_file(self.init_path(channel, recording, init.rendition, run), [init.data])
        self._append_line(channel, recording, encode(record))
        return record

    def write_segment(self, channel: str, recording: int, record: SegmentRecord,
                      chunks: Sequence[bytes]) -> None:
        self._write_file(self.segment_path(channel, recording, record.rendition, record.msn), chunks)
        self._append_line(channel, recording, encode(record))

    def delete_segments(self, channel: str, recording: int,
                        records: Sequence[SegmentRecord]) -> None:
        for record in records:
            self.segment_path(channel, recording, record.rendition, record.msn).unlink(missing_ok=True)
        key = (channel, recording)
        dropped = self._dropped[key] = self._dropped.get(key, 0) + len(records)
        if dropped >= COMPACT_AFTER_DROPPED and dropped * 2 > self._lines.get(key, 0):
            self._compact(channel, recording)

    def delete_recording(self, channel: str, recording: int) -> None:
        shutil.rmtree(self._dir(channel, recording), ignore_errors=True)
        self._dropped.pop((channel, recording), None)
        self._lines.pop((channel, recording), None)

    def _compact(self, channel: str, recording: int) -> None:
        """Rewrite the index without the lines of removed segment files (temp file + rename)."""
        index = self._dir(channel, recording) / INDEX_NAME
        kept = []
        for line in index.read_bytes().splitlines(keepends=True):
            try:
                record = decode(line)
            except CorruptEntry:
                continue
            if isinstance(record, SegmentRecord) and not self.segment_path(
                    channel, recording, record.rendition, record.msn).exists():
                continue
            kept.append(line)
        self._write_file(index, [b"".join(kept)])
        self._dropped[(channel, recording)] = 0
        self._lines[(channel, recording)] = len(kept)

    # -- reading at start -----------------------------------------------------------------------

    def load(self) -> list[LoadedRecording]:
        """Every recording on disk, with each record checked against its file."""
        found: list[LoadedRecording] = []
        if not self.root.is_dir():
            return found
        for channel_dir in sorted(self.root.iterdir()):
            if not channel_dir.is_dir():
                continue
            for folder in sorted(channel_dir.iterdir()):
                if folder.is_dir() and folder.name.isdigit() and (folder / INDEX_NAME).is_file():
                    found.append(self._load_one(channel_dir.name, int(folder.name), folder))
        return found

    def _load_one(self, channel: str, recording: int, folder: Path) -> LoadedRecording:
        loaded = LoadedRecording(channel, recording)
        for temporary in folder.glob("*/.*.tmp"):
            temporary.unlink(missing_ok=True)  # a write the crash interrupted, never indexed
        index = folder / INDEX_NAME
        data = index.read_bytes()
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith(b"\n"):
            # cut the torn tail so the next append starts on a line of its own
            with index.open("r+b") as handle:
                handle.truncate(len(data) - len(lines[-1]))
        removed = 0
        inits: set[tuple[str, int]] = set()
        for number, line in enumerate(lines, 1):
            where = f"{index}:{number}"
            try:
                record = decode(line)
            except CorruptEntry as exc:
                log.warning("dvr: skipping index entry %s: %s", where, exc)
                loaded.skipped += 1
                continue
            if isinstance(record, InitRecord):
                if not self._file_ok(self.init_path(channel, recording, record.rendition,
                                                    record.run), record.nbytes, where, loaded):
                    continue
                inits.add((record.rendition, record.run))
            elif isinstance(record, SegmentRecord):
                path = self.segment_path(channel, recording, record.rendition, record.msn)
                if not path.exists():
                    removed += 1  # retention removed it before the index was compacted
                    continue
                if (record.rendition, record.run) not in inits:
                    log.warning("dvr: skipping index entry %s: segment %d has no init segment",
                                where, record.msn)
                    loaded.skipped += 1
                    continue
                if not self._file_ok(path, record.nbytes, where, loaded):
                    continue
            loaded.records.append(record)
        self._lines[(channel, recording)] = len(lines)
        self._dropped[(channel, recording)] = removed
        return loaded

    @staticmethod
    def _file_ok(path: Path, nbytes: int, where: str, loaded: LoadedRecording) -> bool:
        try:
            size = path.stat().st_size
        except OSError as exc:
            log.warning("dvr: skipping index entry %s: %s", where, exc)
            loaded.skipped += 1
            return False
        if size != nbytes:
            log.warning("dvr: skipping index entry %s: %s holds %d bytes, the index says %d",
                        where, path.name, size, nbytes)
            loaded.skipped += 1
            return False
        return True


if TYPE_CHECKING:  # mypy proves the local store implements the interface
    _LOCAL_IS_A_STORE: SegmentStore = LocalDiskStore(Path())
