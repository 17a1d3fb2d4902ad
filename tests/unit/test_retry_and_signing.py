"""Retry delays: a pure function, checked exactly and by properties (signatures: test_signing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mission_control.jobs.retry import MAX_RETRY_AFTER_S, RetryPolicy

POLICY = RetryPolicy(max_attempts=5, backoff_s=2, backoff_max_s=60, jitter=0.0)


def test_delays_double_from_the_base_and_stop_at_the_cap():
    assert [POLICY.delay_for(n) for n in range(1, 7)] == [2, 4, 8, 16, 32, 60]


def test_jitter_spreads_each_delay_within_its_fraction():
    policy = RetryPolicy(max_attempts=5, backoff_s=10, backoff_max_s=1000, jitter=0.5)
    assert policy.delay_for(1, rand=0.0) == 5
    assert policy.delay_for(1, rand=0.5) == 10
    assert policy.delay_for(1, rand=0.999999) == pytest.approx(15, rel=1e-5)


def test_retry_after_is_a_floor_with_its_own_cap():
    assert POLICY.delay_for(1, retry_after_s=30) == 30
    assert POLICY.delay_for(6, retry_after_s=5) == 60
    assert POLICY.delay_for(1, retry_after_s=10**9) == MAX_RETRY_AFTER_S


def test_can_retry_counts_attempts_made():
    assert POLICY.can_retry(4)
    assert not POLICY.can_retry(5)


@given(
    attempts=st.integers(1, 1000),
    backoff=st.floats(0, 3600),
    cap=st.floats(0, 86_400),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1, exclude_max=True),
    retry_after=st.none() | st.floats(0, 10**7),
)
def test_a_delay_is_never_negative_and_never_past_the_cap_unless_the_target_asked(
    attempts, backoff, cap, jitter, rand, retry_after
):
    cap = max(cap, backoff)
    delay = RetryPolicy(20, backoff, cap, jitter).delay_for(attempts, retry_after_s=retry_after, rand=rand)
    assert delay >= 0
    assert delay <= max(cap, min(retry_after or 0, MAX_RETRY_AFTER_S))


@given(attempts=st.integers(1, 50), backoff=st.floats(0.01, 100))
def test_without_jitter_delays_never_shrink(attempts, backoff):
    policy = RetryPolicy(20, backoff, 86_400, 0.0)
    assert policy.delay_for(attempts + 1) >= policy.delay_for(attempts)
