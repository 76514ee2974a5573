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
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.security import transport as transport_policy

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


def _reference_only(value: object) -> object:
    if value is not None and not isinstance(value, dict | SecretRef):
        raise ValueError("a secret is given as {file: …} or {env: …}, never inline")
    return value


SecretReference = Annotated[SecretRef, BeforeValidator(_reference_only)]
"""A SecretRef whose inline form is refused with a message saying how to write it."""

_INSECURE_TRANSPORT = "credentials over cleartext to a host other than loopback"


def _allow_insecure(what: str) -> Any:
    return Field(
        False,
        description=f"Permit {what} over cleartext (http://, ws://) to a host other than "
        "loopback; only where the network itself is trusted.",
    )


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
    silence_timeout_s: float | None = Field(
        60.0,
        gt=0,
        description="Replace a socket that delivered no message for this long; null: never.",
    )
    max_message_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="Larger frames go to the DLQ (up to 4x; beyond that the socket closes).",
    )
    open_timeout_s: float = Field(10.0, gt=0, description="Handshake timeout.")
    compression: Literal["none", "deflate"] = Field(
        "none",
        description="permessage-deflate; off by default, as a few KB of deflated frame can "
        "inflate to max_message_bytes x 4. Turn on only for a venue that needs it.",
    )
    max_queue: int = Field(
        4,
        ge=1,
        le=64,
        description="Frames a socket buffers before it stops reading: memory per socket is at "
        "most (max_queue + 1) x 4 x max_message_bytes (20 MiB by default).",
    )
    backoff: BackoffSettings = BackoffSettings()


class MarketDataWebSocketSettings(WebSocketSettings):
    """Market-data sockets are judged alive by WebSocket ping/pong, not by market silence.

    An illiquid book may send nothing for minutes on a perfectly healthy
    socket; replacing it then only re-fetches a snapshot. Silence shows in
    ``connector_seconds_since_last_message`` (and its alert) instead.
    """

    silence_timeout_s: float | None = Field(
        None,
        gt=0,
        description="Replace a socket silent this long, for streams without their own "
        "silence_reconnect_s; null (the default): never, pings judge liveness.",
    )


class SilenceReconnectSettings(_Model):
    """Per market-data stream: seconds of silence after which its socket is replaced."""

    depth: float | None = Field(None, gt=0, description="null: never (pings judge liveness).")
    trades: float | None = Field(None, gt=0, description="null: never (pings judge liveness).")
    klines: float | None = Field(None, gt=0, description="null: never (pings judge liveness).")


class TplusMarketDataTopics(_Model):
    """Topic per T+ market-data stream; defaults follow ``<venue>.<stream>``."""

    depth: str = "tplus.depth"
    trades: str = "tplus.trades"
    klines: str = "tplus.klines"
    books: str = Field(
        "tplus.books", description="Compacted topic of book checkpoints, keyed by asset."
    )


class TplusMarketDataSettings(_Model):
    """Public T+ market data: depth diffs, finalized trades and klines."""

    enabled: bool = Field(True, description="Bridge T+ market data.")
    base_url: str = Field(
        "http://localhost:8011",
        description="MDS base URL; REST keeps its path, WebSockets use the host only.",
    )
    assets: list[str] = Field(
        default_factory=lambda: ["1"],
        description="Asset ids (canonical string form) whose depth and klines are bridged.",
    )
    depth: bool = Field(True, description="Bridge the order-book depth stream.")
    trades: bool = Field(True, description="Bridge finalized trades.")
    klines: bool = Field(True, description="Bridge klines (candles).")
    kline_interval: str | None = Field(
        None, description="Bucket width of the kline stream, carried on every kline record."
    )
    sequence_step: int = Field(1, ge=1, description="Expected increment of sequence_number.")
    depth_overflow: Literal["shed", "block"] = Field(
        "shed",
        description="When the producer queue is nearly full: shed depth diffs and resync "
        "(announced with a GAP record), or block the socket like other streams.",
    )
    max_buffered_diffs: int = Field(
        10_000, ge=1, description="Diffs held while a snapshot is fetched; overflow resyncs."
    )
    snapshot_timeout_s: float = Field(
        10.0, gt=0, description="Deadline of one REST snapshot request, connect to last byte."
    )
    snapshot_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Larger snapshot answers are refused unread."
    )
    book_checkpoint_s: float = Field(
        10.0,
        ge=0,
        description="Write each depth book's full state to the books topic this often (and at "
        "every resync), so consumers can join at any time; 0 writes none.",
    )
    topics: TplusMarketDataTopics = TplusMarketDataTopics()
    websocket: MarketDataWebSocketSettings = MarketDataWebSocketSettings()
    silence_reconnect_s: SilenceReconnectSettings = SilenceReconnectSettings()

    def websocket_for(self, stream: Literal["depth", "trades", "klines"]) -> WebSocketSettings:
        """The socket settings of one stream: its own silence_reconnect_s, if set, wins."""
        own = getattr(self.silence_reconnect_s, stream)
        silence = own if own is not None else self.websocket.silence_timeout_s
        return self.websocket.model_copy(update={"silence_timeout_s": silence})

    def topic_map(self) -> dict[str, str]:
        """Stream name → topic for the enabled streams of this section."""
        if not self.enabled:
            return {}
        wanted = {
            "depth": self.depth,
            "trades": self.trades,
            "klines": self.klines,
            "books": self.depth and self.book_checkpoint_s > 0,
        }
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


class TplusAccountSettings(_Model):
    """One T+ account whose order events and fills are bridged."""

    name: str = Field(
        ...,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Label of the account's connections in metrics and health; never its key.",
    )
    private_key: SecretRef = Field(
        ...,
        description="The Ed25519 private key: 64 hex digits (seed), 128 (seed and public key) "
        "or an unencrypted PKCS#8 PEM block.",
    )
    public_key: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Expected account id (64 lower-case hex); start-up fails if the key differs.",
    )


class TplusOmsBaselineSettings(_Model):
    """REST state fetched after every (re)connect so consumers converge.

    ASSUMPTION: the venue's protocol description documents no REST endpoint
    for open orders or user trades. The default paths are those of the
    venue's public Python SDK (``GET /orders/user/{account}``,
    ``GET /trades/user/{account}``), unverified against the venue; turn a
    baseline off where the venue does not serve it.
    """

    open_orders: bool = Field(True, description="Fetch open orders after each orders connect.")
    user_trades: bool = Field(True, description="Fetch recent trades after each trades connect.")
    open_orders_path: str = Field(
        "/orders/user/{account}", description="ASSUMED path; {account} is the public key."
    )
    user_trades_path: str = Field(
        "/trades/user/{account}", description="ASSUMED path; {account} is the public key."
    )
    timeout_s: float = Field(
        10.0, gt=0, description="Deadline of one baseline request, connect to last byte."
    )
    max_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Larger baseline answers are refused unread."
    )
    attempts: int = Field(3, ge=1, le=10, description="Tries per (re)connect before giving up.")

    @model_validator(mode="after")
    def _paths(self) -> TplusOmsBaselineSettings:
        for path in (self.open_orders_path, self.user_trades_path):
            if not path.startswith("/") or "{account}" not in path:
                raise ValueError("baseline paths start with / and contain {account}")
        return self


class TplusOmsWebSocketSettings(WebSocketSettings):
    """Account sockets are quiet while nobody trades: the silence timeout is an hour.

    WebSocket pings still detect a dead connection within ``ping_timeout_s``;
    a socket replaced after an hour of silence also refreshes its baseline.
    """

    silence_timeout_s: float = Field(
        3600.0, gt=0, description="Replace a socket that delivered no message for this long."
    )


class TplusOmsTopics(_Model):
    orders: str = "tplus.orders"
    user_trades: str = "tplus.user-trades"


class TplusOmsSettings(_Model):
    """T+ account streams (OMS): order events and user trades, signed in per account."""

    enabled: bool = Field(False, description="Bridge T+ account streams; needs accounts.")
    base_url: str = Field(
        "http://localhost:3032",
        description="OMS base URL; REST keeps its path, WebSockets use the host only.",
    )
    accounts: list[TplusAccountSettings] = Field(default_factory=list)
    orders: bool = Field(True, description="Bridge WS /orders of every account.")
    user_trades: bool = Field(
        True, description="Bridge WS /trades/user/events/{account} of every account."
    )
    refresh_margin_s: float = Field(
        60.0, ge=0, description="Sign in again this long before a token expires."
    )
    signin_timeout_s: float = Field(10.0, gt=0, description="Timeout of each sign-in request.")
    allow_insecure_transport: bool = _allow_insecure("sign-in and bearer tokens")
    baseline: TplusOmsBaselineSettings = TplusOmsBaselineSettings()
    topics: TplusOmsTopics = TplusOmsTopics()
    websocket: TplusOmsWebSocketSettings = TplusOmsWebSocketSettings()

    def topic_map(self) -> dict[str, str]:
        """Stream name → topic for the enabled streams of this section."""
        if not self.enabled:
            return {}
        out = {}
        if self.orders:
            out["tplus.orders"] = self.topics.orders
        if self.user_trades:
            out["tplus.user-trades"] = self.topics.user_trades
        return out

    @model_validator(mode="after")
    def _check(self) -> TplusOmsSettings:
        if not re.match(r"^https?://[^/]+", self.base_url):
            raise ValueError("base_url must be an http:// or https:// URL")
        if self.enabled and not self.accounts:
            raise ValueError("an enabled OMS section needs at least one account")
        if (
            self.enabled
            and not self.allow_insecure_transport
            and transport_policy.remote_cleartext([self.base_url])
        ):
            raise ValueError(
                f"base_url: {_INSECURE_TRANSPORT}; use https:// or set allow_insecure_transport"
            )
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must not repeat")
        return self


class TplusSettings(_Model):
    """Everything bridged from the T+ venue."""

    market_data: TplusMarketDataSettings = TplusMarketDataSettings()
    oms: TplusOmsSettings = TplusOmsSettings()


class TastytradeAuthSettings(_Model):
    """The tastytrade credential: OAuth (current) or a legacy session token.

    OAuth exchanges the refresh token and client secret for an access token
    (about 15 minutes of life) and refreshes it before it expires; it travels
    as ``Bearer <token>``. A legacy session token travels as is.
    """

    scheme: Literal["oauth", "session"] = Field(
        "oauth", description="oauth: Bearer access token; session: a legacy token sent raw."
    )
    refresh_token: SecretRef | None = Field(None, description="OAuth refresh token (oauth).")
    client_secret: SecretRef | None = Field(None, description="OAuth client secret (oauth).")
    session_token: SecretRef | None = Field(None, description="Legacy session token (session).")
    refresh_margin_s: float = Field(
        60.0, ge=0, description="Refresh the access token this long before it expires."
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one token request.")

    @model_validator(mode="after")
    def _consistent(self) -> TastytradeAuthSettings:
        if self.scheme == "oauth" and self.session_token is not None:
            raise ValueError("session_token is only used with scheme: session")
        if self.scheme == "session" and (self.refresh_token or self.client_secret):
            raise ValueError("refresh_token and client_secret are only used with scheme: oauth")
        return self

    def complete(self) -> bool:
        if self.scheme == "oauth":
            return self.refresh_token is not None and self.client_secret is not None
        return self.session_token is not None


class TastytradeTopics(_Model):
    """Topic per notification stream; defaults follow ``tastytrade.<stream>``."""

    orders: str = "tastytrade.orders"
    complex_orders: str = "tastytrade.complex-orders"
    balances: str = "tastytrade.balances"
    positions: str = "tastytrade.positions"
    trading_status: str = "tastytrade.trading-status"
    external_transactions: str = "tastytrade.external-transactions"
    year_gain_summaries: str = "tastytrade.year-gain-summaries"
    order_chains: str = "tastytrade.order-chains"
    quote_alerts: str = "tastytrade.quote-alerts"
    public_watchlists: str = "tastytrade.public-watchlists"


class TastytradeAccountStreamerSettings(_Model):
    """tastytrade Account Streamer: orders, positions, balances and the rest, per account."""

    enabled: bool = Field(
        False, description="Bridge the tastytrade Account Streamer; needs accounts and auth."
    )
    api_url: str = Field("https://api.tastyworks.com", description="REST API base URL.")
    streamer_url: str = Field(
        "wss://streamer.tastyworks.com", description="Account Streamer WebSocket URL."
    )
    accounts: list[str] = Field(
        default_factory=list, description="Account numbers subscribed with connect."
    )
    auth: TastytradeAuthSettings = TastytradeAuthSettings()
    heartbeat_interval_s: float = Field(
        20.0, ge=2, le=60, description="JSON heartbeat period (the venue asks for 2-60 s)."
    )
    heartbeat_timeout_s: float = Field(
        30.0, gt=0, le=300, description="Replace the socket when a heartbeat stays unanswered."
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="Wait this long for connect's ack.")
    quote_alerts: bool = Field(False, description="Also subscribe to the user's quote alerts.")
    public_watchlists: bool = Field(False, description="Also subscribe to public watchlists.")
    baseline_currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="Currency of the balances baseline."
    )
    baseline_timeout_s: float = Field(
        10.0, gt=0, description="Deadline of one baseline request, connect to last byte."
    )
    baseline_max_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Larger baseline answers are refused unread."
    )
    max_buffered: int = Field(
        10_000, ge=1, description="Notifications held back while a baseline is fetched."
    )
    source: str = Field("connector", min_length=1, description="Client id sent as source.")
    allow_insecure_transport: bool = _allow_insecure("tokens")
    topics: TastytradeTopics = TastytradeTopics()
    websocket: WebSocketSettings = WebSocketSettings()

    def topic_map(self) -> dict[str, str]:
        """Stream name → topic for the enabled streams of this section."""
        if not self.enabled:
            return {}
        t = self.topics
        out = {
            "tastytrade.orders": t.orders,
            "tastytrade.complex-orders": t.complex_orders,
            "tastytrade.balances": t.balances,
            "tastytrade.positions": t.positions,
            "tastytrade.trading-status": t.trading_status,
            "tastytrade.external-transactions": t.external_transactions,
            "tastytrade.year-gain-summaries": t.year_gain_summaries,
            "tastytrade.order-chains": t.order_chains,
        }
        if self.quote_alerts:
            out["tastytrade.quote-alerts"] = t.quote_alerts
        if self.public_watchlists:
            out["tastytrade.public-watchlists"] = t.public_watchlists
        return out

    @model_validator(mode="after")
    def _check(self) -> TastytradeAccountStreamerSettings:
        if not re.match(r"^https?://[^/]+", self.api_url):
            raise ValueError("api_url must be an http:// or https:// URL")
        if not re.match(r"^wss?://[^/]+", self.streamer_url):
            raise ValueError("streamer_url must be a ws:// or wss:// URL")
        if len(set(self.accounts)) != len(self.accounts):
            raise ValueError("accounts must not repeat")
        for account in self.accounts:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", account):
                raise ValueError("an account number is letters, digits and dashes")
        if self.enabled and not self.accounts:
            raise ValueError("an enabled account streamer needs at least one account")
        if self.enabled and not self.auth.complete():
            raise ValueError(
                "auth needs refresh_token and client_secret (oauth) or session_token (session)"
            )
        if self.enabled and not self.allow_insecure_transport:
            for url in transport_policy.remote_cleartext([self.api_url, self.streamer_url]):
                key = "api_url" if url == self.api_url else "streamer_url"
                raise ValueError(
                    f"{key}: {_INSECURE_TRANSPORT}; use https:// and wss:// "
                    "or set allow_insecure_transport"
                )
        return self


class TastytradeSettings(_Model):
    """Everything bridged from tastytrade."""

    account_streamer: TastytradeAccountStreamerSettings = TastytradeAccountStreamerSettings()


class KafkaSettings(_Model):
    """Where records go and how the producer behaves."""

    bootstrap_servers: str = Field(
        "localhost:9092", min_length=1, description="Comma-separated host:port of brokers."
    )
    client_id: str = Field(
        "connector", description="client.id prefix; the connector name is appended."
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "lz4", description="Producer compression codec."
    )
    linger_ms: int = Field(5, ge=0, description="librdkafka linger.ms: batching delay.")
    create_topics: bool = Field(
        False, description="Create missing topics at start-up (clusters may forbid it)."
    )
    topic_partitions: int = Field(
        6, ge=1, description="Partitions of topics the connector creates."
    )
    topic_replication: int = Field(
        3, ge=1, description="Replication factor of topics the connector creates."
    )
    dlq_topic: str = Field(
        "connector.dlq", description="Dead-letter topic: frames that could not be published."
    )
    delivery_timeout_ms: int = Field(
        0,
        ge=0,
        description="librdkafka message.timeout.ms; 0 (the default) never times a record out, "
        "so an outage delays records in order instead of failing them.",
    )
    queue_max_messages: int = Field(
        100_000,
        ge=10,
        description="Records the producer may hold unacknowledged before "
        "sources are made to wait (bounds memory during an outage).",
    )
    queue_max_kbytes: int = Field(262_144, ge=64, description="The same bound in KiB.")
    max_in_flight: int = Field(
        5,
        ge=1,
        le=5,
        description="Produce requests in flight per broker (at most 5 keeps the idempotent "
        "producer's order); lower only trades throughput.",
    )
    congestion_watermark: float = Field(
        0.9, gt=0, le=1, description="Queue fill at which sheddable streams start shedding."
    )
    dlq_rate_per_s: float = Field(
        10.0, gt=0, description="Dead letters per second and stream; more are counted, dropped."
    )
    dlq_burst: int = Field(50, ge=1, description="Dead letters a stream may send at once.")
    dlq_max_pending_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Dead-letter bytes awaiting acknowledgement; while over it, more are "
        "dropped and counted (bounds memory when bad frames flood a slow cluster).",
    )
    dlq_max_bytes: int = Field(
        900_000, ge=1024, description="Dead letters larger than this keep only their head."
    )
    security: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description="librdkafka security properties: security.protocol, sasl.* and ssl.* only; "
        "secret ones (passwords, secrets, ssl.key.pem) as {file: …} or {env: …}.",
    )
    startup_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Give up start-up (exit 1) when no broker answered for this long.",
    )
    allow_insecure_transport: bool = _allow_insecure("SASL credentials")

    @field_validator("security", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        # librdkafka takes every property as text; YAML reads 60000 as a number.
        if not isinstance(value, dict):
            return value
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            if isinstance(v, int | float)
            else v
            for k, v in value.items()
        }

    @field_validator("security")
    @classmethod
    def _security_allowed(cls, value: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        refused = transport_policy.refused_security_keys(value)
        if refused:
            raise ValueError("refused: " + "; ".join(refused))
        return value

    @model_validator(mode="after")
    def _check(self) -> KafkaSettings:
        if not _TOPIC_RE.match(self.dlq_topic):
            raise ValueError(f"dlq_topic {self.dlq_topic!r} is not a legal topic name")
        if (
            transport_policy.kafka_credentials(self.security)
            and transport_policy.kafka_cleartext(self.security)
            and not self.allow_insecure_transport
            and not all(
                map(
                    transport_policy.is_loopback,
                    transport_policy.bootstrap_hosts(self.bootstrap_servers),
                )
            )
        ):
            raise ValueError(
                f"security.protocol: SASL {_INSECURE_TRANSPORT}; use SASL_SSL "
                "or set allow_insecure_transport"
            )
        return self


SyncLevel = Literal["off", "normal", "full"]


class SpoolSyncSettings(_Model):
    """SQLite ``synchronous`` per stream class: ``full`` survives an OS crash, ``normal`` a
    process crash (WAL mode), ``off`` neither once the OS loses its buffers."""

    account: SyncLevel = "full"
    market_data: SyncLevel = "normal"


class SpoolSettings(_Model):
    """The local store every accepted record is written to until the brokers acknowledge it."""

    enabled: bool = True
    path: str = Field(
        "/var/lib/connector/spool",
        min_length=1,
        description="Directory of the spool; the file is <path>/<name>.sqlite.",
    )
    max_bytes: int = Field(
        1 << 30, ge=1 << 20, description="Disk budget for spooled records (keys, values)."
    )
    shed_watermark: float = Field(
        0.9, gt=0, lt=1, description="Fill at which market data sheds (account streams wait at 1)."
    )
    sync: SpoolSyncSettings = SpoolSyncSettings()


class SchemaRegistrySettings(_Model):
    """The Confluent-compatible registry that holds the value schemas."""

    url: str = Field(
        "http://localhost:8081", description="Registry URL, without user:password@ in it."
    )
    username: str | SecretRef | None = Field(
        None, description="Basic-auth user (text, or a {file}/{env} reference); needs password."
    )
    password: SecretReference | None = Field(None, description="Basic-auth password.")
    bearer_token: SecretReference | None = Field(
        None, description="A static bearer token, instead of basic auth."
    )
    bearer_logical_cluster: str | None = Field(
        None, description="Registry cluster id sent with the bearer token (target-sr-cluster)."
    )
    bearer_identity_pool: str | None = Field(
        None, description="Identity pool id sent with the bearer token, where one is used."
    )
    ca_file: Path | None = Field(
        None, description="CA bundle that verifies the registry (the venues' trust is unchanged)."
    )
    client_cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    client_key_file: Path | None = Field(None, description="Its private key (mutual TLS).")
    allow_insecure_transport: bool = _allow_insecure("registry credentials")
    auto_register: bool = Field(
        True, description="Register schemas at start-up; false only looks them up and pins ids."
    )
    startup_timeout_s: float = Field(60.0, gt=0, description="Give up registering after this.")

    @model_validator(mode="after")
    def _check(self) -> SchemaRegistrySettings:
        if not re.match(r"^https?://[^/]+", self.url):
            raise ValueError("url must be an http:// or https:// URL")
        if transport_policy.has_userinfo(self.url):
            raise ValueError("url: no user:password@ in the URL; use username and password")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("give basic auth (username, password) or bearer_token, not both")
        if (self.bearer_token is None) != (self.bearer_logical_cluster is None):
            raise ValueError("bearer_token and bearer_logical_cluster go together")
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file needs client_cert_file")
        credentials = self.password is not None or self.bearer_token is not None
        if (
            credentials
            and not self.allow_insecure_transport
            and transport_policy.remote_cleartext([self.url])
        ):
            raise ValueError(
                f"url: {_INSECURE_TRANSPORT}; use https:// or set allow_insecure_transport"
            )
        return self


class MetricsSettings(_Model):
    """The HTTP port serving /metrics, /healthz and /readyz."""

    host: str = Field("0.0.0.0", description="Address the operations port binds.")
    port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics, /healthz and /readyz (0: any free)."
    )


class LoggingSettings(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged."
    )
    json_format: bool = Field(True, description="One JSON object per line on stderr.")
    status_interval_s: float = Field(
        60.0,
        ge=0,
        description="Log a status line (events/s per venue, DLQ, reconnects, ready) this "
        "often; 0: never.",
    )


class Settings(_Model):
    """The whole connector: one process, the streams it bridges and where they go."""

    name: str = Field(
        "connector",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="One name per process; in DLQ headers and client.id.",
    )
    kafka: KafkaSettings = KafkaSettings()
    spool: SpoolSettings = SpoolSettings()
    schema_registry: SchemaRegistrySettings = SchemaRegistrySettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    shutdown_grace_s: float = Field(20.0, gt=0, description="Flush budget at SIGTERM.")
    tplus: TplusSettings = TplusSettings()
    tastytrade: TastytradeSettings = TastytradeSettings()

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
            **self.tplus.oms.topic_map(),
            **self.tastytrade.account_streamer.topic_map(),
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


def env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Key path → name of each ``CONNECTOR__A__B`` variable, so errors can blame the variable."""
    found = {}
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX):
            path = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p)
            if path:
                found[path] = name
    return found


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``CONNECTOR__A__B=value`` variables onto the loaded YAML tree."""
    for key, name in env_overrides(environ).items():
        path = list(key)
        raw = environ[name]
        if _expects_text(Settings, path):
            # Strings (passwords above all) are taken verbatim: YAML would turn
            # "0123" into 123 and cut "a #b" at the comment.
            value: Any = raw
        else:
            try:
                value = yaml.safe_load(raw) if raw != "" else ""
            except yaml.YAMLError:
                value = raw
        _set_path(data, path, value)
    return data


def _expects_text(model: type[BaseModel], path: list[str]) -> bool:
    """Whether the field at ``path`` holds a string or secret (not a number, list or model)."""
    annotation: Any = model
    for part in path:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        options = [annotation]
    # A field that also takes a SecretRef mapping is text when given as one string.
    return any(a in (str, SecretStr) for a in options) and all(
        a in (str, SecretStr) or (isinstance(a, type) and issubclass(a, BaseModel)) for a in options
    )


def _blamed_variable(loc: tuple[str | int, ...], env: Mapping[tuple[str, ...], str]) -> str | None:
    for path, name in env.items():
        if tuple(str(p) for p in loc[: len(path)]) == path:
            return name
    return None


def _describe(
    error: ValidationError, origin: str, env: Mapping[tuple[str, ...], str] | None = None
) -> str:
    items = []
    blamed = 0
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        # Never echo the rejected input: it may be a secret.
        problem = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        variable = _blamed_variable(item["loc"], env or {})
        if variable is not None:
            blamed += 1
            problem += f" (set by environment variable {variable})"
        items.append(f"  {key}: {problem}")
    where = "the environment" if blamed == len(items) else origin
    return "\n".join([f"invalid configuration in {where}:", *items])


def parse_settings(
    data: Mapping[str, Any],
    origin: str = "configuration",
    env: Mapping[tuple[str, ...], str] | None = None,
) -> Settings:
    """Validate a plain mapping; raise ConfigError naming each bad key (and the variable
    that set it, when ``env`` maps key paths to environment variables)."""
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, env)) from None


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
            # Only where: the parser's message quotes the offending line, secret and all.
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path} is not valid YAML{where}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        data = loaded
    return parse_settings(apply_env(data, environ), origin, env_overrides(environ))
