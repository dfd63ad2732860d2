"""The sliding-window limiter: exact "at most N in any window", and never refuses without cause."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.chat.ratelimit import SlidingWindowLimiter

# quarter seconds: exact in binary floating point, so the test's own arithmetic adds no rounding
gaps = st.lists(st.integers(0, 80).map(lambda q: q / 4), min_size=1, max_size=120)


@settings(max_examples=150)
@given(gaps=gaps, limit=st.integers(1, 25), window=st.sampled_from([1.0, 30.0]))
def test_no_window_ever_holds_more_than_the_limit_and_refusals_are_justified(
    gaps: list[float], limit: int, window: float
) -> None:
    limiter = SlidingWindowLimiter(window, 25)
    now, accepted = 0.0, []
    for gap in gaps:
        now += gap
        wait = limiter.try_acquire("u", now, limit)
        recent = [t for t in accepted if t > now - window]
        if wait == 0.0:
            assert len(recent) < limit  # accepted: room in the window
            accepted.append(now)
        else:
            assert len(recent) >= limit  # refused: the window really is full
            assert 0 < wait <= window
            # waiting the advised time is enough: that many old entries will have left
            assert len([t for t in recent if t > now + wait - window]) < limit
    for i, t in enumerate(accepted):
        assert len([u for u in accepted[i:] if u < t + window]) <= limit


@settings(max_examples=50)
@given(users=st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=1, max_size=60))
def test_users_are_limited_independently_and_idle_users_are_forgotten(users: list[str]) -> None:
    limiter = SlidingWindowLimiter(30.0, 20)
    for i, user in enumerate(users):
        limiter.try_acquire(user, i * 0.001, 20)
    counts = {u: users.count(u) for u in users}
    assert limiter.tracked() == len(counts)
    limiter.try_acquire("late", 100.0, 20)
    assert limiter.tracked() == 1


def test_the_21st_message_in_30_seconds_is_refused_until_the_first_ages_out() -> None:
    limiter = SlidingWindowLimiter(30.0, 100)
    for i in range(20):
        assert limiter.try_acquire("v", float(i), 20) == 0.0
    assert limiter.try_acquire("v", 20.0, 20) == pytest.approx(10.0)
    assert limiter.try_acquire("v", 30.0, 20) == 0.0
    assert limiter.try_acquire("mod", 20.0, 100) == 0.0


def test_limits_outside_the_configured_maximum_are_a_local_error() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(30.0, 20).try_acquire("v", 0.0, 21)
