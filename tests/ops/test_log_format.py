"""Process-wide logging set-up keeps library chatter, and what it would leak, out."""

from __future__ import annotations

import logging

from connector.ops import log_format

LIBRARIES = ("websockets", "httpx", "httpcore")


def test_even_at_debug_request_urls_and_frames_stay_out_of_the_log() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in LIBRARIES})
    try:
        log_format.configure("DEBUG", json_format=True)
        assert root.level == logging.DEBUG
        # httpx prints every request URL at INFO, and venue URLs carry account numbers.
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("websockets").getEffectiveLevel() == logging.INFO
        log_format.configure("ERROR", json_format=False)
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.ERROR
    finally:
        handlers, level, levels = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, library_level in levels.items():
            logging.getLogger(name).setLevel(library_level)
