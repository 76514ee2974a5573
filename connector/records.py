"""The values that flow from venue parsers to the Kafka sink.

Parsers and mappers produce these plain objects; only the sink knows about
Kafka and the registry. Keeping them free of I/O lets the whole venue layer be
tested from golden frames alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AckHook = Callable[[int, int], None]
"""Told ``(partition, offset)`` of a record once the brokers acknowledge it."""


@dataclass(slots=True)
class Record:
    """One event bound for one Kafka topic, as an Avro-ready dict.

    ``stream`` names the logical stream (``tplus.depth``); the sink maps it to a
    topic and a schema. ``key`` is the partitioning key (asset id or account),
    written as a UTF-8 string so that keys never embed a schema id.

    Not frozen, though nothing changes one after it is built: one is built per
    event, and a frozen dataclass takes twice as long to build.
    """

    stream: str
    key: str
    value: dict[str, Any]
    received_ns: int
    event_ns: int | None = None
    on_ack: AckHook | None = None
    """Run on the event loop once the brokers acknowledge this record (book checkpoints)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A frame that could not become a record, kept whole for the DLQ topic.

    ``stage`` and ``reason`` are drawn from small closed sets so they can label
    metrics; ``detail`` is a human-readable explanation that must never contain
    secrets or the frame itself (the frame travels as the message value).
    """

    stream: str
    stage: str
    reason: str
    detail: str
    raw: bytes
    received_ns: int
    key: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


class Stage:
    """The closed set of pipeline stages a dead letter can come from."""

    RECEIVE = "receive"
    DECODE = "decode"
    VALIDATE = "validate"
    ENCODE = "encode"
    ROUTE = "route"
    DELIVER = "deliver"
    PARSE = "parse"
    """Venue code failed unexpectedly while reading a frame (reason ``internal_error``)."""
    MAP = "map"
    """The driver failed unexpectedly while applying what venue code made of a frame."""


class DeadLetterHeader:
    """The headers every dead letter carries (the DLQ topic's contract with its readers)."""

    CONNECTOR = "connector"
    STREAM = "stream"
    STAGE = "stage"
    REASON = "reason"
    DETAIL = "detail"
    RECEIVED_NS = "received_ns"


class OptionalHeader:
    """Headers only some dead letters carry."""

    SOURCE = "source"
    TRUNCATED_FROM_BYTES = "truncated_from_bytes"
    REDACTED = "redacted"
    """Keys whose credential-shaped values were replaced by ``[REDACTED]``, comma-separated."""
    ERROR = "error"
    """``internal_error``: the type of the exception the frame raised (never its text)."""
    CLOSE_CODE = "close_code"
    """``frame_rejected``: the close code the connector sent (1009, 1007, 1002)."""
    FRAME_BYTES = "frame_bytes"
    """``frame_rejected``: the refused frame's size, where the WebSocket layer knew it."""
    MAX_SIZE = "max_size"
    """``frame_rejected``: the size limit the frame exceeded."""


class FrameSource:
    """Values of the ``source`` header: the body came over REST, not from the socket."""

    REST_SNAPSHOT = "rest_snapshot"
    REST_BASELINE = "rest_baseline"


def members(closed_set: type) -> tuple[str, ...]:
    """The values of a closed-set class of string constants (Stage, a Reason), in order.

    Metrics preset a series per value and the consumers' guide lists them, so
    both follow the class when a value is added.
    """
    return tuple(
        value
        for name, value in vars(closed_set).items()
        if name.isupper() and isinstance(value, str)
    )
