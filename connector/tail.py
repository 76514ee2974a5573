"""``connector tail``: print a topic's records as JSON lines, decoded as other teams decode them.

Values are decoded with confluent-kafka's AvroDeserializer against the
registry; a value that is not in the Confluent wire format (the dead-letter
topic holds raw frames) is printed as text with its headers instead.

Exit codes: 0 records printed (or interrupted); 1 the topic does not exist, or
``--idle-timeout`` passed without a single record; 3 no broker or no registry
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
    client = SchemaRegistryClient({"url": registry_url})
    try:
        probe_registry(client)
        return _consume(
            topic,
            bootstrap,
            client,
            from_beginning=from_beginning,
            max_records=max_records,
            idle_timeout_s=idle_timeout_s,
            metadata_timeout_s=metadata_timeout_s,
        )
    except (RegistryUnavailable, SchemaSetupError) as exc:
        print(f"connector tail: {exc} (--registry {registry_url})", file=sys.stderr)
        return EXIT_UNAVAILABLE
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
