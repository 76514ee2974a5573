"""``connector schemas register``: publish every value schema before a deploy.

With ``schema_registry.auto_register: false`` the running connector only looks
schemas up, so a registry credential with write access is needed by the deploy
pipeline alone. Registration goes through :func:`connector.delivery.serde.pin_schemas`,
the code path the connector itself uses, so the text and the normalisation the
registry sees are the ones the connector will look up at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.delivery.serde import SchemaSetupError, pin_schemas, subject_for


def register_all(
    client: SchemaRegistryClient, schemas: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    """Register each topic's value schema; print ``subject → id``; return how many were refused.

    Every schema is tried even after a refusal, so one run names every problem.
    Raises :class:`connector.delivery.serde.RegistryUnavailable` when the registry cannot be
    reached (worth retrying, unlike a refusal).
    """
    refused = 0
    for topic, text in schemas.items():
        subject = subject_for(topic)
        try:
            ids = pin_schemas(client, {topic: text}, auto_register=True)
        except SchemaSetupError as exc:
            print(f"{subject}: refused: {exc}", file=err)
            refused += 1
            continue
        print(f"{subject} → {ids[topic]}", file=out)
    return refused
