"""Which streams publish REST baseline records after a (re)connect.

Venues that do not replay what a consumer missed get their current state
fetched over REST and published as ordinary records marked as baseline; the
consumers' guide documents a baseline marker only for these streams (other
schemas may share the marker field without ever carrying a baseline).
"""

from __future__ import annotations

from connector.venues.tastytrade.rest import baseline_requests
from connector.venues.tplus.orders import ORDERS_STREAM
from connector.venues.tplus.user_trades import USER_TRADES_STREAM

BASELINE_STREAMS: frozenset[str] = frozenset(
    {
        ORDERS_STREAM,
        USER_TRADES_STREAM,
        # The requests' streams do not depend on the account or the currency.
        *(request.type.stream for request in baseline_requests("account", "USD")),
    }
)
