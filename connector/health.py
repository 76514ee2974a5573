"""Liveness and readiness, as reported on /healthz and /readyz.

Each component (a venue connection, the producer, the registry) sets its own
condition; readiness is the conjunction. Liveness only says the event loop is
serving, so Kubernetes restarts a wedged process but not one that is waiting
out a broker outage it will recover from.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Lock


@dataclass(frozen=True, slots=True)
class Condition:
    ok: bool
    detail: str


class Health:
    """Named readiness conditions; thread-safe, since the producer reports from its poll thread."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._conditions: dict[str, Condition] = {}

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self._conditions[name] = Condition(ok, detail)

    def snapshot(self) -> dict[str, Condition]:
        with self._lock:
            return dict(self._conditions)

    def ready(self) -> bool:
        conditions = self.snapshot()
        return bool(conditions) and all(c.ok for c in conditions.values())
