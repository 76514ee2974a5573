"""``connector tail``: print a topic's records as JSON lines, decoded as other teams decode them.

Values are decoded with confluent-kafka's AvroDeserializer against the
registry; a value that is not in the Confluent wire format (the dead-letter
topic holds raw frames) is printed as text with its headers instead.
``--book ASSET`` prints the live top of one depth book instead, kept by the
reference reader (:class:`connector.readers.BookReader`).

Exit codes: 0 records printed (or interrupted); 1 the topic does not exist, or
``--idle-timeout`` passed without a single record, or (``--book``) the records
after the book's checkpoint are no longer retained; 3 no broker or no registry
answered.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from connector.delivery.serde import (
    RegistryUnavailable,
    SchemaSetupError,
    probe_registry,
    registry_errors,
)
from connector.readers import BookReader, CheckpointExpired
from connector.readers.depth_book import Applied, DepthBook

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_UNAVAILABLE = 3

#: How long the brokers have to answer the first metadata request.
METADATA_TIMEOUT_S = 10.0


class _Unavailable(Exception):
    pass


class _Nothing(Exception):
    pass


def _text(data: str | bytes | None) -> str | None:
    if data is None or isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def _answering_registry(registry_url: str) -> SchemaRegistryClient | None:
    """A client of a registry that answered, or None after one line on stderr saying why not."""
    client = SchemaRegistryClient({"url": registry_url})
    try:
        probe_registry(client)
    except (RegistryUnavailable, SchemaSetupError) as exc:
        print(f"connector tail: {exc} (--registry {registry_url})", file=sys.stderr)
        client.close()
        return None
    return client


def tail(
    topic: str,
    bootstrap: str,
    registry_url: str,
    *,
    from_beginning: bool,
    max_records: int | None,
    idle_timeout_s: float | None,
    metadata_timeout_s: float = METADATA_TIMEOUT_S,
) -> int:
    """Print ``topic``'s records; return the exit code (failures are one line on stderr)."""
    client = _answering_registry(registry_url)
    if client is None:
        return EXIT_UNAVAILABLE
    try:
        return _consume(
            topic,
            bootstrap,
            client,
            from_beginning=from_beginning,
            max_records=max_records,
            idle_timeout_s=idle_timeout_s,
            metadata_timeout_s=metadata_timeout_s,
        )
    except _Unavailable as exc:
        print(f"connector tail: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except _Nothing as exc:
        print(f"connector tail: {exc}", file=sys.stderr)
        return EXIT_NOTHING
    finally:
        client.close()


def _check_topic(consumer: Consumer, topic: str, bootstrap: str, timeout_s: float) -> None:
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException:
        raise _Unavailable(
            f"no Kafka broker at {bootstrap} answered within {timeout_s:g} s (--bootstrap)"
        ) from None
    found = metadata.topics.get(topic)
    error = found.error if found is not None else None
    if found is None or (error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise _Nothing(f"topic {topic} does not exist at {bootstrap}")
    if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        raise _Nothing(f"not authorized to read topic {topic} at {bootstrap}")
    # Anything else (e.g. a leader being elected) is transient: the consumer waits it out.


def _consume(
    topic: str,
    bootstrap: str,
    client: SchemaRegistryClient,
    *,
    from_beginning: bool,
    max_records: int | None,
    idle_timeout_s: float | None,
    metadata_timeout_s: float,
) -> int:
    deserializer = AvroDeserializer(client)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"connector-tail-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    printed = 0
    try:
        _check_topic(consumer, topic, bootstrap, metadata_timeout_s)
        consumer.subscribe([topic])
        last = time.monotonic()
        while max_records is None or printed < max_records:
            msg = consumer.poll(0.5)
            if msg is None:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    if printed == 0:
                        raise _Nothing(f"no records on {topic} within {idle_timeout_s:g} s")
                    print(
                        f"connector tail: {printed} records; none for {idle_timeout_s:g} s",
                        file=sys.stderr,
                    )
                    break
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                print(f"connector tail: {err.str()}", file=sys.stderr)
                continue
            last = time.monotonic()
            out: dict[str, Any] = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": _text(msg.key()),
            }
            raw = msg.value()
            ctx = SerializationContext(topic, MessageField.VALUE, msg.headers())
            try:
                with registry_errors("return the schema of a record"):
                    out["value"] = deserializer(raw, ctx)
            except SerializationError:
                out["raw"] = _text(raw)
                headers = msg.headers() or []
                pairs = headers.items() if isinstance(headers, dict) else headers
                out["headers"] = {k: _text(v) for k, v in pairs}
            print(json.dumps(out, default=str), flush=True)
            printed += 1
    except KeyboardInterrupt:
        print("connector tail: interrupted", file=sys.stderr)
    finally:
        consumer.close()
    return EXIT_OK


def top_of_book(book: DepthBook) -> dict[str, Any]:
    """One line of ``tail --book``: the book's sequence, state and best levels."""
    bid, ask = book.best_bid(), book.best_ask()
    return {
        "asset": book.asset,
        "sequence": book.sequence,
        "state": book.state.value,
        "invalid_reason": book.invalid_reason,
        "bid": None if bid is None or not book.valid else [bid["price"], bid["quantity"]],
        "ask": None if ask is None or not book.valid else [ask["price"], ask["quantity"]],
    }


def tail_book(
    asset: str,
    bootstrap: str,
    registry_url: str,
    *,
    books_topic: str,
    depth_topic: str,
    max_records: int | None,
    idle_timeout_s: float | None,
    metadata_timeout_s: float = METADATA_TIMEOUT_S,
) -> int:
    """Print the top of ``asset``'s book as JSON lines: once at start, then when it moves."""
    client = _answering_registry(registry_url)
    if client is None:
        return EXIT_UNAVAILABLE
    client.close()  # the reader opens its own
    reader = BookReader(
        asset,
        bootstrap,
        registry_url,
        books_topic=books_topic,
        depth_topic=depth_topic,
        timeout_s=metadata_timeout_s,
    )
    try:
        reader.start()
        _follow_top(reader, max_records, idle_timeout_s)
    except CheckpointExpired as exc:
        print(f"connector tail: {exc}", file=sys.stderr)
        return EXIT_NOTHING
    except (KafkaException, TimeoutError) as exc:
        print(f"connector tail: {_kafka_trouble(exc)} (--bootstrap {bootstrap})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("connector tail: interrupted", file=sys.stderr)
    finally:
        reader.close()
    return EXIT_OK


def _follow_top(reader: BookReader, max_records: int | None, idle_timeout_s: float | None) -> None:
    shown = top_of_book(reader.book)
    print(json.dumps(shown), flush=True)
    printed = 0
    last = time.monotonic()
    while max_records is None or printed < max_records:
        applied = reader.poll(0.5)
        if applied is None or applied in (Applied.DUPLICATE, Applied.SKIPPED):
            if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return
            continue
        last = time.monotonic()
        line = top_of_book(reader.book)
        if {**line, "sequence": None} != {**shown, "sequence": None}:  # the top moved
            print(json.dumps(line), flush=True)
            shown = line
            printed += 1


def _kafka_trouble(exc: KafkaException | TimeoutError) -> str:
    """One line for what stopped the book: an error's name, never a stack."""
    if isinstance(exc, TimeoutError):
        return f"Kafka did not answer in time: {exc}"
    err = exc.args[0] if exc.args else None
    name = err.name() if isinstance(err, KafkaError) else type(exc).__name__
    return f"Kafka failed ({name})"
