"""A tastytrade Account Streamer and REST API on 127.0.0.1 that speak the venue's protocol.

Two listeners, as the venue has two hosts: the streamer (WebSocket on the
bare host) and the REST API (plain HTTP). The account life itself is the pure
:class:`~connector.simulators.tastytrade_accounts.AccountModel`; this module
checks credentials, answers actions, schedules the model and puts its
notifications on the sockets.

Streamer behaviour (from the protocol notes; the venue's own behaviour on
points the notes leave open is an assumption of this simulator, marked so):

* ``connect`` with a valid credential → ``{"status":"ok","action":"connect",
  "web-socket-session-id":…,"value":[…],"request-id":N}``. A legacy session
  token sent as ``Bearer …`` gets ``"message":"failed"`` without
  ``request-id`` (as observed); an OAuth token without ``Bearer `` gets
  ``Unknown domain``; an expired or unknown token gets
  ``{"action":"connect","status":"error"}``. Each error is followed by a
  close 1000 ``Bye``.
* ``heartbeat`` is answered with ``ok`` and the ``request-id``; with an
  expired token it gets an error and ``Bye`` (ASSUMPTION: the notes leave
  open what the venue does then).
* Subscriptions before ``connect`` get ``connect-not-completed``.
* A socket that sends nothing for ``idle_timeout_s`` (60 s) is closed 1000 ``Bye``.

REST: ``POST /oauth/token`` (refresh token and client secret → an access
token living ``token_lifetime_s``), and per account ``GET
/accounts/{n}/balances/{currency}``, ``/positions``, ``/orders/live``,
``/complex-orders/live``, ``/trading-status`` with the venue's ``{"data": …}``
wrapping, each rendered in one synchronous step from the same model the
notifications come from.

Fault switches (``disconnect_all``, ``stop_heartbeat_replies``,
``batch_next``, ``fail_auth``, ``fail_refresh``, ``fail_rest``, ``expire_tokens``,
``refuse_subscriptions``, ``inject``, ``inject_text``, ``pause``/``resume``) let
tests and ``connector dev`` drive every recovery path of a client
deterministically. ``sent`` and ``served`` record exactly what went out, for
end-to-end comparison.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from connector.ops.wire_log import wire_logger
from connector.secrets import mask_account
from connector.simulators.lifecycle import SimulatorLifecycle
from connector.simulators.tastytrade_accounts import AccountModel, Notification

log = logging.getLogger(__name__)
_wire_log = wire_logger(f"{__name__}.wire")

_ACCOUNT_PATH = re.compile(r"^/accounts/([^/]+)/(.+)$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class StreamerClient:
    """One streamer socket as the simulator sees it."""

    id: int
    ws: ServerConnection
    session_id: str
    opened_at: float
    last_message: float
    accounts: frozenset[str] = frozenset()
    connected: bool = False
    quote_alerts: bool = False
    public_watchlists: bool = False
    actions: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    """The ``auth-token`` of every message, in order (tests compare; never logged)."""
    heartbeats: list[float] = field(default_factory=list)
    """Monotonic arrival time of every heartbeat."""
    heartbeats_answered: int = 0
    closed: bool = False
    closed_at: float | None = None

    def wants(self, envelope: dict[str, Any]) -> bool:
        kind = envelope.get("type")
        if kind == "QuoteAlert":
            return self.quote_alerts
        if kind == "PublicWatchlists":
            return self.public_watchlists
        data = envelope.get("data")
        account = data.get("account-number") if isinstance(data, dict) else None
        # Anything not about an account (a type the venue may add) goes to every client.
        return account in self.accounts if account is not None else True


@dataclass(frozen=True, slots=True)
class Sent:
    """A notification written to a client, with the index of the frame that carried it."""

    client: int
    frame: int
    envelope: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Served:
    """One REST baseline answer: which account, which notification type, which objects."""

    account: str
    type: str
    items: list[dict[str, Any]]


_BASELINE_ROUTES: dict[str, str] = {
    "positions": "CurrentPosition",
    "orders/live": "Order",
    "complex-orders/live": "ComplexOrder",
    "trading-status": "TradingStatus",
}


class TastytradeSimulator(SimulatorLifecycle):
    """The Account Streamer and REST API over a seeded account model."""

    def __init__(
        self,
        accounts: Sequence[str],
        *,
        seed: int = 1,
        event_interval_s: float = 0.05,
        token_lifetime_s: float = 900.0,
        idle_timeout_s: float = 60.0,
        session_token: str | None = None,
        alert_every: int = 12,
        watchlist_every: int = 30,
        host: str = "127.0.0.1",
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = AccountModel(accounts, seed)
        rng = random.Random(seed)
        self.refresh_token = f"sim-refresh-{rng.getrandbits(64):016x}"
        self.client_secret = f"sim-secret-{rng.getrandbits(64):016x}"
        self.session_token = session_token
        self._rng = rng
        self._interval = event_interval_s
        self._lifetime = token_lifetime_s
        self._idle = idle_timeout_s
        self._alert_every = alert_every
        self._watchlist_every = watchlist_every
        self._host = host
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self._ws_server: Server | None = None
        self._http_server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = asyncio.Event()
        self._running.set()
        self._changed = asyncio.Event()
        self._client_ids = itertools.count(1)
        self._frames = itertools.count(1)
        self._steps = 0
        self._batch_left = 0
        self._batch: list[dict[str, Any]] = []
        self._fail_auth = 0
        self._fail_refresh = 0
        self._fail_rest = 0
        self.heartbeat_replies = True
        self.subscriptions_refused = False
        """Answer subscriptions with an error reply (the socket stays open)."""
        self.tokens: dict[str, float] = {}
        """Issued access tokens → monotonic expiry."""
        self.issued: list[str] = []
        self.clients: list[StreamerClient] = []
        self.sent: list[Sent] = []
        self.served: list[Served] = []
        self.batch_frames: list[int] = []
        """Frames that carried a ``results`` batch."""
        self.api_url = ""
        self.streamer_url = ""

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Listen on two free ports and start generating (unless paused)."""
        if self._ws_server is not None:
            raise RuntimeError("simulator already started")
        self._ws_server = await serve(
            self._handle, self._host, 0, logger=_wire_log, max_size=4 * 1024 * 1024
        )
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._http_server = await asyncio.start_server(self._http, self._host, 0)
        http_port = self._http_server.sockets[0].getsockname()[1]
        self.streamer_url = f"ws://{self._host}:{ws_port}"
        self.api_url = f"http://{self._host}:{http_port}"
        task = asyncio.create_task(self._generate(), name="tastytrade-sim-events")
        task.add_done_callback(self._generator_done)
        self._tasks.append(task)
        log.info("tastytrade simulator: streamer %s, API %s", self.streamer_url, self.api_url)

    async def stop(self) -> None:
        """Stop generating and close every socket; safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        ws_server, self._ws_server = self._ws_server, None
        if ws_server is not None:
            ws_server.close()
            await ws_server.wait_closed()
        http_server, self._http_server = self._http_server, None
        if http_server is not None:
            http_server.close()
            await http_server.wait_closed()
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]

    # -- switches --------------------------------------------------------------

    def pause(self) -> None:
        """Stop generating events; no model step happens after this returns."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop_heartbeat_replies(self) -> None:
        """Keep reading heartbeats but stop answering them (the socket stays open)."""
        self.heartbeat_replies = False

    def resume_heartbeat_replies(self) -> None:
        self.heartbeat_replies = True

    def refuse_subscriptions(self) -> None:
        """Refuse quote-alert and public-watchlist subscriptions with an error reply."""
        self.subscriptions_refused = True

    def batch_next(self, count: int) -> None:
        """Send the next ``count`` notifications together in one ``{"results": [...]}`` frame."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._batch_left = count

    def fail_auth(self, count: int = 1) -> None:
        """Refuse the next ``count`` connects (``failed``, no request-id), then close with Bye."""
        self._fail_auth += count

    def fail_rest(self, count: int = 1) -> None:
        """Answer the next ``count`` account (baseline) requests with HTTP 503."""
        self._fail_rest += count

    def fail_refresh(self, count: int = 1) -> None:
        """Answer the next ``count`` token refreshes with HTTP 401."""
        self._fail_refresh += count

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        now = self._monotonic()
        for token in self.tokens:
            self.tokens[token] = min(self.tokens[token], now)

    async def disconnect_all(self, code: int = 1011) -> None:
        """Close every streamer socket with ``code``, as a failing venue would."""
        clients = [c for c in self.clients if not c.closed]
        for client in clients:
            client.closed = True
        log.info("tastytrade simulator: disconnecting %d clients (%d)", len(clients), code)
        await asyncio.gather(*(c.ws.close(code, "simulated venue failure") for c in clients))

    def inject(self, envelope: dict[str, Any]) -> None:
        """Send an extra notification (any ``type``, e.g. one a client does not know) now."""
        self._deliver([envelope])

    def inject_text(self, text: str) -> int:
        """Send one raw text frame to every live client now (not recorded in ``sent``)."""
        clients = [c.ws for c in self.live_clients() if c.ws.state is State.OPEN]
        broadcast(clients, text)
        return len(clients)

    # -- observability ---------------------------------------------------------

    def live_clients(self) -> list[StreamerClient]:
        return [c for c in self.clients if c.connected and not c.closed]

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Return once ``predicate()`` holds; it is re-checked after every change."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

    def _poke(self) -> None:
        self._changed.set()

    # -- credentials -----------------------------------------------------------

    def _issue(self) -> tuple[str, float]:
        token = f"sim-access-{len(self.issued) + 1}-{self._rng.getrandbits(48):012x}"
        self.tokens[token] = self._monotonic() + self._lifetime
        self.issued.append(token)
        return token, self._lifetime

    def _credential(self, value: Any) -> str:
        """``ok``, ``bearer_session``, ``raw_oauth`` or ``invalid`` for an auth value."""
        if not isinstance(value, str):
            return "invalid"
        if self.session_token is not None:
            if value == self.session_token:
                return "ok"
            if value == f"Bearer {self.session_token}":
                return "bearer_session"
        if value.startswith("Bearer "):
            expiry = self.tokens.get(value[len("Bearer ") :])
            return "ok" if expiry is not None and self._monotonic() < expiry else "invalid"
        return "raw_oauth" if value in self.tokens else "invalid"

    # -- streamer --------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        now = self._monotonic()
        client = StreamerClient(
            next(self._client_ids), ws, f"{self._rng.getrandbits(32):08x}", now, now
        )
        self.clients.append(client)
        self._poke()
        idle = asyncio.create_task(
            self._idle_watch(client), name=f"tastytrade-sim-idle-{client.id}"
        )
        try:
            async for message in ws:
                client.last_message = self._monotonic()
                await self._on_message(client, message)
                self._poke()
        except ConnectionClosed:
            pass
        finally:
            client.closed = True
            client.closed_at = self._monotonic()
            idle.cancel()
            await asyncio.gather(idle, return_exceptions=True)
            self._poke()

    async def _idle_watch(self, client: StreamerClient) -> None:
        while True:
            left = client.last_message + self._idle - self._monotonic()
            if left <= 0:
                log.info("tastytrade simulator: closing idle client %d", client.id)
                await self._bye(client)
                return
            await asyncio.sleep(left)

    async def _bye(self, client: StreamerClient) -> None:
        client.closed = True
        self._poke()
        await client.ws.close(1000, "Bye")

    async def _reply(self, client: StreamerClient, reply: dict[str, Any]) -> None:
        try:
            await client.ws.send(json.dumps(reply))
        except ConnectionClosed:
            return

    async def _on_message(self, client: StreamerClient, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            await self._reply(client, {"status": "error", "message": "invalid json"})
            return
        if not isinstance(message, dict):
            return
        action = message.get("action")
        token = message.get("auth-token")
        request_id = message.get("request-id")
        client.actions.append(str(action))
        if isinstance(token, str):
            client.tokens.append(token)
        base: dict[str, Any] = {"web-socket-session-id": client.session_id}
        if isinstance(request_id, int):
            base["request-id"] = request_id
        if action == "connect":
            await self._connect(client, message, token, base)
            return
        if not client.connected:
            await self._reply(
                client,
                {"status": "error", "action": action, **base, "message": "connect-not-completed"},
            )
            return
        if self._credential(token) != "ok":
            await self._reply(
                client, {"status": "error", "action": action, **base, "message": "failed"}
            )
            await self._bye(client)
            return
        if action == "heartbeat":
            client.heartbeats.append(client.last_message)
            if self.heartbeat_replies:
                client.heartbeats_answered += 1
                await self._reply(client, {"status": "ok", "action": action, **base})
        elif action in _SUBSCRIPTIONS and self.subscriptions_refused:
            await self._reply(
                client, {"status": "error", "action": action, **base, "message": "not-permitted"}
            )
        elif action == "quote-alerts-subscribe":
            client.quote_alerts = True
            await self._reply(client, {"status": "ok", "action": action, **base})
        elif action == "public-watchlists-subscribe":
            client.public_watchlists = True
            await self._reply(client, {"status": "ok", "action": action, **base})
        else:
            await self._reply(
                client, {"status": "error", "action": action, **base, "message": "not-implemented"}
            )

    async def _connect(
        self, client: StreamerClient, message: dict[str, Any], token: Any, base: dict[str, Any]
    ) -> None:
        session = {"web-socket-session-id": client.session_id}
        credential = self._credential(token)
        if self._fail_auth > 0:
            self._fail_auth -= 1
            credential = "bearer_session"
        if credential == "bearer_session":
            # As observed from the venue: no request-id on this error.
            await self._reply(
                client, {"status": "error", "action": "connect", **session, "message": "failed"}
            )
            await self._bye(client)
            return
        if credential == "raw_oauth":
            await self._reply(
                client,
                {"status": "error", "action": "connect", **base, "message": "Unknown domain"},
            )
            await self._bye(client)
            return
        if credential != "ok":
            await self._reply(client, {"action": "connect", "status": "error"})
            await self._bye(client)
            return
        value = message.get("value")
        accounts = [value] if isinstance(value, str) else value
        if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
            await self._reply(
                client, {"status": "error", "action": "connect", **base, "message": "failed"}
            )
            await self._bye(client)
            return
        known = [a for a in accounts if a in self.model.accounts]
        client.accounts = frozenset(known)
        client.connected = True
        log.info(
            "tastytrade simulator: client %d connected (%s)",
            client.id,
            ", ".join(mask_account(a) for a in known),
        )
        ack: dict[str, Any] = {"status": "ok", "action": "connect", **session, "value": known}
        if "request-id" in base:
            ack["request-id"] = base["request-id"]
        await self._reply(client, ack)

    # -- notifications ---------------------------------------------------------

    async def _generate(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            while not self._running.is_set():
                await self._running.wait()
            self._step()

    def _generator_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", task.get_name(), exc_info=task.exception())

    def _step(self) -> None:
        """One model step and the broadcast of its notifications, in one synchronous call."""
        now = self._clock_ms()
        notes: list[Notification] = self.model.step(now)
        self._steps += 1
        if self._alert_every and self._steps % self._alert_every == 0:
            notes.append(self.model.quote_alert(now))
        if self._watchlist_every and self._steps % self._watchlist_every == 0:
            notes.append(self.model.public_watchlist(now))
        self._deliver([{"type": n.type, "data": n.data, "timestamp": now} for n in notes])

    def _deliver(self, envelopes: list[dict[str, Any]]) -> None:
        for envelope in envelopes:
            if self._batch_left > 0:
                self._batch.append(envelope)
                self._batch_left -= 1
                if self._batch_left == 0:
                    batch, self._batch = self._batch, []
                    self._send(batch, batched=True)
            else:
                self._send([envelope], batched=False)
        self._poke()

    def _send(self, envelopes: list[dict[str, Any]], *, batched: bool) -> None:
        for client in self.live_clients():
            if client.ws.state is not State.OPEN:
                continue
            wanted = [e for e in envelopes if client.wants(e)]
            if not wanted:
                continue
            frame = next(self._frames)
            text = json.dumps({"results": wanted} if batched else wanted[0])
            broadcast([client.ws], text)
            self.sent.extend(Sent(client.id, frame, e) for e in wanted)
            if batched:
                self.batch_frames.append(frame)

    # -- REST ------------------------------------------------------------------

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or "0")
            body = await reader.readexactly(length) if length else b""
            status, payload = self._route(method, unquote(target.split("?", 1)[0]), headers, body)
            data = json.dumps(payload).encode()
            writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                ).encode("latin-1")
                + data
            )
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            log.debug("tastytrade simulator: bad or aborted HTTP request")
        finally:
            writer.close()
            self._poke()

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if path == "/oauth/token":
            if method != "POST":
                return 405, {"error": "method not allowed"}
            return self._token_endpoint(headers, body)
        match = _ACCOUNT_PATH.match(path)
        if match is None:
            return 404, {"error": {"code": "not_found", "message": "no such endpoint"}}
        if method != "GET":
            return 405, {"error": "method not allowed"}
        if self._credential(headers.get("authorization")) != "ok":
            return 401, {"error": {"code": "unauthorized", "message": "invalid credentials"}}
        if self._fail_rest > 0:
            self._fail_rest -= 1
            return 503, {"error": {"code": "unavailable", "message": "try again"}}
        account, rest = match.groups()
        if account not in self.model.accounts:
            return 404, {"error": {"code": "not_found", "message": "no such account"}}
        if rest.startswith("balances/"):
            balance = self.model.balance(account)
            self.served.append(Served(account, "AccountBalance", [balance]))
            return 200, {"data": balance, "context": path}
        kind = _BASELINE_ROUTES.get(rest)
        if kind is None:
            return 404, {"error": {"code": "not_found", "message": "no such endpoint"}}
        if kind == "TradingStatus":
            status = self.model.trading_status(account)
            self.served.append(Served(account, kind, [status]))
            return 200, {"data": status, "context": path}
        items = {
            "CurrentPosition": self.model.positions,
            "Order": self.model.live_orders,
            "ComplexOrder": self.model.live_complex_orders,
        }[kind](account)
        self.served.append(Served(account, kind, items))
        return 200, {"data": {"items": items}, "context": path}

    def _token_endpoint(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        try:
            if headers.get("content-type", "").startswith("application/json"):
                form = json.loads(body)
            else:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        except ValueError:
            return 400, {"error": "invalid_request"}
        if not isinstance(form, dict) or form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        if self._fail_refresh > 0:
            self._fail_refresh -= 1
            return 401, {"error": "invalid_grant"}
        if (
            form.get("refresh_token") != self.refresh_token
            or form.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_grant"}
        token, lifetime = self._issue()
        expires_in = int(lifetime) if lifetime == int(lifetime) else lifetime
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


DEV_ACCOUNTS = ("5WT00001", "5WT00002")
REFRESH_TOKEN_ENV = "CONNECTOR_DEV_TASTYTRADE_REFRESH_TOKEN"
CLIENT_SECRET_ENV = "CONNECTOR_DEV_TASTYTRADE_CLIENT_SECRET"


_SUBSCRIPTIONS = frozenset({"quote-alerts-subscribe", "public-watchlists-subscribe"})


def connector_section(sim: TastytradeSimulator) -> dict[str, Any]:
    """The connector's ``tastytrade`` settings section pointed at a started simulator (OAuth)."""
    return {
        "account_streamer": {
            "enabled": True,
            "api_url": sim.api_url,
            "streamer_url": sim.streamer_url,
            "accounts": sorted(sim.model.accounts),
            "auth": {
                "scheme": "oauth",
                "refresh_token": {"env": REFRESH_TOKEN_ENV},
                "client_secret": {"env": CLIENT_SECRET_ENV},
            },
            "quote_alerts": True,
            "public_watchlists": True,
            "heartbeat_interval_s": 5,
            "heartbeat_timeout_s": 5,
            "websocket": {"backoff": {"initial_s": 0.2, "max_s": 5}},
        }
    }


def connector_environ(sim: TastytradeSimulator) -> dict[str, str]:
    """The environment the section's SecretRefs name, holding the simulator's OAuth secrets."""
    return {REFRESH_TOKEN_ENV: sim.refresh_token, CLIENT_SECRET_ENV: sim.client_secret}


def _all_closed(clients: list[StreamerClient]) -> bool:
    return all(c.closed for c in clients)


async def inject_faults(sim: TastytradeSimulator, every_s: float) -> None:
    """Round-robin faults for ``connector dev``: every recovery path shows in the metrics."""
    kinds = itertools.cycle(
        ("batch", "disconnect", "heartbeat_stall", "unknown_type", "auth_failure", "expire")
    )
    while True:
        await asyncio.sleep(every_s)
        kind = next(kinds)
        if kind == "batch":
            sim.batch_next(3)
        elif kind == "disconnect":
            await sim.disconnect_all(1011)
        elif kind == "heartbeat_stall":
            # Unanswered until the client gives the socket up (or two minutes pass).
            stalled = sim.live_clients()
            sim.stop_heartbeat_replies()
            try:
                await sim.wait_until(partial(_all_closed, stalled), 120)
            except TimeoutError:
                log.warning("tastytrade simulator: stalled heartbeats were not noticed")
            finally:
                sim.resume_heartbeat_replies()
        elif kind == "unknown_type":
            sim.inject({"type": "UserMessage", "data": {"text": "hello"}, "timestamp": 0})
        elif kind == "auth_failure":
            sim.fail_auth(1)
            await sim.disconnect_all(1011)
        else:
            sim.expire_tokens()
        log.info("tastytrade fault injected: %s", kind)
