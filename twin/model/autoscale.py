"""Node pools and the autoscaler: the discrete, SimPy-driven part of every autoscaled tier.

A `NodePool` counts nodes that are up and nodes still provisioning; each scale-up is its own
SimPy process that sleeps the provisioning delay before the nodes join, so capacity always
lags demand by that delay, as it does on a real cloud. Failures remove nodes at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from twin.calibration.parameters import Calibration
from twin.scenario.schema import Fleet


class NodePool:
    """`up` nodes serving, `provisioning` requested but not yet serving, within [min, max]."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        nodes: int,
        min_nodes: int,
        max_nodes: int,
        provisioning_s: float,
    ) -> None:
        self.env = env
        self.name = name
        self.up = nodes
        self.provisioning = 0
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.provisioning_s = provisioning_s
        self.node_seconds = 0.0
        self.peak_up = nodes
        self.failed = 0

    def request(self, count: int) -> int:
        """Start `count` nodes (capped at max_nodes); return how many were started."""
        count = max(0, min(count, self.max_nodes - self.up - self.provisioning))
        if count:
            self.provisioning += count
            self.env.process(self._boot(count))
        return count

    def _boot(self, count: int) -> simpy.events.ProcessGenerator:
        yield self.env.timeout(self.provisioning_s)
        self.provisioning -= count
        self.up += count
        self.peak_up = max(self.peak_up, self.up)

    def release(self, count: int) -> int:
        count = max(0, min(count, self.up - self.min_nodes))
        self.up -= count
        return count

    def fail(self, share: float) -> int:
        """Kill round(share x up) nodes now; return how many died."""
        dead = min(self.up, round(self.up * share))
        self.up -= dead
        self.failed += dead
        return dead

    def account(self, dt: float) -> None:
        self.node_seconds += self.up * dt


def autoscaler(
    env: simpy.Environment,
    pool: NodePool,
    needed: Callable[[], float],
    target: float,
    period_s: float,
    scale_down_below: float = 0.5,
) -> simpy.events.ProcessGenerator:
    """Every `period_s`, size the pool to `needed()/target` nodes (needed in node units).

    Scale up counts nodes already provisioning so a slow boot is not ordered twice; scale
    down only when utilization falls below `scale_down_below` x target, never under min.
    """
    while True:
        yield env.timeout(period_s)
        want = math.ceil(needed() / target)
        have = pool.up + pool.provisioning
        if want > have:
            pool.request(want - have)
        elif pool.up and needed() / pool.up < target * scale_down_below:
            pool.release(pool.up - max(want, pool.min_nodes))


@dataclass(frozen=True, slots=True)
class Pools:
    """The autoscaled pools of the fleet: transcoders (GPU, CPU), origins, chat nodes."""

    gpu: NodePool
    cpu: NodePool
    origin: NodePool
    chat: NodePool

    @classmethod
    def build(cls, env: simpy.Environment, fleet: Fleet, calibration: Calibration) -> Pools:
        def pool(name: str, delay_s: float) -> NodePool:
            spec = getattr(fleet, name)
            return NodePool(env, name, spec.nodes, spec.min_nodes, spec.max_nodes, delay_s)

        return cls(
            pool("gpu", calibration.gpu_provisioning_s),
            pool("cpu", calibration.cpu_provisioning_s),
            pool("origin", calibration.origin_provisioning_s),
            pool("chat", calibration.chat_provisioning_s),
        )

    def all(self) -> tuple[NodePool, NodePool, NodePool, NodePool]:
        return self.gpu, self.cpu, self.origin, self.chat
