"""Links to impair: a network namespace of our own joined to the root namespace by a wire.

A test runs one side of a link (a publisher, a chat node) inside the namespace and reaches the
other side at the link's root address (directly, or through `relay` to a loopback-only
server), then impairs the link both ways: latency and jitter, loss, a full partition (100 %
loss: TCP connections survive silently, as across a real partition), a bandwidth cap. The
kernel here has no netem qdisc (`tc qdisc ... netem` answers "unknown qdisc"), so the link is
a pair of TUN devices joined by `wire`, netem in userspace on real IP packets. Traffic stays on
this machine: between 10.213.0.0/16 addresses of our own namespaces and the root namespace.
Needs root (`ip netns`, /dev/net/tun).

Names carry a prefix and the creating pid (`lt-chaos-<pid>-<n>`), so `remove_leftovers` can
delete what a crashed run left behind without touching a live run's links.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import random
import re
import select
import subprocess
import sys
from dataclasses import dataclass

PREFIX = "lt-chaos-"
SUBNET = "10.213"
WIRE_TIMEOUT_S = 10.0
_counter = itertools.count(1)


class NetnsError(RuntimeError):
    """`ip` or `tc` refused (not root, no iproute2, or a name clash)."""


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Impairment:
    """What netem does to every packet, each way. Zero means "not impaired" for that field."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    rate_kbit: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.delay_ms <= 10_000 and 0 <= self.jitter_ms <= 10_000):
            raise ValueError(f"delay {self.delay_ms} ms with jitter {self.jitter_ms} ms is out of range")
        if not 0 <= self.loss_pct <= 100:
            raise ValueError(f"loss {self.loss_pct} % is out of 0..100")
        if self.rate_kbit < 0:
            raise ValueError(f"rate {self.rate_kbit} kbit/s is negative")


PARTITION = Impairment(loss_pct=100.0)


def _used_subnets() -> set[str]:
    return set(re.findall(rf"inet ({re.escape(SUBNET)}\.\d+\.\d+)/", _ip("-4", "addr", "show")))


class NetnsLink:
    """A namespace ``ns`` whose address ``inside`` reaches the root namespace at ``outside``.

    The two ends are TUN devices joined by a `wire` process (this kernel has no netem; the
    wire is netem in userspace), so every packet between them can be delayed, dropped or
    rate-limited.
    """

    def __init__(self) -> None:
        n = next(_counter)
        self.ns = f"{PREFIX}{os.getpid()}-{n}"
        tag = f"{os.getpid():x}{n}"[-9:]
        self.host_dev, self.ns_dev = f"lc{tag}h", f"lc{tag}n"
        used = _used_subnets()
        while True:
            block = random.randrange(1, 16383) * 4
            self.outside = f"{SUBNET}.{block // 256}.{block % 256 + 1}"
            self.inside = f"{SUBNET}.{block // 256}.{block % 256 + 2}"
            if self.outside not in used:
                break
        self.impairment = Impairment()
        self._wire: subprocess.Popen[str] | None = None
        try:
            _ip("netns", "add", self.ns)
            self._wire = subprocess.Popen(
                [sys.executable, "-m", "loadgen.faults.wire", self.host_dev, self.ns_dev],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            self._answer("ready")
            _ip("link", "set", self.ns_dev, "netns", self.ns)
            _ip("addr", "add", self.outside, "peer", self.inside, "dev", self.host_dev)
            _ip("link", "set", self.host_dev, "up")
            _ip("-n", self.ns, "addr", "add", self.inside, "peer", self.outside, "dev", self.ns_dev)
            _ip("-n", self.ns, "link", "set", self.ns_dev, "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def _answer(self, expected: str) -> None:
        assert self._wire is not None and self._wire.stdout is not None
        ready, _, _ = select.select([self._wire.stdout], [], [], WIRE_TIMEOUT_S)
        line = self._wire.stdout.readline().strip() if ready else ""
        if line != expected:
            raise NetnsError(f"the wire of {self.ns} answered {line!r}, not {expected!r}")

    def exec_prefix(self) -> list[str]:
        """Prefix an argv with this to run it inside the namespace."""
        return ["ip", "netns", "exec", self.ns]

    def impair(self, impairment: Impairment) -> None:
        """Apply ``impairment`` both ways (replacing any earlier one); returns once it holds."""
        assert self._wire is not None and self._wire.stdin is not None
        self._wire.stdin.write(json.dumps(dataclasses.asdict(impairment)) + "\n")
        self._wire.stdin.flush()
        self._answer("ok")
        self.impairment = impairment

    def report(self) -> dict[str, float | None]:
        """When the first packet got through each way since the last impair or heal
        (``time.monotonic()`` values; None: none yet), and the packets dropped so far."""
        assert self._wire is not None and self._wire.stdin is not None and self._wire.stdout is not None
        self._wire.stdin.write('{"report": 1}\n')
        self._wire.stdin.flush()
        ready, _, _ = select.select([self._wire.stdout], [], [], WIRE_TIMEOUT_S)
        if not ready:
            raise NetnsError(f"the wire of {self.ns} did not report")
        answer: dict[str, float | None] = json.loads(self._wire.stdout.readline())
        return answer

    def heal(self) -> None:
        self.impair(Impairment())

    def close(self) -> None:
        """Stop the wire (its TUN devices go with it) and delete the namespace."""
        if self._wire is not None:
            with contextlib.suppress(OSError):
                if self._wire.stdin:
                    self._wire.stdin.close()
            try:
                self._wire.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._wire.kill()
                self._wire.wait(timeout=5)
            if self._wire.stdout:
                self._wire.stdout.close()
            self._wire = None
        _ip("netns", "del", self.ns, check=False)

    def __enter__(self) -> NetnsLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_leftovers() -> list[str]:
    """Delete our namespaces whose creating process is gone (a crashed run); answers their names."""
    removed = []
    for line in _ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{re.escape(PREFIX)}(\d+)-\d+", name)
        if match is None:
            continue
        pid = int(match.group(1))
        alive = True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
        if not alive:
            with contextlib.suppress(NetnsError):
                _ip("netns", "del", name)
            removed.append(name)
    return removed
