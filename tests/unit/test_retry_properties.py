"""Properties of the two retry policies (jobs and mission steps), checked over generated inputs."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mission_control.jobs.retry import MAX_RETRY_AFTER_S, RetryPolicy
from mission_control.missions.definition import StepRetry

seconds = st.floats(min_value=0, max_value=86_400, allow_nan=False)


@st.composite
def job_policies(draw: st.DrawFn) -> RetryPolicy:
    base = draw(st.floats(min_value=0, max_value=3600))
    cap = draw(st.floats(min_value=base, max_value=86_400))
    return RetryPolicy(
        max_attempts=draw(st.integers(1, 20)),
        backoff_s=base,
        backoff_max_s=cap,
        jitter=draw(st.floats(min_value=0, max_value=1)),
    )


@given(job_policies(), st.integers(1, 10_000), st.floats(min_value=0, max_value=0.999999))
def test_job_delays_stay_within_the_jittered_band_and_the_cap(
    policy: RetryPolicy, n: int, rand: float
) -> None:
    delay = policy.delay_for(n, rand=rand)
    assert 0 <= delay <= policy.backoff_max_s
    base = policy.backoff_s * 2.0 ** min(n - 1, 60)
    assert delay >= min(base * (1 - policy.jitter), policy.backoff_max_s) - 1e-9


@given(job_policies(), st.integers(1, 200))
def test_without_jitter_job_delays_never_shrink(policy: RetryPolicy, n: int) -> None:
    steady = RetryPolicy(policy.max_attempts, policy.backoff_s, policy.backoff_max_s, 0.0)
    assert steady.delay_for(n, rand=0.5) <= steady.delay_for(n + 1, rand=0.5)


@given(job_policies(), st.integers(1, 50), st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_retry_after_is_a_floor_itself_capped(policy: RetryPolicy, n: int, retry_after: float) -> None:
    delay = policy.delay_for(n, retry_after_s=retry_after, rand=0.5)
    assert delay >= min(retry_after, MAX_RETRY_AFTER_S) - 1e-9
    assert delay <= max(policy.backoff_max_s, min(retry_after, MAX_RETRY_AFTER_S))


@given(job_policies())
def test_a_policy_retries_exactly_up_to_max_attempts(policy: RetryPolicy) -> None:
    assert [policy.can_retry(made) for made in range(1, policy.max_attempts + 2)] == [
        *([True] * (policy.max_attempts - 1)),
        False,
        False,
    ]


@st.composite
def step_policies(draw: st.DrawFn) -> StepRetry:
    base = draw(st.floats(min_value=0, max_value=86_400))
    return StepRetry(
        max_attempts=draw(st.integers(1, 100)),
        backoff_s=base,
        multiplier=draw(st.floats(min_value=1, max_value=100)),
        backoff_max_s=draw(st.floats(min_value=base, max_value=366 * 86_400.0)),
    )


@given(step_policies(), st.integers(1, 100_000))
def test_step_delays_grow_geometrically_up_to_the_cap_and_never_overflow(policy: StepRetry, n: int) -> None:
    delay = policy.delay_for(n)
    assert math.isfinite(delay) and 0 <= delay <= policy.backoff_max_s
    assert delay <= policy.delay_for(n + 1)
    exact = policy.backoff_s * policy.multiplier ** min(n - 1, 50)
    if n <= 50 and exact <= policy.backoff_max_s:
        assert math.isclose(delay, exact, rel_tol=1e-9, abs_tol=1e-9)
