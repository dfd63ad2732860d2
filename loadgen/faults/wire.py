"""A userspace wire between two TUN devices: netem's job, where the kernel has no netem.

`python -m loadgen.faults.wire HOST_DEV NS_DEV` creates two TUN devices, prints ``ready``,
then copies every IP packet from one to the other, each way, applying the impairment last set
on its stdin (one JSON object a line: ``delay_ms``, ``jitter_ms``, ``loss_pct``, ``rate_kbit``;
``loss_pct: 100`` is a partition), answering ``ok`` to each; ``{"report": 1}`` answers, as JSON,
when the first packet got through each way since the last change (CLOCK_MONOTONIC, which every
process shares) and how many were dropped. The packets are real: a lost one
is retransmitted by the peers' TCP, a delayed one raises their RTT, a capped rate fills their
queues. Packets keep their order (jitter delays, never reorders), each direction's queue is
bounded (tail drop, like a router), and the process ends when its stdin closes, so it never
outlives the link that started it (`netns.NetnsLink`).
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
MAX_QUEUED = 4096  # packets per direction
MAX_PACKET = 65536


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    return fd


class Direction:
    """One way of the wire: a queue of (due time, packet) and the state of its rate cap."""

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.line_free_at = 0.0
        self.sent = self.dropped = 0
        self.first_since_change: float | None = None  # monotonic: first through since a rule change

    def offer(self, packet: bytes, now: float, rules: dict[str, float], rng: random.Random) -> None:
        loss = rules.get("loss_pct", 0.0)
        if (loss and rng.random() * 100 < loss) or len(self.queue) >= MAX_QUEUED:
            self.dropped += 1
            return
        due = now
        rate = rules.get("rate_kbit", 0.0)
        if rate:
            self.line_free_at = max(self.line_free_at, now) + len(packet) * 8 / (rate * 1000)
            due = self.line_free_at
        delay = rules.get("delay_ms", 0.0) / 1000
        jitter = rules.get("jitter_ms", 0.0) / 1000
        if delay or jitter:
            due += max(0.0, rng.gauss(delay, jitter) if jitter else delay)
        if self.queue:
            due = max(due, self.queue[-1][0])  # in order
        self.queue.append((due, packet))

    def deliver(self, now: float) -> float | None:
        """Write every packet now due; answers when the next one is due (None: empty)."""
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.out_fd, packet)
                self.sent += 1
                if self.first_since_change is None:
                    self.first_since_change = now
            except OSError:  # full, or the other end is down (EIO): a lost packet, as on a wire
                self.dropped += 1
        return self.queue[0][0] if self.queue else None


def run(host_dev: str, ns_dev: str) -> int:
    host_fd, ns_fd = open_tun(host_dev), open_tun(ns_dev)
    to_ns, to_host = Direction(ns_fd), Direction(host_fd)
    routes = {host_fd: to_ns, ns_fd: to_host}
    rules: dict[str, float] = {}
    rng = random.Random(int(os.environ.get("LT_WIRE_SEED", "1")))
    stdin = sys.stdin.fileno()
    print("ready", flush=True)
    pending = b""
    while True:
        now = time.monotonic()
        dues = [d for d in (to_ns.deliver(now), to_host.deliver(now)) if d is not None]
        timeout = max(0.0, min(dues) - now) if dues else 1.0
        readable, _, _ = select.select([host_fd, ns_fd, stdin], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            if fd == stdin:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return 0
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not line.strip():
                        continue
                    command = json.loads(line)
                    if command.get("report"):
                        print(json.dumps({"to_ns_first": to_ns.first_since_change,
                                          "to_host_first": to_host.first_since_change,
                                          "dropped": to_ns.dropped + to_host.dropped}), flush=True)
                        continue
                    rules = {k: float(v) for k, v in command.items()}
                    to_ns.first_since_change = to_host.first_since_change = None
                    print("ok", flush=True)
                continue
            for _ in range(64):  # a burst at most per wake-up, so the other fds get their turn
                try:
                    packet = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                routes[fd].offer(packet, now, rules, rng)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2]))
