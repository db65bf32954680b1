"""Batched writes off the receive path: hooks enqueue, one thread writes.

The processor's hooks only put items on a bounded queue (never blocking: a full queue drops the
item and counts it), so a slow disk cannot stall OTLP intake.  The writer thread flushes every
``batch_size`` query records or every ``flush_interval`` seconds, whichever comes first, one
transaction per flush (up to ``backlog_factor`` x ``batch_size`` when a backlog is already
queued), and applies retention hourly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag_otel.records import AlertEvent, Feedback, IngestionRecord, QueryRecord, SystemSample
from rag_otel.store.store import Store

logger = logging.getLogger("rag_otel.store")
_STOP = object()


@dataclass
class WriterStats:
    written: int = 0
    system_written: int = 0
    alerts_written: int = 0
    dropped: int = 0
    failed_batches: int = 0
    flushes: int = 0


class StoreWriter:
    """Subscribe with :meth:`attach` (pipeline hooks) and :attr:`on_alert` (alert engine hook)."""

    def __init__(self, store: Store, *, batch_size: int | None = None, flush_interval: float = 0.5,
                 max_queue: int = 100_000, retention_every: float = 3600.0, backlog_factor: int = 10) -> None:
        self.store = store
        self.batch_size = batch_size or store.config.metrics_collection.batch_size
        self.backlog_factor = max(1, backlog_factor)
        self.flush_interval = flush_interval
        self.retention_every = retention_every
        self.stats = WriterStats()
        self._q: queue.Queue[Any] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        self._enqueued = 0
        self._done = 0
        self._warned = False

    # --- hooks (called on processor threads: never block, never raise) ------------------------
    def on_record(self, record: QueryRecord) -> None:
        self._put(record)

    def on_system(self, sample: SystemSample) -> None:
        self._put(sample)

    def on_ingestion(self, item: IngestionRecord) -> None:
        self._put(item)

    def on_alert(self, event: AlertEvent) -> None:
        self._put(event)

    def on_feedback(self, item: Feedback) -> None:
        self._put(item)

    def attach(self, pipeline: Any) -> StoreWriter:
        pipeline.on_record.append(self.on_record)
        pipeline.on_system.append(self.on_system)
        if hasattr(pipeline, "on_ingestion"):
            pipeline.on_ingestion.append(self.on_ingestion)
        return self

    def _put(self, item: Any) -> None:
        try:
            self._q.put_nowait(item)
            with self._flushed:
                self._enqueued += 1
        except queue.Full:
            self.stats.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning("rag-otel store: write queue full (%d); dropping items until it drains",
                               self._q.maxsize)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> StoreWriter:
        self._thread = threading.Thread(target=self._run, name="rag-otel-store-writer", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything enqueued so far is written (or failed); True if it was in time."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            target = self._enqueued
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flushed.wait(left)
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Write what is queued, then stop the thread; True when all of it was written in time."""
        if self._thread is None:
            return True
        try:
            self._q.put(_STOP, timeout=max(0.0, timeout))
        except queue.Full:
            return False
        self._thread.join(timeout)
        ok = not self._thread.is_alive()
        self._thread = None
        return ok

    # --- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        last_retention = float("-inf")  # apply retention once at start, then every retention_every
        stopping = False
        while not stopping:
            batch: dict[type, list[Any]] = {QueryRecord: [], SystemSample: [], AlertEvent: [], Feedback: [],
                                            IngestionRecord: []}
            n = 0
            deadline = time.monotonic() + self.flush_interval
            while len(batch[QueryRecord]) < self.batch_size:
                try:
                    item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.setdefault(type(item), []).append(item)
                n += 1
            # A backlog (the disk is slower than intake) is drained in bigger transactions: each one
            # costs about the same fixed amount, so throughput rises while latency stays bounded.
            while not stopping and len(batch[QueryRecord]) < self.batch_size * self.backlog_factor:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.setdefault(type(item), []).append(item)
                n += 1
            if n:
                self._write(batch)
                with self._flushed:
                    self._done += n
                    self._flushed.notify_all()
            if time.monotonic() - last_retention >= self.retention_every:
                last_retention = time.monotonic()
                self._guard(self.store.apply_retention, "retention")

    def _write(self, batch: dict[type, list[Any]]) -> None:
        writes: list[tuple[Callable[[Any], int], list[Any], str]] = [
            (self.store.write_records, batch[QueryRecord], "written"),
            (self.store.write_system, batch[SystemSample], "system_written"),
            (self.store.write_alerts, batch[AlertEvent], "alerts_written"),
            (self.store.write_feedbacks, batch[Feedback], ""),
            (self.store.write_ingestion, batch[IngestionRecord], ""),
        ]
        for fn, items, counter in writes:
            if items and self._guard(fn, fn.__name__, items) and counter:
                setattr(self.stats, counter, getattr(self.stats, counter) + len(items))
        self.stats.flushes += 1

    def _guard(self, fn: Callable[..., Any], what: str, *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            self.stats.failed_batches += 1
            logger.exception("rag-otel store: %s failed; this batch is lost, the store is intact", what)
            return False
