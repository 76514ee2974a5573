"""The naive bridge: WebSocket → Kafka the way a typical user first writes it.

``json.loads`` (floats), a pydantic model per message, a dict for the Avro
schema, and confluent-kafka's ``SerializingProducer`` with its
``AvroSerializer``, one ``produce`` and one ``poll(0)`` per message, the
delivery callback a closure over the receive time. It writes the same
schemas to the same kind of cluster with the same producer settings as the
connector, so the difference between the two is the code in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, Message, SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import StringSerializer
from pydantic import BaseModel, ConfigDict, Field
from websockets.asyncio.client import connect

from connector.bench.meter import Meter

ValueMaker = Callable[[Any, int], dict[str, Any]]


class DepthDiff(BaseModel):
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    sequence_number: int


def depth_value(asset: str) -> ValueMaker:
    def make(message: Any, received_ns: int) -> dict[str, Any]:
        diff = DepthDiff.model_validate(message)
        return {
            "kind": "DIFF",
            "asset_id": asset,
            "sequence_number": diff.sequence_number,
            "bids": [{"price": str(p), "quantity": str(q)} for p, q in diff.bids],
            "asks": [{"price": str(p), "quantity": str(q)} for p, q in diff.asks],
            "received_ns": received_ns,
        }

    return make


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=_kebab, populate_by_name=True)


class Fill(_Model):
    fill_id: str
    quantity: float
    fill_price: float
    filled_at: datetime
    destination_venue: str | None = None
    ext_group_fill_id: str | None = None
    ext_exec_id: str | None = None


class Leg(_Model):
    instrument_type: str
    symbol: str
    action: str
    quantity: float
    remaining_quantity: float
    fills: list[Fill] = Field(default_factory=list)


class Order(_Model):
    id: int
    account_number: str
    status: str
    time_in_force: str | None = None
    order_type: str | None = None
    size: float | None = None
    underlying_symbol: str | None = None
    underlying_instrument_type: str | None = None
    price: float | None = None
    price_effect: str | None = None
    cancellable: bool | None = None
    editable: bool | None = None
    edited: bool | None = None
    global_request_id: str | None = None
    source: str | None = None
    received_at: datetime | None = None
    updated_at: datetime | None = None
    terminal_at: datetime | None = None
    legs: list[Leg] = Field(default_factory=list)


class Notification(BaseModel):
    type: str
    data: Order
    timestamp: int


def _ns(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1e9)


def _text(value: float | None) -> str | None:
    return None if value is None else str(value)


def order_value(message: Any, received_ns: int) -> dict[str, Any]:
    note = Notification.model_validate(message)
    order = note.data
    return {
        "id": order.id,
        "account_number": order.account_number,
        "status": order.status,
        "time_in_force": order.time_in_force,
        "order_type": order.order_type,
        "size": _text(order.size),
        "underlying_symbol": order.underlying_symbol,
        "underlying_instrument_type": order.underlying_instrument_type,
        "price": _text(order.price),
        "price_effect": order.price_effect,
        "cancellable": order.cancellable,
        "editable": order.editable,
        "edited": order.edited,
        "global_request_id": order.global_request_id,
        "source": order.source,
        "received_at_ns": _ns(order.received_at),
        "updated_at_ns": _ns(order.updated_at),
        "terminal_at_ns": _ns(order.terminal_at),
        "legs": [
            {
                "instrument_type": leg.instrument_type,
                "symbol": leg.symbol,
                "action": leg.action,
                "quantity": str(leg.quantity),
                "remaining_quantity": str(leg.remaining_quantity),
                "fills": [
                    {
                        "fill_id": fill.fill_id,
                        "quantity": str(fill.quantity),
                        "fill_price": str(fill.fill_price),
                        "filled_at_ns": _ns(fill.filled_at),
                        "destination_venue": fill.destination_venue,
                        "ext_group_fill_id": fill.ext_group_fill_id,
                        "ext_exec_id": fill.ext_exec_id,
                        "extra": {},
                    }
                    for fill in leg.fills
                ],
                "extra": {},
            }
            for leg in order.legs
        ],
        "extra": {},
        "origin": "STREAM",
        "timestamp_ns": note.timestamp * 1_000_000,
        "received_ns": received_ns,
    }


class NaiveBridge:
    """One socket, one producer, one message at a time."""

    def __init__(
        self,
        conf: dict[str, Any],
        client: SchemaRegistryClient,
        schema: str,
        topic: str,
        meter: Meter,
    ) -> None:
        self._producer = SerializingProducer(
            {
                **conf,
                "key.serializer": StringSerializer("utf_8"),
                "value.serializer": AvroSerializer(client, schema),
            }
        )
        self._topic = topic
        self._meter = meter

    async def run(self, url: str, count: int, make: ValueMaker, key: str) -> None:
        received = 0
        async with connect(url) as ws:
            async for message in ws:
                received_ns = self._meter.clock_ns()
                value = make(json.loads(message), received_ns)

                def on_delivery(
                    err: KafkaError | None, msg: Message, received_ns: int = received_ns
                ) -> None:
                    if err is None:
                        self._meter.ack(received_ns, time.time_ns())

                while True:
                    try:
                        self._producer.produce(
                            self._topic, key=key, value=value, on_delivery=on_delivery
                        )
                        break
                    except BufferError:
                        self._producer.poll(0.01)
                self._producer.poll(0)
                received += 1
                if received == count:
                    break
            self._producer.flush()
