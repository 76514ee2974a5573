"""URLs are derived from the base URL the way the venue SDK derives them."""

from __future__ import annotations

from connector.venues.tplus import urls


def test_websocket_urls_keep_only_the_host() -> None:
    assert (
        urls.ws_url("https://mds.example.com/api/v1", "/trades") == "wss://mds.example.com/trades"
    )
    assert urls.ws_url("http://127.0.0.1:8011/mds", urls.depth_path("1")) == (
        "ws://127.0.0.1:8011/marketdepth/diff/1"
    )


def test_rest_urls_keep_the_base_path_and_raw_asset() -> None:
    asset = "82af@00000000000000a4b1"
    assert urls.rest_url("http://127.0.0.1:8011/mds/", urls.snapshot_path(asset)) == (
        f"http://127.0.0.1:8011/mds/marketdepth/{asset}"
    )


def test_origin_is_scheme_and_host() -> None:
    assert urls.origin("https://mds.example.com/api") == "https://mds.example.com"
