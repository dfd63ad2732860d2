"""The one thread that touches the DVR's disk, so the event loop never waits for a write.

Jobs run in submission order (a run's record before its init, an init before its segments, a
segment before its deletion); each job's result is handed back on the event loop, where the
catalog is updated. What waits for the disk is bounded: past ``max_pending_bytes`` a job is
refused and the caller drops that segment with a logged warning instead of growing memory.
``InlineWriter`` runs jobs at once on the caller's thread (tests, tools).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger("live.dvr")

T = TypeVar("T")


class Writer(Protocol):
    def submit(self, job: Callable[[], T], done: Callable[[T], None] | None = None, *,
               nbytes: int = 0, what: str = "") -> bool:
        """Queue ``job``; ``done(result)`` runs on the loop after it succeeded. ``False``: refused."""
        ...

    def close(self) -> None: ...


class InlineWriter:
    """Run every job at once; a failed job is logged and its ``done`` skipped."""

    def submit(self, job: Callable[[], T], done: Callable[[T], None] | None = None, *,
               nbytes: int = 0, what: str = "") -> bool:
        try:
            result = job()
        except OSError as exc:
            log.error("dvr: %s failed: %s", what or "disk write", exc)
            return True
        if done is not None:
            done(result)
        return True

    def close(self) -> None:
        pass


class ThreadWriter:
    """A single writer thread fed by a queue; ``close`` drains it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending_bytes: int) -> None:
        self._loop = loop
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None] | None,
                                            int, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dvr-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], T], done: Callable[[T], None] | None = None, *,
               nbytes: int = 0, what: str = "") -> bool:
        with self._lock:
            if nbytes and self.pending_bytes + nbytes > self.max_pending_bytes:
                return False
            self.pending_bytes += nbytes
        self._jobs.put((job, done, nbytes, what))
        return True

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done, nbytes, what = item
            try:
                result = job()
            except OSError as exc:
                log.error("dvr: %s failed: %s", what or "disk write", exc)
                done = None
            finally:
                with self._lock:
                    self.pending_bytes -= nbytes
            if done is not None:
                try:
                    self._loop.call_soon_threadsafe(done, result)
                except RuntimeError:  # the loop closed under us (shutdown)
                    return

    def close(self) -> None:
        """Finish every queued job, then stop the thread."""
        self._jobs.put(None)
        self._thread.join()
