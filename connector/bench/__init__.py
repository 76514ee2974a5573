"""``python -m connector.bench``: WebSocket → Kafka throughput and latency, three ways.

The same frames, from the same local WebSocket server, go through the
connector, through a naive bridge written the way a typical user would, and
through a raw-forward ceiling that produces each frame's bytes untouched,
each in its own process and into the same embedded cluster. See
``docs/benchmarks.md`` for the method and a run's figures.
"""
