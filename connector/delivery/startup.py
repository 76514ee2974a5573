"""Waiting for the Kafka brokers at start-up, the way the registry is waited for.

A connector started while its brokers are down (a cluster restart, a network
policy not applied yet) should wait, not crash-loop: it asks for metadata with
capped, jittered backoff, reports itself not ready with the bootstrap servers
named in /readyz, and gives up with one line once ``kafka.startup_timeout_s``
has passed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from connector.ops.health import Health
from connector.sources.backoff import Backoff

log = logging.getLogger(__name__)

#: Longest single metadata request. librdkafka keeps connecting in the background between
#: requests, so a short one only makes readiness and the log current sooner.
ATTEMPT_TIMEOUT_S = 2.0


class KafkaUnavailable(Exception):
    """No broker answered before the start-up deadline."""


Probe = Callable[[float], object]
"""Blocking: ask for metadata within the timeout; raise KafkaException if no broker answers."""


def _reason(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return err.name() if isinstance(err, KafkaError) else str(exc)


async def wait_for_brokers(
    probe: Probe,
    bootstrap: str,
    timeout_s: float,
    health: Health,
    rng: random.Random,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Return once a broker answers; raise KafkaUnavailable after ``timeout_s``."""
    backoff = Backoff(0.5, 10.0, 2.0, rng)
    deadline = monotonic() + timeout_s
    health.set("kafka", False, f"connecting to {bootstrap}")
    while True:
        attempt = max(0.1, min(ATTEMPT_TIMEOUT_S, deadline - monotonic()))
        try:
            await asyncio.to_thread(probe, attempt)
            return
        except KafkaException as exc:
            reason = _reason(exc)
        health.set("kafka", False, f"no broker at {bootstrap} answered ({reason})")
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise KafkaUnavailable(
                f"no Kafka broker at {bootstrap} answered within {timeout_s:g} s "
                f"(kafka.bootstrap_servers, kafka.startup_timeout_s)"
            )
        delay = min(backoff.next_delay(), remaining)
        log.warning(
            "kafka unreachable; retrying",
            extra={"bootstrap": bootstrap, "error": reason, "delay_s": round(delay, 3)},
        )
        await asyncio.sleep(delay)
