"""The embedded registry answers confluent-kafka's real client and Avro serdes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

# The HTTP library the registry client itself uses (httpx2 when installed, else httpx).
from confluent_kafka.schema_registry.common._httpx_compat import httpx as client_httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.embedded.registry import CONTENT_TYPE, RegistryServer

TRADE_V1 = json.dumps(
    {
        "type": "record",
        "name": "Trade",
        "namespace": "test",
        "fields": [{"name": "id", "type": "long"}, {"name": "price", "type": "string"}],
    }
)
TRADE_V2 = json.dumps(
    {
        "type": "record",
        "name": "Trade",
        "namespace": "test",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "price", "type": "string"},
            {"name": "venue", "type": "string", "default": "unknown"},
        ],
    }
)
# Adds a field without a default: not BACKWARD-compatible with TRADE_V1.
TRADE_BREAKING = json.dumps(
    {
        "type": "record",
        "name": "Trade",
        "namespace": "test",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "price", "type": "string"},
            {"name": "venue", "type": "string"},
        ],
    }
)


def avro(text: str) -> Schema:
    return Schema(text, "AVRO")


def parsed(schema: Schema) -> Any:
    """The schema's JSON, so comparisons ignore layout."""
    assert schema.schema_str is not None
    return json.loads(schema.schema_str)


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[SchemaRegistryClient]:
    # No retries: every failure the tests provoke is meant to surface immediately.
    with SchemaRegistryClient({"url": registry.url, "max.retries": 0}) as sr:
        yield sr


@pytest.fixture
def http(registry: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url) as raw:
        yield raw


def test_url_is_local(registry: RegistryServer) -> None:
    assert registry.url.startswith("http://127.0.0.1:")
    assert not registry.url.endswith(":0")


def test_register_is_idempotent_and_ids_are_global(client: SchemaRegistryClient) -> None:
    first = client.register_schema("trades-value", avro(TRADE_V1))
    assert client.register_schema("trades-value", avro(TRADE_V1)) == first
    assert client.get_versions("trades-value") == [1]
    # Same schema text (even laid out differently) under another subject shares the id.
    reformatted = json.dumps(json.loads(TRADE_V1), indent=2)
    assert client.register_schema("archive-value", avro(reformatted)) == first
    second = client.register_schema("trades-value", avro(TRADE_V2))
    assert second != first
    assert client.get_versions("trades-value") == [1, 2]
    assert client.get_subjects() == ["archive-value", "trades-value"]


def test_read_back_by_id_lookup_and_version(client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema("trades-value", avro(TRADE_V1))
    client.register_schema("trades-value", avro(TRADE_V2))

    assert parsed(client.get_schema(schema_id)) == json.loads(TRADE_V1)

    found = client.lookup_schema("trades-value", avro(TRADE_V1))
    assert (found.subject, found.version, found.schema_id) == ("trades-value", 1, schema_id)

    latest = client.get_latest_version("trades-value")
    assert latest.version == 2
    assert parsed(latest.schema) == json.loads(TRADE_V2)
    assert client.get_version("trades-value", 1).schema_id == schema_id


def test_unknown_subject_schema_and_version(client: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaRegistryError) as subject:
        client.get_latest_version("missing-value")
    assert (subject.value.http_status_code, subject.value.error_code) == (404, 40401)

    client.register_schema("trades-value", avro(TRADE_V1))
    with pytest.raises(SchemaRegistryError) as schema:
        client.lookup_schema("trades-value", avro(TRADE_V2))
    assert (schema.value.http_status_code, schema.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as by_id:
        client.get_schema(999)
    assert by_id.value.error_code == 40403
    with pytest.raises(SchemaRegistryError) as version:
        client.get_version("trades-value", 7)
    assert (version.value.http_status_code, version.value.error_code) == (404, 40402)


def test_compatibility_config(client: SchemaRegistryClient) -> None:
    assert client.get_compatibility() == "BACKWARD"
    with pytest.raises(SchemaRegistryError) as unset:
        client.get_compatibility("trades-value")
    assert unset.value.error_code == 40408

    client.set_compatibility("trades-value", "FULL")
    assert client.get_compatibility("trades-value") == "FULL"
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(level="NONE")
    assert client.get_compatibility() == "NONE"

    with pytest.raises(SchemaRegistryError) as invalid:
        client.set_compatibility(level="SIDEWAYS")
    assert (invalid.value.http_status_code, invalid.value.error_code) == (422, 42203)


def test_incompatible_schema_is_refused_with_409(client: SchemaRegistryClient) -> None:
    client.register_schema("trades-value", avro(TRADE_V1))
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("trades-value", avro(TRADE_BREAKING))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    assert "venue" in refused.value.error_message
    assert client.get_versions("trades-value") == [1]

    # The same change is accepted once the subject opts out of checks.
    client.set_compatibility("trades-value", "NONE")
    client.register_schema("trades-value", avro(TRADE_BREAKING))
    assert client.get_versions("trades-value") == [1, 2]


def test_test_compatibility(client: SchemaRegistryClient) -> None:
    client.register_schema("trades-value", avro(TRADE_V1))
    assert client.test_compatibility("trades-value", avro(TRADE_V2)) is True
    assert client.test_compatibility("trades-value", avro(TRADE_BREAKING)) is False
    assert client.test_compatibility("trades-value", avro(TRADE_BREAKING), version=1) is False
    assert client.test_compatibility_all_versions("trades-value", avro(TRADE_V2)) is True


def test_test_compatibility_reports_messages(http: httpx.Client) -> None:
    http.post("/subjects/trades-value/versions", json={"schema": TRADE_V1}).raise_for_status()
    response = http.post(
        "/compatibility/subjects/trades-value/versions/latest?verbose=True",
        json={"schema": TRADE_BREAKING},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["is_compatible"] is False
    assert any("Trade.venue" in message for message in body["messages"])


def test_invalid_schema_is_refused_with_422(client: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("trades-value", avro('{"type": "record", "name": "T"}'))
    assert (refused.value.http_status_code, refused.value.error_code) == (422, 42201)
    with pytest.raises(SchemaRegistryError) as other_type:
        client.register_schema("trades-value", Schema('{"type": "object"}', "JSON"))
    assert (other_type.value.http_status_code, other_type.value.error_code) == (422, 42201)
    assert client.get_subjects() == []


def test_soft_then_permanent_delete(client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema("trades-value", avro(TRADE_V1))
    client.register_schema("trades-value", avro(TRADE_V2))

    with pytest.raises(SchemaRegistryError) as not_soft_deleted:
        client.delete_subject("trades-value", permanent=True)
    assert not_soft_deleted.value.error_code == 40405

    assert client.delete_subject("trades-value") == [1, 2]
    assert client.get_subjects() == []
    assert client.get_subjects(deleted=True) == ["trades-value"]
    assert client.delete_subject("trades-value", permanent=True) == [1, 2]
    assert client.get_subjects(deleted=True) == []
    # Records already written with the id must stay readable.
    assert parsed(client.get_schema(schema_id)) == json.loads(TRADE_V1)


def test_delete_version(client: SchemaRegistryClient) -> None:
    client.register_schema("trades-value", avro(TRADE_V1))
    client.register_schema("trades-value", avro(TRADE_V2))
    assert client.delete_version("trades-value", 2) == 2
    assert client.get_versions("trades-value") == [1]
    assert client.get_versions("trades-value", deleted=True) == [1, 2]
    assert client.get_latest_version("trades-value").version == 1


def serde_round_trip(client: SchemaRegistryClient, serializer_conf: dict[str, Any]) -> None:
    serializer = AvroSerializer(client, TRADE_V1, conf=serializer_conf)
    deserializer = AvroDeserializer(client)
    ctx = SerializationContext("trades", MessageField.VALUE)
    trade = {"id": 42, "price": "101.25"}

    payload = serializer(trade, ctx)

    assert payload is not None
    schema_id = client.get_latest_version("trades-value").schema_id
    assert payload[0] == 0  # magic byte of the Confluent wire format
    assert int.from_bytes(payload[1:5], "big") == schema_id
    assert deserializer(payload, ctx) == trade


def test_serde_round_trip_with_topic_subject_strategy(client: SchemaRegistryClient) -> None:
    serde_round_trip(client, {"subject.name.strategy": topic_subject_name_strategy})


def test_serde_round_trip_with_default_strategy(client: SchemaRegistryClient) -> None:
    # The default strategy first queries /associations; its 404 must mean "use the topic".
    serde_round_trip(client, {})
    assert client.get_subjects() == ["trades-value"]


def test_deserializer_reads_with_a_fresh_client(registry: RegistryServer) -> None:
    with SchemaRegistryClient({"url": registry.url}) as writer_client:
        serializer = AvroSerializer(writer_client, TRADE_V1)
        payload = serializer(
            {"id": 1, "price": "1"}, SerializationContext("trades", MessageField.VALUE)
        )
    with SchemaRegistryClient({"url": registry.url}) as reader_client:
        deserializer = AvroDeserializer(reader_client)
        ctx = SerializationContext("trades", MessageField.VALUE)
        assert deserializer(payload, ctx) == {"id": 1, "price": "1"}


def test_http_details(http: httpx.Client) -> None:
    registered = http.post(
        "/subjects/a%2Fb-value/versions?normalize=False",
        json={"schema": TRADE_V1, "schemaType": "AVRO", "references": []},
    )
    assert registered.status_code == 200
    assert registered.headers["content-type"] == CONTENT_TYPE
    assert http.get("/subjects").json() == ["a/b-value"]

    associations = http.get(
        "/associations/resources/-/trades",
        params={"resourceType": "topic", "associationType": "value"},
    )
    assert (associations.status_code, associations.json()["error_code"]) == (404, 40401)

    missing = http.get("/no/such/endpoint")
    assert missing.status_code == 404
    assert http.put("/subjects").status_code == 405
    malformed = http.post(
        "/subjects/x/versions", content=b"{oops", headers={"Content-Type": CONTENT_TYPE}
    )
    assert malformed.status_code == 400
    bad_version = http.get("/subjects/a%2Fb-value/versions/zero")
    assert (bad_version.status_code, bad_version.json()["error_code"]) == (422, 42202)
    assert http.get("/schemas/types").json() == ["AVRO"]


def test_python_style_boolean_query_parameters(http: httpx.Client) -> None:
    http.post("/subjects/s/versions", json={"schema": TRADE_V1}).raise_for_status()
    http.delete("/subjects/s").raise_for_status()
    assert http.get("/subjects", params={"deleted": "False"}).json() == []
    assert http.get("/subjects", params={"deleted": "True"}).json() == ["s"]


def test_concurrent_registrations_share_one_id(registry: RegistryServer) -> None:
    def register(subject: str) -> int:
        with SchemaRegistryClient({"url": registry.url}) as sr:
            schema_id: int = sr.register_schema(subject, avro(TRADE_V1))
            return schema_id

    subjects = [f"topic-{i}-value" for i in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(register, subjects))
    assert len(ids) == 1
    assert registry.store.subjects() == sorted(subjects)


def test_outage_and_restart_keep_port_and_schemas(registry: RegistryServer) -> None:
    url = registry.url
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as sr:
        schema_id = sr.register_schema("trades-value", avro(TRADE_V1))
        assert sr.get_subjects() == ["trades-value"]  # leaves a pooled keep-alive connection

        registry.stop()
        with pytest.raises(client_httpx.ConnectError):
            sr.get_subjects()

        assert registry.start() == url
        assert sr.get_subjects() == ["trades-value"]
    with SchemaRegistryClient({"url": url}) as fresh:
        assert parsed(fresh.get_schema(schema_id)) == json.loads(TRADE_V1)


def test_stop_is_idempotent() -> None:
    server = RegistryServer()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.url
    server.start()
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/subjects")
