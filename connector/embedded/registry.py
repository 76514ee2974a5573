"""A Confluent-compatible Schema Registry served over HTTP from a background thread.

It implements the part of the REST API that confluent-kafka's ``SchemaRegistryClient``,
``AvroSerializer`` and ``AvroDeserializer`` use, backed by :class:`SchemaStore`, so the
connector can be run and tested end to end without a Java registry. The server runs in
its own threads (stdlib ``ThreadingHTTPServer``) so that it never blocks an asyncio
event loop in the same process, and it can be stopped and restarted on the same port
with its state intact to simulate a registry outage.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from connector.embedded.schema_store import (
    RegisteredVersion,
    RegistryError,
    SchemaNotFoundError,
    SchemaStore,
)

__all__ = ["CONTENT_TYPE", "RegistryServer"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

logger = logging.getLogger(__name__)


class _BadRequestError(RegistryError):
    http_status, error_code = 400, 400


class _RouteNotFoundError(RegistryError):
    http_status, error_code = 404, 404


class _MethodNotAllowedError(RegistryError):
    http_status, error_code = 405, 405


class _NoAssociationsError(RegistryError):
    # confluent-kafka 2.16 serializers first ask for topic associations; a 404 makes them
    # fall back to the topic name strategy, any other answer breaks serialization.
    http_status, error_code = 404, 40401


class _UnprocessableSchemaError(RegistryError):
    http_status, error_code = 422, 42201


@dataclass(frozen=True)
class _Request:
    params: dict[str, str]
    query: dict[str, str]
    body: Any

    def flag(self, name: str) -> bool:
        """Boolean query parameter; clients send both ``true`` and Python's ``True``."""
        return self.query.get(name, "false").strip().lower() == "true"

    def schema_fields(self) -> tuple[str, str, object]:
        """The (schema, schemaType, references) of a schema request body."""
        if not isinstance(self.body, dict):
            raise _BadRequestError("Request body must be a JSON object")
        schema = self.body.get("schema")
        if not isinstance(schema, str) or not schema.strip():
            raise _UnprocessableSchemaError("Empty or missing 'schema' in request body")
        schema_type = self.body.get("schemaType") or "AVRO"
        if not isinstance(schema_type, str):
            raise _UnprocessableSchemaError("'schemaType' must be a string")
        return schema, schema_type.upper(), self.body.get("references")


_Handler = Callable[[SchemaStore, _Request], tuple[int, Any]]


@dataclass(frozen=True)
class _Fault:
    method: str
    status: int
    error_code: int
    message: str


class _Faults:
    """Error answers queued by tests, as a registry that is still starting gives them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[_Fault] = []

    def add(self, fault: _Fault, count: int) -> None:
        with self._lock:
            self._queued.extend([fault] * count)

    def take(self, method: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._queued):
                if fault.method == method:
                    return self._queued.pop(i)
        return None


def _schema_id(request: _Request) -> int:
    try:
        return int(request.params["id"])
    except ValueError:
        raise SchemaNotFoundError(f"Schema {request.params['id']} not found.") from None


def _version_json(found: RegisteredVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": found.subject,
        "version": found.version,
        "id": found.schema_id,
        "schema": found.schema,
    }
    if found.schema_type != "AVRO":
        body["schemaType"] = found.schema_type
    return body


def _compatibility_body(request: _Request) -> str | None:
    if not isinstance(request.body, dict):
        raise _BadRequestError("Request body must be a JSON object")
    level = request.body.get("compatibility", request.body.get("compatibilityLevel"))
    if level is not None and not isinstance(level, str):
        raise _BadRequestError("'compatibility' must be a string")
    return level


# Each handler maps one endpoint to store calls and returns (status, JSON body).


def _root(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, {}


def _list_subjects(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, store.subjects(
        prefix=request.query.get("subjectPrefix", ""),
        deleted=request.flag("deleted"),
        deleted_only=request.flag("deleted_only"),
    )


def _register(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    schema, schema_type, references = request.schema_fields()
    schema_id = store.register(request.params["subject"], schema, schema_type, references)
    return 200, {"id": schema_id}


def _lookup(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    schema, schema_type, _ = request.schema_fields()
    found = store.lookup(
        request.params["subject"], schema, schema_type, deleted=request.flag("deleted")
    )
    return 200, _version_json(found)


def _list_versions(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, store.versions(
        request.params["subject"],
        deleted=request.flag("deleted"),
        deleted_only=request.flag("deleted_only"),
    )


def _get_version(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    found = store.get_version(
        request.params["subject"], request.params["version"], deleted=request.flag("deleted")
    )
    return 200, _version_json(found)


def _get_version_schema(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    found = store.get_version(
        request.params["subject"], request.params["version"], deleted=request.flag("deleted")
    )
    return 200, json.loads(found.schema)


def _delete_subject(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, store.delete_subject(request.params["subject"], request.flag("permanent"))


def _delete_version(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, store.delete_version(
        request.params["subject"], request.params["version"], request.flag("permanent")
    )


def _schema_types(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, store.schema_types()


def _get_schema(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    stored = store.get_schema(_schema_id(request))
    body: dict[str, Any] = {"schema": stored.text}
    if stored.schema_type != "AVRO":
        body["schemaType"] = stored.schema_type
    return 200, body


def _schema_subjects(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    pairs = store.subject_versions_for_id(_schema_id(request), deleted=request.flag("deleted"))
    return 200, sorted({subject for subject, _ in pairs})


def _schema_versions(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    pairs = store.subject_versions_for_id(_schema_id(request), deleted=request.flag("deleted"))
    return 200, [{"subject": subject, "version": version} for subject, version in pairs]


def _associations(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    raise _NoAssociationsError("No associations found")


def _get_global_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, {"compatibilityLevel": store.get_compatibility()}


def _put_global_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    level = _compatibility_body(request)
    if level is None:
        return 200, {"compatibility": store.get_compatibility()}
    return 200, {"compatibility": store.set_compatibility(level)}


def _delete_global_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, {"compatibilityLevel": store.delete_compatibility()}


def _get_subject_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    level = store.get_compatibility(
        request.params["subject"], default_to_global=request.flag("defaultToGlobal")
    )
    return 200, {"compatibilityLevel": level}


def _put_subject_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    subject = request.params["subject"]
    level = _compatibility_body(request)
    if level is None:
        return 200, {"compatibility": store.get_compatibility(subject, default_to_global=True)}
    return 200, {"compatibility": store.set_compatibility(level, subject)}


def _delete_subject_config(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    return 200, {"compatibilityLevel": store.delete_compatibility(request.params["subject"])}


def _test_compatibility(store: SchemaStore, request: _Request) -> tuple[int, Any]:
    schema, schema_type, references = request.schema_fields()
    if references:
        raise _UnprocessableSchemaError("Schema references are not supported by this registry")
    messages = store.test_compatibility(
        request.params["subject"], schema, request.params.get("version"), schema_type
    )
    return 200, {"is_compatible": not messages, "messages": messages}


_ROUTES: list[tuple[str, str, _Handler]] = [
    ("GET", "", _root),
    ("GET", "subjects", _list_subjects),
    ("POST", "subjects/{subject}", _lookup),
    ("DELETE", "subjects/{subject}", _delete_subject),
    ("GET", "subjects/{subject}/versions", _list_versions),
    ("POST", "subjects/{subject}/versions", _register),
    ("GET", "subjects/{subject}/versions/{version}", _get_version),
    ("DELETE", "subjects/{subject}/versions/{version}", _delete_version),
    ("GET", "subjects/{subject}/versions/{version}/schema", _get_version_schema),
    ("GET", "schemas/types", _schema_types),
    ("GET", "schemas/ids/{id}", _get_schema),
    ("GET", "schemas/ids/{id}/subjects", _schema_subjects),
    ("GET", "schemas/ids/{id}/versions", _schema_versions),
    ("GET", "associations/{rest*}", _associations),
    ("GET", "config", _get_global_config),
    ("PUT", "config", _put_global_config),
    ("DELETE", "config", _delete_global_config),
    ("GET", "config/{subject}", _get_subject_config),
    ("PUT", "config/{subject}", _put_subject_config),
    ("DELETE", "config/{subject}", _delete_subject_config),
    ("POST", "compatibility/subjects/{subject}/versions", _test_compatibility),
    ("POST", "compatibility/subjects/{subject}/versions/{version}", _test_compatibility),
]


def _compile(template: str) -> re.Pattern[str]:
    """Turn ``subjects/{subject}`` into a regex over the raw (still %-encoded) path.

    Matching before decoding keeps ``%2F`` in a subject name from splitting a segment.
    """
    parts = []
    for segment in template.split("/") if template else []:
        if segment.endswith("*}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/".join(parts))


_COMPILED = [(method, _compile(template), handler) for method, template, handler in _ROUTES]


def _route(method: str, path: str) -> tuple[_Handler, dict[str, str]]:
    allowed = False
    for route_method, pattern, handler in _COMPILED:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method:
            return handler, {k: unquote(v) for k, v in match.groupdict().items()}
        allowed = True
    if allowed:
        raise _MethodNotAllowedError(f"Method {method} not allowed for /{path}")
    raise _RouteNotFoundError(f"No such endpoint: /{path}")


class _RequestHandler(BaseHTTPRequestHandler):
    """Maps an HTTP request to a route handler and writes its JSON answer."""

    # Keep-alive, like a real registry: clients pool connections.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for
    # the client's delayed ACK, adding ~40 ms to every request.
    disable_nagle_algorithm = True
    server_version = "EmbeddedSchemaRegistry"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        server = cast(_RegistryHTTPServer, self.server)
        store = server.store
        try:
            body = self._read_body()
            fault = server.faults.take(method)
            if fault is not None:
                self._send(fault.status, {"error_code": fault.error_code, "message": fault.message})
                return
            url = urlsplit(self.path)
            handler, params = _route(method, url.path.strip("/"))
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            status, payload = handler(store, _Request(params, query, body))
        except RegistryError as exc:
            status = exc.http_status
            payload = {"error_code": exc.error_code, "message": exc.message}
        except Exception:
            # Answer like Confluent's registry does instead of dropping the connection.
            logger.exception("schema registry failed on %s %s", method, self.path)
            status = 500
            payload = {"error_code": 50001, "message": "Internal error in the schema registry"}
        self._send(status, payload)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _BadRequestError(f"Malformed JSON request body: {exc}") from exc

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _RegistryHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that can also cut its open keep-alive connections.

    Closing the listening socket alone leaves pooled client connections served by their
    handler threads, so a "stopped" registry would keep answering; :meth:`stop` in
    :class:`RegistryServer` uses :meth:`close_connections` to make the outage real.
    """

    daemon_threads = True
    allow_reuse_address = True  # lets a restart rebind the port despite TIME_WAIT

    def __init__(self, address: tuple[str, int], store: SchemaStore, faults: _Faults) -> None:
        self.store = store
        self.faults = faults
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # the client or handler closed it in the meantime
                logger.debug("closing registry connection: %s", exc)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connections cut by stop() or by clients end up here; they are not server bugs.
        logger.debug("registry connection from %s ended with an error", client_address)


class RegistryServer:
    """A Schema Registry on ``host:port`` (port 0 picks a free one), state kept in memory.

    :meth:`start` after :meth:`stop` serves the same store on the same port, which is how
    tests simulate a registry outage and recovery.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._store = SchemaStore()
        self._faults = _Faults()
        self._server: _RegistryHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    @property
    def store(self) -> SchemaStore:
        """The backing store, for seeding or inspecting schemas without HTTP."""
        return self._store

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8081``; known once started."""
        if self._port == 0:
            raise RuntimeError("RegistryServer has not been started yet")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def fail_next(
        self, method: str, count: int, status: int, error_code: int, message: str = "injected"
    ) -> None:
        """Answer the next ``count`` requests of ``method`` (e.g. ``"POST"``) with this error.

        How a real registry behaves while it starts: Karapace answers lookups 40401 for
        a moment and registrations 500/50003 for seconds.
        """
        self._faults.add(_Fault(method.upper(), status, error_code, message), count)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Listen and serve in a background thread; returns :attr:`url`. Idempotent."""
        with self._lifecycle:
            if self._server is None:
                server = _RegistryHTTPServer((self._host, self._port), self._store, self._faults)
                self._port = server.server_address[1]
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"schema-registry-{self._port}",
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread
                logger.debug("schema registry listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Stop listening and drop open connections; the stored schemas are kept."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None or thread is None:
                return
            server.shutdown()
            server.server_close()
            server.close_connections()
            thread.join()

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
