"""Venue REST calls with a bounded answer: one overall deadline and a size cap.

httpx's own timeouts apply per read, so a body trickled one byte at a time
never times out, and ``response.content`` holds a whole answer in memory
however large. Every venue REST call (snapshots, baselines, sign-in, OAuth)
goes through :func:`bounded_request` instead: the whole exchange, connect to
last byte, runs under one deadline, and the body is streamed and refused as
soon as it passes the cap (at once when its declared length already does),
so neither a slow nor a huge answer can hold memory or a caller's lock.

Both refusals are ``httpx.HTTPError`` subclasses, so callers that already
handle transport errors handle them too; each is counted in
``connector_rest_answers_refused`` by venue and reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from connector.ops.metrics import Metrics

DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""Cap of a baseline answer unless configured otherwise."""

SMALL_ANSWER_BYTES = 64 * 1024
"""Cap of a sign-in, nonce, token or market-description answer: a few hundred bytes in practice."""


class RefusedReason:
    """Why an answer was refused (the ``reason`` label of ``connector_rest_answers_refused``)."""

    TOO_LARGE = "too_large"
    DEADLINE = "deadline"


class AnswerTooLarge(httpx.HTTPError):
    """The answer's body passed the cap; it was not read further."""


class DeadlineExceeded(httpx.TimeoutException):
    """The whole exchange took longer than its deadline."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A REST answer read in full within its bounds."""

    status_code: int
    content: bytes


async def bounded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline_s: float,
    max_bytes: int,
    metrics: Metrics | None = None,
    venue: str = "",
    headers: Mapping[str, str] | None = None,
    content: str | bytes | None = None,
    json: object = None,
) -> Answer:
    """Send one request and read its answer within ``deadline_s`` and ``max_bytes``.

    Raises AnswerTooLarge, DeadlineExceeded or any other ``httpx.HTTPError``.
    """
    try:
        async with asyncio.timeout(deadline_s):
            return await _exchange(client, method, url, max_bytes, headers, content, json)
    except TimeoutError:
        _count(metrics, venue, RefusedReason.DEADLINE)
        raise DeadlineExceeded(f"no complete answer within {deadline_s:g} s") from None
    except AnswerTooLarge:
        _count(metrics, venue, RefusedReason.TOO_LARGE)
        raise


async def _exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    max_bytes: int,
    headers: Mapping[str, str] | None,
    content: str | bytes | None,
    json: object,
) -> Answer:
    async with client.stream(method, url, headers=headers, content=content, json=json) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise AnswerTooLarge(f"answer declares {declared} bytes, more than {max_bytes}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                # Leaving the block closes the connection: the rest is never read.
                raise AnswerTooLarge(f"answer passed {max_bytes} bytes")
        return Answer(response.status_code, bytes(body))


def _count(metrics: Metrics | None, venue: str, reason: str) -> None:
    if metrics is not None:
        metrics.rest_answers_refused.labels(venue, reason).inc()
