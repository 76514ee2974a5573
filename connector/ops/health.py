"""Liveness and readiness, as reported on /healthz and /readyz.

Each component (a venue connection, the producer, the registry) sets its own
condition; readiness is the conjunction. Liveness only says the event loop is
serving, so Kubernetes restarts a wedged process but not one that is waiting
out a broker outage it will recover from.
"""

from __future__ import annotations

from collections.abc import Callable
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
        self._listeners: list[Callable[[str, Condition], None]] = []

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        condition = Condition(ok, detail)
        with self._lock:
            changed = self._conditions.get(name) != condition
            self._conditions[name] = condition
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(name, condition)

    def add_listener(self, listener: Callable[[str, Condition], None]) -> None:
        """Call ``listener(name, condition)`` on every change (from any thread)."""
        with self._lock:
            self._listeners.append(listener)

    def snapshot(self) -> dict[str, Condition]:
        with self._lock:
            return dict(self._conditions)

    def ready(self) -> bool:
        conditions = self.snapshot()
        return bool(conditions) and all(c.ok for c in conditions.values())
