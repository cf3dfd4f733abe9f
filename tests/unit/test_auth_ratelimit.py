"""Login throttling: token buckets per client address and per username, in bounded memory."""

import pytest

from gateway.services.accounts.throttle import LoginThrottle, TokenBuckets


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_burst_is_allowed_then_the_next_attempt_waits(clock):
    buckets = TokenBuckets(burst=3, refill_s=10.0, clock=clock)
    for _ in range(3):
        assert buckets.wait_s("a") == 0
        buckets.take("a")
    assert buckets.wait_s("a") == pytest.approx(10.0)


def test_one_attempt_comes_back_per_refill_interval(clock):
    buckets = TokenBuckets(burst=2, refill_s=10.0, clock=clock)
    buckets.take("a")
    buckets.take("a")
    clock.now += 4.0
    assert buckets.wait_s("a") == pytest.approx(6.0)
    clock.now += 6.0
    assert buckets.wait_s("a") == 0


def test_keys_are_limited_independently(clock):
    buckets = TokenBuckets(burst=1, refill_s=10.0, clock=clock)
    buckets.take("a")
    assert buckets.wait_s("a") > 0
    assert buckets.wait_s("b") == 0


def test_memory_is_bounded_by_max_keys(clock):
    buckets = TokenBuckets(burst=5, refill_s=10.0, max_keys=1000, clock=clock)
    for i in range(100_000):
        buckets.take(f"client-{i}")
    assert len(buckets) == 1000


def test_least_recently_used_key_is_forgotten_first(clock):
    buckets = TokenBuckets(burst=1, refill_s=10.0, max_keys=2, clock=clock)
    buckets.take("old")
    buckets.take("recent")
    buckets.take("new")
    assert buckets.wait_s("old") == 0  # forgotten: a fresh bucket
    assert buckets.wait_s("recent") > 0


def test_one_username_from_many_addresses_is_limited(clock):
    throttle = LoginThrottle(TokenBuckets(100, 1.0, clock=clock), TokenBuckets(5, 12.0, clock=clock))
    allowed = [throttle.attempt(f"10.0.0.{i}", "ana") == 0 for i in range(20)]
    assert allowed == [True] * 5 + [False] * 15


def test_many_usernames_from_one_address_are_limited(clock):
    throttle = LoginThrottle(TokenBuckets(20, 3.0, clock=clock), TokenBuckets(5, 12.0, clock=clock))
    allowed = [throttle.attempt("10.0.0.1", f"user{i}") == 0 for i in range(50)]
    assert allowed == [True] * 20 + [False] * 30


def test_usernames_compare_case_insensitively(clock):
    throttle = LoginThrottle(TokenBuckets(100, 1.0, clock=clock), TokenBuckets(1, 12.0, clock=clock))
    assert throttle.attempt("a", "Ana") == 0
    assert throttle.attempt("b", "ANA") > 0


def test_refused_attempts_do_not_prolong_the_wait(clock):
    throttle = LoginThrottle(TokenBuckets(1, 10.0, clock=clock), TokenBuckets(10, 1.0, clock=clock))
    throttle.attempt("a", "ana")
    for _ in range(100):
        throttle.attempt("a", "ana")
    clock.now += 10.0
    assert throttle.attempt("a", "ana") == 0


def test_a_thousand_refused_logins_add_no_state(clock):
    throttle = LoginThrottle(TokenBuckets(20, 3.0, clock=clock), TokenBuckets(5, 12.0, clock=clock))
    for i in range(20):
        throttle.attempt("10.0.0.1", f"user{i}")
    before = len(throttle)
    for i in range(1000):
        assert throttle.attempt("10.0.0.1", f"other{i}") > 0
    assert len(throttle) == before
