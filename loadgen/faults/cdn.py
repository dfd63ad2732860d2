"""A CDN node (one nginx of a running `live.cdn` tier) as a fault target.

The tier runs on the test's event loop (`CdnCluster`), while faults run on threads of their
own (`plan.FaultPlan`, or `asyncio.to_thread(process.kill, ...)`), so a restart is handed to
that loop and waited for. nginx is a master with workers in one process group: a kill or a
hang must reach all of them (SIGSTOP of the master alone leaves the workers serving), which
`process_group` tells `process`.
"""

from __future__ import annotations

import asyncio

from live.cdn.launcher import START_TIMEOUT_S, CdnCluster

RESTART_WAIT_S = START_TIMEOUT_S + 5.0


class CdnNode:
    """Node ``name`` (``shield0``, ``edge1``, ...) of ``cluster``, which runs on ``loop``."""

    process_group = True

    def __init__(self, cluster: CdnCluster, name: str, loop: asyncio.AbstractEventLoop) -> None:
        cluster.node(name)  # a typo'd node fails here, before any fault
        self.cluster = cluster
        self.name = name
        self.loop = loop

    @property
    def pid(self) -> int | None:
        process = self.cluster.node(self.name).process
        return process.pid if process.returncode is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start the node again after a kill (from a thread other than the loop's)."""
        asyncio.run_coroutine_threadsafe(self.cluster.restart(self.name), self.loop).result(RESTART_WAIT_S)

    def close(self) -> None:
        """The cluster stops its nodes itself (``CdnCluster.stop``)."""


def tier_targets(cluster: CdnCluster, loop: asyncio.AbstractEventLoop) -> dict[str, CdnNode]:
    """Every node of ``cluster`` under its tier name: ``shield-1`` is shield0, ``edge-2`` edge1
    (the scenario format numbers tiers from 1)."""
    targets: dict[str, CdnNode] = {}
    for node in cluster.nodes:
        role = node.name.rstrip("0123456789")
        number = int(node.name[len(role):]) + 1
        targets[f"{role}-{number}"] = CdnNode(cluster, node.name, loop)
    return targets
