"""Order-book synchronisation for one asset: snapshot plus gap-free diffs.

A sans-I/O state machine. The driver tells it what happened (connected, a
diff arrived, a snapshot arrived, the socket dropped) and it answers with the
records to publish and whether a fresh REST snapshot is needed. Keeping this
pure is what lets the sequencing rules be tested exhaustively without a
socket.

The contract it produces on the depth topic, per asset key:

* ``SNAPSHOT`` replaces the whole book; its ``sequence_number`` is S.
* ``DIFF`` records follow with S+step, S+2*step, ... and nothing is skipped.
* ``GAP`` says the book is no longer trustworthy (a missed sequence number,
  a dropped connection); the next ``SNAPSHOT`` makes it whole again.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from connector.records import Record
from connector.venues.tplus.market_data import BookLevels, depth_record


class SyncState(enum.Enum):
    DISCONNECTED = "disconnected"
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"
    SHEDDING = "shedding"


class GapReason:
    SEQUENCE_GAP = "sequence_gap"
    DISCONNECTED = "disconnected"
    BACKPRESSURE = "backpressure"
    DEAD_LETTERED = "dead_lettered"
    """A diff (or a frame that may have been one) went to the DLQ instead of the topic."""
    RESTART = "restart"
    """The connector restarted: it could not see what the venue sent meanwhile."""


class ResyncReason:
    CONNECT = "connect"
    GAP = "gap"
    STALE_SNAPSHOT = "stale_snapshot"
    UNKNOWN_SEQUENCE = "unknown_sequence"
    BACKPRESSURE = "backpressure"
    LOST = "lost"
    """A frame of the live book was lost (see ``on_lost``)."""


@dataclass(slots=True)
class SyncOutput:
    """What the driver must do after one input."""

    records: list[Record] = field(default_factory=list)
    request_snapshot: str | None = None
    """A ResyncReason when a new snapshot must be fetched, else None."""
    gaps: int = 0
    stale_dropped: int = 0
    buffer_dropped: int = 0
    shed: int = 0


class BookSync:
    """Sequences one asset's depth stream against REST snapshots."""

    def __init__(
        self, asset: str, *, step: int = 1, max_buffered: int = 10_000, restarted: bool = False
    ) -> None:
        self.asset = asset
        self._announce_restart = restarted
        """Before this process's first SNAPSHOT: a GAP for what the last process missed."""
        self.step = step
        self.max_buffered = max_buffered
        self.state = SyncState.DISCONNECTED
        self.last_sequence: int | None = None
        """Sequence number of the last record published for this book."""
        self._buffer: deque[tuple[BookLevels, int]] = deque()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def on_connected(self) -> SyncOutput:
        """A new socket is open: buffer diffs and fetch a snapshot."""
        self.state = SyncState.AWAITING_SNAPSHOT
        self._buffer.clear()
        return SyncOutput(request_snapshot=ResyncReason.CONNECT)

    def on_disconnected(self, received_ns: int) -> SyncOutput:
        """The socket dropped: whatever the venue sends meanwhile is lost to us."""
        out = SyncOutput()
        if self.state is SyncState.LIVE:
            expected = None if self.last_sequence is None else self.last_sequence + self.step
            out.records.append(
                depth_record(
                    "GAP",
                    self.asset,
                    received_ns,
                    gap_expected=expected,
                    gap_reason=GapReason.DISCONNECTED,
                )
            )
        self.state = SyncState.DISCONNECTED
        self._buffer.clear()
        return out

    def on_overflow(self, received_ns: int) -> SyncOutput:
        """The sink is congested and this diff is shed: announce it once, resync later.

        Shedding keeps the socket read (so the venue does not drop us) at the
        cost of the book, which a snapshot restores once the sink has room.
        """
        out = SyncOutput(shed=1)
        if self.state is SyncState.SHEDDING:
            return out
        if self.state is SyncState.LIVE:
            out.records.append(self._gap(received_ns, GapReason.BACKPRESSURE))
        self.state = SyncState.SHEDDING
        self._buffer.clear()
        return out

    def on_lost(self, received_ns: int, reason: str) -> SyncOutput:
        """A diff will never reach the topic (dead-lettered): announce it and resync.

        Only a live book has something to lose. While a snapshot is awaited
        the buffered diffs are checked against it by sequence number, which
        finds a missing one; a shedding book has announced its gap already.
        """
        out = SyncOutput()
        if self.state is not SyncState.LIVE:
            return out
        out.records.append(self._gap(received_ns, reason))
        self.state = SyncState.AWAITING_SNAPSHOT
        self._buffer.clear()
        out.request_snapshot = ResyncReason.LOST
        return out

    def _gap(self, received_ns: int, reason: str) -> Record:
        """The GAP a live book announces when what follows its last diff is lost."""
        assert self.last_sequence is not None
        return depth_record(
            "GAP",
            self.asset,
            received_ns,
            gap_expected=self.last_sequence + self.step,
            gap_reason=reason,
        )

    def step_live(self, diff: BookLevels, received_ns: int) -> Record | None:
        """The common case in one step: a diff that continues a live book.

        Returns its DIFF record, exactly as ``on_diff`` would publish it, or
        None (with nothing changed) when ``on_diff`` must decide: any other
        state or sequence number. It spares the hot path a SyncOutput.
        """
        last = self.last_sequence
        if (
            self.state is SyncState.LIVE
            and last is not None
            and diff.sequence_number == last + self.step
        ):
            return self._advance(diff, received_ns)
        return None

    def _advance(self, diff: BookLevels, received_ns: int) -> Record:
        """The DIFF record of the diff that follows the last one; the book moves on to it."""
        self.last_sequence = diff.sequence_number
        return depth_record("DIFF", self.asset, received_ns, diff)

    def on_diff(self, diff: BookLevels, received_ns: int) -> SyncOutput:
        out = SyncOutput()
        if self.state is SyncState.SHEDDING:
            # The sink has room again: rebuild the book from a fresh snapshot.
            self.state = SyncState.AWAITING_SNAPSHOT
            out.request_snapshot = ResyncReason.BACKPRESSURE
        if self.state is SyncState.DISCONNECTED:
            # A diff can only come from an open socket; treat it as a connect.
            self.state = SyncState.AWAITING_SNAPSHOT
        if self.state is SyncState.AWAITING_SNAPSHOT:
            self._buffer.append((diff, received_ns))
            while len(self._buffer) > self.max_buffered:
                # The oldest diffs are the ones a later snapshot is sure to cover;
                # if it does not, the snapshot is found stale and fetched again.
                self._buffer.popleft()
                out.buffer_dropped += 1
            return out
        self._apply_live(diff, received_ns, out)
        return out

    def _apply_live(self, diff: BookLevels, received_ns: int, out: SyncOutput) -> None:
        assert self.last_sequence is not None
        expected = self.last_sequence + self.step
        seq = diff.sequence_number
        if seq < expected:
            out.stale_dropped += 1
            return
        if seq == expected:
            out.records.append(self._advance(diff, received_ns))
            return
        out.gaps += 1
        out.records.append(
            depth_record(
                "GAP",
                self.asset,
                received_ns,
                gap_expected=expected,
                gap_received=seq,
                gap_reason=GapReason.SEQUENCE_GAP,
            )
        )
        self.state = SyncState.AWAITING_SNAPSHOT
        self._buffer.clear()
        self._buffer.append((diff, received_ns))
        out.request_snapshot = ResyncReason.GAP

    def on_snapshot(self, snapshot: BookLevels, received_ns: int) -> SyncOutput:
        """A REST snapshot arrived; publish it and the buffered diffs that follow it."""
        out = SyncOutput()
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            # The socket dropped (or the book resynced) while the request was in flight.
            return out
        snap_seq = snapshot.sequence_number
        if snap_seq == 0:
            # The venue omitted the field: such a snapshot cannot be aligned.
            out.request_snapshot = ResyncReason.UNKNOWN_SEQUENCE
            return out
        while self._buffer and self._buffer[0][0].sequence_number <= snap_seq:
            self._buffer.popleft()
        if self._buffer and self._buffer[0][0].sequence_number > snap_seq + self.step:
            out.request_snapshot = ResyncReason.STALE_SNAPSHOT
            return out
        if self._announce_restart:
            self._announce_restart = False
            out.records.append(
                depth_record("GAP", self.asset, received_ns, gap_reason=GapReason.RESTART)
            )
        out.records.append(depth_record("SNAPSHOT", self.asset, received_ns, snapshot))
        self.state = SyncState.LIVE
        self.last_sequence = snap_seq
        pending = list(self._buffer)
        self._buffer.clear()
        for index, (diff, diff_ns) in enumerate(pending):
            self._apply_live(diff, diff_ns, out)
            if self.state is not SyncState.LIVE:
                # A gap inside the buffer: keep the rest for the next snapshot.
                self._buffer.extend(pending[index + 1 :])
                break
        return out
