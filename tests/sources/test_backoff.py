"""Backoff delays grow, are capped, are jittered and reset."""

from __future__ import annotations

import random

from connector.sources.backoff import Backoff


def test_ceiling_grows_and_is_capped() -> None:
    backoff = Backoff(0.5, 4.0, 2.0, random.Random(1))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_delays_are_full_jitter_within_the_ceiling() -> None:
    backoff = Backoff(1.0, 1.0, 2.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.0 <= d <= 1.0 for d in delays)
    assert min(delays) < 0.1 and max(delays) > 0.9  # spread over the whole range


def test_reset_starts_again() -> None:
    backoff = Backoff(0.5, 30.0, 2.0, random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 0.5
