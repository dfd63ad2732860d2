from __future__ import annotations

import numpy as np
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model.autoscale import NodePool
from twin.model.chat import ChatCluster


@settings(max_examples=100, deadline=None)
@given(
    nodes=st.integers(0, 20),
    steps=st.lists(
        st.tuples(st.floats(0.0, 5e6), st.floats(0.0, 1e5)),  # members in the top room, storm msg/s
        min_size=1,
        max_size=30,
    ),
)
def test_chat_backlog_is_bounded_and_deliveries_never_exceed_capacity(cal, nodes: int, steps) -> None:
    pool = NodePool(simpy.Environment(), "chat", nodes, 0, 100, provisioning_s=60.0)
    chat = ChatCluster(cal, pool)
    channels = np.array([1.0, 100.0])
    capacity = nodes * cal.chat_deliveries_per_node
    for i, (members, storm) in enumerate(steps, 1):
        chat.step(1.0, np.array([members, 1000.0]), channels, {0: storm} if storm else {})
        assert 0.0 <= chat.backlog <= capacity * cal.chat_backlog_limit_s + 1e-6
        assert chat.delivered <= capacity * i + 1e-6
        assert chat.delay_s <= cal.chat_backlog_limit_s + 1e-9
        assert chat.refused == max(0.0, members + 1000.0 - nodes * cal.chat_connections_per_node)


def test_fan_out_is_capped_per_client(cal) -> None:
    pool = NodePool(simpy.Environment(), "chat", 10, 0, 100, provisioning_s=60.0)
    chat = ChatCluster(cal, pool)
    chat.step(1.0, np.array([1_000_000.0]), np.array([1.0]), {0: 50_000.0})
    assert chat.messages_per_s == 50_000.0
    assert chat.deliveries_per_s == 1_000_000.0 * cal.chat_client_cap_per_s
