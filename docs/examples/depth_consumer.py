"""Keep T+ order books from the tplus.depth topic, decoded with confluent-kafka.

Run: python depth_consumer.py BOOTSTRAP_SERVERS SCHEMA_REGISTRY_URL
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from confluent_kafka import DeserializingConsumer, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


class Book:
    """One asset's book: SNAPSHOT replaces it, DIFF sets levels, GAP invalidates it."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.valid = False
        self.sequence: int | None = None

    def apply(self, event: dict[str, Any]) -> None:
        if event["kind"] == "GAP":
            self.valid = False  # wait for the SNAPSHOT the connector fetches next
            return
        if event["kind"] == "SNAPSHOT":
            self.bids.clear()
            self.asks.clear()
            self.valid = True
        elif not self.valid:
            return  # a DIFF before the first SNAPSHOT: nothing to apply it to
        self.sequence = event["sequence_number"]
        for side, levels in ((self.bids, event["bids"]), (self.asks, event["asks"])):
            for level in levels:
                price, quantity = Decimal(level["price"]), Decimal(level["quantity"])
                if quantity == 0:
                    side.pop(price, None)
                else:
                    side[price] = quantity


def follow_books(
    bootstrap: str,
    registry_url: str,
    group_id: str = "order-books",
    until: Callable[[dict[str, Book]], bool] = lambda books: False,
) -> dict[str, Book]:
    """Apply every depth record to its asset's book until ``until(books)`` is true."""
    registry = SchemaRegistryClient({"url": registry_url})
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",  # a new group starts at the oldest record
            "key.deserializer": StringDeserializer("utf_8"),  # keys are plain UTF-8
            "value.deserializer": AvroDeserializer(registry),  # writer schema by id
        }
    )
    consumer.subscribe(["tplus.depth"])
    books: dict[str, Book] = {}
    try:
        while not until(books):
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            asset, event = message.key(), message.value()
            assert isinstance(asset, str) and isinstance(event, dict)  # deserialized
            books.setdefault(asset, Book()).apply(event)
    finally:
        consumer.close()
        registry.close()
    return books


def show(books: dict[str, Book]) -> bool:
    """Print the top of every valid book on one refreshed line; never stop."""
    tops = [
        f"{asset}#{book.sequence} {max(book.bids)}/{min(book.asks)}"
        for asset, book in sorted(books.items())
        if book.valid and book.bids and book.asks
    ]
    print(" | ".join(tops), end="\r", flush=True)
    return False


if __name__ == "__main__":
    follow_books(sys.argv[1], sys.argv[2], until=show)
