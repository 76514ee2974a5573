"""Reference readers of the connector's topics, for the teams that consume them.

Built on confluent-kafka's ``DeserializingConsumer`` and ``AvroDeserializer``, as
any consumer would be. ``BookReader`` joins a depth book at any time from its
latest checkpoint on the books topic; the pure book logic it applies records
with (``depth_book``) is the one the connector writes those checkpoints with.
"""

from connector.readers.book_reader import BookReader, CheckpointExpired

__all__ = ["BookReader", "CheckpointExpired"]
