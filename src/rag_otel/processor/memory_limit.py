"""A bound in bytes on telemetry held in flight, answered with back-pressure (the Collector's ``memory_limiter``).

Item counts alone do not bound memory: 100,000 queued spans are 20 MB of small spans or 1.6 GB of
16 KiB ones.  So the receiver asks :class:`MemoryLimiter` before it takes a request: above the *soft*
limit (``limit - spike``) the answer is HTTP 503 + Retry-After / gRPC UNAVAILABLE with RetryInfo,
which every OTLP exporter retries, so the data waits in the sender's queue instead of our memory.
The *hard* limit bounds the export queues (in encoded bytes), which never drop while intake is held
below the soft one: the spike headroom is what the pipeline may still hand them.

What is counted (encoded OTLP bytes, the unit the sender and the exporter see; the decoded protobuf
objects take a few times that in RSS, so set the limit at about a third of the memory you can spare):

- request bodies being read or decoded (exact);
- items accepted and not yet handed to the exporter: pipeline queue, traces being assembled, traces
  being scored (their count times the average encoded size of an item received lately);
- encoded data waiting in the export queues (exact; the largest endpoint's queue, as endpoints share it).

Why not RSS, like the Collector's Go heap reading?  CPython rarely hands freed memory back to the OS,
so RSS stays high after a burst and a limit on it would refuse intake long after the burst is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class MemoryLimiter:
    """Bytes in flight, summed from the stages that hold them; :meth:`admit` decides on intake."""

    def __init__(self, soft_bytes: int, hard_bytes: int) -> None:
        self.soft_bytes = soft_bytes
        self.hard_bytes = hard_bytes
        self._reading = 0  # bodies being read or decoded
        self._item_bytes = 200.0  # average encoded bytes per item, learned from what arrives
        self._seen_bytes = 0.0  # decayed sums behind that average (about the last ten requests weigh)
        self._seen_items = 0.0
        self._items: list[Callable[[], int]] = []  # stages holding items (pipeline)
        self._bytes: list[Callable[[], int]] = []  # stages holding encoded bytes (export queues)
        self._lock = threading.Lock()

    def watch_items(self, fn: Callable[[], int]) -> None:
        """``fn()``: items a stage holds (valued at the average item size)."""
        self._items.append(fn)

    def watch_bytes(self, fn: Callable[[], int]) -> None:
        """``fn()``: encoded bytes a stage holds."""
        self._bytes.append(fn)

    def reading(self, nbytes: int) -> None:
        """A body grew by ``nbytes`` (negative: it was handed on or given up)."""
        with self._lock:
            self._reading += nbytes

    def learn(self, nbytes: int, items: int) -> None:
        """A request of ``nbytes`` carried ``items``: refine the average item size (decayed, so a change of
        span size is learned within about ten requests)."""
        if items > 0 and nbytes > 0:
            with self._lock:
                self._seen_bytes = self._seen_bytes * 0.9 + nbytes
                self._seen_items = self._seen_items * 0.9 + items
                self._item_bytes = self._seen_bytes / self._seen_items

    def in_flight(self) -> int:
        """Estimated encoded bytes held now."""
        held = self._reading + sum(fn() for fn in self._bytes)
        return int(held + self._item_bytes * sum(fn() for fn in self._items))

    def admit(self, nbytes: int, counted: int = 0) -> bool:
        """May a request of ``nbytes`` be taken (``counted`` of them already held as a body being read)?
        Always when nothing else is held: one request is bounded by ``max_request_bytes``, and refusing
        it then would refuse it forever."""
        held = self.in_flight() - counted
        return held <= 0 or held + nbytes <= self.soft_bytes

    def over_hard(self) -> bool:
        """More than the hard limit is held (a flood of concurrent uploads): bodies stop being read."""
        return self.in_flight() > self.hard_bytes
