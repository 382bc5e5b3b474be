"""Per-client message rate limit: a token bucket. Pure logic; the caller passes the clock."""

from __future__ import annotations


class TokenBucket:
    """Allows `rate_per_s` tokens a second on average, bursts up to `burst`."""

    def __init__(self, rate_per_s: float, burst: float | None = None, now_s: float = 0.0):
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst if burst is not None else rate_per_s)
        self.tokens = self.burst
        self.last_s = now_s

    def wait_s(self, now_s: float, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there (0: now); takes nothing. Lets a caller slow down instead of being refused."""
        tokens = min(self.burst, self.tokens + max(0.0, now_s - self.last_s) * self.rate_per_s)
        return max(0.0, (min(cost, self.burst) - tokens) / self.rate_per_s)

    def allow(self, now_s: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now_s - self.last_s) * self.rate_per_s)
        self.last_s = now_s
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
