"""Per-partner rate limits (issue 11, item 8): a token bucket per authenticated partner, in this process.

Each partner may make `burst` requests at once and `rate` a second sustained; a request beyond that is
refused with 429 and a `Retry-After` saying when the bucket holds a token again. Only an authenticated
partner is counted (a token that does not verify is refused before it reaches the bucket), so nobody can
spend another partner's allowance by naming it.

One process, one bucket: with N processes (`cme serve --workers N`, or replicas) a partner gets up to N
times the rate. A shared limit needs a shared counter (PostgreSQL or a cache in front), which costs a round
trip per request; the limit is there to stop one partner's runaway client from taking the threads every
other partner needs, and the per-process bound does that (decision 0018).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class PartnerRateLimiter:
    """Token buckets keyed by partner id. `take` is called from the event loop; the lock makes it safe from
    threads too. Partners are the registered ones only (every key is an authenticated partner id), so the
    table stays small."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # partner -> (tokens, when counted)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, partner_id: str) -> int:
        """Spend one token of `partner_id`'s bucket: 0 if there was one, else the whole seconds until there
        will be (the `Retry-After`), and nothing is spent."""
        if not self.enabled:
            return 0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(partner_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[partner_id] = (tokens - 1.0, now)
                return 0
            self._buckets[partner_id] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
