"""Token buckets: never more than burst + rate x time, and Retry-After is exactly enough."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.api.ratelimit import Backoff, FailureBackoff, Rate, TokenBuckets, client_key

rates = st.builds(Rate, capacity=st.integers(1, 20), per_second=st.floats(0.01, 10.0))
gaps = st.lists(st.floats(0.0, 5.0), min_size=1, max_size=200)


@settings(max_examples=200)
@given(rates, gaps)
def test_grants_never_exceed_the_burst_plus_the_refill(rate: Rate, steps: list[float]) -> None:
    buckets = TokenBuckets(rate)
    now, granted = 0.0, 0
    for step in steps:
        now += step
        granted += buckets.take("a", now) == 0.0
    assert granted <= rate.capacity + rate.per_second * now + 1e-6


@settings(max_examples=200)
@given(rates, gaps)
def test_waiting_the_answered_delay_always_gets_a_token(rate: Rate, steps: list[float]) -> None:
    buckets = TokenBuckets(rate)
    now = 0.0
    for step in steps:
        now += step
        wait = buckets.take("a", now)
        if wait > 0:
            now += wait
            assert buckets.take("a", now + 1e-9) == 0.0


@settings(max_examples=100)
@given(rates)
def test_a_fresh_client_gets_the_full_burst_at_once(rate: Rate) -> None:
    buckets = TokenBuckets(rate)
    assert [buckets.take("new", 100.0) for _ in range(rate.capacity)] == [0.0] * rate.capacity
    assert buckets.take("new", 100.0) > 0
    assert buckets.take("other", 100.0) == 0.0  # one client's exhaustion is its own


def test_the_client_table_is_bounded_and_forgets_the_least_recent() -> None:
    buckets = TokenBuckets(Rate(1, 0.001), max_clients=3)
    for key in "abcd":
        buckets.take(key, 0.0)
    assert len(buckets) == 3
    assert buckets.take("b", 0.0) > 0  # still remembered: refused
    assert buckets.take("a", 0.0) == 0.0  # forgotten: comes back full


def test_a_clock_stepping_backwards_grants_nothing_extra() -> None:
    buckets = TokenBuckets(Rate(1, 1.0))
    assert buckets.take("a", 10.0) == 0.0
    assert buckets.take("a", 5.0) > 0


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Rate(0, 1.0)
    with pytest.raises(ValueError):
        Rate(1, 0.0)


@pytest.mark.parametrize(("address", "key"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "unknown"),
    ("not an address", "not an address"),
])
def test_clients_are_keyed_by_ipv4_address_or_ipv6_slash_64(address: str | None, key: str) -> None:
    assert client_key(address) == key


@given(failures=st.integers(0, 200))
def test_account_backoff_doubles_after_the_free_failures_and_stays_capped(failures: int) -> None:
    policy = Backoff(free_failures=5, base_s=1.0, max_s=900.0)
    delay = policy.delay(failures)
    if failures <= 5:
        assert delay == 0.0
    else:
        assert delay == min(2.0 ** (failures - 6), 900.0)
        assert policy.delay(failures + 1) == min(2 * delay, 900.0)


def test_account_backoff_waits_forgives_old_runs_and_clears_on_success() -> None:
    backoff = FailureBackoff(Backoff(free_failures=1, base_s=2.0, max_s=60.0, forget_after_s=100.0),
                             max_keys=2)
    assert backoff.failed("ann", 0.0) == 0.0 and backoff.wait("ann", 0.0) == 0.0
    assert backoff.failed("ann", 1.0) == 2.0 and backoff.wait("ann", 2.0) == 1.0
    assert backoff.failed("ann", 3.0) == 4.0
    backoff.succeeded("ann")
    assert backoff.wait("ann", 3.0) == 0.0 and backoff.failed("ann", 4.0) == 0.0
    assert backoff.failed("ann", 5.0) == 2.0
    assert backoff.failed("ann", 500.0) == 0.0  # a run older than forget_after_s starts over
    backoff.failed("bob", 501.0)
    backoff.failed("cid", 502.0)
    assert len(backoff) == 2  # bounded: the least recently failed is forgotten
