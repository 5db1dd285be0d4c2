"""Exponential backoff with jitter, for every retry the bridge makes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """Delay before try n+1: base * factor**(n-1), capped, with "full jitter" in [1-j, 1].

    Jitter spreads the retries of many items that failed together (the store was down for
    all of them), so they do not all come back in the same second.
    """

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> timedelta:
        """The wait after `attempts` failed tries (attempts >= 1)."""
        raw = min(self.cap, self.base * self.factor ** max(attempts - 1, 0))
        spread = 1.0 - self.jitter * self.rng.random()
        return timedelta(seconds=raw * spread)
