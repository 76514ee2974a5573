"""Keep one T+ order book from the connector's topics, joining at any moment.

Run: python depth_consumer.py BOOTSTRAP_SERVERS SCHEMA_REGISTRY_URL ASSET
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from connector.readers import BookReader
from connector.readers.depth_book import DepthBook


def follow_book(
    bootstrap: str,
    registry_url: str,
    asset: str,
    until: Callable[[DepthBook], bool] = lambda book: False,
) -> DepthBook:
    """Join ``asset``'s book from its latest checkpoint, then apply depth records until ``until``.

    The reader loads the newest checkpoint from the compacted ``tplus.books`` topic,
    reads ``tplus.depth`` from the record after it, and applies SNAPSHOT, DIFF and GAP
    records by the guide's rules (``book.valid`` is false from a GAP to the next
    SNAPSHOT). It raises ``CheckpointExpired`` when retention removed the records after
    the checkpoint, instead of building a wrong book.
    """
    with BookReader(asset, bootstrap, registry_url) as reader:
        while not until(reader.book):
            reader.poll(1.0)
        return reader.book


def show(book: DepthBook) -> bool:
    """Print the top of the book on one refreshed line; never stop."""
    bid, ask = book.best_bid(), book.best_ask()
    if book.valid and bid is not None and ask is not None:
        print(f"{book.asset}#{book.sequence} {bid['price']}/{ask['price']}", end="\r", flush=True)
    return False


if __name__ == "__main__":
    follow_book(sys.argv[1], sys.argv[2], sys.argv[3], until=show)
