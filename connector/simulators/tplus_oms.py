"""A T+ order-management service (OMS) on 127.0.0.1 that speaks the venue's wire protocol.

One port, like the venue: sign-in (``GET /nonce/{account}``, ``POST /auth``
with real Ed25519 verification), the account streams ``WS /orders`` and
``WS /trades/user/events/{account}`` (bearer token and ``User-Id`` checked on
the upgrade), and the REST baselines ``GET /orders/user/{account}`` and
``GET /trades/user/{account}``, and the market description ``GET
/market/{asset}`` (its book decimals; no token needed). Those paths are
ASSUMED (taken from the venue's public SDK, not from its protocol
description), like the shape of the open-orders answer (a bare array, or
the page object ``{"orders": [...]}`` when the request names a ``page`` or
``limit``); ``baseline_available = False`` makes the two baselines 404.

The orders and fills come from the pure :class:`~connector.simulators.oms_model.OmsModel`.
A model step and the broadcast of its frames happen in one synchronous
call, and REST answers are rendered synchronously too, so a baseline
always reflects exactly the frames broadcast before it.

Plain HTTP is answered by a small front end; WebSocket upgrades are passed
through byte for byte to a websockets server on a second, internal port,
because the websockets server cannot read request bodies (``POST /auth``).

Switches: ``reject_next_handshakes`` (forced 401), ``expire_tokens`` (every
token expires now and every socket using one is closed with 1008; expired
tokens are refused), ``disconnect_all``, ``pause``/``resume`` and ``step``.
Tokens also expire by themselves after ``token_ttl_s``, closing their sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from connector.ops.wire_log import wire_logger
from connector.simulators.lifecycle import SimulatorLifecycle
from connector.simulators.oms_model import (
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Emission,
    OmsModel,
    OrderFrame,
    TradeFrame,
)

log = logging.getLogger(__name__)
_wire_log = wire_logger(f"{__name__}.wire")

ORDERS_PATH = "/orders"
USER_EVENTS_PREFIX = "/trades/user/events/"
NONCE_PREFIX = "/nonce/"
AUTH_PATH = "/auth"
OPEN_ORDERS_PREFIX = "/orders/user/"
USER_TRADES_PREFIX = "/trades/user/"
MARKET_PREFIX = "/market/"
TOKEN_EXPIRED_CODE = 1008
DEV_KEY_ENV = "TPLUS_DEV_ACCOUNT_{index}_KEY"
"""Where ``connector dev`` hands each simulated account's private key to the connector."""
_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024


@dataclass(slots=True)
class _Grant:
    account: str
    expiry_ns: int


@dataclass(frozen=True, slots=True)
class Handshake:
    """One WebSocket upgrade: 101 when accepted, else the refusal's status."""

    path: str
    user_id: str
    status: int


@dataclass(slots=True)
class Sent:
    """One frame the simulator broadcast, and to how many sockets."""

    frame: Emission
    delivered: int


@dataclass(slots=True)
class AuthLog:
    """What the sign-in endpoints saw, for tests (the simulator's own secrets)."""

    tokens: list[str] = field(default_factory=list)
    signatures: list[bytes] = field(default_factory=list)
    sign_ins: dict[str, int] = field(default_factory=dict)
    rejected_sign_ins: int = 0


class TplusOmsSimulator(SimulatorLifecycle):
    """The T+ OMS account streams, sign-in and baselines over a seeded order lifecycle."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PrivateKey] | list[Ed25519PrivateKey],
        *,
        seed: int = 1,
        interval_s: float = 0.05,
        token_ttl_s: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_ns: Callable[[], int] = time.time_ns,
        max_history: int = 100_000,
    ) -> None:
        items = list(keys.values()) if isinstance(keys, Mapping) else list(keys)
        self._keys = {account_id(k): k for k in items}
        signers = {account_id(k): k.sign for k in items}
        self.model = OmsModel(signers, seed)
        self.accounts = self.model.accounts
        self._public = {account_id(k): k.public_key() for k in items}
        self._rng = random.Random(seed ^ 0x5EED)
        self._interval_s = interval_s
        self.token_ttl_s = token_ttl_s
        self._host = host
        self._port = port
        self._clock_ns = clock_ns
        self.emitted: dict[str, deque[Sent]] = {a: deque(maxlen=max_history) for a in self.accounts}
        self.auth_log = AuthLog()
        self.handshakes: list[Handshake] = []
        self._handshake_seen = asyncio.Event()
        self.baseline_available = True
        self._nonces: dict[str, set[str]] = {a: set() for a in self.accounts}
        self._grants: dict[str, _Grant] = {}
        self._reject: list[int] = []
        self._clients: dict[tuple[str, str], set[ServerConnection]] = {}
        self._conn_token: dict[ServerConnection, str] = {}
        self._clients_changed = asyncio.Condition()
        self._signed_in = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._front: asyncio.Server | None = None
        self._ws: Server | None = None
        self._ws_port = 0
        self._base_url: str | None = None
        self._front_tasks: set[asyncio.Task[Any]] = set()
        self._generator: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Listen and start the lifecycle; returns the base URL ``http://127.0.0.1:PORT``."""
        if self._front is not None:
            raise RuntimeError("simulator already started")
        self._ws = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, logger=_wire_log
        )
        self._ws_port = self._ws.sockets[0].getsockname()[1]
        self._front = await asyncio.start_server(self._serve_client, self._host, self._port)
        port = self._front.sockets[0].getsockname()[1]
        self._base_url = f"http://{self._host}:{port}"
        self._generator = asyncio.create_task(self._generate(), name="tplus-oms-sim")
        log.info("T+ OMS simulator listening on %s", self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop generating and close every socket; safe to call twice."""
        generator, self._generator = self._generator, None
        if generator is not None:
            generator.cancel()
            await asyncio.gather(generator, return_exceptions=True)
        front, self._front = self._front, None
        if front is not None:
            front.close()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
            await ws.wait_closed()
        tasks = list(self._front_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if front is not None:
            await front.wait_closed()
            log.info("T+ OMS simulator on %s stopped", self._base_url)
        self._clients.clear()
        self._conn_token.clear()

    # -- switches --------------------------------------------------------------------

    def reject_next_handshakes(self, count: int = 1, status: int = 401) -> None:
        """Refuse the next ``count`` WebSocket upgrades with ``status``, whatever their token."""
        self._reject.extend([status] * count)

    def accept_handshakes(self) -> None:
        """Drop the forced refusals not used yet."""
        self._reject.clear()

    async def expire_tokens(self) -> None:
        """Every issued token expires now; sockets using one close with 1008."""
        now = self._clock_ns()
        for grant in self._grants.values():
            grant.expiry_ns = min(grant.expiry_ns, now)
        await self._close(list(self._conn_token), TOKEN_EXPIRED_CODE, "token expired")

    async def disconnect_all(self, code: int = 1011) -> None:
        """Close every open WebSocket with ``code``, as a failing venue does."""
        await self._close(list(self._conn_token), code, "simulated venue failure")

    def pause(self) -> None:
        """Stop the lifecycle (sockets stay open); no step happens after this returns."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def step(self) -> list[Emission]:
        """One lifecycle step now (also while paused), broadcast at once."""
        frames = self.model.step(self._clock_ns())
        for frame in frames:
            if isinstance(frame, OrderFrame):
                group = self._clients.get(("orders", frame.account), set())
            else:
                group = self._clients.get(("user_trades", frame.account), set())
            broadcast(group, frame.text)
            self.emitted[frame.account].append(Sent(frame, len(group)))
        return frames

    # -- observability ---------------------------------------------------------------

    def connected(self, stream: str, account: str) -> int:
        return len(self._clients.get((stream, account), ()))

    async def wait_connected(self, stream: str, account: str, count: int = 1) -> None:
        """Return once ``count`` sockets of ``stream`` ("orders"/"user_trades") are registered."""
        async with self._clients_changed:
            await self._clients_changed.wait_for(lambda: self.connected(stream, account) >= count)

    def sent(self, account: str, kind: type[OrderFrame] | type[TradeFrame]) -> list[Sent]:
        return [s for s in self.emitted[account] if isinstance(s.frame, kind)]

    async def wait_sign_ins(self, account: str, count: int) -> None:
        """Return once ``account`` has signed in successfully ``count`` times in all."""
        while self.auth_log.sign_ins.get(account, 0) < count:
            self._signed_in.clear()
            await self._signed_in.wait()

    async def wait_handshakes(self, done: Callable[[list[Handshake]], bool]) -> None:
        """Return once ``done(handshakes)`` holds."""
        while not done(self.handshakes):
            self._handshake_seen.clear()
            await self._handshake_seen.wait()

    def inject(self, stream: str, account: str, text: str) -> int:
        """Send an extra raw frame to ``account``'s ``stream`` sockets; returns how many got it."""
        group = self._clients.get((stream, account), set())
        broadcast(group, text)
        return len(group)

    # -- the front end: plain HTTP here, upgrades to the websockets server -----------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._front_tasks.add(task)
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            if len(head) > _MAX_HEAD:
                return
            method, target, headers = _parse_head(head)
            if headers.get("upgrade", "").lower() == "websocket":
                await self._pass_through(head, reader, writer)
                return
            length = int(headers.get("content-length", "0") or "0")
            if length > _MAX_BODY:
                status, body = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"}
            else:
                raw = await reader.readexactly(length) if length else b""
                status, body = self._rest(method, target, headers, raw)
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("front-end connection failed: %s", type(exc).__name__)
        finally:
            self._front_tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _pass_through(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._ws_port)
        up_writer.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError):
                await up_writer.wait_closed()

    def _rest(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[HTTPStatus, Any]:
        """Answer one REST request; synchronous, so it sees a consistent model."""
        path = _path(target)
        if method == "GET" and path.startswith(NONCE_PREFIX):
            account = path[len(NONCE_PREFIX) :]
            if account not in self._nonces:
                return HTTPStatus.NOT_FOUND, {"error": "unknown account"}
            nonce = f"challenge {self._rng.getrandbits(128):032x}"
            self._nonces[account].add(nonce)
            return HTTPStatus.OK, {"value": nonce}
        if method == "POST" and path == AUTH_PATH:
            return self._auth(raw)
        if method == "GET" and path.startswith(MARKET_PREFIX):
            return self._market(path[len(MARKET_PREFIX) :])
        for prefix, answer in (
            (OPEN_ORDERS_PREFIX, self.model.open_orders),
            (USER_TRADES_PREFIX, self.model.recent_trades),
        ):
            if method == "GET" and path.startswith(prefix) and "/" not in path[len(prefix) :]:
                if not self.baseline_available:
                    return HTTPStatus.NOT_FOUND, {"error": "not found"}
                account = path[len(prefix) :]
                refusal = self._check_token(headers, account)
                if refusal is not None:
                    return refusal, {"error": refusal.phrase}
                if prefix == OPEN_ORDERS_PREFIX and _paged(target):
                    return HTTPStatus.OK, {"orders": answer(account), "has_next_page": False}
                return HTTPStatus.OK, answer(account)
        return HTTPStatus.NOT_FOUND, {"error": "not found"}

    def _market(self, asset: str) -> tuple[HTTPStatus, Any]:
        """The market's description, its book decimals (no token needed, as the SDK asks)."""
        if asset != self.model.asset:
            return HTTPStatus.NOT_FOUND, {"error": "market not found"}
        return HTTPStatus.OK, {
            "asset_id": asset,
            "book_price_decimals": PRICE_DECIMALS,
            "book_quantity_decimals": QUANTITY_DECIMALS,
        }

    def _auth(self, raw: bytes) -> tuple[HTTPStatus, Any]:
        try:
            body = json.loads(raw)
            account = str(body["user_id"])
            nonce = str(body["nonce"])
            signature = bytes(body["signature"])
        except (ValueError, KeyError, TypeError):
            return HTTPStatus.BAD_REQUEST, {"error": "malformed auth request"}
        public = self._public.get(account)
        if public is None or nonce not in self._nonces.get(account, set()):
            self.auth_log.rejected_sign_ins += 1
            return HTTPStatus.UNAUTHORIZED, {"error": "unknown nonce"}
        self._nonces[account].discard(nonce)
        self.auth_log.signatures.append(signature)
        # The venue SDK signs the nonce without spaces and line breaks.
        signed = nonce.replace(" ", "").replace("\r", "").replace("\n", "").encode()
        if not _verify(public, signature, signed):
            self.auth_log.rejected_sign_ins += 1
            return HTTPStatus.UNAUTHORIZED, {"error": "bad signature"}
        token = f"tok-{self._rng.getrandbits(160):040x}"
        expiry_ns = self._clock_ns() + int(self.token_ttl_s * 1e9)
        self._grants[token] = _Grant(account, expiry_ns)
        self.auth_log.tokens.append(token)
        self.auth_log.sign_ins[account] = self.auth_log.sign_ins.get(account, 0) + 1
        self._signed_in.set()
        return HTTPStatus.OK, {"token": token, "expiry_ns": expiry_ns}

    def _grant(self, headers: Mapping[str, str]) -> tuple[str, _Grant] | HTTPStatus:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        grant = self._grants.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant.expiry_ns <= self._clock_ns():
            return HTTPStatus.UNAUTHORIZED
        if headers.get("user-id", "") != grant.account:
            return HTTPStatus.FORBIDDEN
        return token, grant

    def _check_token(self, headers: Mapping[str, str], account: str) -> HTTPStatus | None:
        found = self._grant(headers)
        if isinstance(found, HTTPStatus):
            return found
        return None if found[1].account == account else HTTPStatus.FORBIDDEN

    # -- WebSockets ----------------------------------------------------------------------

    def _route(self, path: str) -> str | None:
        if path == ORDERS_PATH:
            return "orders"
        if path.startswith(USER_EVENTS_PREFIX) and "/" not in path[len(USER_EVENTS_PREFIX) :]:
            return "user_trades"
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = _path(request.path)
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        status = self._admit(path, headers)
        self.handshakes.append(Handshake(path, headers.get("user-id", ""), status))
        self._handshake_seen.set()
        if status == 101:
            return None
        return connection.respond(HTTPStatus(status), f"{HTTPStatus(status).phrase}\n")

    def _admit(self, path: str, headers: Mapping[str, str]) -> int:
        stream = self._route(path)
        if stream is None:
            return HTTPStatus.NOT_FOUND.value
        if self._reject:
            return self._reject.pop(0)
        found = self._grant(headers)
        if isinstance(found, HTTPStatus):
            return found.value
        if stream == "user_trades" and path[len(USER_EVENTS_PREFIX) :] != found[1].account:
            return HTTPStatus.FORBIDDEN.value
        return 101

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        path = _path(connection.request.path)
        headers = {k.lower(): v for k, v in connection.request.headers.raw_items()}
        found = self._grant(headers)
        stream = self._route(path)
        if isinstance(found, HTTPStatus) or stream is None:
            await connection.close(TOKEN_EXPIRED_CODE, "token expired")
            return
        token, grant = found
        group = self._clients.setdefault((stream, grant.account), set())
        group.add(connection)
        self._conn_token[connection] = token
        async with self._clients_changed:
            self._clients_changed.notify_all()
        try:
            async with asyncio.timeout(max(0.0, (grant.expiry_ns - self._clock_ns()) / 1e9)):
                async for _ in connection:
                    pass  # clients never need to send; frames are ignored
        except TimeoutError:
            await self._close([connection], TOKEN_EXPIRED_CODE, "token expired")
        except ConnectionClosed:
            pass
        finally:
            group.discard(connection)
            self._conn_token.pop(connection, None)

    async def _close(self, connections: list[ServerConnection], code: int, reason: str) -> None:
        """Forget the sockets first, so nothing more is broadcast to them, then close them."""
        for conn in connections:
            for group in self._clients.values():
                group.discard(conn)
            self._conn_token.pop(conn, None)
        await asyncio.gather(*(conn.close(code, reason) for conn in connections))

    async def _generate(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            while not self._running.is_set():
                await self._running.wait()
            self.step()


def account_id(key: Ed25519PrivateKey) -> str:
    """An account's id: its raw public key as lower-case hex."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def seed_hex(key: Ed25519PrivateKey) -> str:
    """A key's 32-byte seed as hex, the form the connector reads from a secret."""
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw.hex()


def dev_simulator(seed: int = 1, accounts: int = 2) -> TplusOmsSimulator:
    """A simulator for ``connector dev``, with freshly generated account keys."""
    return TplusOmsSimulator([Ed25519PrivateKey.generate() for _ in range(accounts)], seed=seed)


def connector_section(sim: TplusOmsSimulator) -> dict[str, Any]:
    """The connector's ``tplus.oms`` settings section pointed at a started simulator.

    Keys are named by environment variable (see :func:`connector_environ`),
    never written into the configuration.
    """
    return {
        "enabled": True,
        "base_url": sim.base_url,
        "accounts": [
            {
                "name": f"dev-{index}",
                "private_key": {"env": DEV_KEY_ENV.format(index=index)},
                "public_key": account,
            }
            for index, account in enumerate(sim.accounts)
        ],
        "websocket": {"backoff": {"initial_s": 0.2, "max_s": 5}},
    }


def connector_environ(sim: TplusOmsSimulator) -> dict[str, str]:
    """The environment the section's SecretRefs name: each account's private key."""
    return {
        DEV_KEY_ENV.format(index=index): seed_hex(sim._keys[account])
        for index, account in enumerate(sim.accounts)
    }


async def inject_faults(sim: TplusOmsSimulator, every_s: float) -> None:
    """Round-robin faults for ``connector dev``: every recovery path shows in the metrics."""
    kinds = itertools.cycle(("token_expiry", "forced_401", "disconnect", "unknown_variant"))
    while True:
        await asyncio.sleep(every_s)
        kind = next(kinds)
        if kind == "token_expiry":
            await sim.expire_tokens()
        elif kind == "forced_401":
            sim.reject_next_handshakes(1)
            await sim.disconnect_all(1011)
        elif kind == "disconnect":
            await sim.disconnect_all(1011)
        else:
            sim.inject("orders", sim.accounts[0], '{"Settled":{"order_id":"x"}}')
        log.info("T+ OMS fault injected: %s", kind)


def _verify(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _paged(target: str) -> bool:
    """Whether a request asked for a page (``page``/``limit``): then the answer is the page
    object ``{"orders": [...], "has_next_page": ...}`` the SDK's current client reads, else
    the bare array (ASSUMED: the venue's protocol description shows neither)."""
    query = parse_qs(target.partition("?")[2])
    return "page" in query or "limit" in query


def _path(target: str) -> str:
    return unquote(target.split("?", 1)[0])


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Request line and headers (names lower-cased) of an HTTP/1.1 request head."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers
