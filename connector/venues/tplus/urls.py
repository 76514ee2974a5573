"""Where T+ streams live, derived from a base URL the way the venue SDK does.

WebSockets keep only the host of the base URL (``https`` becomes ``wss``,
anything else ``ws``) and drop its path; REST calls keep the path. Asset ids
go into paths unescaped, as the SDK sends them.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def ws_url(base_url: str, path: str) -> str:
    """``https://host/api`` + ``/trades`` → ``wss://host/trades``."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}"


def rest_url(base_url: str, path: str) -> str:
    """``https://host/api`` + ``/marketdepth/1`` → ``https://host/api/marketdepth/1``."""
    return base_url.rstrip("/") + path


def origin(base_url: str) -> str:
    """The Origin header the SDK sends: the base URL's scheme and host."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def depth_path(asset: str) -> str:
    return f"/marketdepth/diff/{asset}"


def klines_path(asset: str) -> str:
    return f"/klines/diff/{asset}"


def snapshot_path(asset: str) -> str:
    return f"/marketdepth/{asset}"


TRADES_PATH = "/trades"


def market_path(asset: str) -> str:
    """The OMS's description of a market (its book decimals), as the SDK's
    ``OrderBookClient.get_market`` reads it. ASSUMED: the venue's protocol
    description documents no such endpoint."""
    return f"/market/{asset}"
