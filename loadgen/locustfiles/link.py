"""A viewer's bounded access link: a rate schedule and a pacer that serializes bytes over it.

Pure (no clocks, no sockets): the Locust viewer reads a response body in chunks and sleeps for
the delay the pacer returns after each one, so the body really arrives at the link's rate and
unread bytes queue in the kernel's socket buffers and, past them, in the server's send queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Bytes one read takes at most; also the least, so slow links do not wake up per byte.
MIN_CHUNK = 1024
MAX_CHUNK = 64 * 1024
#: One read covers about this much link time.
CHUNK_S = 0.05


@dataclass(frozen=True, slots=True)
class LinkSchedule:
    """Link rate in kbit/s as steps over seconds since the viewer started.

    Written ``"3000"`` (constant) or ``"3000@0,400@20,3000@40"``: each ``KBPS@SECONDS`` holds
    from that second until the next step; the first step starts at 0.
    """

    steps: tuple[tuple[float, float], ...]  # (from_s, kbps), from_s ascending, first 0

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0][0] != 0:
            raise ValueError("a link schedule needs a first step at 0 s")
        for (a, _), (b, _) in zip(self.steps, self.steps[1:], strict=False):
            if b <= a:
                raise ValueError(f"link schedule times must increase: {b:g} s after {a:g} s")
        for _, kbps in self.steps:
            if not (math.isfinite(kbps) and kbps > 0):
                raise ValueError(f"link rate must be a positive number of kbit/s, not {kbps!r}")

    @classmethod
    def parse(cls, text: str) -> LinkSchedule:
        """Parse ``KBPS`` or ``KBPS@S,KBPS@S,...``; errors name the offending item."""
        items = [item.strip() for item in text.split(",")]
        steps: list[tuple[float, float]] = []
        for position, item in enumerate(items, 1):
            rate_text, at, time_text = item.partition("@")
            if not at and len(items) == 1:
                time_text = "0"
            try:
                kbps = float(rate_text)
                from_s = float(time_text)
            except ValueError:
                raise ValueError(
                    f"link schedule item {position} {item!r}: expected KBPS@SECONDS, e.g. 400@20"
                ) from None
            if not (math.isfinite(from_s) and from_s >= 0):
                raise ValueError(f"link schedule item {position} {item!r}: seconds must be >= 0")
            if not (math.isfinite(kbps) and kbps > 0):
                raise ValueError(f"link schedule item {position} {item!r}: kbit/s must be > 0")
            steps.append((from_s, kbps))
        if steps[0][0] != 0:
            raise ValueError(f"link schedule {text!r}: the first item must start at 0 s (KBPS@0)")
        return cls(tuple(steps))

    def kbps_at(self, t_s: float) -> float:
        """The rate in force ``t_s`` seconds after the viewer started (the first step before 0)."""
        rate = self.steps[0][1]
        for from_s, kbps in self.steps:
            if t_s < from_s:
                break
            rate = kbps
        return rate


@dataclass(slots=True)
class LinkPacer:
    """Serializes bytes over the link: n bytes taken at ``t`` occupy it for n*8/rate(t) seconds.

    The link is busy until ``busy_until``; a transfer that starts while it is idle starts at once.
    Times are seconds on the caller's clock; ``origin`` is where the schedule's 0 s lies.
    """

    schedule: LinkSchedule
    origin: float
    busy_until: float = field(default=float("-inf"))

    def take(self, now: float, nbytes: int) -> float:
        """Account ``nbytes`` that were read at ``now``; return how long to wait until they arrived."""
        if nbytes < 0:
            raise ValueError(f"cannot take {nbytes} bytes")
        start = max(now, self.busy_until)
        rate_bps = self.schedule.kbps_at(start - self.origin) * 1000
        self.busy_until = start + nbytes * 8 / rate_bps
        return self.busy_until - now

    def chunk_bytes(self, now: float) -> int:
        """How many bytes to read at once at the current rate (about ``CHUNK_S`` of link time)."""
        rate_bps = self.schedule.kbps_at(now - self.origin) * 1000
        return int(min(MAX_CHUNK, max(MIN_CHUNK, rate_bps / 8 * CHUNK_S)))
