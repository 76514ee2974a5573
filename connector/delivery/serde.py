"""Avro values in the Confluent wire format, with schemas pinned at start-up.

Schemas are registered (or, in production mode, only looked up) once before
any record flows, so a schema the registry rejects stops start-up with a
clear message instead of failing records one by one, and the hot path never
waits on the registry: the client caches the ids, which also keeps records
flowing through a registry outage.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import fastavro
import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from connector.delivery.avro_writer import Unsupported, Writer, compile_writer
from connector.settings import SchemaRegistrySettings

try:
    # The HTTP library confluent-kafka's registry client is built on: httpx2
    # where installed, else httpx. Its transport errors mean "unreachable".
    import httpx2 as _registry_http
except ImportError:  # pragma: no cover - depends on the installed client
    import httpx as _registry_http  # type: ignore[no-redef]

log = logging.getLogger(__name__)

_UNREACHABLE = (_registry_http.TransportError, httpx.TransportError, OSError)

# Every path that sends a schema to the registry (start-up pinning, ``connector schemas
# register``, the serializers) sends the same compact text with the same flag, so a
# registry that normalises stores and matches one form, whoever registered it.
NORMALIZE_SCHEMAS = True

# Confluent error codes of a lookup that found nothing.
_SUBJECT_NOT_FOUND = 40401
_SCHEMA_NOT_FOUND = 40403


class SchemaSetupError(Exception):
    """The registry refused, or could not confirm, a schema."""


class RegistryUnavailable(Exception):
    """The registry could not be reached or answered a transient error; worth retrying.

    The message says which: "unreachable" only when no HTTP answer came back.
    """


class SchemaNotRegisteredYet(RegistryUnavailable):
    """A lookup (pinned mode) found no such subject or schema: retried at start-up.

    A registry answers lookups 40401 for a moment after it starts (Karapace does,
    while it reads its schemas topic), and a deploy pipeline may register the
    schemas while the connector starts; only a lasting 404 is an error.
    """


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
                ids[topic] = int(
                    client.register_schema(subject, schema, normalize_schemas=NORMALIZE_SCHEMAS)
                )
            else:
                found = client.lookup_schema(
                    subject, schema, normalize_schemas=NORMALIZE_SCHEMAS
                ).schema_id
                if found is None:
                    raise SchemaSetupError(f"registry returned no schema id for {subject!r}")
                ids[topic] = int(found)
        except _UNREACHABLE as exc:
            raise RegistryUnavailable(
                f"schema registry unreachable ({type(exc).__name__})"
            ) from None
        except SchemaRegistryError as exc:
            _raise_retryable(exc)
            action = "register" if auto_register else "find"
            message = (
                f"schema registry would not {action} the schema of subject {subject!r}: "
                f"HTTP {exc.http_status_code}, error {exc.error_code}: {exc.error_message}"
            )
            if not auto_register and exc.error_code in (_SUBJECT_NOT_FOUND, _SCHEMA_NOT_FOUND):
                raise SchemaNotRegisteredYet(
                    f"{message} (this version of the schema is not registered; register it"
                    " first with `connector schemas register`, or run with"
                    " schema_registry.auto_register: true)"
                ) from None
            raise SchemaSetupError(message) from None
        log.info("schema pinned", extra={"subject": subject, "schema_id": ids[topic]})
    return ids


def registered_versions(client: SchemaRegistryClient, subject: str) -> list[tuple[int, int, str]]:
    """Every live version of ``subject`` as (version, schema id, schema text), oldest first.

    An unknown subject has no versions. Blocking (HTTP).
    """
    with registry_errors(f"list the versions of subject {subject!r}"):
        try:
            numbers = client.get_versions(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404 and exc.error_code == _SUBJECT_NOT_FOUND:
                return []
            raise
        found = []
        for number in sorted(numbers):
            registered = client.get_version(subject, number)
            text = registered.schema.schema_str if registered.schema is not None else None
            if registered.schema_id is None or text is None:
                raise SchemaSetupError(f"registry returned no schema for {subject!r} v{number}")
            found.append((int(number), int(registered.schema_id), text))
        return found


@contextlib.contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """Turn the client's transport and HTTP errors into RegistryUnavailable or SchemaSetupError.

    ``action`` completes "schema registry would not ..." in the message.
    """
    try:
        yield
    except _UNREACHABLE as exc:
        raise RegistryUnavailable(f"schema registry unreachable ({type(exc).__name__})") from None
    except SchemaRegistryError as exc:
        _raise_retryable(exc)
        raise SchemaSetupError(
            f"schema registry would not {action}: HTTP {exc.http_status_code}, "
            f"error {exc.error_code}: {exc.error_message}"
        ) from None


def compatibility_level(client: SchemaRegistryClient, subject: str) -> tuple[str, str]:
    """The level the registry enforces on ``subject`` and where it is set: subject or global.

    This is the level ``register`` will be judged by, whatever a caller would prefer.
    Blocking (HTTP).
    """
    with registry_errors(f"tell the compatibility level of subject {subject!r}"):
        try:
            return client.get_compatibility(subject).upper(), "subject"
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:  # 40408: no subject-level setting
                raise
        return client.get_compatibility().upper(), "global"


def probe_registry(client: SchemaRegistryClient) -> None:
    """Ask for the subject list, so a wrong URL fails first and plainly. Blocking (HTTP)."""
    with registry_errors("list its subjects"):
        client.get_subjects()


def _raise_retryable(exc: SchemaRegistryError) -> None:
    if exc.http_status_code in (408, 429) or exc.http_status_code >= 500:
        raise RegistryUnavailable(
            f"schema registry answered HTTP {exc.http_status_code}, "
            f"error {exc.error_code}: {exc.error_message}"
        ) from None


class AvroEncoder:
    """One topic's values in the Confluent wire format: magic byte, schema id, Avro body.

    The schema id is the one confluent-kafka's AvroSerializer would use: the
    subject's schema registered (``auto_register``) or looked up, with the
    same normalisation, once, at the first value (answered from the client's
    cache when start-up pinned the schemas). The body comes from a writer
    compiled from the schema (``connector.delivery.avro_writer``): the serializer's
    fastavro bytes, in about half the time, which is most of a record's cost.
    """

    def __init__(
        self, client: SchemaRegistryClient, topic: str, schema: str, *, auto_register: bool
    ) -> None:
        self._client = client
        self._subject = subject_for(topic)
        self._schema = Schema(schema, "AVRO")
        self._auto_register = auto_register
        self._header: bytes | None = None
        parsed = json.loads(schema)
        try:
            self._write = compile_writer(parsed)
        except Unsupported:
            self._write = _fastavro_writer(parsed)

    def _resolve_header(self) -> bytes:
        if self._auto_register:
            schema_id = self._client.register_schema(
                self._subject, self._schema, normalize_schemas=NORMALIZE_SCHEMAS
            )
        else:
            found = self._client.lookup_schema(
                self._subject, self._schema, normalize_schemas=NORMALIZE_SCHEMAS
            ).schema_id
            if found is None:
                raise SchemaSetupError(f"registry returned no schema id for {self._subject!r}")
            schema_id = found
        return _MAGIC_BYTE + struct.pack(">I", int(schema_id))

    def __call__(self, value: dict[str, Any]) -> bytes:
        header = self._header
        if header is None:
            header = self._header = self._resolve_header()
        buf = bytearray(header)
        self._write(buf, value)
        return bytes(buf)


_MAGIC_BYTE = b"\x00"


def _fastavro_writer(parsed: Any) -> Writer:
    schema = fastavro.parse_schema(parsed)

    def write(buf: bytearray, value: Any) -> None:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, value)
        buf += out.getvalue()

    return write
