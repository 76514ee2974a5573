"""Keeps every long-running source task running: a task that dies costs its stream a restart.

Frames and REST answers are contained where they are handled (see
``containment``); this is the net under everything else a task does. A
service whose ``run`` raises (or returns, which it never should) is logged,
counted in ``connector_task_restarts_total{venue,stream,reason}``, reported
not ready on ``/readyz`` and started again after a capped, jittered backoff.
Other streams never notice.

Only an error the connector cannot recover from (the sink is gone) ends the
supervisor, and with it the process, as :class:`Unrecoverable` with one line
saying why.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.sources.backoff import Backoff
from connector.sources.containment import where
from connector.sources.context import Service

log = logging.getLogger(__name__)

RETURNED = "returned"
"""The restart reason of a service whose ``run`` returned instead of running on."""


class Unrecoverable(Exception):
    """A source task failed in a way no restart can mend; the message says which and why."""


class Supervisor:
    """Runs services until cancelled, restarting each one that ends."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        rng: random.Random,
        *,
        fatal: tuple[type[Exception], ...] = (),
        initial_s: float = 0.5,
        max_s: float = 30.0,
        healthy_after_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._rng = rng
        self._fatal = fatal
        self._initial_s = initial_s
        self._max_s = max_s
        self._healthy_after_s = healthy_after_s
        self._monotonic = monotonic

    async def run(self, services: Sequence[Service]) -> None:
        """Until cancelled; raises Unrecoverable when a service fails with a fatal error."""
        tasks = [
            asyncio.create_task(self._keep(service), name="source-" + ".".join(service.labels))
            for service in services
        ]
        if not tasks:
            await asyncio.Event().wait()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, service: Service) -> None:
        venue, stream, subscription = service.labels
        name = f"task.{venue}.{stream}.{subscription}"
        backoff = Backoff(self._initial_s, self._max_s, 2.0, random.Random(self._rng.random()))
        while True:
            started = self._monotonic()
            try:
                await service.run()
                reason, location = RETURNED, ""
            except self._fatal as exc:
                raise Unrecoverable(
                    f"{venue}.{stream}.{subscription} cannot go on: {type(exc).__name__}: {exc}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - the supervisor: one stream restarts
                reason, location = type(exc).__name__, where(exc)
            if self._monotonic() - started >= self._healthy_after_s:
                backoff.reset()
            delay = backoff.next_delay()
            self._metrics.task_restarts.labels(venue, stream, reason).inc()
            self._health.set(name, False, f"restarting after {reason}")
            log.error(
                "source task ended; restarting it",
                extra={
                    "venue": venue,
                    "stream": stream,
                    "subscription": subscription,
                    "reason": reason,
                    "where": location,
                    "delay_s": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)
            self._health.set(name, True, "")
