"""Rate limits of the web app: failed authentication per client address, heartbeats per service token.

Token buckets kept in the web process's memory: a bucket holds up to ``burst`` tokens and refills at
``rate`` per second; a request that finds it empty is answered 429 with ``Retry-After`` (the seconds
until a token is back). They are per process (gunicorn workers, several web dynos each count alone),
which bounds floods without a round trip to a shared store on the hot heartbeat path; the effective
limit is the configured one times the number of web processes.

* Failed authentication, keyed by client address (the real client's behind MC_PROXY_HOPS trusted
  proxies): each refused credential takes a token, and a refused credential that finds none left is
  answered 429 instead of 401, telling a misconfigured client (or a scanner) to back off. A valid
  credential is checked first and never consults the budget, so clients sharing an address (behind
  a proxy not counted in MC_PROXY_HOPS) cannot lock each other out. The price, chosen on purpose
  (issue 13): the budget no longer bounds *guessing*, since a guess is still checked once the budget
  is spent. Guessing is made hopeless by the tokens themselves instead: service tokens are 256 random
  bits, and MC_ADMIN_TOKEN must be at least 16 characters (generate it; ``mission-control dev``
  does).
* Heartbeats, keyed by the digest of the service token that sent them (the admin token is the
  operator's and is not limited here).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from mission_control.web.api.errors import ApiError

# Buckets kept per limiter; the least recently used beyond this are forgotten (a full bucket again).
MAX_KEYS = 100_000


class TokenBuckets:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, key: object, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: object) -> float | None:
        """Take one token; None if there was one, else the seconds until there will be."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens < 1:
                return (1 - tokens) / self.rate
            self._store(key, tokens - 1, now)
            return None

    def wait_s(self, key: object) -> float | None:
        """Without taking one: None if a token is available, else the seconds until one is."""
        with self._lock:
            tokens = self._level(key, self._clock())
            return None if tokens >= 1 else (1 - tokens) / self.rate

    def _store(self, key: object, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)


def too_many(what: str, retry_after_s: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(
        429,
        "rate_limited",
        f"{what}; retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
