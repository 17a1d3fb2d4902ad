"""How long to wait before the next attempt: a pure function of the policy and the attempt number."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Whatever a target asks for in Retry-After, we do not park a run for longer than this.
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``backoff_s * 2**(n-1)`` before attempt ``n+1``, capped, with jitter.

    Jitter spreads retries of many runs that failed together (a target restart) so they do not
    return together; it scales each delay by a random factor in ``[1 - jitter, 1 + jitter]`` and the
    cap applies after it, so ``backoff_max_s`` really is the longest wait.
    """

    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    jitter: float

    def can_retry(self, attempts_made: int) -> bool:
        return attempts_made < self.max_attempts

    def delay_for(
        self, attempts_made: int, *, retry_after_s: float | None = None, rand: float | None = None
    ) -> float:
        """Seconds to wait after ``attempts_made`` attempts (1 after the first failure).

        ``retry_after_s`` (a target's Retry-After) is honoured as a floor, itself capped at
        MAX_RETRY_AFTER_S; ``rand`` in [0, 1) replaces the random draw so tests are exact.
        """
        if attempts_made < 1:
            raise ValueError("attempts_made starts at 1")
        exponent = min(attempts_made - 1, 60)  # 2**60 s is already beyond any cap
        base = self.backoff_s * (2.0**exponent)
        draw = random.random() if rand is None else rand
        spread = 1.0 + self.jitter * (2.0 * draw - 1.0)
        delay = min(base * spread, self.backoff_max_s)
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return max(delay, 0.0)
