"""The connector's one configuration model, loaded from YAML with environment overrides.

Every option is declared here, typed and documented, and nothing else in the
package reads ``os.environ``: the environment is passed in. Unknown keys are
errors, because a misspelt option that is silently ignored is how a bridge ends
up pointed at the wrong cluster.

Environment overrides use the prefix ``CONNECTOR__`` and ``__`` between nested
keys, e.g. ``CONNECTOR__KAFKA__BOOTSTRAP_SERVERS=broker:9092``. Values are
parsed as YAML scalars, so ``true``, ``5`` and ``[1, 2]`` keep their types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

ENV_PREFIX = "CONNECTOR__"

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class ConfigError(Exception):
    """A configuration that cannot be used; the message names every bad key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret lives: a file (e.g. a mounted Kubernetes Secret) or an environment variable.

    Secrets are never written inline in the configuration, so a config file
    or ConfigMap can be shared and logged without leaking anything.
    """

    file: Path | None = Field(None, description="Read the secret from this file (trimmed).")
    env: str | None = Field(None, description="Read the secret from this environment variable.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of file or env")
        return self


class BackoffSettings(_Model):
    """Capped exponential backoff with full jitter between reconnect attempts."""

    initial_s: float = Field(0.5, gt=0, description="First delay ceiling, seconds.")
    max_s: float = Field(30.0, gt=0, description="Largest delay ceiling, seconds.")
    multiplier: float = Field(2.0, ge=1.0, description="Growth of the ceiling per attempt.")

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSettings:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be >= initial_s")
        return self


class WebSocketSettings(_Model):
    """Keep-alive and liveness of every venue socket."""

    ping_interval_s: float = Field(20.0, gt=0, description="WebSocket ping period.")
    ping_timeout_s: float = Field(20.0, gt=0, description="Close if a pong takes longer.")
    silence_timeout_s: float = Field(
        60.0, gt=0, description="Replace a socket that delivered no message for this long."
    )
    max_message_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest accepted frame.")
    open_timeout_s: float = Field(10.0, gt=0, description="Handshake timeout.")
    backoff: BackoffSettings = BackoffSettings()


class TplusMarketDataTopics(_Model):
    """Topic per T+ market-data stream; defaults follow ``<venue>.<stream>``."""

    depth: str = "tplus.depth"
    trades: str = "tplus.trades"
    klines: str = "tplus.klines"


class TplusMarketDataSettings(_Model):
    """Public T+ market data: depth diffs, finalized trades and klines."""

    enabled: bool = True
    base_url: str = Field(
        "http://localhost:8011",
        description="MDS base URL; REST keeps its path, WebSockets use the host only.",
    )
    assets: list[str] = Field(
        default_factory=lambda: ["1"],
        description="Asset ids (canonical string form) whose depth and klines are bridged.",
    )
    depth: bool = True
    trades: bool = True
    klines: bool = True
    kline_interval: str | None = Field(
        None, description="Bucket width of the kline stream, carried on every kline record."
    )
    sequence_step: int = Field(1, ge=1, description="Expected increment of sequence_number.")
    max_buffered_diffs: int = Field(
        10_000, ge=1, description="Diffs held while a snapshot is fetched; overflow resyncs."
    )
    snapshot_timeout_s: float = Field(10.0, gt=0, description="REST snapshot request timeout.")
    topics: TplusMarketDataTopics = TplusMarketDataTopics()
    websocket: WebSocketSettings = WebSocketSettings()

    def topic_map(self) -> dict[str, str]:
        """Stream name → topic for the enabled streams of this section."""
        if not self.enabled:
            return {}
        wanted = {"depth": self.depth, "trades": self.trades, "klines": self.klines}
        return {f"tplus.{name}": getattr(self.topics, name) for name, on in wanted.items() if on}

    @model_validator(mode="after")
    def _check(self) -> TplusMarketDataSettings:
        if not re.match(r"^https?://[^/]+", self.base_url):
            raise ValueError("base_url must be an http:// or https:// URL")
        if len(set(self.assets)) != len(self.assets):
            raise ValueError("assets must not repeat")
        for asset in self.assets:
            if not asset or "/" in asset or asset != asset.strip():
                raise ValueError(f"asset id {asset!r} is not a canonical asset string")
        return self


class TplusSettings(_Model):
    """Everything bridged from the T+ venue."""

    market_data: TplusMarketDataSettings = TplusMarketDataSettings()


class KafkaSettings(_Model):
    """Where records go and how the producer behaves."""

    bootstrap_servers: str = Field("localhost:9092", min_length=1)
    client_id: str = "connector"
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    linger_ms: int = Field(5, ge=0)
    create_topics: bool = Field(
        False, description="Create missing topics at start-up (clusters may forbid it)."
    )
    topic_partitions: int = Field(
        6, ge=1, description="Partitions of topics the connector creates."
    )
    topic_replication: int = Field(3, ge=1)
    dlq_topic: str = "connector.dlq"
    delivery_timeout_ms: int = Field(300_000, ge=1000, description="librdkafka message.timeout.ms.")
    security: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra librdkafka properties (SASL, TLS); values are treated as secrets.",
    )

    @model_validator(mode="after")
    def _check(self) -> KafkaSettings:
        if not _TOPIC_RE.match(self.dlq_topic):
            raise ValueError(f"dlq_topic {self.dlq_topic!r} is not a legal topic name")
        return self


class SchemaRegistrySettings(_Model):
    """The Confluent-compatible registry that holds the value schemas."""

    url: str = "http://localhost:8081"
    username: str | None = None
    password: SecretStr | None = None
    auto_register: bool = Field(
        True, description="Register schemas at start-up; false only looks them up and pins ids."
    )
    startup_timeout_s: float = Field(60.0, gt=0, description="Give up registering after this.")


class MetricsSettings(_Model):
    """The HTTP port serving /metrics, /healthz and /readyz."""

    host: str = "0.0.0.0"
    port: int = Field(9108, ge=0, le=65535)


class LoggingSettings(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(True, description="One JSON object per line on stderr.")


class Settings(_Model):
    """The whole connector: one process, the streams it bridges and where they go."""

    name: str = Field("connector", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kafka: KafkaSettings = KafkaSettings()
    schema_registry: SchemaRegistrySettings = SchemaRegistrySettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    shutdown_grace_s: float = Field(20.0, gt=0, description="Flush budget at SIGTERM.")
    tplus: TplusSettings = TplusSettings()

    @model_validator(mode="after")
    def _topics_legal(self) -> Settings:
        for topic in self.topics().values():
            if not _TOPIC_RE.match(topic):
                raise ValueError(f"topic name {topic!r} is not a legal Kafka topic name")
        return self

    def topics(self) -> dict[str, str]:
        """Stream name → topic for every enabled stream of every section."""
        return {
            **self.tplus.market_data.topic_map(),
        }


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``CONNECTOR__A__B=value`` variables onto the loaded YAML tree."""
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_path(data, path, value)
    return data


def _describe(error: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration in {origin}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            # Never echo the rejected input: it may be a secret.
            lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def parse_settings(data: Mapping[str, Any], origin: str = "configuration") -> Settings:
    """Validate a plain mapping; raise ConfigError naming each bad key."""
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read a YAML file (optional) and the environment into a validated Settings."""
    data: dict[str, Any] = {}
    origin = "environment"
    if path is not None:
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        data = loaded
    return parse_settings(apply_env(data, environ), origin)
