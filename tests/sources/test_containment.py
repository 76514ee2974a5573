"""The frame boundary: a bug costs one frame, counted and logged without content."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import pytest

from connector.ops.log_throttle import Throttle
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.sources.containment import (
    Containment,
    Destination,
    FrameBoundary,
    stage_of,
    where,
)
from connector.sources.ws_session import FrameRejection
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tplus.asset_ids import canonical_asset
from tests.conftest import sample
from tests.fakes import RecordingSink, handle_frame

SECRET = "s3cr3t-frame-content"


class Buggy:
    """A handler with a bug on some frames: in venue code, or in what it hands back."""

    def __init__(self) -> None:
        self.handled: list[str | bytes] = []

    async def on_open(self) -> None:
        return None

    async def on_close(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None

    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        text = data if isinstance(data, str) else data.decode()
        if text.startswith("parse"):
            # Venue code failing on a value it did not expect (a bug, not a bad frame).
            json_numbers.json_text({SECRET: object()})
        if text.startswith("map"):
            return self._later(text)
        self.handled.append(data)
        return None

    async def _later(self, text: str) -> None:
        raise KeyError(SECRET)


def _boundary(
    metrics: Metrics, sink: RecordingSink, lost: list[tuple[str, str]] | None = None
) -> FrameBoundary:
    containment = Containment(
        "tplus", "tplus.depth", "1", metrics, Throttle(window_s=3600.0, burst=2)
    )
    return FrameBoundary(
        Buggy(),
        containment,
        Publisher(sink, metrics),
        Destination("tplus.depth", "1", 1 << 20),
        on_lost=None if lost is None else (lambda key, reason: lost.append((key, reason))),
    )


async def test_a_bug_becomes_a_dead_letter_naming_its_type_and_the_stream_goes_on(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    lost: list[tuple[str, str]] = []
    boundary = _boundary(metrics, sink, lost)
    with caplog.at_level(logging.ERROR, logger="connector.sources.containment"):
        await handle_frame(boundary, "parse " + SECRET, 1)
        await handle_frame(boundary, b"map " + SECRET.encode(), 2)
        await handle_frame(boundary, "good", 3)
    assert boundary.handled == ["good"]
    assert [(d.stage, d.reason, d.key, d.stream) for d in sink.dead] == [
        ("parse", "internal_error", "1", "tplus.depth"),
        ("map", "internal_error", "1", "tplus.depth"),
    ]
    assert [d.raw for d in sink.dead] == [("parse " + SECRET).encode(), ("map " + SECRET).encode()]
    assert [dict(d.extra_headers)["error"] for d in sink.dead] == ["TypeError", "KeyError"]
    assert lost == [("1", "dead_lettered"), ("1", "dead_lettered")]
    for letter in sink.dead:
        assert SECRET not in letter.detail
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    for record in errors:
        assert SECRET not in record.getMessage() + repr(vars(record))
        assert record.exc_info is None
    assert "test_containment.py" in vars(errors[0])["where"]
    assert (
        sample(
            metrics,
            "connector_internal_errors_total",
            venue="tplus",
            stream="tplus.depth",
            stage="parse",
            error="TypeError",
        )
        == 1
    )


async def test_a_bug_repeated_at_frame_rate_is_counted_every_time_and_logged_a_few(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    boundary = _boundary(metrics, sink)
    with caplog.at_level(logging.ERROR, logger="connector.sources.containment"):
        for index in range(50):
            await handle_frame(boundary, "parse", index)
    assert len(sink.dead) == 50
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    labels = {"venue": "tplus", "stream": "tplus.depth", "stage": "parse", "error": "TypeError"}
    assert sample(metrics, "connector_internal_errors_total", **labels) == 50


def test_call_turns_a_bug_on_a_rest_answer_into_a_frame_error_and_lets_frame_errors_through(
    metrics: Metrics,
) -> None:
    containment = Containment("tplus", "tplus.depth", "1", metrics)
    with pytest.raises(FrameError) as caught:
        containment.call(json_numbers.json_text, object())
    assert (caught.value.reason, caught.value.stage) == ("internal_error", "parse")
    assert caught.value.detail == "TypeError raised while handling the REST answer"
    with pytest.raises(FrameError) as refused:
        containment.call(canonical_asset, "x")
    assert refused.value.reason == "bad_field"
    assert containment.call(canonical_asset, "07") == "7"


def test_the_stage_is_where_the_innermost_connector_code_raised() -> None:
    def driver() -> None:
        raise RuntimeError(SECRET)

    for raiser, stage in ((lambda: json_numbers.json_text(object()), "parse"), (driver, "map")):
        try:
            raiser()
        except (TypeError, RuntimeError) as exc:
            assert stage_of(exc) == stage
            assert SECRET not in where(exc)


async def test_a_frame_the_websocket_layer_refused_leaves_a_marker_without_content(
    metrics: Metrics,
) -> None:
    sink = RecordingSink()
    boundary = _boundary(metrics, sink)
    await boundary.on_frame_rejected(FrameRejection(1009, "too_big", 5_000_000, 4_194_304), 7)
    await boundary.on_frame_rejected(FrameRejection(1007, "not_utf8", 12), 8)
    too_big, not_utf8 = sink.dead
    assert (too_big.reason, too_big.stage, too_big.raw, too_big.key) == (
        "frame_rejected",
        "decode",
        b"",
        "1",
    )
    assert dict(too_big.extra_headers) == {
        "close_code": "1009",
        "frame_bytes": "5000000",
        "max_size": "4194304",
    }
    assert dict(not_utf8.extra_headers) == {"close_code": "1007", "frame_bytes": "12"}
    assert "not_utf8" in not_utf8.detail and not_utf8.received_ns == 8
