"""Which schema files exist, which stream writes each, and under which topic and subject.

The schema tooling (check, register, the consumers' guide) works from the files in
``schemas/`` and :data:`catalog.STREAM_SCHEMAS`, so a schema added by a new
venue section is picked up without touching the tooling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from connector.delivery.serde import subject_for
from connector.governance.catalog import STREAM_SCHEMAS
from connector.settings import Settings


@dataclass(frozen=True)
class StreamTopic:
    """A stream written with a schema file, and its topic (None when not configured)."""

    stream: str
    topic: str | None

    @property
    def subject(self) -> str | None:
        """The registry subject of the topic's values (TopicNameStrategy)."""
        return None if self.topic is None else subject_for(self.topic)


@dataclass(frozen=True)
class SchemaFile:
    """One ``.avsc`` file and the streams written with it (none for a file no stream uses)."""

    path: Path
    relative: str  # POSIX path under the schemas folder, as STREAM_SCHEMAS spells it
    uses: tuple[StreamTopic, ...]


def default_topics(settings: Settings | None = None) -> dict[str, str]:
    """Stream → topic for every stream, with the topic names of ``settings`` (or defaults).

    Sections contribute ``topic_map()``, which is empty while a section is disabled;
    each section is therefore asked as if it were enabled. A stream no section names
    falls back to its stream name, which is the ``<venue>.<stream>`` default convention.
    """
    topics = {stream: stream for stream in STREAM_SCHEMAS}
    base = settings if settings is not None else Settings.model_construct()
    for section in _sections(base):
        if "enabled" in type(section).model_fields:
            section = section.model_copy(update={"enabled": True})
        topic_map: Callable[[], dict[str, str]] = getattr(section, "topic_map")  # noqa: B009
        topics.update(topic_map())
    return topics


def _sections(model: BaseModel) -> Iterator[BaseModel]:
    """Every nested section that contributes a ``topic_map()``."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, BaseModel):
            if callable(getattr(value, "topic_map", None)):
                yield value
            yield from _sections(value)


def inventory(root: Path, topics: Mapping[str, str]) -> list[SchemaFile]:
    """Every ``.avsc`` under ``root``, sorted, with the streams and topics that use it."""
    files = []
    for path in sorted(root.rglob("*.avsc")):
        relative = path.relative_to(root).as_posix()
        uses = tuple(
            StreamTopic(stream, topics.get(stream))
            for stream, file in STREAM_SCHEMAS.items()
            if file == relative
        )
        files.append(SchemaFile(path, relative, uses))
    return files


def missing_files(root: Path) -> list[str]:
    """Schema files named in STREAM_SCHEMAS that do not exist under ``root``."""
    return sorted(
        f"{relative} (stream {stream})"
        for stream, relative in STREAM_SCHEMAS.items()
        if not (root / relative).is_file()
    )
