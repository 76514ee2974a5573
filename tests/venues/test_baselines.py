"""The streams that publish REST baselines are streams whose schemas mark baseline records."""

from __future__ import annotations

import json

from connector.governance import catalog
from connector.governance.consumer_guide import baseline_markers
from connector.venues.baselines import BASELINE_STREAMS


def test_every_baseline_stream_is_catalogued_and_its_schema_marks_baselines() -> None:
    assert set(catalog.STREAM_SCHEMAS) >= BASELINE_STREAMS
    for stream in BASELINE_STREAMS:
        schema = json.loads(catalog.schema_text(stream))
        assert baseline_markers(schema), stream


def test_market_data_and_notification_only_streams_publish_no_baseline() -> None:
    assert not {"tplus.depth", "tplus.trades", "tplus.klines"} & BASELINE_STREAMS
    assert not {"tastytrade.order-chains", "tastytrade.quote-alerts"} & BASELINE_STREAMS
    assert {"tplus.orders", "tplus.user-trades", "tastytrade.positions"} <= BASELINE_STREAMS
