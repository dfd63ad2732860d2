"""Chat cluster: connections per node, fan-out deliveries, the broker, a bounded backlog.

A room's ingress is its chatters x message rate, capped by slow mode at `chat_room_cap_per_s`
(a storm overrides the cap: that is what makes it a storm). Each member receives the room's
messages up to `chat_client_cap_per_s` (larger rooms are sampled per client), so fan-out is
sum over rooms of members x min(rate, client cap); the top rooms dominate it. Deliveries
beyond the nodes' fan-out capacity wait in a backlog bounded at `chat_backlog_limit_s` of
capacity (older messages are dropped and counted); the backlog's delay is backlog / capacity.

A delivered message's delay is that wait plus the chat path, which is there even when idle:
the sender's uplink and the reader's downlink (one region RTT in all, at the p99 of the
viewers' lognormal access spread), the broker hop between chat nodes, and the room's batch
window (the platform's `batch_interval_s`: a message waits up to one window for its frame).
`delay_p99_s` adds the p99 of each part, an upper bound of the p99 of their sum.

While the broker fails over, a message reaches only the readers on its sender's node; the
other (nodes - 1) / nodes of its deliveries wait in the backlog for the broker, aged by the
failover so far, and drain at the nodes' spare capacity once it is back.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from twin.calibration.parameters import Calibration
from twin.model.autoscale import NodePool

FloatArray = npt.NDArray[np.float64]


Z99 = 2.3263478740408408  # standard normal 0.99 quantile


def chat_path_p99_s(calibration: Calibration, rtt_s: float) -> float:
    """p99 of an idle chat path: batch window + broker hop + one RTT at the access spread's p99."""
    network = rtt_s * math.exp(Z99 * calibration.viewer_rtt_sigma)
    return 0.99 * calibration.chat_batch_s + calibration.chat_broker_hop_s + network


class ChatCluster:
    def __init__(self, calibration: Calibration, pool: NodePool, rtt_s: float = 0.0) -> None:
        self.calibration = calibration
        self.pool = pool
        self.path_p99_s = chat_path_p99_s(calibration, rtt_s)
        self.backlog = 0.0
        self.dropped = 0.0
        self.delivered = 0.0
        self.connections = 0.0
        self.refused = 0.0
        self.messages_per_s = 0.0
        self.deliveries_per_s = 0.0
        self.delay_s = 0.0
        self.broker_down = False  # a broker failover: messages reach only readers on the sender's node
        self.broker_down_s = 0.0  # how long the broker has been down (the oldest waiting message's age)

    def needed(self) -> float:
        calibration = self.calibration
        return max(
            self.deliveries_per_s / calibration.chat_deliveries_per_node,
            self.connections / calibration.chat_connections_per_node,
        )

    def step(self, dt: float, members: FloatArray, channels: FloatArray, storm: dict[int, float]) -> None:
        """members[g]: chatters in group g (spread over its channels); storm: group -> msg/s."""
        calibration = self.calibration
        per_room = members / channels
        rate = np.minimum(per_room * calibration.chat_messages_per_chatter_s, calibration.chat_room_cap_per_s)
        for g, msgs in storm.items():
            rate[g] = max(rate[g], msgs)
        deliveries = float((channels * per_room * np.minimum(rate, calibration.chat_client_cap_per_s)).sum())
        self.messages_per_s = float((channels * rate).sum())
        self.deliveries_per_s = deliveries
        self.connections = float(members.sum())
        conn_cap = self.pool.up * calibration.chat_connections_per_node
        self.refused = max(0.0, self.connections - conn_cap)
        capacity = self.pool.up * calibration.chat_deliveries_per_node
        waiting = 0.0
        if self.broker_down:
            # only the sender's node's readers get the message; the rest wait for the broker
            waiting = deliveries * (1.0 - 1.0 / max(self.pool.up, 1))
            deliveries -= waiting
            self.broker_down_s += dt
        else:
            self.broker_down_s = 0.0
        self.backlog = max(0.0, self.backlog + (deliveries - capacity) * dt + waiting * dt)
        limit = capacity * calibration.chat_backlog_limit_s
        if self.backlog > limit:
            self.dropped += self.backlog - limit
            self.backlog = limit
        self.delivered += min(deliveries * dt, capacity * dt)
        self.delay_s = self.backlog / capacity if capacity else calibration.chat_backlog_limit_s
        if self.broker_down:
            self.delay_s = min(max(self.delay_s, self.broker_down_s), calibration.chat_backlog_limit_s)

    @property
    def delay_p99_s(self) -> float:
        """p99 delivery delay of this step: the backlog's wait plus the idle path's p99."""
        return self.delay_s + self.path_p99_s

    @property
    def utilization(self) -> float:
        capacity = self.pool.up * self.calibration.chat_deliveries_per_node
        return self.deliveries_per_s / capacity if capacity else 0.0
