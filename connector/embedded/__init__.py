"""In-process stand-ins for Kafka and the Schema Registry, for development and tests."""
