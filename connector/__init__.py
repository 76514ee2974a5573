"""Bridges trading-venue WebSocket streams into Avro-encoded Kafka topics."""

__version__ = "0.1.0"
