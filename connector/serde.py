"""Avro values in the Confluent wire format, with schemas pinned at start-up.

Schemas are registered (or, in production mode, only looked up) once before
any record flows, so a schema the registry rejects stops start-up with a
clear message instead of failing records one by one, and the hot path never
waits on the registry: the client caches the ids, which also keeps records
flowing through a registry outage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.settings import SchemaRegistrySettings

try:
    # The HTTP library confluent-kafka's registry client is built on: httpx2
    # where installed, else httpx. Its transport errors mean "unreachable".
    import httpx2 as _registry_http
except ImportError:  # pragma: no cover - depends on the installed client
    import httpx as _registry_http  # type: ignore[no-redef]

log = logging.getLogger(__name__)

_UNREACHABLE = (_registry_http.TransportError, httpx.TransportError, OSError)


class SchemaSetupError(Exception):
    """The registry refused or could not confirm a schema at start-up."""


class RegistryUnavailable(Exception):
    """The registry could not be reached; worth retrying."""


def registry_client(settings: SchemaRegistrySettings) -> SchemaRegistryClient:
    conf: dict[str, Any] = {"url": settings.url}
    if settings.username is not None and settings.password is not None:
        conf["basic.auth.user.info"] = f"{settings.username}:{settings.password.get_secret_value()}"
    return SchemaRegistryClient(conf)


def subject_for(topic: str) -> str:
    """TopicNameStrategy: one value schema per topic."""
    return f"{topic}-value"


def pin_schemas(
    client: SchemaRegistryClient, schemas: Mapping[str, str], *, auto_register: bool
) -> dict[str, int]:
    """Register or look up each topic's value schema; return topic → schema id.

    Blocking (HTTP); call it from a worker thread. Raises SchemaSetupError
    naming the subject and the registry's reason.
    """
    ids: dict[str, int] = {}
    for topic, text in schemas.items():
        subject = subject_for(topic)
        schema = Schema(text, "AVRO")
        try:
            if auto_register:
                ids[topic] = int(client.register_schema(subject, schema))
            else:
                found = client.lookup_schema(subject, schema).schema_id
                if found is None:
                    raise SchemaSetupError(f"registry returned no schema id for {subject!r}")
                ids[topic] = int(found)
        except _UNREACHABLE as exc:
            raise RegistryUnavailable(
                f"schema registry unreachable ({type(exc).__name__})"
            ) from None
        except SchemaRegistryError as exc:
            if exc.http_status_code in (408, 429) or exc.http_status_code >= 500:
                raise RegistryUnavailable(
                    f"schema registry answered HTTP {exc.http_status_code}"
                ) from None
            action = "register" if auto_register else "find"
            raise SchemaSetupError(
                f"schema registry would not {action} the schema of subject {subject!r}: "
                f"HTTP {exc.http_status_code}, error {exc.error_code}: {exc.error_message}"
            ) from None
        log.info("schema pinned", extra={"subject": subject, "schema_id": ids[topic]})
    return ids


class AvroEncoder:
    """Serialises one topic's values with confluent-kafka's AvroSerializer."""

    def __init__(
        self, client: SchemaRegistryClient, topic: str, schema: str, *, auto_register: bool
    ) -> None:
        conf: dict[str, Any] = {
            "auto.register.schemas": auto_register,
            "subject.name.strategy": topic_subject_name_strategy,
        }
        self._serializer = AvroSerializer(client, schema, conf=conf)
        self._ctx = SerializationContext(topic, MessageField.VALUE)

    def __call__(self, value: dict[str, Any]) -> bytes:
        data = self._serializer(value, self._ctx)
        assert isinstance(data, bytes)
        return data
