from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.popularity import build_groups, fit_popularity


def test_twitch_like_law_puts_half_the_watch_time_on_the_top_thousand() -> None:
    pop = fit_popularity(1_000_000, 1000, 0.5, top1_share=0.01)
    assert pop.top_share(1000) == pytest.approx(0.5, abs=1e-4)
    assert pop.top_share(1) == pytest.approx(0.01, abs=1e-4)


def test_unreachable_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="uniform"):
        fit_popularity(2000, 1000, 0.4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2_000, 200_000),
    top_k=st.integers(10, 1000),
    share=st.floats(0.3, 0.9),
    head=st.integers(1, 300),
    full=st.floats(0.0, 1.0),
)
def test_groups_partition_every_channel_and_all_watch_time(
    n: int, top_k: int, share: float, head: int, full: float
) -> None:
    if share <= top_k / n:
        return
    pop = fit_popularity(n, top_k, share)
    assert pop.top_share(top_k) == pytest.approx(share, abs=1e-3)
    groups = build_groups(pop, head, int(n * full))
    assert groups.channels.sum() == n
    assert groups.share.sum() == pytest.approx(1.0)
    assert np.all(groups.channels >= 1)
    assert np.all(np.diff(groups.first_rank) > 0)
    # shares fall with rank per channel: a group's channels are never more popular than the previous group's
    per_channel = groups.share / groups.channels
    assert np.all(np.diff(per_channel) <= 1e-15)
    # the full-ladder boundary is a group edge
    assert groups.full_ladder.sum() == np.searchsorted(groups.first_rank, int(n * full), side="right")
    assert groups.group_of_rank(1) == 0
