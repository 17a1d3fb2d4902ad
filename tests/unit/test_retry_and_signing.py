"""Retry delays and trigger signatures: pure functions, checked exactly and by properties."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mission_control.retry import MAX_RETRY_AFTER_S, RetryPolicy
from mission_control.signing import sign, verify

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


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    header = sign("s3cret", b'{"a":1}', 1_700_000_000)
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify_accepts_a_fresh_signature_and_refuses_tampering_and_replays():
    header = sign("s3cret", b"body", 1000)
    assert verify("s3cret", header, b"body", now=1000)
    assert verify("s3cret", header, b"body", now=1299)
    assert not verify("s3cret", header, b"body", now=1301)
    assert not verify("s3cret", header, b"bodY", now=1000)
    assert not verify("other", header, b"body", now=1000)
    assert not verify("s3cret", "v1=abc", b"body", now=1000)
    assert verify("s3cret", header.replace("v1=", "v1=dead,v1="), b"body", now=1000)
