"""Why a frame could not become a record.

A FrameError carries a stage and a reason from small closed sets, so the
pipeline can label metrics and dead letters with them, plus a detail string
for people. Details describe the problem, never the frame's secret-bearing
content.
"""

from __future__ import annotations

from connector.records import Stage


class FrameError(ValueError):
    """A frame that is not a valid event of its stream."""

    def __init__(self, reason: str, detail: str, stage: str = Stage.VALIDATE) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.stage = stage


class Reason:
    """The closed set of reasons a frame is dead-lettered."""

    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    WRONG_SHAPE = "wrong_shape"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    ENCODE_FAILED = "encode_failed"
    DELIVERY_FAILED = "delivery_failed"
    SPOOL_FULL = "spool_full"
    CONNECTION_DROPPED_UNREAD = "connection_dropped_unread"
    BAD_KEY = "bad_key"
    DELIVERY_FAILED = "delivery_failed"
    INTERNAL_ERROR = "internal_error"
    """A bug, not a bad frame: code raised something other than a FrameError."""
    FRAME_REJECTED = "frame_rejected"
    """The WebSocket layer refused a frame (too big, not UTF-8, a protocol error)."""
