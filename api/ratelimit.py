"""Per-key rate limiting (SPEC.md conventions: 429 with ``Retry-After``).

A token bucket per API key, kept in the API process: ``burst`` requests at once, refilled at
``per_minute``. Several API processes each keep their own buckets, so the effective limit is per
process; put a shared limiter in front (a gateway) when running many.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Decides whether a key may make one more request now."""

    def __init__(
        self, *, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(burst, 1)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> int | None:
        """Spend one request of ``key``; None if allowed, else the seconds until one is."""
        if not self.enabled:
            return None
        now = self._clock()
        name = hashlib.sha256(key.encode()).hexdigest()  # never keep keys themselves
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
