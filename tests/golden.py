"""Access to the golden venue frames kept in tests/data."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def frames(venue: str, name: str) -> list[str]:
    """Each line of a ``.jsonl`` golden file: one WebSocket text message."""
    text = (DATA / venue / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def text(venue: str, name: str) -> str:
    return (DATA / venue / name).read_text(encoding="utf-8")
