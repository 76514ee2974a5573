"""Capped exponential backoff with full jitter.

Full jitter (a uniform draw between zero and the current ceiling) spreads
reconnects from many connectors after a venue outage, instead of having them
all retry in lock-step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive attempts; ``reset()`` after a healthy connection."""

    def __init__(
        self, initial_s: float, max_s: float, multiplier: float, rng: random.Random
    ) -> None:
        self._initial = initial_s
        self._max = max_s
        self._multiplier = multiplier
        self._rng = rng
        self.attempt = 0

    def ceiling(self) -> float:
        """The largest delay the next attempt may draw."""
        return min(self._max, self._initial * self._multiplier**self.attempt)

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt = min(self.attempt + 1, 64)
        return delay

    def reset(self) -> None:
        self.attempt = 0
